// Table writers. Numbers: scores with two decimals, signed changes with a sign, parameter
// counts as 6.29M, memory in GiB/MiB; CSV and JSON keep full precision.
#include "client/table_format.h"

#include <cmath>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

namespace sweepd::client {
namespace {

std::string Printf(const char* fmt, double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, precision, v);
  return buf;
}

// Mean and std in the column's unit, and the unit written once after both ("MiB", "%").
struct Parts {
  std::string mean, std, suffix;
};
Parts FormatParts(const Stat& s, const Column& c) {
  switch (c.unit) {
    case Unit::kSigned:
      return {Printf("%+.*f", s.mean, c.precision), Printf("%.*f", s.std, c.precision), ""};
    case Unit::kPercent:
      return {Printf("%.*f", s.mean, c.precision), Printf("%.*f", s.std, c.precision), "%"};
    case Unit::kParams: {
      const double a = std::fabs(s.mean);
      const double scale = a >= 1e9 ? 1e9 : a >= 1e6 ? 1e6 : a >= 1e3 ? 1e3 : 1;
      const char* suffix = a >= 1e9 ? "B" : a >= 1e6 ? "M" : a >= 1e3 ? "K" : "";
      const int decimals = scale == 1 ? 0 : 2;
      return {Printf("%.*f", s.mean / scale, decimals), Printf("%.*f", s.std / scale, decimals), suffix};
    }
    case Unit::kBytes: {
      const double gib = 1024.0 * 1024.0 * 1024.0, mib = 1024.0 * 1024.0;
      if (std::fabs(s.mean) >= gib) return {Printf("%.*f", s.mean / gib, 2), Printf("%.*f", s.std / gib, 2), " GiB"};
      return {Printf("%.*f", s.mean / mib, 1), Printf("%.*f", s.std / mib, 1), " MiB"};
    }
    default:
      return {Printf("%.*f", s.mean, c.precision), Printf("%.*f", s.std, c.precision), ""};
  }
}

bool ShowsStd(const Cell& cell, const Column& c, bool per_job) {
  return cell.stat && c.show_std && !per_job && cell.stat->n >= 2;
}

std::string Raw(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

size_t DisplayWidth(const std::string& s) {
  size_t w = 0;
  for (unsigned char ch : s) w += (ch & 0xC0) != 0x80;
  return w;
}

std::string Pad(const std::string& s, size_t width, bool right) {
  size_t w = DisplayWidth(s);
  std::string fill(width > w ? width - w : 0, ' ');
  return right ? fill + s : s + fill;
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string RenderText(const Table& t) {
  std::vector<std::vector<std::string>> cells;
  bool any_best = false;
  for (const auto& row : t.rows) {
    std::vector<std::string> line;
    for (size_t c = 0; c < t.columns.size(); ++c) {
      std::string text = FormatCell(row[c], t.columns[c], t.per_job);
      if (row[c].best) {
        text += "*";
        any_best = true;
      }
      line.push_back(text);
    }
    cells.push_back(std::move(line));
  }
  std::vector<size_t> widths;
  for (const auto& c : t.columns) widths.push_back(DisplayWidth(c.header));
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(line[c]));
  }
  auto emit = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t c = 0; c < line.size(); ++c) {
      const bool right = t.columns[c].unit != Unit::kText;
      std::string cell = Pad(line[c], widths[c], right);
      if (c + 1 == line.size() && !right) {
        while (!cell.empty() && cell.back() == ' ') cell.pop_back();
      }
      out += (c ? "  " : "") + cell;
    }
    return out + "\n";
  };
  std::vector<std::string> header;
  for (const auto& c : t.columns) header.push_back(c.header);
  std::string out = emit(header);
  std::vector<std::string> rule;
  for (size_t w : widths) rule.push_back(std::string(w, '-'));
  out += emit(rule);
  for (const auto& line : cells) out += emit(line);
  if (t.rows.empty()) out += "(no results yet)\n";
  if (any_best) out += "* best in its column\n";
  if (!t.per_job && !t.rows.empty()) out += "mean ± sample std over seeds; n = jobs per row\n";
  return out;
}

std::string RenderMarkdown(const Table& t) {
  auto escape = [](std::string s) {
    std::string out;
    for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return out;
  };
  std::string out = "|";
  for (const auto& c : t.columns) out += " " + escape(c.header) + " |";
  out += "\n|";
  for (const auto& c : t.columns) out += c.unit == Unit::kText ? " --- |" : " ---: |";
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (size_t c = 0; c < t.columns.size(); ++c) {
      std::string text = escape(FormatCell(row[c], t.columns[c], t.per_job));
      if (row[c].best) text = "**" + text + "**";
      out += " " + text + " |";
    }
    out += "\n";
  }
  if (!t.note.empty()) out += "\n" + t.note + "\n";
  return out;
}

