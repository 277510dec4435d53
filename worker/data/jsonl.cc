// Line-by-line JSONL reading with file:line errors.
#include "worker/data/jsonl.h"

#include <fstream>
#include <istream>
#include <stdexcept>

#include "worker/failures.h"

namespace sweepd::data {

namespace {

enum class LineRead { kLine, kEnd, kTooLong };

// Reads one line of `in` into `text` (without the newline), never holding more than
// kMaxJsonLineBytes of it.
LineRead ReadLine(std::istream& in, std::string& text) {
  text.clear();
  std::streambuf* buf = in.rdbuf();
  for (;;) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) return text.empty() ? LineRead::kEnd : LineRead::kLine;
    if (c == '\n') return LineRead::kLine;
    if (static_cast<int64_t>(text.size()) >= kMaxJsonLineBytes) return LineRead::kTooLong;
    text.push_back(static_cast<char>(c));
  }
}

}  // namespace

void ForEachJsonLine(const std::string& path,
                     const std::function<void(const nlohmann::json&, int64_t)>& visit,
                     const std::atomic<bool>* stop) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidInput(IoErrorText(path, "cannot open data file"));
  std::string text;
  int64_t line = 0;
  for (;;) {
    // The caller's stop flag ends the run: the exit status says "terminated", not this text.
    if (stop != nullptr && stop->load()) throw std::runtime_error("terminated while reading " + path);
    const LineRead read = ReadLine(in, text);
    if (read == LineRead::kEnd) break;
    ++line;
    if (read == LineRead::kTooLong) {
      throw DataError(path, line, "the line is over the " + std::to_string(kMaxJsonLineBytes >> 20) +
                                      " MiB limit for one row; split the row or shorten it");
    }
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
  if (in.bad()) throw IoError(IoErrorText(path, "read failed"));
}

std::string StringField(const nlohmann::json& row, const char* key, const std::string& path, int64_t line) {
  if (!row.contains(key)) throw DataError(path, line, std::string("missing field '") + key + "'");
  if (!row[key].is_string()) {
    throw DataError(path, line, std::string("field '") + key + "' must be a string, not " + row[key].dump());
  }
  return row[key].get<std::string>();
}

}  // namespace sweepd::data
