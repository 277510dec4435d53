// sweep-train run as the worker runs it: a real subprocess on the synthetic benchmark,
// its JSON lines checked against docs/metrics.schema.json, resumption after SIGKILL and after
// a corrupt checkpoint, and one-line errors: exit status 2 for invalid input only.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/contracts.h"
#include "common/job_config.h"
#include "tests/support/process.h"
#include "worker/data/packing.h"
#include "worker/data/tokenizer.h"
#include "worker/io/safetensors.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/peft_folder.h"
#include "worker/trainer/training_loop.h"

namespace sweepd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kTrain = std::string(SWEEPD_BIN_DIR) + "/sweep-train";
const std::string kJobs = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/jobs/";
const std::string kCacheEnv = "SWEEPD_CACHE=" + std::string(SWEEPD_TEST_CACHE);

struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  std::vector<json> lines;
  std::string stderr_text;
};

std::vector<json> ParseLines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(json::parse(line));  // every stdout line must be JSON
  }
  return lines;
}

// Runs sweep-train with stdout and stderr in separate files under `dir`.
// `env`: "K=V" entries; SWEEPD_CACHE is the test cache unless `env` names another.
RunResult RunTrainer(const std::vector<std::string>& args, const std::string& dir,
                     std::vector<std::string> env = {}) {
  std::string command = "exec";
  for (const std::string& a : args) command += " '" + a + "'";
  command += " > '" + dir + "/stdout' 2> '" + dir + "/stderr'";
  if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("SWEEPD_CACHE=", 0) == 0; })) {
    env.push_back(kCacheEnv);
  }
  ChildProcess child({"/bin/sh", "-c", command}, dir + "/sh.log", env);
  const int status = child.Wait(10min);
  RunResult r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.lines = ParseLines(ReadFile(dir + "/stdout"));
  r.stderr_text = ReadFile(dir + "/stderr");
  return r;
}

bool HasType(const json& value, const std::string& type) {
  if (type == "string") return value.is_string();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "number|null") return value.is_number() || value.is_null();
  return false;
}

void ExpectFields(const json& line, const json& fields, const std::string& what) {
  for (const auto& [key, type] : fields.items()) {
    ASSERT_TRUE(line.contains(key)) << what << " lacks '" << key << "': " << line.dump();
    EXPECT_TRUE(HasType(line[key], type.get<std::string>()))
        << what << " field '" << key << "' is not " << type << ": " << line.dump();
  }
}

// Checks every line against the documented schema and the order start ... final.
void ExpectValidLines(const std::vector<json>& lines) {
  std::ifstream in(std::string(SWEEPD_SOURCE_DIR) + "/docs/metrics.schema.json");
  const json schema = json::parse(in);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.front().value("type", ""), "start");
  EXPECT_EQ(lines.back().value("type", ""), "final");
  for (const json& line : lines) {
    ASSERT_TRUE(line.contains("type")) << line.dump();
    const std::string type = line["type"];
    ASSERT_TRUE(schema.contains(type)) << "undocumented line type: " << line.dump();
    ExpectFields(line, schema[type]["required"], type);
    if (type == "eval") {
      EXPECT_GE(line["score"].get<double>(), 0.0);
      EXPECT_LE(line["score"].get<double>(), 100.0);
    }
    if (type == "final" && line["kind"] == "train") {
      ExpectFields(line, schema["final"]["train"], "final");
      ExpectFields(line["svd"], schema["final"]["svd"], "final.svd");
      for (const json& layer : line["svd"]["layers"]) ExpectFields(layer, schema["final"]["svd_layer"], "svd layer");
    }
  }
}

