// Expansion of method blocks into jobs and the budget checks on them. A block whose
// size knob is itself a grid axis (lora r: [8, 16, 32]) deliberately spans budgets, so
// it is counted and reported, not enforced; every other block must land within the
// tolerance of its reference, or pick its knob with `match:`.
#include "spec/grid_expansion.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "common/budget.h"
#include "common/methods/peft_config.h"
#include "common/methods/registry.h"
#include "common/model_shapes.h"
#include "spec/adapter_digest.h"

namespace sweepd::spec {
namespace {

using nlohmann::json;

struct TrackLayers {
  const TrackEntry* entry = nullptr;
  std::vector<LinearShape> layers;
  std::optional<int64_t> reference;  // the sweep-wide reference's count on these layers
};

class Expander {
 public:
  Expander(const SweepDocument& doc, std::string file, std::vector<SpecProblem>& problems)
      : doc_(doc), file_(std::move(file)), problems_(problems) {}

  ExpandedSweep Run(const SpecLimits& limits);

 private:
  void Problem(const Location& where, const std::string& message) {
    problems_.push_back({file_, where.line, where.column, where.field, message});
  }
  int64_t GridSize() const;
  std::optional<int64_t> CountReference(const BudgetReference& budget, const TrackLayers& track);
  void AddBaseEval(ExpandedSweep& sweep);
  void AddMerges(ExpandedSweep& sweep);
  void ExpandBlock(const MethodBlock& block, size_t index, const TrackLayers& track,
                   ExpandedSweep& sweep);
  void ExpandCombination(const MethodBlock& block, const TrackLayers& track,
                         const std::vector<const json*>& values, ExpandedSweep& sweep);
  void AddJob(JobConfig config, int64_t count, int64_t reference, bool enforced, ExpandedSweep& sweep);
  std::optional<std::string> InitFromDigest(const MethodBlock& block, const json& settings, const std::string& label);

  const SweepDocument& doc_;
  std::string file_;
  std::vector<SpecProblem>& problems_;
  std::string base_eval_id_;
  std::set<std::string> job_ids_;
  std::map<std::string, Result<std::string>> digests_;  // by init_from folder, read once
  std::map<std::string, Result<methods::PeftConfigRead>> init_configs_;
  std::set<std::string> init_reported_;  // folders whose read error is reported already
};

std::string Ratio(int64_t count, int64_t reference) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(count) / static_cast<double>(reference));
  return buf;
}

std::string Percent(double tolerance) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", tolerance * 100);
  return buf;
}

// True when the block lists several values of the method's size knob (a budget sweep).
bool SweepsSizeKnob(const MethodBlock& block) {
  const std::string knob = BudgetSolver::DefaultKnob(block.method);
  if (knob.empty()) return false;
  const std::vector<std::string> targets = methods::AliasTargets(knob);  // S: S_L, S_R
  for (const GridAxis& a : block.axes) {
    const bool is_knob = a.key == knob || std::find(targets.begin(), targets.end(), a.key) != targets.end();
    if (is_knob && a.values.size() > 1) return true;
  }
  return false;
}

int64_t Expander::GridSize() const {
  int64_t total = doc_.eval.empty() ? 0 : 1;
  const int64_t per_combo = static_cast<int64_t>(doc_.tracks.size() * doc_.seeds.size());
  for (const MethodBlock& b : doc_.methods) {
    int64_t n = per_combo;
    for (const GridAxis& a : b.axes) {
      n *= static_cast<int64_t>(a.values.size());
      if (n > (int64_t{1} << 40)) return n;  // clearly over any limit; avoid overflow
    }
    total += n;
  }
  return total;
}

std::optional<int64_t> Expander::CountReference(const BudgetReference& budget,
                                                const TrackLayers& track) {
  Result<int64_t> count = CountForLayers(budget.settings, track.layers);
  if (!count.ok()) {
    Problem(budget.where, "reference " + budget.settings.dump() + " on track " + track.entry->track.name +
                              ": " + count.status().message());
    return std::nullopt;
  }
  if (*count <= 0) {
    Problem(budget.where, "reference " + budget.settings.dump() + " has no trainable parameters on track " +
                              track.entry->track.name);
    return std::nullopt;
  }
  return *count;
}

