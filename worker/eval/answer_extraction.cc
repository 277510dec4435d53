// Answer filters (see answer_extraction.h). std::regex (ECMAScript) has the same leftmost,
// first-alternative semantics as Python's re for these patterns; the texts are short
// generations, so its recursion depth stays small. "(?s).*#### " has no ECMAScript form
// and is applied as what it does: drop everything up to the end of the last "#### ".
#include "worker/eval/answer_extraction.h"

#include <algorithm>
#include <cctype>
#include <regex>

namespace sweepd::eval {
namespace {

std::string StripSpace(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\n\r\f\v") - first + 1);
}

std::string Remove(std::string s, char c) {
  s.erase(std::remove(s.begin(), s.end(), c), s.end());
  return s;
}

}  // namespace

std::string StrictMatch(const std::string& text) {
  static const std::regex kStrict("#### (-?[0-9.,]+)");
  std::smatch m;
  if (!std::regex_search(text, m, kStrict)) return kInvalidAnswer;
  return StripSpace(m[1].str());
}

std::string FlexibleExtract(const std::string& text) {
  static const std::regex kFlexible("(-?[$0-9.,]{2,})|(-?[0-9]+)");
  std::string last;
  bool found = false;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kFlexible); it != std::sregex_iterator(); ++it) {
    // The harness keeps the first non-empty group of the match.
    last = (*it)[1].matched && (*it)[1].length() > 0 ? (*it)[1].str() : (*it)[2].str();
    found = true;
  }
  return found ? StripSpace(last) : kInvalidAnswer;
}

std::string NormalizeForExactMatch(const std::string& text) {
  std::string s = Remove(Remove(text, ','), '$');
  const auto mark = s.rfind("#### ");
  if (mark != std::string::npos) s = s.substr(mark + 5);
  // Python's "\.$" matches a final "." or one before a final newline.
  if (!s.empty() && s.back() == '.') {
    s.pop_back();
  } else if (s.size() >= 2 && s[s.size() - 1] == '\n' && s[s.size() - 2] == '.') {
    s.erase(s.size() - 2, 1);
  }
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ExactMatch(const std::string& prediction, const std::string& reference) {
  return NormalizeForExactMatch(prediction) == NormalizeForExactMatch(reference);
}

}  // namespace sweepd::eval
