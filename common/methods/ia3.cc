// IA3 (Liu et al. 2022) as PEFT 0.21's IA3Config: a trained scale on the outputs, or on
// the inputs of the feed-forward down projection.
#include <algorithm>

#include "common/methods/method.h"
#include "common/methods/peft_layout.h"
#include "common/methods/registry.h"

namespace sweepd::methods {
namespace {

const MethodInfo* FindIa3() { return FindMethod("ia3"); }

// PEFT's feedforward_modules for our "feedforward" option: every target (true), none
// (false), or the feed-forward down projection where it is targeted (default).
nlohmann::json FeedforwardModules(const MethodSettings& s, const std::vector<std::string>& targets) {
  if (s.Has("feedforward")) return s.Bool("feedforward") ? nlohmann::json(targets) : nlohmann::json::array();
  const bool all = targets.size() == 1 && targets[0] == "all-linear";
  if (all || std::find(targets.begin(), targets.end(), "down_proj") != targets.end()) {
    return nlohmann::json::array({"down_proj"});
  }
  return nlohmann::json::array();
}

}  // namespace

MethodInfo Ia3() {
  MethodInfo m;
  m.name = "ia3";
  m.label = "IA3";
  m.options = {BoolOption("feedforward", nullptr, "scale the inputs (default: for down_proj only)")};
  m.count = [](const MethodSettings& s, const LinearShape& sh) -> Result<int64_t> {
    return s.Bool("feedforward", sh.feed_forward) ? sh.d_in : sh.d_out;
  };
  m.peft_type = "IA3";
  // IA3Config has no bias field (PEFT warns about unknown keys).
  m.peft_fields = {{"exclude_modules", nullptr}, {"fan_in_fan_out", false}, {"feedforward_modules", nullptr},
                   {"init_ia3_weights", true}, {"modules_to_save", nullptr}};
  m.to_peft = [](const MethodSettings& s, const PeftContext& c) -> Result<nlohmann::json> {
    return nlohmann::json{{"feedforward_modules", FeedforwardModules(s, c.targets)}};
  };
  m.from_peft = [](const nlohmann::json& config) -> Result<PeftSettings> {
    PeftSettings out;
    Result<std::vector<std::string>> targets = PeftTargets(config);
    if (!targets.ok()) return targets.status();
    out.context.targets = *targets;
    out.settings = {{"method", "ia3"}};
    const nlohmann::json given = config.value("feedforward_modules", nlohmann::json());
    // Which of our three choices writes this list (the reader compares the rewrite).
    for (const nlohmann::json& choice : {nlohmann::json(nullptr), nlohmann::json(true), nlohmann::json(false)}) {
      nlohmann::json settings = {{"method", "ia3"}, {"feedforward", choice}};
      if (FeedforwardModules(MethodSettings(*FindIa3(), settings), *targets) == given) out.settings = settings;
    }
    if (out.settings.contains("feedforward") && out.settings["feedforward"].is_null()) out.settings.erase("feedforward");
    return out;
  };
  m.tensor_markers = {"ia3_l"};
  m.core_type = [](const MethodSettings&) { return std::string("Scaling"); };
  return m;
}

}  // namespace sweepd::methods