ExpandedSweep Expander::Run(const SpecLimits& limits) {
  ExpandedSweep sweep;
  sweep.name = doc_.name;
  sweep.priority = doc_.priority;
  sweep.max_attempts = doc_.max_attempts;
  // A merge after every train job doubles the jobs.
  const int64_t size = GridSize() * (doc_.merge ? 2 : 1);
  if (size > limits.max_jobs) {
    Problem(doc_.methods_where, "the grid expands to " + std::to_string(size) + " jobs, over the limit of " +
                                    std::to_string(limits.max_jobs) +
                                    "; shrink the value lists or split the sweep");
    return sweep;
  }
  Result<ModelShape> model = LoadModelShape(doc_.model.source);
  if (!model.ok()) {
    Problem(doc_.model_where, model.status().message());
    return sweep;
  }
  std::vector<TrackLayers> tracks;
  for (const TrackEntry& t : doc_.tracks) {
    Result<std::vector<LinearShape>> layers = SelectTrack(*model, t.track);
    if (!layers.ok()) {
      Problem(t.where, layers.status().message());
      continue;
    }
    TrackLayers tl{&t, std::move(*layers), std::nullopt};
    if (doc_.budget) tl.reference = CountReference(*doc_.budget, tl);
    tracks.push_back(std::move(tl));
  }
  if (!problems_.empty()) return sweep;

  AddBaseEval(sweep);
  for (size_t i = 0; i < doc_.methods.size(); ++i) {
    for (const TrackLayers& t : tracks) ExpandBlock(doc_.methods[i], i, t, sweep);
  }
  if (doc_.merge) AddMerges(sweep);
  return sweep;
}

// `merge:`: after every train job, one merge job that folds the adapter the train job left in
// output_dir into the base model (sweep-train merge). It runs where its train job could (the
// same device kind, so that a GPU-only worker takes it), on the host.
void Expander::AddMerges(ExpandedSweep& sweep) {
  std::vector<JobConfig> merges;
  for (const ExpandedJob& j : sweep.jobs) {
    if (j.config.kind != "train") continue;
    JobConfig merge;
    merge.sweep = doc_.name;
    merge.kind = "merge";
    merge.model = j.config.model;
    merge.track = j.config.track;
    merge.adapter = j.config.adapter;
    merge.train = TrainSpec{};
    merge.seed = j.config.seed;
    merge.device = j.config.device;
    merge.output_dir = doc_.output_dir;
    merge.merge = *doc_.merge;
    merge.merge.from_job = j.config.job_id;
    merge.job_id = JobIdFor(merge);
    merges.push_back(std::move(merge));
  }
  for (JobConfig& m : merges) {
    const std::string from = m.merge.from_job;
    if (!job_ids_.insert(m.job_id).second) continue;
    ExpandedJob job;
    job.budget_enforced = false;
    job.depends_on.push_back(from);
    job.config = std::move(m);
    sweep.jobs.push_back(std::move(job));
  }
}

void Expander::AddBaseEval(ExpandedSweep& sweep) {
  if (doc_.eval.empty()) return;
  // Only what changes the base model's scores is part of its identity, so sweeps over the
  // same model and eval set share one evaluation.
  JobConfig base;
  base.sweep = doc_.name;
  base.kind = "base_eval";
  base.model = doc_.model;
  base.model.chat_template.clear();  // shapes training rows only, not the base model's scores
  base.track = TrackSpec{"base", {}};
  base.adapter = json::object();
  base.train = TrainSpec{};
  base.train.data = "";
  base.train.seq_len = doc_.train.seq_len;
  base.train.micro_batch = doc_.train.micro_batch;
  base.eval = doc_.eval;
  base.seed = 0;
  base.device = doc_.device;
  base.job_id = JobIdFor(base);
  base_eval_id_ = base.job_id;
  AddJob(std::move(base), 0, 0, false, sweep);
}

void Expander::ExpandBlock(const MethodBlock& block, size_t index, const TrackLayers& track,
                           ExpandedSweep& sweep) {
  (void)index;
  // Odometer over the axes, first axis slowest, so jobs follow the order values are written.
  std::vector<size_t> pos(block.axes.size(), 0);
  while (true) {
    std::vector<const json*> values;
    for (size_t a = 0; a < block.axes.size(); ++a) values.push_back(&block.axes[a].values[pos[a]]);
    ExpandCombination(block, track, values, sweep);
    size_t a = block.axes.size();
    while (a > 0) {
      --a;
      if (++pos[a] < block.axes[a].values.size()) break;
      pos[a] = 0;
      if (a == 0) return;
    }
    if (block.axes.empty()) return;
  }
}

