// The spec pipeline: read (sweep_document.cc), then expand and check budgets
// (grid_expansion.cc); problems of both stages are returned together.
#include "spec/sweep_spec.h"

#include "spec/grid_expansion.h"
#include "spec/spec_text.h"
#include "spec/sweep_document.h"

namespace sweepd::spec {
namespace {

// Keeps the first kMaxReportedProblems problems, each field and message cut short, and
// counts the rest (and the `omitted` ones never stored) in one last problem, which points where
// the first of them is (or, when none of them was stored, where the last one reported is), so
// that it too names a line or a field.
void BoundProblems(std::vector<SpecProblem>& problems, const std::string& path, size_t omitted) {
  size_t more = omitted;
  SpecProblem summary;
  std::string where = " after this one";
  if (problems.size() > kMaxReportedProblems) {
    more += problems.size() - kMaxReportedProblems;
    summary = problems[kMaxReportedProblems];
    where = " from here on";
    problems.resize(kMaxReportedProblems);
  } else if (!problems.empty()) {
    summary = problems.back();
  }
  if (more > 0) {
    summary.file = path;
    if (summary.line <= 0 && summary.field.empty()) summary.field = "(the spec)";
    summary.message = "and " + std::to_string(more) + " more problem" + (more == 1 ? "" : "s") + where +
                      "; fix the ones above and validate again";
    problems.push_back(summary);
  }
  for (SpecProblem& p : problems) {
    p.field = Excerpt(p.field, kMaxProblemFieldBytes);
    p.message = Excerpt(p.message, kMaxProblemMessageBytes);
  }
}

}  // namespace

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
  if (std::optional<SpecProblem> bad = CheckSpecText(yaml, path)) {
    result.problems.push_back(std::move(*bad));
    return result;
  }
  size_t omitted = 0;
  SweepDocument doc = ReadSweepDocument(yaml, path, result.problems, &omitted);
  if (result.ok()) result.sweep = ExpandSweep(doc, path, limits, result.problems);
  BoundProblems(result.problems, path, omitted);
  result.sweep.spec_yaml = yaml;
  result.sweep.spec_path = path;
  if (!result.ok()) result.sweep.jobs.clear();
  return result;
}

SpecResult ParseSweepSpecFile(const std::string& path, const SpecLimits& limits) {
  Result<std::string> text = ReadSpecText(path);
  if (!text.ok()) {
    SpecResult result;
    result.problems.push_back({path, 0, 0, "", text.status().message()});
    return result;
  }
  return ParseSweepSpec(*text, path, limits);
}

}  // namespace sweepd::spec
