// `sweep-train budget`: the parameter-matched setting of every method against a reference
// configuration (default LoRA r=16) on a model's tracks, as a table: the knob value whose
// count is within the tolerance, or why none is. Torch-free maths from common/budget.h; every
// row and the reference are read through the method registry (unknown options are errors).
// A row that fixes its method's size knob (JORA's S, or S_L/S_R) is counted as it is.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/budget.h"
#include "common/methods/registry.h"
#include "common/model_shapes.h"
#include "worker/trainer/commands.h"

// Its own namespace: unity batches put this file beside other commands' file-local names.
namespace sweepd::trainer::budget_table {
namespace {

using nlohmann::json;

// The rows of the default table: each method at the settings it registers, knob searched.
std::vector<json> DefaultRows() {
  std::vector<json> rows;
  for (const methods::MethodInfo* m : methods::Methods()) {
    for (const json& options : m->budget_rows) {
      json row = options;
      row["method"] = m->name;
      rows.push_back(row);
    }
  }
  return rows;
}

// One row to count: its settings through the registry, and the knob to search ("" for none).
struct Row {
  json settings;
  std::string knob;
};

// Whether `row` gives its method's size knob (or, for an alias knob, what it sets).
bool GivesKnob(const json& row) {
  const methods::MethodInfo* m =
      row.contains("method") && row["method"].is_string() ? methods::FindMethod(row["method"].get<std::string>()) : nullptr;
  return m != nullptr && !m->size_knob.empty() && methods::GivesOption(row, m->size_knob);
}

Result<Row> ReadRow(json row) {
  const bool knob_given = row.contains("knob");
  const std::string knob = row.value("knob", "");
  row.erase("knob");
  const bool fixed = !knob_given && GivesKnob(row);
  Result<methods::MethodSettings> resolved = methods::Resolve(row);
  if (!resolved.ok()) return resolved.status();
  if (fixed) return Row{resolved->json(), ""};
  const std::string searched = knob.empty() ? resolved->method().size_knob : knob;
  return Row{resolved->json(), searched};
}

std::string Describe(const json& settings) {
  std::string out;
  for (const auto& [k, v] : settings.items()) {
    if (k == "method") continue;
    out += (out.empty() ? "" : " ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out;
}

struct Options {
  std::string model;
  std::vector<std::string> tracks = {"A", "B"};
  std::vector<std::string> modules;
  std::string reference = R"({"method":"lora","r":16})";
  double tolerance = 0.05;
  std::vector<std::string> methods;
  bool json_lines = false;
};

int Run(const Options& o) {
  Result<ModelShape> model = LoadModelShape(o.model);
  if (!model.ok()) {
    std::cerr << "sweep-train budget: " << model.status().message() << "\n";
    return 2;
  }
  json reference = json::parse(o.reference, nullptr, false);
  if (!reference.is_object()) {
    std::cerr << "sweep-train budget: --reference is not a JSON object: " << o.reference << "\n";
    return 2;
  }
  if (Result<methods::MethodSettings> r = methods::Resolve(reference); r.ok()) {
    reference = r->json();
  } else {
    std::cerr << "sweep-train budget: --reference " << o.reference << ": " << r.status().message() << "\n";
    return 2;
  }
  std::vector<json> given;
  for (const std::string& m : o.methods) {
    json row = json::parse(m, nullptr, false);
    if (!row.is_object()) {
      std::cerr << "sweep-train budget: --method is not a JSON object: " << m << "\n";
      return 2;
    }
    given.push_back(row);
  }
  if (given.empty()) given = DefaultRows();
  std::vector<Row> rows;
  for (const json& g : given) {
    Result<Row> row = ReadRow(g);
    if (!row.ok()) {
      std::cerr << "sweep-train budget: --method " << g.dump() << ": " << row.status().message() << "\n";
      return 2;
    }
    rows.push_back(*row);
  }

  int unmatched = 0;
  for (const std::string& track_name : o.tracks) {
    TrackSpec track{track_name, o.modules};
    Result<std::vector<LinearShape>> layers = SelectTrack(*model, track);
    if (!layers.ok()) {
      std::cerr << "sweep-train budget: " << layers.status().message() << "\n";
      return 2;
    }
    Result<int64_t> ref = CountForLayers(reference, *layers);
    if (!ref.ok()) {
      std::cerr << "sweep-train budget: reference " << reference.dump() << ": " << ref.status().message() << "\n";
      return 2;
    }
    BudgetSolver solver(*layers, *ref, o.tolerance);
    if (!o.json_lines) {
      std::printf("track %s: %zu layers, reference %s %s = %lld trainable parameters (±%.0f%%)\n",
                  track_name.c_str(), layers->size(), reference.value("method", "?").c_str(),
                  Describe(reference).c_str(), static_cast<long long>(*ref), o.tolerance * 100);
      std::printf("  %-9s %-52s %12s %7s  %s\n", "method", "matched setting", "params", "ratio", "status");
    }
    for (const Row& row : rows) {
      Result<BudgetMatch> match = row.knob.empty() ? solver.Evaluate(row.settings) : solver.Match(row.settings, row.knob);
      if (!match.ok()) {
        std::cerr << "sweep-train budget: " << row.settings.dump() << ": " << match.status().message() << "\n";
        return 2;
      }
      if (!match->found) ++unmatched;
      const std::string method = row.settings.value("method", "?");
      if (o.json_lines) {
        std::cout << json{{"track", track_name},         {"reference_count", *ref}, {"method", method},
                          {"settings", match->settings}, {"found", match->found},  {"count", match->count},
                          {"ratio", match->ratio},       {"reason", match->reason}}
                         .dump()
                  << "\n";
        continue;
      }
      std::printf("  %-9s %-52s %12lld %7.4f  %s\n", method.c_str(), Describe(match->settings).c_str(),
                  static_cast<long long>(match->count), match->ratio,
                  match->found ? "matched" : ("no match: " + match->reason).c_str());
    }
    if (!o.json_lines) std::printf("\n");
  }
  (void)unmatched;  // an unreachable budget is a result, not an error
  return 0;
}

}  // namespace
}  // namespace sweepd::trainer::budget_table

namespace sweepd::trainer {

void AddBudgetCommand(CLI::App& app, int* exit_code) {
  using budget_table::Options;
  auto* cmd = app.add_subcommand("budget", "Parameter-matched settings of every method against a reference");
  auto o = std::make_shared<Options>();
  cmd->add_option("--model", o->model, "synthetic:<name> or a checkpoint folder with config.json")->required();
  cmd->add_option("--track", o->tracks, "tracks: A (q_proj,v_proj), B (all linear) or a name with --modules")
      ->capture_default_str();
  cmd->add_option("--modules", o->modules, "module names for a custom track (e.g. up_proj down_proj)");
  cmd->add_option("--reference", o->reference, "reference adapter settings (JSON)")->capture_default_str();
  cmd->add_option("--tolerance", o->tolerance, "relative tolerance")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--method", o->methods,
                  "adapter settings to match (JSON, repeatable; \"knob\" names the size knob to search; settings "
                  "that give the size knob are counted as they are); default: every method");
  cmd->add_flag("--json", o->json_lines, "one JSON object per row instead of a table");
  cmd->callback([o, exit_code] { *exit_code = budget_table::Run(*o); });
}

}  // namespace sweepd::trainer