TEST(SweepTrainRun, SyntheticLoraOnTrackALiftsThePlasticityTask) {
  const std::string dir = MakeTempDir("sweep-train-run-");
  RunResult r = RunTrainer({kTrain, "run", "--job", kJobs + "synthetic_lora_a.json", "--workdir", dir + "/work"}, dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  ExpectValidLines(r.lines);
  const json& final_line = r.lines.back();
  // Scores are named for what they measure: the synthetic multiple-choice set, by accuracy.
  const double base = final_line["base_scores"]["synthetic-mc.acc"];
  const double tuned = final_line["scores"]["synthetic-mc.acc"];
  EXPECT_GE(tuned - base, 20.0) << final_line.dump();
  EXPECT_DOUBLE_EQ(final_line["delta"]["synthetic-mc.acc"].get<double>(), tuned - base);
  // LoRA r=8 on q_proj and v_proj of 4 layers: r (d_in + d_out) per layer.
  EXPECT_EQ(final_line["trainable_params"].get<int64_t>(), 4 * (8 * (128 + 128) + 8 * (128 + 64)));
  EXPECT_EQ(final_line["svd"]["layers"].size(), 8u);
  EXPECT_TRUE(fs::exists(dir + "/work/checkpoints/step-00000080/adapter_model.safetensors"));
}

TEST(SweepTrainRun, BaseEvalJobPrintsScoresOnly) {
  const std::string dir = MakeTempDir("sweep-train-base-");
  RunResult r = RunTrainer({kTrain, "run", "--job", kJobs + "synthetic_base_eval.json", "--workdir", dir + "/work"}, dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  ExpectValidLines(r.lines);
  const json& final_line = r.lines.back();
  EXPECT_EQ(final_line["kind"], "base_eval");
  EXPECT_EQ(final_line["scores"].size(), 2u);
  EXPECT_FALSE(final_line.contains("final_loss"));
  // The synthetic base model has learnt its arithmetic during pre-training.
  EXPECT_GE(final_line["scores"]["synthetic-arith.exact_match.strict"].get<double>(), 30.0) << final_line.dump();
  ASSERT_TRUE(final_line.contains("base_fingerprint")) << final_line.dump();
  EXPECT_EQ(final_line["base_fingerprint"].get<std::string>().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(final_line["base_fingerprint"].get<std::string>().size(), 16u);
}

// Base scores given with the fingerprint of another base model are not used: the job evaluates
// its own base; with this machine's fingerprint they are used as given.
TEST(SweepTrainRun, BaseScoresOfAnotherBaseModelAreNotUsed) {
  const std::string dir = MakeTempDir("sweep-train-fingerprint-");
  RunResult base = RunTrainer({kTrain, "run", "--job", kJobs + "synthetic_base_eval.json", "--workdir", dir + "/base"}, dir);
  ASSERT_EQ(base.status, 0) << base.stderr_text;
  const std::string mine = base.lines.back().at("base_fingerprint");
  // Not what the base model scores.
  const json given = {{"synthetic-arith.exact_match.strict", 1.0}, {"synthetic-mc.acc", 2.0}};
  auto run = [&](const std::string& fingerprint) {
    std::ifstream in(kJobs + "synthetic_lora_a.json");
    json job = json::parse(in);
    job["train"]["steps"] = 2;
    job["train"]["checkpoint_every"] = 0;
    job["base_scores"] = given;
    job["base_fingerprint"] = fingerprint;
    std::ofstream(dir + "/job.json") << job.dump();
    return RunTrainer({kTrain, "run", "--job", dir + "/job.json", "--workdir", dir + "/work-" + fingerprint}, dir);
  };
  RunResult other = run("0000000000000000");
  ASSERT_EQ(other.status, 0) << other.stderr_text;
  EXPECT_NE(other.stderr_text.find("evaluating this base model here"), std::string::npos) << other.stderr_text;
  EXPECT_NE(other.lines.back().at("base_scores"), given);
  auto base_evals = [](const RunResult& r) {
    int n = 0;
    for (const json& line : r.lines) n += line.value("type", "") == "eval" && line.value("stage", "") == "base";
    return n;
  };
  EXPECT_EQ(base_evals(other), 2);
  RunResult same = run(mine);
  ASSERT_EQ(same.status, 0) << same.stderr_text;
  EXPECT_EQ(same.stderr_text.find("evaluating this base model here"), std::string::npos) << same.stderr_text;
  EXPECT_EQ(same.lines.back().at("base_scores"), given);
  EXPECT_EQ(base_evals(same), 0);
}

// eval_every and spectrum_every stream scores (with Δ against the base) and spectra while
// the job trains, not only in its final line.
TEST(SweepTrainRun, EvalEveryAndSpectrumEveryStreamDuringTraining) {
  const std::string dir = MakeTempDir("sweep-train-every-");
  std::ifstream in(kJobs + "synthetic_lora_a.json");
  json job = json::parse(in);
  job["train"]["steps"] = 4;
  job["train"]["checkpoint_every"] = 0;
  job["train"]["log_every"] = 100;
  job["train"]["eval_every"] = 2;
  job["train"]["spectrum_every"] = 2;
  for (json& e : job["eval"]) e["limit"] = 8;
  std::ofstream(dir + "/job.json") << job.dump();
  RunResult r = RunTrainer({kTrain, "run", "--job", dir + "/job.json", "--workdir", dir + "/work"}, dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  ExpectValidLines(r.lines);
  std::map<std::string, json> base;
  std::vector<json> during, spectra;
  for (const json& line : r.lines) {
    if (line["type"] == "eval" && line["stage"] == "base") base[line["score_name"]] = line;
    if (line["type"] == "eval" && line["stage"] == "step") during.push_back(line);
    if (line["type"] == "step" && line.contains("svd")) spectra.push_back(line);
  }
  ASSERT_EQ(during.size(), 2u);  // both tasks at step 2; step 4 is the final evaluation
  for (const json& line : during) {
    EXPECT_EQ(line["step"], 2);
    ASSERT_TRUE(base.count(line["score_name"])) << line.dump();
    EXPECT_DOUBLE_EQ(line["delta"].get<double>(),
                     line["score"].get<double>() - base[line["score_name"]]["score"].get<double>());
  }
  ASSERT_EQ(spectra.size(), 2u);  // steps 2 and 4
  EXPECT_EQ(spectra[0]["step"], 2);
  EXPECT_GT(spectra[0]["svd"]["mean_stable_rank"].get<double>(), 0.0) << spectra[0].dump();
}

std::map<std::string, torch::Tensor> Tensors(const std::string& path) {
  auto file = io::SafetensorsFile::Open(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : file.Names()) out[name] = file.Get(name).clone();
  return out;
}

// Exactly one non-empty stderr line.
void ExpectOneLine(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  EXPECT_FALSE(trimmed.empty());
  EXPECT_EQ(trimmed.find('\n'), std::string::npos) << text;
}

// Runs `job` unbroken and again killed (SIGKILL) once its stdout shows step `kill_after`, then
// resumed; both must end with the same adapter, bit for bit, in their checkpoint of `steps`.
void ExpectResumedEqualsUnbroken(const std::string& job, int64_t kill_after, int64_t steps) {
  const std::string straight = MakeTempDir("sweep-train-straight-");
  ASSERT_EQ(RunTrainer({kTrain, "run", "--job", job, "--workdir", straight + "/work"}, straight).status, 0)
      << ReadFile(straight + "/stderr");

  const std::string broken = MakeTempDir("sweep-train-broken-");
  const std::string marker = "\"step\":" + std::to_string(kill_after);
  {
    ChildProcess child({"/bin/sh", "-c",
                        "exec '" + kTrain + "' run --job '" + job + "' --workdir '" + broken + "/work' > '" + broken +
                            "/stdout' 2> '" + broken + "/stderr'"},
                       broken + "/sh.log", {kCacheEnv});
    ASSERT_TRUE(WaitUntil([&] { return ReadFile(broken + "/stdout").find(marker) != std::string::npos; }, 5min))
        << ReadFile(broken + "/stderr");
    child.Signal(SIGKILL);
    child.Wait(1min);
  }
  EXPECT_EQ(ReadFile(broken + "/stdout").find("\"type\":\"final\""), std::string::npos) << "killed too late";
  RunResult resumed = RunTrainer({kTrain, "run", "--job", job, "--workdir", broken + "/work", "--resume"}, broken);
  ASSERT_EQ(resumed.status, 0) << resumed.stderr_text;
  EXPECT_NE(resumed.stderr_text.find("resumed from"), std::string::npos) << resumed.stderr_text;

  char step_dir[32];
  std::snprintf(step_dir, sizeof step_dir, "step-%08lld", static_cast<long long>(steps));
  const auto a = Tensors(straight + "/work/checkpoints/" + step_dir + "/adapter_model.safetensors");
  const auto b = Tensors(broken + "/work/checkpoints/" + step_dir + "/adapter_model.safetensors");
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name << " differs after resumption";
  }
}

TEST(SweepTrainRun, ResumedAfterSigkillEndsWithTheSameAdapterBitForBit) {
  const std::string job = kJobs + "synthetic_resume.json";
  const json j = json::parse(ReadFile(job));
  ExpectResumedEqualsUnbroken(job, j["train"]["steps"].get<int64_t>() / 2, j["train"]["steps"]);
}

// adapter.init_from with the shipped PEFT LoRA folder (the tiny Llama's q_proj and v_proj): a
// LoRA job of the folder's own settings on track A, `steps` steps on the synthetic task.
const std::string kPeftLora = std::string(SWEEPD_FIXTURES) + "/models/tiny-llama-lora-qv";

json PeftLoraJob(int64_t steps, const std::string& init_from, int64_t checkpoint_every = 2) {
  const json c = json::parse(ReadFile(kPeftLora + "/adapter_config.json"));
  json adapter = {{"method", "lora"}, {"r", c["r"]}, {"alpha", c["lora_alpha"]}, {"dropout", c["lora_dropout"]}};
  if (!init_from.empty()) adapter["init_from"] = init_from;
  return {{"job_id", "init-from"},
          {"model", {{"source", std::string(SWEEPD_FIXTURES) + "/models/tiny-llama"},
                     {"tokenizer", std::string(SWEEPD_FIXTURES) + "/tokenizer/tiny.model"}}},
          {"track", {{"name", "A"}}},
          {"adapter", adapter},
          {"train", {{"data", "synthetic:mc"}, {"steps", steps}, {"lr", 0.01}, {"seq_len", 64},
                     {"tokens_per_update", 256}, {"micro_batch", 2}, {"log_every", 1}, {"checkpoint_every", checkpoint_every}}},
          {"eval", json::array()},
          {"seed", 5}};
}

std::string WriteJob(const json& job, const std::string& dir) {
  const std::string path = dir + "/job.json";
  std::ofstream(path) << job.dump(2);
  return path;
}

double FirstStepLoss(const RunResult& r) {
  for (const json& line : r.lines) {
    if (line.value("type", "") == "step" && line["step"] == 1) return line["loss"].get<double>();
  }
  ADD_FAILURE() << "no step 1 line";
  return std::nan("");
}

// The loss of the folder's adapter on the tiny Llama, evaluated here on the first update's rows
// (the same tokenizer, examples, seed and packing as the job), summed over target tokens.
double OwnEvaluationLoss(const json& job) {
  Result<JobConfig> config = JobConfigFromJson(job);
  EXPECT_TRUE(config.ok()) << config.status().message();
  std::unique_ptr<data::Tokenizer> tokenizer = data::LoadTokenizerFile(config->model.tokenizer);
  std::vector<data::TokenizedExample> tokenized;
  for (const auto& ex : trainer::TrainingExamples(*config, nullptr)) {
    tokenized.push_back(data::TokenizeExample(ex, *tokenizer));
  }
  data::Packer packer(std::move(tokenized), static_cast<uint64_t>(config->seed), tokenizer->Eos());
  const TrainSpec& t = config->train;
  data::PackedRows rows = packer.NextRows((t.tokens_per_update + t.seq_len - 1) / t.seq_len, t.seq_len);
  models::LlamaForCausalLM model = models::LoadHfModel(config->model.source, torch::kFloat32);
  trainer::LoadPeftFolder(kPeftLora, model);
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model->forward(rows.input_ids, rows.segment_ids);
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), rows.targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
  return loss.item<double>() / static_cast<double>(std::max<int64_t>(1, rows.target_tokens));
}

TEST(SweepTrainRun, InitFromPeftLoraStartsFromThatAdapter) {
  const std::string dir = MakeTempDir("sweep-train-init-from-");
  const json job = PeftLoraJob(4, kPeftLora);
  RunResult run = RunTrainer({kTrain, "run", "--job", WriteJob(job, dir), "--workdir", dir + "/work"}, dir);
  ASSERT_EQ(run.status, 0) << run.stderr_text;
  ExpectValidLines(run.lines);
  const double first = FirstStepLoss(run), own = OwnEvaluationLoss(job);
  EXPECT_NEAR(first, own, 1e-5 * std::abs(own));
  // The method's initialisation (LoRA's B = 0: the base model) gives another first loss.
  const std::string plain_dir = MakeTempDir("sweep-train-init-plain-");
  RunResult plain =
      RunTrainer({kTrain, "run", "--job", WriteJob(PeftLoraJob(1, ""), plain_dir), "--workdir", plain_dir + "/work"},
                 plain_dir);
  ASSERT_EQ(plain.status, 0) << plain.stderr_text;
  EXPECT_GT(std::abs(FirstStepLoss(plain) - first), 100 * 1e-5 * std::abs(own))
      << "the folder's adapter should not be the identity";
  // Training continued: the adapter moved from the folder's.
  const auto start = Tensors(kPeftLora + "/adapter_model.safetensors");
  const auto end = Tensors(dir + "/work/adapter/adapter_model.safetensors");
  ASSERT_EQ(start.size(), end.size());
  for (const auto& [name, tensor] : start) {
    ASSERT_TRUE(end.count(name)) << name;
    EXPECT_FALSE(torch::equal(tensor, end.at(name))) << name << " did not train";
  }
}

TEST(SweepTrainRun, InitFromResumedEqualsUnbroken) {
  const std::string dir = MakeTempDir("sweep-train-init-resume-");
  // Enough steps that the kill lands before the end; checkpoints every 4, the kill after step 6.
  const int64_t steps = 120;
  ExpectResumedEqualsUnbroken(WriteJob(PeftLoraJob(steps, kPeftLora, 4), dir), 6, steps);
}

// SORSA's gamma (the authors' SORSATrainer: gamma / lr × calc_ortho, back-propagated after
// clipping): with gamma 0 no regulariser acts; with gamma > 0 the singular vectors stay closer to
// orthonormal than without, on the same job otherwise.
TEST(SweepTrainRun, SorsaGammaWeighsTheOrthonormalRegulariser) {
  json job = json::parse(ReadFile(kJobs + "synthetic_sorsa_gamma.json"));
  auto error_with = [&](double gamma) {
    job["adapter"]["gamma"] = gamma;
    const std::string dir = MakeTempDir("sweep-train-sorsa-gamma-");
    RunResult r = RunTrainer({kTrain, "run", "--job", WriteJob(job, dir), "--workdir", dir + "/work"}, dir);
    EXPECT_EQ(r.status, 0) << r.stderr_text;
    if (r.lines.empty()) return std::nan("");
    return r.lines.back()["diagnostics"]["orthonormality_error"]["mean"].get<double>();
  };
  const double lr = job["train"]["lr"];
  const double without = error_with(0.0), with = error_with(10 * lr);  // weight gamma / lr = 10
  EXPECT_GT(without, 0.0);
  EXPECT_LT(with, without);
}

// A job's own exported adapter/ folder continues in a second job of the same settings: SORSA's
// folder of sweep-train's own layout, and AdaLoRA's pruned one (rank_pattern and kept ranks only).
TEST(SweepTrainRun, InitFromAJobsExportedFolderContinuesIt) {
  json sorsa = json::parse(ReadFile(kJobs + "synthetic_sorsa_gamma.json"));
  json adalora = sorsa;
  adalora["adapter"] = {{"method", "adalora"}, {"init_r", 6}, {"target_r", 2}, {"tinit", 0}, {"tfinal", 2}};
  for (json job : {sorsa, adalora}) {
    SCOPED_TRACE(job["adapter"].dump());
    const std::string first = MakeTempDir("sweep-train-export-");
    RunResult trained = RunTrainer({kTrain, "run", "--job", WriteJob(job, first), "--workdir", first + "/work"}, first);
    ASSERT_EQ(trained.status, 0) << trained.stderr_text;
    const std::string folder = first + "/work/adapter";
    const json exported = json::parse(ReadFile(folder + "/adapter_config.json"));
    if (job["adapter"]["method"] == "adalora") {
      EXPECT_TRUE(exported["rank_pattern"].is_object()) << "a pruned AdaLoRA writes its rank pattern";
    }
    job["train"]["steps"] = 2;
    const std::string fresh = MakeTempDir("sweep-train-fresh-");
    RunResult plain = RunTrainer({kTrain, "run", "--job", WriteJob(job, fresh), "--workdir", fresh + "/work"}, fresh);
    ASSERT_EQ(plain.status, 0) << plain.stderr_text;
    job["adapter"]["init_from"] = folder;
    const std::string next = MakeTempDir("sweep-train-continue-");
    RunResult continued = RunTrainer({kTrain, "run", "--job", WriteJob(job, next), "--workdir", next + "/work"}, next);
    ASSERT_EQ(continued.status, 0) << continued.stderr_text;
    ExpectValidLines(continued.lines);
    // The same first rows; the trained adapter, not the method's initialisation, scores them.
    EXPECT_NE(FirstStepLoss(continued), FirstStepLoss(plain));
  }
}

// A bad adapter.init_from folder: exit 2 before training, one line naming the folder and `what`.
void ExpectInitFromRefused(const json& job, const std::string& folder, const std::string& what) {
  const std::string dir = MakeTempDir("sweep-train-init-bad-");
  RunResult r = RunTrainer({kTrain, "run", "--job", WriteJob(job, dir), "--workdir", dir + "/work"}, dir);
  EXPECT_EQ(r.status, exit_status::kInvalid) << r.stderr_text;
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find(folder), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find(what), std::string::npos) << r.stderr_text;
  for (const json& line : r.lines) EXPECT_NE(line.value("type", ""), "step") << "trained: " << line.dump();
}

std::string CopyOfPeftLora(const std::string& prefix) {
  const std::string to = MakeTempDir(prefix);
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"}) {
    fs::copy_file(fs::path(kPeftLora) / f, fs::path(to) / f);
  }
  return to;
}

