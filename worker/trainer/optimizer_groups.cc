// Optimizer groups from the adapters' tensor groups and the method's per-tensor multipliers.
#include "worker/trainer/optimizer_groups.h"

#include <map>
#include <stdexcept>
#include <utility>

#include "common/methods/registry.h"
#include "worker/failures.h"

namespace sweepd::trainer {

void AddAdapterParams(AdamW& optimizer, const AdapterSet& adapters, const nlohmann::json& settings,
                      const TrainSpec& train, const std::string& prefix) {
  Result<methods::MethodSettings> method = methods::Resolve(settings);
  if (!method.ok()) throw InvalidInput(method.status().message());
  std::map<std::pair<adapters::ParamGroup, double>, int> ids;  // in order of first use
  auto group_of = [&](adapters::ParamGroup g, double multiplier) {
    auto [it, inserted] = ids.emplace(std::pair{g, multiplier}, static_cast<int>(ids.size()));
    if (inserted) {
      double lr = train.lr;
      if (g == adapters::ParamGroup::kTheta && train.lr_theta) lr = *train.lr_theta;
      if (g == adapters::ParamGroup::kCore && train.lr_core) lr = *train.lr_core;
      optimizer.SetGroup(it->second, {lr * multiplier, train.weight_decay});
    }
    return it->second;
  };
  for (const auto& a : adapters.adapters()) {
    for (const auto& t : a.adapter->Trainable()) {
      const double multiplier = method->method().lr_scale(*method, t.name);
      optimizer.Add(prefix + a.module + "." + t.name, t.tensor, group_of(t.group, multiplier));
    }
  }
}

}  // namespace sweepd::trainer
