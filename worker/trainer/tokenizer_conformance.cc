// tokenizer.json conformance (see tokenizer_conformance.h): ids must match exactly.
#include "worker/trainer/tokenizer_conformance.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "worker/data/hf_tokenizer.h"

namespace sweepd::trainer {

namespace {

std::string Join(const std::vector<int64_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

}  // namespace

int CheckHfTokenizerConformance(const std::string& path, std::ostream& out) {
  auto tokenizer = data::HfTokenizer::Load(path);
  const std::string reference = (std::filesystem::path(path).parent_path() / "reference.json").string();
  std::ifstream in(reference);
  if (!in) throw std::invalid_argument(reference + ": cannot open (a list of {text, ids} beside tokenizer.json)");
  nlohmann::json rows;
  try {
    rows = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(reference + ": not valid JSON at byte " + std::to_string(e.byte));
  }
  if (!rows.is_array()) throw std::invalid_argument(reference + ": must be a list of {text, ids}");
  std::vector<std::string> lines;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (!row.is_object() || !row.contains("text") || !row.at("text").is_string() || !row.contains("ids") ||
        !row.at("ids").is_array()) {
      throw std::invalid_argument(reference + ": row " + std::to_string(i) + " is not {\"text\": string, \"ids\": [...]}");
    }
    const std::string text = row.at("text").get<std::string>();
    const auto expected = row.at("ids").get<std::vector<int64_t>>();
    std::vector<int64_t> got;
    for (const auto& t : tokenizer->EncodeWithSpecialTokens(text)) got.push_back(t.id);
    if (got != expected) {
      lines.push_back("  row " + std::to_string(i) + " " + nlohmann::json(text).dump() + ": expected " + Join(expected) +
                      ", got " + Join(got));
    }
  }
  out << path << " (tokenizer.json, " << rows.size() << " texts): "
      << (lines.empty() ? "ok" : "FAIL, " + std::to_string(lines.size()) + " differ") << "\n";
  for (const auto& l : lines) out << l << "\n";
  return lines.empty() ? 0 : 1;
}

}  // namespace sweepd::trainer