std::string RenderCsv(const Table& t) {
  std::string out;
  std::vector<std::string> header;
  for (const auto& c : t.columns) {
    header.push_back(c.id);
    if (c.show_std && !t.per_job && !c.is_label) header.push_back(c.id + "_std");
  }
  for (size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + CsvField(header[i]);
  out += "\n";
  for (const auto& row : t.rows) {
    std::vector<std::string> fields;
    for (size_t c = 0; c < t.columns.size(); ++c) {
      const Column& col = t.columns[c];
      const Cell& cell = row[c];
      fields.push_back(cell.stat ? Raw(cell.stat->mean) : cell.text);
      if (col.show_std && !t.per_job && !col.is_label) {
        fields.push_back(cell.stat && cell.stat->n >= 2 ? Raw(cell.stat->std) : "");
      }
    }
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + CsvField(fields[i]);
    out += "\n";
  }
  return out;
}

std::string RenderJson(const Table& t) {
  nlohmann::json doc = {{"title", t.title}, {"note", t.note}, {"per_job", t.per_job}};
  doc["columns"] = nlohmann::json::array();
  for (const auto& c : t.columns) doc["columns"].push_back({{"id", c.id}, {"header", c.header}});
  doc["rows"] = nlohmann::json::array();
  for (const auto& row : t.rows) {
    nlohmann::json r = nlohmann::json::object();
    for (size_t c = 0; c < t.columns.size(); ++c) {
      const Cell& cell = row[c];
      if (!cell.stat) {
        r[t.columns[c].id] = cell.text.empty() ? nlohmann::json(nullptr) : nlohmann::json(cell.text);
      } else if (t.per_job || t.columns[c].id == "n") {
        r[t.columns[c].id] = cell.stat->mean;
      } else {
        r[t.columns[c].id] = {{"mean", cell.stat->mean},
                              {"std", cell.stat->n >= 2 ? nlohmann::json(cell.stat->std) : nlohmann::json(nullptr)},
                              {"n", cell.stat->n},
                              {"best", cell.best}};
      }
    }
    doc["rows"].push_back(std::move(r));
  }
  return doc.dump(2) + "\n";
}

std::string LatexCell(const Cell& cell, const Column& c, bool per_job) {
  if (!cell.stat) return cell.text.empty() ? "--" : LatexEscape(cell.text);
  const Parts p = FormatParts(*cell.stat, c);
  const bool with_std = ShowsStd(cell, c, per_job);
  // Plain and signed numbers are set in math (a real minus sign); values with units in text.
  if (c.unit == Unit::kNumber || c.unit == Unit::kSigned) {
    std::string body = p.mean + (with_std ? " \\pm " + p.std : "");
    return cell.best ? "$\\mathbf{" + body + "}$" : "$" + body + "$";
  }
  std::string body = LatexEscape(p.mean + (with_std ? "" : p.suffix)) +
                     (with_std ? " $\\pm$ " + LatexEscape(p.std + p.suffix) : "");
  return cell.best ? "\\textbf{" + body + "}" : body;
}

std::string RenderLatex(const Table& t, const RenderOptions& o) {
  std::string spec;
  for (const auto& c : t.columns) spec += c.unit == Unit::kText ? "l" : "r";
  std::string out;
  if (o.latex_standalone) {
    out += "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n";
  } else {
    out += "% Needs \\usepackage{booktabs} in the preamble.\n";
  }
  out += "\\begin{table}[t]\n  \\centering\n";
  std::string caption = t.title;
  if (!t.note.empty()) caption += ". " + t.note;
  out += "  \\caption{" + LatexEscape(caption) + "}\n";
  if (!o.latex_label.empty()) out += "  \\label{" + o.latex_label + "}\n";
  // A whole document scales wide tables to the text width; a fragment leaves that to the paper.
  if (o.latex_standalone) out += "  \\resizebox{\\linewidth}{!}{%\n";
  out += "  \\begin{tabular}{" + spec + "}\n    \\toprule\n";

  // A spanning header over each run of columns that share a group (ARC-C: ft, Δ).
  bool grouped = false;
  for (const auto& c : t.columns) grouped |= !c.group.empty();
  if (grouped) {
    std::string top, rules;
    for (size_t c = 0; c < t.columns.size();) {
      size_t end = c + 1;
      while (!t.columns[c].group.empty() && end < t.columns.size() &&
             t.columns[end].group == t.columns[c].group) {
        ++end;
      }
      if (c) top += " & ";
      if (t.columns[c].group.empty()) {
        top += "";
      } else {
        top += "\\multicolumn{" + std::to_string(end - c) + "}{c}{" + LatexEscape(t.columns[c].group) + "}";
        rules += (rules.empty() ? "" : " ") + std::string("\\cmidrule(lr){") + std::to_string(c + 1) + "-" +
                 std::to_string(end) + "}";
      }
      c = end;
    }
    out += "    " + top + " \\\\\n    " + rules + "\n";
  }
  std::string header;
  for (size_t c = 0; c < t.columns.size(); ++c) {
    const Column& col = t.columns[c];
    header += (c ? " & " : "") + LatexEscape(grouped && !col.group.empty() ? col.sub : col.header);
  }
  out += "    " + header + " \\\\\n    \\midrule\n";
  for (const auto& row : t.rows) {
    std::string line;
    for (size_t c = 0; c < t.columns.size(); ++c) {
      line += (c ? " & " : "") + LatexCell(row[c], t.columns[c], t.per_job);
    }
    out += "    " + line + " \\\\\n";
  }
  out += "    \\bottomrule\n  \\end{tabular}\n";
  if (o.latex_standalone) out += "  }\n";
  out += "\\end{table}\n";
  if (o.latex_standalone) out += "\\end{document}\n";
  return out;
}

}  // namespace

