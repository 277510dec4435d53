// A PEFT adapter folder's adapter_config.json, written and read for every method (torch-free,
// so that sweepctl validate and sweepd submit check adapter.init_from as sweep-train does):
// PEFT 0.21's own config for the methods it has, a config of the same shape for those it lacks.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/methods/method.h"
#include "common/status.h"

namespace sweepd::methods {

// True for a method PEFT lacks (Pre-Diag, SORA, SORSA, JORA): its folder has our own layout.
bool HasOwnPeftLayout(const MethodInfo& m);

// The whole adapter_config.json for `s` (every field of the method's PEFT config class with
// the values that rebuild what was trained; for our own layout, every option); the error
// names the setting PEFT has no equivalent for.
Result<nlohmann::json> PeftConfigFor(const MethodSettings& s, const PeftContext& context,
                                     const std::string& base_model);

struct PeftConfigRead {
  nlohmann::json settings;  // our adapter settings, {"method": ..., ...}, resolved
  PeftContext context;      // target modules, AdaLoRA's schedule
  bool own_layout = false;  // a method PEFT lacks
};

// Reads FOLDER/adapter_config.json; the error is one line naming the file and the field: a
// peft_type no method reads, a field PEFT 0.21's config class does not have, or a value
// sweep-train would not rebuild (e.g. OFT's block_share true).
Result<PeftConfigRead> ReadPeftConfigFile(const std::string& folder);

// An error naming the folder, the field and both values when `read` is not an adapter of
// `expected`'s method and settings.
Status CheckSameSettings(const std::string& folder, const PeftConfigRead& read, const nlohmann::json& expected);

}  // namespace sweepd::methods
