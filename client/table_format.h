// Renders a ResultTable as an aligned text table (terminals), Markdown, CSV, LaTeX
// (booktabs) or JSON. The best value of each column is marked: bold in Markdown and
// LaTeX, a trailing '*' in text; CSV and JSON carry plain numbers for scripts.
#pragma once

#include <string>
#include <vector>

#include "client/result_table.h"
#include "common/status.h"

namespace sweepd::client {

enum class TableFormat { kText, kMarkdown, kCsv, kLatex, kJson };
Result<TableFormat> ParseTableFormat(const std::string& name);  // text|md|csv|latex|json

struct RenderOptions {
  bool latex_standalone = true;  // a whole document (article + booktabs); false: the table only
  std::string latex_label;        // \label{...}; empty: none
};

std::string RenderTable(const Table& table, TableFormat format, const RenderOptions& options = {});

// An aligned text table of plain strings (status, list, workers); numbers right-aligned
// where `right[i]`.
std::string RenderPlainTable(const std::vector<std::string>& headers,
                             const std::vector<std::vector<std::string>>& rows,
                             const std::vector<bool>& right = {});

// "mean ± std" (or "mean" where std is not shown) as people read it, with the column's unit.
std::string FormatCell(const Cell& cell, const Column& column, bool per_job);
// Escapes text for LaTeX (specials, and Δ ± − · λ as math).
std::string LatexEscape(const std::string& text);

}  // namespace sweepd::client