Result<TableFormat> ParseTableFormat(const std::string& name) {
  static const std::map<std::string, TableFormat> kFormats = {
      {"text", TableFormat::kText},   {"md", TableFormat::kMarkdown},
      {"markdown", TableFormat::kMarkdown}, {"csv", TableFormat::kCsv},
      {"latex", TableFormat::kLatex}, {"tex", TableFormat::kLatex}, {"json", TableFormat::kJson}};
  auto it = kFormats.find(name);
  if (it == kFormats.end()) {
    return Status::InvalidArgument("unknown format '" + name + "'; choose text, md, csv, latex or json");
  }
  return it->second;
}

std::string FormatCell(const Cell& cell, const Column& column, bool per_job) {
  if (!cell.stat) return cell.text.empty() ? "-" : cell.text;
  const Parts p = FormatParts(*cell.stat, column);
  if (!ShowsStd(cell, column, per_job)) return p.mean + p.suffix;
  return p.mean + " ± " + p.std + p.suffix;
}

std::string LatexEscape(const std::string& text) {
  static const std::map<std::string, std::string> kUnicode = {
      {"Δ", "$\\Delta$"}, {"±", "$\\pm$"}, {"−", "$-$"}, {"·", "$\\cdot$"}, {"λ", "$\\lambda$"},
      {"↑", "$\\uparrow$"}, {"↓", "$\\downarrow$"}, {"–", "--"}, {"—", "---"}};
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    switch (ch) {
      case '\\': out += "\\textbackslash{}"; continue;
      case '&': case '%': case '$': case '#': case '_': case '{': case '}':
        out += '\\';
        out += ch;
        continue;
      case '~': out += "\\textasciitilde{}"; continue;
      case '^': out += "\\textasciicircum{}"; continue;
      case '<': out += "\\textless{}"; continue;
      case '>': out += "\\textgreater{}"; continue;
      default: break;
    }
    if (static_cast<unsigned char>(ch) >= 0x80) {
      bool replaced = false;
      for (const auto& [u, tex] : kUnicode) {
        if (text.compare(i, u.size(), u) == 0) {
          out += tex;
          i += u.size() - 1;
          replaced = true;
          break;
        }
      }
      if (replaced) continue;
    }
    out += ch;
  }
  return out;
}

std::string RenderPlainTable(const std::vector<std::string>& headers,
                             const std::vector<std::vector<std::string>>& rows,
                             const std::vector<bool>& right) {
  Table t;
  t.per_job = true;
  for (size_t i = 0; i < headers.size(); ++i) {
    const bool r = i < right.size() && right[i];
    t.columns.push_back(r ? Column::Of(headers[i], headers[i]) : Column::Label(headers[i], headers[i]));
  }
  for (const auto& row : rows) {
    std::vector<Cell> cells;
    for (const auto& text : row) cells.push_back({text, std::nullopt, false});
    cells.resize(headers.size());
    t.rows.push_back(std::move(cells));
  }
  std::string out = RenderText(t);
  if (rows.empty()) out = out.substr(0, out.rfind("(no results yet)"));
  return out;
}

std::string RenderTable(const Table& table, TableFormat format, const RenderOptions& options) {
  switch (format) {
    case TableFormat::kText: return RenderText(table);
    case TableFormat::kMarkdown: return RenderMarkdown(table);
    case TableFormat::kCsv: return RenderCsv(table);
    case TableFormat::kLatex: return RenderLatex(table, options);
    case TableFormat::kJson: return RenderJson(table);
  }
  return "";
}

}  // namespace sweepd::client
