// Model and tokenizer conformance (see model_conformance.h). Tolerances: logits 1e-4 and
// loss 1e-5 (float32 against transformers' float32), token ids exactly.
#include "worker/trainer/model_conformance.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "worker/data/tokenizer.h"
#include "worker/io/safetensors.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/eval_conformance.h"
#include "worker/trainer/peft_folder.h"
#include "worker/trainer/tokenizer_conformance.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;

namespace {

constexpr double kLogitTolerance = 1e-4;
constexpr double kLossTolerance = 1e-5;

struct Check {
  std::string name;
  double error;
  double tolerance;
  bool ok() const { return std::isfinite(error) && error <= tolerance; }
};

int Report(const std::string& path, const std::string& what, const std::vector<Check>& checks, std::ostream& out) {
  bool ok = true;
  for (const auto& c : checks) ok = ok && c.ok();
  out << path << " (" << what << "): " << (ok ? "ok" : "FAIL") << "\n";
  for (const auto& c : checks) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-34s %10.3e  (max %.0e)%s", c.name.c_str(), c.error, c.tolerance,
                  c.ok() ? "" : "  FAIL");
    out << line << "\n";
  }
  return ok ? 0 : 1;
}

// The base of a PEFT folder: base_model_name_or_path when it is a folder, else the sibling
// folder whose name is the longest prefix of this one ("tiny-llama" for "tiny-llama-lora-qv").
std::string PeftBase(const std::string& folder) {
  std::ifstream in(fs::path(folder) / "adapter_config.json");
  const auto config = nlohmann::json::parse(in);
  const auto named = config.value("base_model_name_or_path", nlohmann::json());
  if (named.is_string() && fs::is_directory(named.get<std::string>())) return named.get<std::string>();
  const fs::path self = fs::absolute(folder).lexically_normal();
  const std::string name = (self.filename().empty() ? self.parent_path() : self).filename().string();
  std::string best;
  for (const auto& entry : fs::directory_iterator(self.parent_path())) {
    const std::string n = entry.path().filename().string();
    if (entry.is_directory() && n != name && name.rfind(n + "-", 0) == 0 &&
        fs::exists(entry.path() / "config.json") && n.size() > best.size()) {
      best = n;
    }
  }
  if (best.empty()) {
    throw std::invalid_argument(folder + ": adapter_config.json names no base model folder, and no sibling folder is its base");
  }
  return (self.parent_path() / best).string();
}

double MaxAbs(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return INFINITY;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

int CheckModel(const std::string& folder, std::ostream& out) {
  torch::NoGradGuard no_grad;
  auto ref = io::SafetensorsFile::Open((fs::path(folder) / "reference.safetensors").string());
  const bool peft = fs::exists(fs::path(folder) / "adapter_config.json");
  const std::string base = peft ? PeftBase(folder) : folder;
  models::LlamaForCausalLM model = models::LoadHfModel(base, torch::kFloat32);
  std::string what = model->config().model_type;
  if (peft) {
    LoadPeftFolder(folder, model);
    what = "PEFT " + ReadPeftConfig(folder).settings.value("method", "") + " on " + fs::path(base).filename().string();
  }
  model->eval();
  auto ids = ref.Get("input_ids").to(torch::kInt64);
  auto logits = model->forward(ids);
  std::vector<Check> checks = {{"logits", MaxAbs(logits, ref.Get("logits")), kLogitTolerance}};
  if (ref.Has("loss")) {
    const int64_t t = ids.size(1);
    auto loss = models::NextTokenLoss(logits.narrow(1, 0, t - 1), ids.narrow(1, 1, t - 1));
    checks.push_back({"loss", std::abs(loss.item<double>() - ref.Get("loss").item<double>()), kLossTolerance});
  }
  return Report(folder, what, checks, out);
}

int CheckTokenizer(const std::string& path, std::ostream& out) {
  const fs::path reference = fs::path(path).parent_path() / "reference.json";
  std::ifstream in(reference);
  if (!in) throw std::invalid_argument(reference.string() + ": cannot open (needed beside the .model file)");
  const auto rows = nlohmann::json::parse(in);
  auto tokenizer = data::LoadSentencePieceTokenizer(path);
  int64_t wrong = 0;
  for (const auto& row : rows) {
    const auto ids = tokenizer->Encode(row.at("text").get<std::string>());
    if (ids != row.at("ids").get<std::vector<int64_t>>()) {
      ++wrong;
      out << "  ids differ for text " << row.at("text").dump() << "\n";
    }
  }
  return Report(path, "SentencePiece, " + std::to_string(rows.size()) + " texts",
                {{"texts with other ids", static_cast<double>(wrong), 0.0}}, out);
}

}  // namespace

bool IsModelConformancePath(const std::string& path) {
  if (IsEvalConformancePath(path)) return true;
  if (fs::path(path).filename() == "tokenizer.json") return true;
  if (fs::is_directory(path)) return fs::exists(fs::path(path) / "reference.safetensors");
  return fs::path(path).extension() == ".model";
}

int RunModelConformance(const std::string& path, std::ostream& out) {
  if (IsEvalConformancePath(path)) return RunEvalConformance(path, out);
  try {
    if (fs::is_directory(path)) return CheckModel(path, out);
    if (fs::path(path).filename() == "tokenizer.json") return CheckHfTokenizerConformance(path, out);
    return CheckTokenizer(path, out);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    out << path << ": UNUSABLE: " << what.substr(0, what.find('\n')) << "\n";
    return 2;
  }
}

}  // namespace sweepd::trainer