TEST(SweepTrainRun, InitFromFolderForAnotherBaseIsRefusedNamingTheTensor) {
  // synthetic:tiny has q_proj and v_proj too, of other shapes than the tiny Llama's.
  json job = PeftLoraJob(2, kPeftLora);
  job["model"] = {{"source", "synthetic:tiny"}};
  ExpectInitFromRefused(job, kPeftLora, "tensor 'base_model.model.model.layers.");
}

TEST(SweepTrainRun, InitFromFolderOfAnotherMethodOrRankIsRefusedNamingBoth) {
  json ia3 = PeftLoraJob(2, kPeftLora);
  ia3["adapter"] = {{"method", "ia3"}, {"init_from", kPeftLora}};
  ExpectInitFromRefused(ia3, kPeftLora, "a lora adapter, but the job's adapter is ia3");
  json rank = PeftLoraJob(2, kPeftLora);
  const int64_t r = rank["adapter"]["r"];
  rank["adapter"]["r"] = 2 * r;
  ExpectInitFromRefused(rank, kPeftLora,
                        "r is " + std::to_string(r) + " in the folder, " + std::to_string(2 * r) + " in the job's");
}

TEST(SweepTrainRun, InitFromFolderMissingATensorIsRefusedNamingIt) {
  const std::string folder = CopyOfPeftLora("init-from-missing-");
  auto tensors = Tensors(folder + "/adapter_model.safetensors");
  const std::string dropped = tensors.rbegin()->first;
  tensors.erase(dropped);
  fs::remove(folder + "/adapter_model.safetensors");
  io::SaveSafetensors(folder + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  ExpectInitFromRefused(PeftLoraJob(2, folder), folder, "missing tensor '" + dropped + "'");
}

TEST(SweepTrainRun, InitFromFolderWithAnUnknownPeftKeyIsRefusedNamingIt) {
  const std::string folder = CopyOfPeftLora("init-from-key-");
  json c = json::parse(ReadFile(folder + "/adapter_config.json"));
  c["lora_scale_pattern"] = json::object();
  std::ofstream(folder + "/adapter_config.json", std::ios::trunc) << c.dump(2);
  ExpectInitFromRefused(PeftLoraJob(2, folder), folder, "unknown PEFT key 'lora_scale_pattern'");
}

TEST(SweepTrainRun, TwoGlooRanksOnCpuTrainTheAdapterOneProcessTrains) {
  // The same job on one process and on two ranks (distributed.h: gloo on CPU): each rank runs
  // one of the update's two micro-batches and the gradients are summed, so the losses and the
  // adapter agree up to the order of the float32 sums.
  json job = json::parse(ReadFile(kJobs + "synthetic_resume.json"));
  job["train"]["steps"] = 8;
  job["train"]["log_every"] = 1;
  const std::string dir = MakeTempDir("sweep-train-ranks-");
  std::map<int, RunResult> runs;
  for (int devices : {1, 2}) {
    job["devices"] = devices;
    const std::string sub = dir + "/d" + std::to_string(devices);
    fs::create_directories(sub);
    std::ofstream(sub + "/job.json") << job.dump();
    runs[devices] = RunTrainer({kTrain, "run", "--job", sub + "/job.json", "--workdir", sub + "/work"}, sub);
    ASSERT_EQ(runs[devices].status, 0) << runs[devices].stderr_text;
  }
  auto losses = [](const RunResult& r) {
    std::vector<double> out;
    for (const json& line : r.lines) {
      if (line["type"] == "step") out.push_back(line["loss"].get<double>());
    }
    return out;
  };
  const std::vector<double> one = losses(runs[1]), two = losses(runs[2]);
  ASSERT_EQ(one.size(), 8u);
  ASSERT_EQ(two.size(), one.size()) << "rank 0 alone prints the step lines";
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(two[i], one[i], 1e-5 * std::abs(one[i])) << "step " << i + 1;
  EXPECT_EQ(std::count_if(runs[2].lines.begin(), runs[2].lines.end(), [](const json& l) { return l["type"] == "final"; }),
            1);
  const auto a = Tensors(dir + "/d1/work/checkpoints/step-00000008/adapter_model.safetensors");
  const auto b = Tensors(dir + "/d2/work/checkpoints/step-00000008/adapter_model.safetensors");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::allclose(b.at(name), tensor, 1e-4, 1e-6)) << name << " differs on two ranks";
  }
  // The adapters did move (LoRA's B starts at zero): equal because both trained.
  bool moved = false;
  for (const auto& [name, tensor] : a) moved |= name.find("lora_B") != std::string::npos && tensor.abs().max().item<double>() > 0;
  EXPECT_TRUE(moved);
  fs::remove_all(dir);
}

