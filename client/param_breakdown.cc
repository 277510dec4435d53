// Component counts by difference: component = count(settings + with) - count(settings +
// without), where `without` switches the component off (S_L = S_R = 0 for JORA's
// rotation, method pre_diag for SORA's rotation, ...), as each method registers its
// components (common/methods/). Counts come from common/budget.h.
#include "client/param_breakdown.h"

#include <vector>

#include "common/budget.h"
#include "common/methods/registry.h"

namespace sweepd::client {
namespace {

using nlohmann::json;

// `settings` with `patch` applied; a patch that changes the method keeps only the options
// the other method has (SORA's r_p means nothing to Pre-Diag).
json Merged(const json& settings, const json& patch) {
  json out = settings;
  for (const auto& [k, v] : patch.items()) out[k] = v;
  const methods::MethodInfo* target = methods::FindMethod(out.value("method", ""));
  if (target == nullptr || out.value("method", "") == settings.value("method", "")) return out;
  json kept = json::object();
  for (const auto& [k, v] : out.items()) {
    if (k == "method" || methods::FindOption(*target, k) != nullptr) kept[k] = v;
  }
  return kept;
}

}  // namespace

Result<ParamBreakdown> ParamBreakdownCache::Get(const json& config) {
  const std::string source = config.contains("model") ? config["model"].value("source", "") : "";
  json adapter = config.contains("adapter") ? config["adapter"] : json::object();
  adapter.erase("init_from");  // where training starts (common/job_config.h), not a method option
  adapter.erase("init_from_sha256");
  const json track = config.contains("track") ? config["track"] : json::object();
  const std::string key = source + "\n" + track.dump() + "\n" + adapter.dump();
  if (auto it = results_.find(key); it != results_.end()) return it->second;

  auto shape_it = shapes_.find(source);
  if (shape_it == shapes_.end()) shape_it = shapes_.emplace(source, LoadModelShape(source)).first;
  auto compute = [&]() -> Result<ParamBreakdown> {
    const Result<ModelShape>& shape = shape_it->second;
    if (!shape.ok()) return shape.status();
    Result<methods::MethodSettings> settings = methods::Resolve(adapter);
    if (!settings.ok()) return settings.status();
    TrackSpec spec;
    spec.name = track.value("name", "A");
    if (track.contains("modules") && track["modules"].is_array()) {
      spec.modules = track["modules"].get<std::vector<std::string>>();
    }
    auto layers = SelectTrack(*shape, spec);
    if (!layers.ok()) return layers.status();
    auto total = CountForLayers(adapter, *layers);
    if (!total.ok()) return total.status();
    ParamBreakdown b;
    b.total = *total;
    b.core_type = settings->method().core_type(*settings);
    b.hidden_size = shape->config.value("hidden_size", int64_t{0});
    for (const methods::ParamComponent& p : settings->method().components) {
      auto with = CountForLayers(Merged(adapter, p.with), *layers);
      if (!with.ok()) return with.status();
      int64_t without = 0;
      if (!p.without.is_null()) {
        auto w = CountForLayers(Merged(adapter, p.without), *layers);
        if (!w.ok()) return w.status();
        without = *w;
      }
      (p.kind == methods::ParamComponent::Kind::kRotation ? b.rotation : b.magnitude) += *with - without;
    }
    b.core = b.total - b.rotation - b.magnitude;
    return b;
  };
  return results_.emplace(key, compute()).first->second;
}

}  // namespace sweepd::client
