// A LaTeX checker strict enough to catch what breaks pdflatex in generated tables.
#include "tests/client/latex_check.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/client/fixture_db.h"

namespace sweepd::client::testing {
namespace {

// The argument of \cmd{...} starting at `pos` (the brace), or "".
std::string BraceArg(const std::string& s, size_t pos) {
  if (pos >= s.size() || s[pos] != '{') return "";
  int depth = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return s.substr(pos + 1, i - pos - 1);
  }
  return "";
}

int CountCells(const std::string& row) {
  int cells = 0;
  int depth = 0;
  size_t i = 0;
  int open_cell = 1;
  for (; i < row.size(); ++i) {
    if (row[i] == '\\') {
      if (row.compare(i, 13, "\\multicolumn{") == 0) {
        const int span = std::atoi(BraceArg(row, i + 12).c_str());
        open_cell = span;
      }
      ++i;
      continue;
    }
    if (row[i] == '{') ++depth;
    if (row[i] == '}') --depth;
    if (row[i] == '&' && depth == 0) {
      cells += open_cell;
      open_cell = 1;
    }
  }
  return cells + open_cell;
}

}  // namespace

std::vector<std::string> CheckLatexTable(const std::string& tex) {
  std::vector<std::string> problems;
  // Braces and math, ignoring comments and escaped characters.
  int depth = 0;
  bool in_math = false;
  std::vector<std::string> envs;
  std::istringstream lines(tex);
  std::string line;
  int number = 0;
  int columns = -1;
  int rules = 0;  // 1 after \toprule, 2 after \midrule, 3 after \bottomrule
  bool in_tabular = false;
  while (std::getline(lines, line)) {
    ++number;
    const std::string where = "line " + std::to_string(number) + ": ";
    for (size_t i = 0; i < line.size(); ++i) {
      const char ch = line[i];
      if (ch == '\\') {
        if (line.compare(i, 7, "\\begin{") == 0) {
          const std::string env = BraceArg(line, i + 6);
          envs.push_back(env);
          if (env == "tabular") {
            in_tabular = true;
            std::string spec = BraceArg(line, i + 6 + env.size() + 2);
            columns = 0;
            for (char c : spec) columns += c == 'l' || c == 'r' || c == 'c';
          }
        } else if (line.compare(i, 5, "\\end{") == 0) {
          const std::string env = BraceArg(line, i + 4);
          if (envs.empty() || envs.back() != env) {
            problems.push_back(where + "\\end{" + env + "} does not close " + (envs.empty() ? "anything" : envs.back()));
          } else {
            envs.pop_back();
          }
          if (env == "tabular") in_tabular = false;
        } else if (line.compare(i, 6, "\\hline") == 0) {
          problems.push_back(where + "\\hline in a booktabs table");
        }
        ++i;  // the escaped or command character
        continue;
      }
      if (ch == '%') {
        // A comment line, or `{%` ending a line; anything after a % elsewhere would vanish.
        if (i == 0 || line.find_first_not_of(' ') == i || i + 1 == line.size()) break;
        problems.push_back(where + "unescaped % (the rest of the line would be a comment)");
        break;
      }
      if (ch == '{') ++depth;
      if (ch == '}' && --depth < 0) problems.push_back(where + "unbalanced }");
      if (ch == '$') in_math = !in_math;
      if (!in_math && (ch == '_' || ch == '^' || ch == '#')) {
        problems.push_back(where + "unescaped " + std::string(1, ch) + " outside math");
      }
      if (!in_tabular && ch == '&') problems.push_back(where + "& outside a tabular");
      if (static_cast<unsigned char>(ch) >= 0x80) problems.push_back(where + "non-ASCII character");
    }
    if (in_math) {
      problems.push_back(where + "math ($) not closed on its line");
      in_math = false;
    }
    const size_t first = line.find_first_not_of(' ');
    const std::string body = first == std::string::npos ? "" : line.substr(first);
    if (body.rfind("\\toprule", 0) == 0) rules = rules == 0 ? 1 : -1;
    if (body.rfind("\\midrule", 0) == 0) rules = rules == 1 ? 2 : -1;
    if (body.rfind("\\bottomrule", 0) == 0) rules = rules == 2 ? 3 : -1;
    if (in_tabular && body.size() > 2 && body.compare(body.size() - 2, 2, "\\\\") == 0) {
      const int cells = CountCells(body.substr(0, body.size() - 2));
      if (cells != columns) {
        problems.push_back(where + std::to_string(cells) + " cells, the tabular has " + std::to_string(columns));
      }
    }
  }
  if (depth != 0) problems.push_back("braces unbalanced at the end (depth " + std::to_string(depth) + ")");
  if (!envs.empty()) problems.push_back("environment " + envs.back() + " not closed");
  if (rules != 3) problems.push_back("booktabs rules missing or out of order (\\toprule, \\midrule, \\bottomrule)");
  if (columns <= 0) problems.push_back("no tabular with a column spec");
  return problems;
}

std::string CompileWithPdflatex(const std::string& tex, const std::string& dir) {
  if (std::system("command -v pdflatex >/dev/null 2>&1") != 0) return "skip";
  {
    std::ofstream out(dir + "/table.tex");
    out << tex;
  }
  const std::string cmd = "cd '" + dir + "' && pdflatex -interaction=nonstopmode -halt-on-error table.tex > pdflatex.out 2>&1";
  if (std::system(cmd.c_str()) == 0) return "";
  std::string log = ReadTextFile(dir + "/pdflatex.out");
  return log.size() > 3000 ? log.substr(log.size() - 3000) : log;
}

}  // namespace sweepd::client::testing