TEST(SweepTrainRun, UnknownMethodIsOneLineNamingTheJobFile) {
  const std::string dir = MakeTempDir("sweep-train-err-");
  RunResult r = RunTrainer({kTrain, "run", "--job", kJobs + "unknown_method.json", "--workdir", dir}, dir);
  EXPECT_EQ(r.status, 2);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("unknown_method.json"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("lorax"), std::string::npos) << r.stderr_text;
}

// JORA with tanh_clip is not linear in x, so it has no ΔW: the job still ends with its final
// line (the spectrum lists no layer and its means are null) instead of failing after training.
TEST(SweepTrainRun, NonlinearJoraEndsWithoutASpectrum) {
  const std::string dir = MakeTempDir("sweep-train-jora-tanh-");
  RunResult r =
      RunTrainer({kTrain, "run", "--job", kJobs + "synthetic_jora_tanh_clip.json", "--workdir", dir + "/work"}, dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  const json& final_line = r.lines.back();
  ASSERT_EQ(final_line.value("type", ""), "final") << final_line.dump();
  ASSERT_TRUE(final_line.contains("svd")) << final_line.dump();
  EXPECT_TRUE(final_line["svd"]["layers"].empty()) << final_line.dump();
  EXPECT_TRUE(final_line["svd"]["mean_entropy"].is_null()) << final_line.dump();
}

// A LoRA+ job trains, counts like LoRA, and leaves its adapter in PEFT's LoRA layout (PEFT
// trains LoRA+ with a plain LoRA adapter; only the optimizer differs).
TEST(SweepTrainRun, LoraPlusJobExportsPeftLoraLayout) {
  const std::string dir = MakeTempDir("sweep-train-lora-plus-");
  RunResult r = RunTrainer({kTrain, "run", "--job", kJobs + "synthetic_lora_plus_a.json", "--workdir", dir + "/work"}, dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  ExpectValidLines(r.lines);
  const json& final_line = r.lines.back();
  EXPECT_EQ(final_line["method"], "lora_plus");
  const json job = json::parse(ReadFile(kJobs + "synthetic_lora_plus_a.json"));
  const int64_t rank = job["adapter"]["r"];
  // q_proj and v_proj of the 4 layers of synthetic:tiny: r (d_in + d_out) per layer, as LoRA.
  EXPECT_EQ(final_line["trainable_params"].get<int64_t>(), 4 * (rank * (128 + 128) + rank * (128 + 64)));
  const json config = json::parse(ReadFile(dir + "/work/adapter/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], rank);
  EXPECT_EQ(config["lora_alpha"], job["adapter"]["alpha"]);
  EXPECT_EQ(config["use_dora"], false);
  EXPECT_EQ(config["use_rslora"], false);
  EXPECT_EQ(config["target_modules"], json::array({"q_proj", "v_proj"}));
  io::SafetensorsFile weights = io::SafetensorsFile::Open(dir + "/work/adapter/adapter_model.safetensors");
  int a = 0, b = 0;
  for (const std::string& name : weights.Names()) {
    EXPECT_EQ(name.rfind("base_model.model.model.layers.", 0), 0u) << name;
    const bool is_a = name.size() > 14 && name.compare(name.size() - 14, 14, ".lora_A.weight") == 0;
    const bool is_b = name.size() > 14 && name.compare(name.size() - 14, 14, ".lora_B.weight") == 0;
    EXPECT_TRUE(is_a || is_b) << "PEFT's LoRA names only: " << name;
    a += is_a;
    b += is_b;
    if (is_a) {
      EXPECT_EQ(weights.Get(name).size(0), rank) << name;
    } else if (is_b) {
      EXPECT_EQ(weights.Get(name).size(1), rank) << name;
    }
  }
  EXPECT_EQ(a, 8);
  EXPECT_EQ(b, 8);
}

// A misspelt option is refused before any work, naming the job file, the option and the
// options the method has (it used to be ignored: JORA trained with its default S_L).
TEST(SweepTrainRun, UnknownAdapterOptionIsOneLineNamingItAndTheKnownOnes) {
  const std::string dir = MakeTempDir("sweep-train-option-");
  RunResult r = RunTrainer({kTrain, "run", "--job", kJobs + "jora_unknown_option.json", "--workdir", dir}, dir);
  EXPECT_EQ(r.status, 2);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("jora_unknown_option.json"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("unknown option 'SL' of jora"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("S_L"), std::string::npos) << r.stderr_text;
}

// `sweep-train bench --methods M.json` reads its entry through the same registry.
TEST(SweepTrainBench, UnknownAdapterOptionInTheMethodsFileIsRefusedNamingIt) {
  const std::string dir = MakeTempDir("sweep-train-bench-");
  RunResult r = RunTrainer({kTrain, "bench", "--config", std::string(SWEEPD_FIXTURES) + "/models/tiny-llama/config.json",
                            "--methods", kJobs + "bench_methods_unknown_option.json", "--method", "jora_misspelt",
                            "--device", "cpu", "--dtype", "float32", "--steps", "1", "--warmup", "0"},
                           dir);
  EXPECT_EQ(r.status, 2) << r.stderr_text;
  EXPECT_TRUE(r.lines.empty()) << "no result line for a refused method";
  EXPECT_NE(r.stderr_text.find("bench_methods_unknown_option.json"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("unknown option 'SL' of jora"), std::string::npos) << r.stderr_text;
}

// A job file that is not JSON is the job's fault: exit kInvalid, one "invalid input" line.
TEST(SweepTrainRun, JobFileThatIsNotJsonIsInvalidInput) {
  const std::string dir = MakeTempDir("sweep-train-not-json-");
  RunResult r = RunTrainer({kTrain, "run", "--job", kJobs + "not_json.json", "--workdir", dir + "/work"}, dir);
  EXPECT_EQ(r.status, exit_status::kInvalid);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("invalid input: " + kJobs + "not_json.json: not valid JSON"), std::string::npos)
      << r.stderr_text;
}

// So is a training data file that is not there; nothing is retried for it.
TEST(SweepTrainRun, MissingTrainingDataFileIsInvalidInput) {
  const std::string dir = MakeTempDir("sweep-train-no-data-");
  std::ifstream in(kJobs + "synthetic_lora_a.json");
  json job = json::parse(in);
  const std::string data = dir + "/no-such-data.jsonl";
  job["train"]["data"] = data;
  std::ofstream(dir + "/job.json") << job.dump();
  RunResult r = RunTrainer({kTrain, "run", "--job", dir + "/job.json", "--workdir", dir + "/work"}, dir);
  EXPECT_EQ(r.status, exit_status::kInvalid);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("invalid input: " + data + ": cannot open data file"), std::string::npos)
      << r.stderr_text;
}

// The step-NNNNNNNN checkpoint folders of a workdir, oldest first.
std::vector<fs::path> CheckpointFolders(const std::string& workdir) {
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(workdir + "/checkpoints")) {
    if (entry.path().filename().string().rfind("step-", 0) == 0) folders.push_back(entry.path());
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

// A checkpoint that cannot be read back on resume is a crash of that attempt (retried by
// sweepd), not the job's fault; it is set aside, and the next attempt resumes from the
// checkpoint before it and ends with the adapter an unbroken run ends with.
TEST(SweepTrainRun, CorruptCheckpointOnResumeCrashesAndTheRetryResumesFromTheOneBefore) {
  const std::string job = kJobs + "synthetic_resume.json";
  const std::string dir = MakeTempDir("sweep-train-corrupt-");
  const std::string work = dir + "/work";
  RunResult straight = RunTrainer({kTrain, "run", "--job", job, "--workdir", work}, dir);
  ASSERT_EQ(straight.status, exit_status::kOk) << straight.stderr_text;
  const std::vector<fs::path> folders = CheckpointFolders(work);
  ASSERT_GE(folders.size(), 2u);
  const fs::path latest = folders.back(), before = folders[folders.size() - 2];
  const auto unbroken = Tensors((latest / "adapter_model.safetensors").string());
  const fs::path adapter_file = latest / "adapter_model.safetensors";
  fs::resize_file(adapter_file, fs::file_size(adapter_file) / 2);  // a torn write

  RunResult crashed = RunTrainer({kTrain, "run", "--job", job, "--workdir", work, "--resume"}, dir);
  EXPECT_EQ(crashed.status, exit_status::kCrashed);
  ExpectOneLine(crashed.stderr_text);
  EXPECT_NE(crashed.stderr_text.find("crash (corrupt checkpoint): " + adapter_file.string()), std::string::npos)
      << crashed.stderr_text;
  EXPECT_FALSE(fs::exists(latest));
  EXPECT_TRUE(fs::exists(latest.parent_path() / ("corrupt-" + latest.filename().string())));

  RunResult retried = RunTrainer({kTrain, "run", "--job", job, "--workdir", work, "--resume"}, dir);
  ASSERT_EQ(retried.status, exit_status::kOk) << retried.stderr_text;
  EXPECT_NE(retried.stderr_text.find("resumed from " + before.string() + " at step"), std::string::npos)
      << retried.stderr_text;
  ExpectValidLines(retried.lines);
  const auto resumed = Tensors((latest / "adapter_model.safetensors").string());
  ASSERT_EQ(resumed.size(), unbroken.size());
  for (const auto& [name, tensor] : unbroken) {
    ASSERT_TRUE(resumed.count(name)) << name;
    EXPECT_TRUE(torch::equal(tensor, resumed.at(name))) << name << " differs after resuming from " << before;
  }
}

// A job on a copy of the tiny-llama fixture, edited by `edit`.
RunResult RunOnEditedModel(const std::function<void(const std::string&)>& edit, const std::string& dir) {
  const std::string model = dir + "/model";
  fs::create_directories(model);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(std::string(SWEEPD_FIXTURES) + "/models/tiny-llama/" + f, model + "/" + f);
  }
  fs::permissions(model + "/config.json", fs::perms::owner_write, fs::perm_options::add);
  edit(model);
  json job = {{"job_id", "edited"}, {"model", {{"source", model}}}, {"adapter", {{"method", "lora"}}},
              {"train", {{"data", "synthetic:mc"}, {"steps", 1}}}, {"eval", json::array()}};
  std::ofstream(dir + "/job.json") << job.dump();
  return RunTrainer({kTrain, "run", "--job", dir + "/job.json", "--workdir", dir + "/work"}, dir);
}

TEST(SweepTrainRun, MissingTensorIsOneLineNamingFileAndTensor) {
  const std::string dir = MakeTempDir("sweep-train-missing-");
  RunResult r = RunOnEditedModel(
      [](const std::string& model) {
        auto tensors = Tensors(model + "/model.safetensors");
        tensors.erase("model.norm.weight");
        fs::remove(model + "/model.safetensors");
        io::SaveSafetensors(model + "/model.safetensors", tensors);
      },
      dir);
  EXPECT_EQ(r.status, 2);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("model.safetensors: missing tensor 'model.norm.weight'"), std::string::npos)
      << r.stderr_text;
}

TEST(SweepTrainRun, ShapeMismatchIsOneLineNamingFileAndTensor) {
  const std::string dir = MakeTempDir("sweep-train-shape-");
  RunResult r = RunOnEditedModel(
      [](const std::string& model) {
        std::ifstream in(model + "/config.json");
        json config = json::parse(in);
        config["intermediate_size"] = 160;
        std::ofstream(model + "/config.json") << config.dump();
      },
      dir);
  EXPECT_EQ(r.status, 2);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape"),
            std::string::npos)
      << r.stderr_text;
}

TEST(SweepTrainRun, MalformedTrainingDataIsOneLineNamingFileAndLine) {
  const std::string dir = MakeTempDir("sweep-train-data-");
  json job = {{"job_id", "bad-data"}, {"model", {{"source", "synthetic:tiny"}}}, {"adapter", {{"method", "lora"}}},
              {"train", {{"data", std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/alpaca_bad_json.jsonl"},
                         {"steps", 1}}},
              {"eval", json::array()}};
  std::ofstream(dir + "/job.json") << job.dump();
  RunResult r = RunTrainer({kTrain, "run", "--job", dir + "/job.json", "--workdir", dir + "/work"}, dir);
  EXPECT_EQ(r.status, 2);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("alpaca_bad_json.jsonl:3: not valid JSON"), std::string::npos) << r.stderr_text;
}

// LoRA on every linear layer of the tiny Gemma fixture (GeGLU, (1 + w) norms, head_dim 32 with 4
// heads of a 64-wide model, one KV head, tied embeddings): the loss falls, the trainable count is
// r (d_in + d_out) per projection as config.json implies, and the PEFT folder names them all.
TEST(SweepTrainRun, LoraTrainsOnTinyGemma) {
  const std::string dir = MakeTempDir("sweep-train-gemma-");
  const std::string model = std::string(SWEEPD_FIXTURES) + "/models/tiny-gemma";
  const int64_t r = 4;
  json job = {{"job_id", "gemma-lora"},
              {"model", {{"source", model}, {"tokenizer", std::string(SWEEPD_FIXTURES) + "/tokenizer/tiny.model"}}},
              {"track", {{"name", "B"}}},
              {"adapter", {{"method", "lora"}, {"r", r}, {"alpha", 2 * r}}},
              {"train", {{"data", "synthetic:mc"}, {"steps", 30}, {"lr", 0.01}, {"seq_len", 64},
                         {"tokens_per_update", 512}, {"micro_batch", 8}, {"log_every", 1}}},
              {"eval", json::array()}};
  std::ofstream(dir + "/job.json") << job.dump();
  RunResult run = RunTrainer({kTrain, "run", "--job", dir + "/job.json", "--workdir", dir + "/work"}, dir);
  ASSERT_EQ(run.status, 0) << run.stderr_text;
  ExpectValidLines(run.lines);
  std::vector<double> losses;
  for (const json& line : run.lines) {
    if (line.value("type", "") == "step") losses.push_back(line["loss"].get<double>());
  }
  ASSERT_GE(losses.size(), 2u);
  EXPECT_LT(losses.back(), 0.9 * losses.front()) << run.lines.back().dump();

  std::ifstream in(model + "/config.json");
  const json c = json::parse(in);
  const int64_t h = c["hidden_size"], ff = c["intermediate_size"], hd = c["head_dim"];
  const int64_t q = c["num_attention_heads"].get<int64_t>() * hd, kv = c["num_key_value_heads"].get<int64_t>() * hd;
  const int64_t per_layer = r * ((h + q) + 2 * (h + kv) + (q + h) + 2 * (h + ff) + (ff + h));
  EXPECT_EQ(run.lines.back()["trainable_params"].get<int64_t>(), c["num_hidden_layers"].get<int64_t>() * per_layer);

  const auto adapter = Tensors(dir + "/work/adapter/adapter_model.safetensors");
  for (const char* module : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                             "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
    const std::string name = std::string("base_model.model.model.layers.1.") + module + ".lora_A.weight";
    EXPECT_EQ(adapter.count(name), 1u) << name;
  }
}

// A LoRA job on chat rows rendered by a chat template given as a file (model.chat_template),
// with the tiny SentencePiece model and a tokenizer_config.json beside it (Llama 2's specials).
RunResult RunChatJob(const std::string& data, const std::string& chat_template, const std::string& dir) {
  const std::string tokenizer = dir + "/tokenizer";
  fs::create_directories(tokenizer);
  fs::copy_file(std::string(SWEEPD_FIXTURES) + "/tokenizer/tiny.model", tokenizer + "/tokenizer.model");
  const json specials = {{"bos_token", "<s>"}, {"eos_token", "</s>"},
                         {"added_tokens_decoder", {{"1", {{"content", "<s>"}, {"special", true}}},
                                                   {"2", {{"content", "</s>"}, {"special", true}}}}}};
  std::ofstream(tokenizer + "/tokenizer_config.json") << specials.dump();
  json job = {{"job_id", "chat"},
              {"model", {{"source", std::string(SWEEPD_FIXTURES) + "/models/tiny-llama"},
                         {"tokenizer", tokenizer + "/tokenizer.model"},
                         {"chat_template", kJobs + "../data/chat/" + chat_template}}},
              {"adapter", {{"method", "lora"}}},
              {"train", {{"data", kJobs + "../data/" + data}, {"steps", 3}, {"seq_len", 64},
                         {"tokens_per_update", 128}, {"micro_batch", 2}}},
              {"eval", json::array()}};
  std::ofstream(dir + "/job.json") << job.dump();
  return RunTrainer({kTrain, "run", "--job", dir + "/job.json", "--workdir", dir + "/work"}, dir);
}

TEST(SweepTrainRun, ChatRowsTrainThroughTheTemplate) {
  const std::string dir = MakeTempDir("sweep-train-chat-");
  RunResult r = RunChatJob("chat_turns.jsonl", "mistral-instruct.jinja", dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  ExpectValidLines(r.lines);
}

// Bad chat input stops the job before training: one line naming the data file, the row and what.
TEST(SweepTrainRun, TemplateThatRaisesIsOneLineAndTrainsNothing) {
  const std::string dir = MakeTempDir("sweep-train-chat-raise-");
  RunResult r = RunChatJob("chat_template_raises.jsonl", "gemma-it.jinja", dir);
  EXPECT_EQ(r.status, 2);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("chat_template_raises.jsonl:1:"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("gemma-it.jinja"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("System role not supported"), std::string::npos) << r.stderr_text;
  EXPECT_FALSE(fs::exists(dir + "/work/checkpoints")) << "nothing may be trained";
}

TEST(SweepTrainRun, UnknownChatRoleIsOneLineAndTrainsNothing) {
  const std::string dir = MakeTempDir("sweep-train-chat-role-");
  RunResult r = RunChatJob("chat_unknown_role.jsonl", "mistral-instruct.jinja", dir);
  EXPECT_EQ(r.status, 2);
  ExpectOneLine(r.stderr_text);
  EXPECT_NE(r.stderr_text.find("chat_unknown_role.jsonl:2: messages[1] has unknown role 'narrator'"),
            std::string::npos)
      << r.stderr_text;
  EXPECT_FALSE(fs::exists(dir + "/work/checkpoints")) << "nothing may be trained";
}

// The model fixtures (logits and loss; the PEFT LoRA folder through its base) and the
// SentencePiece fixture (every text's ids) pass the conformance command; a folder with a
// tampered reference fails it.
TEST(SweepTrainConformance, ModelFoldersAndTokenizerPass) {
  const std::string dir = MakeTempDir("sweep-train-conformance-");
  const std::string fixtures = SWEEPD_FIXTURES;
  std::string command = "'" + kTrain + "' conformance";
  for (const char* p : {"/models/tiny-llama", "/models/tiny-mistral", "/models/tiny-gemma",
                        "/models/tiny-llama-lora-qv", "/tokenizer/tiny.model"}) {
    command += " '" + fixtures + p + "'";
  }
  command += " > '" + dir + "/out' 2>&1";
  const int status = std::system(command.c_str());
  const std::string out = ReadFile(dir + "/out");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("5 file(s): 5 ok, 0 failed"), std::string::npos) << out;

  fs::copy(fixtures + "/models/tiny-llama", dir + "/tampered", fs::copy_options::recursive);
  std::map<std::string, torch::Tensor> changed;
  {
    const auto ref = io::SafetensorsFile::Open(dir + "/tampered/reference.safetensors");
    for (const std::string& name : ref.Names()) {
      const torch::Tensor t = ref.Get(name).clone();
      changed[name] = name == "logits" ? t + 1e-2 : t;
    }
  }
  io::SaveSafetensors(dir + "/tampered/reference.safetensors", changed);
  const int bad = std::system(("'" + kTrain + "' conformance '" + dir + "/tampered' > '" + dir + "/bad' 2>&1").c_str());
  EXPECT_EQ(WIFEXITED(bad) ? WEXITSTATUS(bad) : -1, 1) << ReadFile(dir + "/bad");
}

// `prepare` leaves the synthetic base model in the cache (the same folder every job reads) and
// says where; anything but synthetic:NAME is refused with the name in the message.
TEST(SweepTrainPrepare, FillsTheCacheAndRefusesOtherModels) {
  const std::string dir = MakeTempDir("sweep-train-prepare-");
  RunResult r = RunTrainer({kTrain, "prepare", "synthetic:tiny"}, dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0]["model"], "synthetic:tiny");
  EXPECT_EQ(r.lines[0]["cache"], std::string(SWEEPD_TEST_CACHE));
  int models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SWEEPD_TEST_CACHE)) {
    if (entry.path().filename().string().rfind("synthetic-tiny-", 0) == 0 &&
        std::filesystem::exists(entry.path() / "model.safetensors")) {
      ++models;
    }
  }
  EXPECT_GE(models, 1);

  RunResult folder = RunTrainer({kTrain, "prepare", dir}, dir);
  EXPECT_EQ(folder.status, 2);
  EXPECT_NE(folder.stderr_text.find(dir + ": only synthetic:NAME"), std::string::npos) << folder.stderr_text;
  RunResult unknown = RunTrainer({kTrain, "prepare", "synthetic:no-such-model"}, dir);
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.stderr_text.find("no-such-model"), std::string::npos) << unknown.stderr_text;
}

