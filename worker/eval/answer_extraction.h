// GSM8K's two answer filters and exact match as lm-evaluation-harness applies them
// (lm_eval/tasks/gsm8k/gsm8k.yaml: "strict-match" and "flexible-extract"; the exact_match
// metric with ignore_case and regexes_to_ignore [",", "\$", "(?s).*#### ", "\.$"]).
#pragma once

#include <string>

namespace sweepd::eval {

inline constexpr const char* kInvalidAnswer = "[invalid]";

// The first match of `#### (\-?[0-9\.\,]+)` (its group), else "[invalid]".
std::string StrictMatch(const std::string& text);
// The last match of `(-?[$0-9.,]{2,})|(-?[0-9]+)` (its non-empty group), else "[invalid]".
std::string FlexibleExtract(const std::string& text);
// Lower-cased, without ",", "$", everything up to the last "#### " and a final ".".
std::string NormalizeForExactMatch(const std::string& text);
bool ExactMatch(const std::string& prediction, const std::string& reference);

}  // namespace sweepd::eval
