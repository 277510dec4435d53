// Component counts by difference: component = count(settings + with) - count(settings +
// without), where `without` switches the component off (S_L = S_R = 0 for JORA's
// rotation, method pre_diag for SORA's rotation, ...). Counts come from common/budget.h.
#include "client/param_breakdown.h"

#include <vector>

#include "common/budget.h"

namespace sweepd::client {
namespace {

using nlohmann::json;

enum class Component { kRotation, kMagnitude };

struct Probe {
  const char* method;
  Component component;
  json with;     // merged into the settings for the count that includes the component
  json without;  // merged for the count that leaves it out; null: the component is everything
};

const std::vector<Probe>& Probes() {
  static const std::vector<Probe> kProbes = {
      {"jora", Component::kRotation, json::object(), {{"S_L", 0}, {"S_R", 0}}},
      {"jora", Component::kMagnitude, json::object(), {{"magnitude", "none"}}},
      {"sora", Component::kRotation, json::object(), {{"method", "pre_diag"}}},
      {"sora", Component::kMagnitude, {{"method", "pre_diag"}}, {{"method", "lora"}}},
      {"pre_diag", Component::kMagnitude, json::object(), {{"method", "lora"}}},
      {"dora", Component::kMagnitude, json::object(), {{"method", "lora"}}},
      {"oft", Component::kRotation, json::object(), nullptr},
      {"boft", Component::kRotation, json::object(), nullptr},
  };
  return kProbes;
}

std::string CoreType(const json& settings) {
  const std::string method = settings.value("method", "");
  if (method == "jora") {
    const std::string core = settings.value("core", "diag");
    if (core == "diag" || core == "selective_diag") return "Diagonal";
    if (core == "block") return "Block";
    return "Low-rank";
  }
  if (method == "oft" || method == "boft") return "Orthogonal";
  if (method == "ia3") return "Scaling";
  return "Low-rank";
}

json Merged(const json& settings, const json& patch) {
  json out = settings;
  for (const auto& [k, v] : patch.items()) out[k] = v;
  return out;
}

}  // namespace

Result<ParamBreakdown> ParamBreakdownCache::Get(const json& config) {
  const std::string source = config.contains("model") ? config["model"].value("source", "") : "";
  const json& adapter = config.contains("adapter") ? config["adapter"] : json::object();
  const json track = config.contains("track") ? config["track"] : json::object();
  const std::string key = source + "\n" + track.dump() + "\n" + adapter.dump();
  if (auto it = results_.find(key); it != results_.end()) return it->second;

  auto shape_it = shapes_.find(source);
  if (shape_it == shapes_.end()) shape_it = shapes_.emplace(source, LoadModelShape(source)).first;
  auto compute = [&]() -> Result<ParamBreakdown> {
    const Result<ModelShape>& shape = shape_it->second;
    if (!shape.ok()) return shape.status();
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
    b.core_type = CoreType(adapter);
    b.hidden_size = shape->config.value("hidden_size", int64_t{0});
    const std::string method = adapter.value("method", "");
    for (const Probe& p : Probes()) {
      if (method != p.method) continue;
      auto with = CountForLayers(Merged(adapter, p.with), *layers);
      if (!with.ok()) return with.status();
      int64_t without = 0;
      if (!p.without.is_null()) {
        auto w = CountForLayers(Merged(adapter, p.without), *layers);
        if (!w.ok()) return w.status();
        without = *w;
      }
      (p.component == Component::kRotation ? b.rotation : b.magnitude) += *with - without;
    }
    b.core = b.total - b.rotation - b.magnitude;
    return b;
  };
  return results_.emplace(key, compute()).first->second;
}

}  // namespace sweepd::client
