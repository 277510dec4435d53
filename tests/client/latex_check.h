// Test support: a strict check of a LaTeX table, for machines without texlive — balanced
// braces, math and environments, booktabs rules in order and no \hline, escaped specials,
// and the same number of cells in every row as the tabular's column spec.
#pragma once

#include <string>
#include <vector>

namespace sweepd::client::testing {

// Every problem found, one line each; empty when the table passes.
std::vector<std::string> CheckLatexTable(const std::string& tex);

// Runs pdflatex on a standalone document in `dir` when pdflatex is installed: returns
// "" on success, pdflatex's log tail on failure, and "skip" when pdflatex is missing.
std::string CompileWithPdflatex(const std::string& tex, const std::string& dir);

}  // namespace sweepd::client::testing
