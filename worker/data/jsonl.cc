// Line-by-line JSONL reading with file:line errors.
#include "worker/data/jsonl.h"

#include <fstream>

#include "worker/failures.h"

namespace sweepd::data {

void ForEachJsonLine(const std::string& path,
                     const std::function<void(const nlohmann::json&, int64_t)>& visit) {
  std::ifstream in(path);
  if (!in) throw InvalidInput(IoErrorText(path, "cannot open data file"));
  std::string text;
  int64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      std::string why = e.what();
      const auto colon = why.find("parse error");
      throw DataError(path, line, "not valid JSON (" + (colon == std::string::npos ? why : why.substr(colon)) + ")");
    }
    if (!row.is_object()) throw DataError(path, line, "expected a JSON object, got " + std::string(row.type_name()));
    visit(row, line);
  }
}

std::string StringField(const nlohmann::json& row, const char* key, const std::string& path, int64_t line) {
  if (!row.contains(key)) throw DataError(path, line, std::string("missing field '") + key + "'");
  if (!row[key].is_string()) {
    throw DataError(path, line, std::string("field '") + key + "' must be a string, not " + row[key].dump());
  }
  return row[key].get<std::string>();
}

}  // namespace sweepd::data
