// The spec pipeline: read (sweep_document.cc), then expand and check budgets
// (grid_expansion.cc); problems of both stages are returned together.
#include "spec/sweep_spec.h"

#include <fstream>
#include <sstream>

#include "spec/grid_expansion.h"
#include "spec/sweep_document.h"

namespace sweepd::spec {

std::string FormatProblem(const SpecProblem& p) {
  std::string out = p.file.empty() ? "<spec>" : p.file;
  if (p.line > 0) {
    out.append(":").append(std::to_string(p.line));
    out.append(":").append(std::to_string(p.column));
  }
  out.append(": ");
  if (!p.field.empty()) out.append(p.field).append(": ");
  out.append(p.message);
  return out;
}

SpecResult ParseSweepSpec(const std::string& yaml, const std::string& path, const SpecLimits& limits) {
  SpecResult result;
  SweepDocument doc = ReadSweepDocument(yaml, path, result.problems);
  if (result.ok()) result.sweep = ExpandSweep(doc, path, limits, result.problems);
  result.sweep.spec_yaml = yaml;
  result.sweep.spec_path = path;
  if (!result.ok()) result.sweep.jobs.clear();
  return result;
}

SpecResult ParseSweepSpecFile(const std::string& path, const SpecLimits& limits) {
  std::ifstream in(path);
  if (!in) {
    SpecResult result;
    result.problems.push_back({path, 0, 0, "", "cannot read the spec file; check the path"});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseSweepSpec(text.str(), path, limits);
}

}  // namespace sweepd::spec