// The synthetic base model is the same bytes whatever the machine's thread count: a job on a
// 16-core node and one on a laptop compare adapters on the same base (before recipe 2, 16
// threads gave other weights than 2).
TEST(SweepTrainPrepare, TheBaseModelDoesNotFollowTheThreadCount) {
  const std::string dir = MakeTempDir("sweep-train-threads-");
  ASSERT_EQ(RunTrainer({kTrain, "prepare", "synthetic:tiny"}, dir).status, 0);  // the shared cache
  const std::string own_cache = dir + "/cache";
  RunResult r = RunTrainer({kTrain, "prepare", "synthetic:tiny"}, dir, {"SWEEPD_CACHE=" + own_cache, "OMP_NUM_THREADS=16"});
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  // The one model in the fresh cache, and the same folder (the recipe's key) in the shared one.
  std::filesystem::path own;
  for (const auto& entry : std::filesystem::directory_iterator(own_cache)) {
    if (std::filesystem::exists(entry.path() / "model.safetensors")) own = entry.path() / "model.safetensors";
  }
  ASSERT_FALSE(own.empty()) << "no model in " << own_cache;
  const std::filesystem::path shared =
      std::filesystem::path(SWEEPD_TEST_CACHE) / own.parent_path().filename() / "model.safetensors";
  ASSERT_TRUE(std::filesystem::exists(shared)) << shared;
  const std::string a = ReadFile(shared.string()), b = ReadFile(own.string());
  ASSERT_GT(a.size(), 0u);
  EXPECT_TRUE(a == b) << shared << " and " << own << " differ";
}

TEST(SweepTrainProbe, PrintsTheCpuDevice) {
  const std::string dir = MakeTempDir("sweep-train-probe-");
  RunResult r = RunTrainer({kTrain, "probe"}, dir);
  ASSERT_EQ(r.status, 0) << r.stderr_text;
  ASSERT_EQ(r.lines.size(), 1u);
  ASSERT_TRUE(r.lines[0]["devices"].is_array());
  EXPECT_EQ(r.lines[0]["devices"][0]["kind"], "cpu");
}

}  // namespace
}  // namespace sweepd