void Expander::ExpandCombination(const MethodBlock& block, const TrackLayers& track,
                                 const std::vector<const json*>& values, ExpandedSweep& sweep) {
  json settings = {{"method", block.method}};
  TrainSpec train = doc_.train;
  for (size_t a = 0; a < block.axes.size(); ++a) {
    const std::string& key = block.axes[a].key;
    const json& v = *values[a];
    if (key == "lr") {
      train.lr = v.get<double>();
    } else if (key == "lr_theta") {
      train.lr_theta = v.get<double>();
    } else if (key == "lr_core") {
      train.lr_core = v.get<double>();
    } else {
      settings[key] = v;
    }
  }
  const std::string label = settings.dump() + " on track " + track.entry->track.name;
  // Aliases become what they set (JORA's S: S_L = S_R), as every entry point reads settings.
  Result<methods::MethodSettings> resolved = methods::Resolve(settings);
  if (!resolved.ok()) {
    Problem(block.where, label + ": " + resolved.status().message());
    return;
  }
  settings = resolved->json();

  // The reference this block is measured against: its own, else the sweep's.
  std::optional<int64_t> reference = track.reference;
  double tolerance = doc_.budget ? doc_.budget->tolerance : 0.0;
  std::string reference_text = doc_.budget ? doc_.budget->settings.dump() : "";
  if (block.budget) {
    reference = CountReference(*block.budget, track);
    tolerance = block.budget->tolerance;
    reference_text = block.budget->settings.dump();
    if (!reference) return;
  }

  if (!block.match.empty()) {
    if (!reference) {
      Problem(block.where, label + ": match: " + block.match +
                               " needs a budget reference; add budget: {reference: {method: lora, r: 16}} "
                               "to the spec or the block");
      return;
    }
    BudgetSolver solver(track.layers, *reference, tolerance);
    Result<BudgetMatch> m = solver.Match(settings, block.match);
    if (!m.ok()) {
      Problem(block.where, label + ": " + m.status().message());
      return;
    }
    if (!m->found) {
      Problem(block.where, label + ": " + m->reason);
      return;
    }
    settings = m->settings;
  }

  Result<int64_t> count = CountForLayers(settings, track.layers);
  if (!count.ok()) {
    Problem(block.where, label + ": " + count.status().message());
    return;
  }
  const bool enforced = reference.has_value() && !block.budget_report && !SweepsSizeKnob(block);
  if (enforced) {
    BudgetSolver solver(track.layers, *reference, tolerance);
    if (!solver.WithinTolerance(*count)) {
      const std::string knob = BudgetSolver::DefaultKnob(block.method);
      Problem(block.where, label + ": " + std::to_string(*count) + " trainable parameters, " +
                               Ratio(*count, *reference) + "x the reference " + reference_text + " (" +
                               std::to_string(*reference) + " ±" + Percent(tolerance) + "); " +
                               (knob.empty() ? "" : "set match: " + knob + " to pick " + knob + ", or ") +
                               "set budget: report to count it without enforcing");
      return;
    }
  }

  std::optional<std::string> digest;
  if (!block.init_from.empty()) {
    digest = InitFromDigest(block, settings, label);
    if (!digest) return;
  }

  for (int64_t seed : doc_.seeds) {
    JobConfig job;
    job.sweep = doc_.name;
    job.kind = "train";
    job.model = doc_.model;
    job.track = track.entry->track;
    job.adapter = settings;
    job.train = train;
    job.eval = doc_.eval;
    job.tradeoff_lambda = doc_.tradeoff_lambda;
    job.seed = seed;
    job.device = doc_.device;
    job.devices = doc_.gpus_per_job;
    job.base_eval_job = base_eval_id_;
    job.output_dir = doc_.output_dir;
    if (digest) {
      job.init_from = block.init_from;
      job.init_from_sha256 = *digest;
    }
    job.job_id = JobIdFor(job);
    AddJob(std::move(job), *count, reference.value_or(0), enforced, sweep);
  }
}

// adapter.init_from, checked where the spec is expanded: the folder must be readable here (its
// content digest is the job's identity) and hold an adapter of the job's method and settings.
// Its tensors' shapes against the base model are sweep-train's check (exit 2).
std::optional<std::string> Expander::InitFromDigest(const MethodBlock& block, const json& settings,
                                                    const std::string& label) {
  const std::string& folder = block.init_from;
  auto digest = digests_.find(folder);
  if (digest == digests_.end()) digest = digests_.emplace(folder, AdapterFolderDigest(folder)).first;
  if (!digest->second.ok()) {
    if (init_reported_.insert(folder).second) Problem(block.init_from_where, digest->second.status().message());
    return std::nullopt;
  }
  auto config = init_configs_.find(folder);
  if (config == init_configs_.end()) config = init_configs_.emplace(folder, methods::ReadPeftConfigFile(folder)).first;
  if (!config->second.ok()) {
    if (init_reported_.insert(folder).second) Problem(block.init_from_where, config->second.status().message());
    return std::nullopt;
  }
  if (Status same = methods::CheckSameSettings(folder, *config->second, settings); !same.ok()) {
    Problem(block.init_from_where, label + ": " + same.message());
    return std::nullopt;
  }
  return *digest->second;
}

void Expander::AddJob(JobConfig config, int64_t count, int64_t reference, bool enforced,
                      ExpandedSweep& sweep) {
  // Two blocks may name the same configuration (lora r: [8, 16] and lora r: 16); it is one job.
  if (!job_ids_.insert(config.job_id).second) return;
  ExpandedJob job;
  job.trainable_params = count;
  job.reference_params = reference;
  job.budget_enforced = enforced;
  job.memory_bytes = doc_.memory_bytes;
  if (config.kind == "train" && !base_eval_id_.empty()) job.depends_on.push_back(base_eval_id_);
  job.config = std::move(config);
  sweep.jobs.push_back(std::move(job));
}

}  // namespace

ExpandedSweep ExpandSweep(const SweepDocument& doc, const std::string& file, const SpecLimits& limits,
                          std::vector<SpecProblem>& problems) {
  return Expander(doc, file, problems).Run(limits);
}

}  // namespace sweepd::spec
