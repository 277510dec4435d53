// `sweep-train conformance FILE...`: runs our adapters in float64 on reference files in the
// format of tests/fixtures/adapters/ (any shapes and ranks, read from the file) and prints the
// largest absolute error of the output, of every gradient, of the merged weight where the
// file has one, and of the output through our own merge. Exit 1 when an error exceeds the
// method's registered tolerance (common/methods/: 1e-9; 1e-6 for a merged weight built through
// a matrix inverse), 2 when a file cannot be used (its config is read through the method
// registry like every other entry point: an unknown option makes the file unusable).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "common/methods/registry.h"
#include "worker/adapters/adapter.h"
#include "worker/io/safetensors.h"
#include "worker/trainer/commands.h"
#include "worker/trainer/model_conformance.h"

// Its own namespace: unity batches put this file beside model_conformance.cc, whose
// file-local Check and MaxAbs have the same names.
namespace sweepd::trainer::adapter_conformance {
namespace {

using adapters::Adapter;
using adapters::MakeAdapter;
using adapters::NamedTensor;

constexpr double kTolerance = 1e-9;  // a check's default; each method registers its own

struct Check {
  Check(std::string n, double e, double tol = kTolerance, std::string why = "")
      : name(std::move(n)), error(e), tolerance(tol), note(std::move(why)) {}
  std::string name;
  double error = 0.0;
  double tolerance = kTolerance;
  std::string note;
  bool ok() const { return std::isfinite(error) && error <= tolerance; }
};

double MaxAbs(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() != b.numel()) return INFINITY;
  if (a.numel() == 0) return 0.0;
  return (a.to(torch::kFloat64).reshape(-1) - b.to(torch::kFloat64).reshape(-1)).abs().max().item<double>();
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The method of a reference file: metadata "method" (e.g. "lora_r4_rslora") by its longest
// registered prefix, else from the tensor names each method registers as its markers, the
// latest registration first: a method built on another is registered after it (DoRA's
// lora_magnitude_vector is tried before LoRA's lora_A, BOFT's boft_R before OFT's oft_R).
std::string DetectMethod(const io::SafetensorsFile& file, const nlohmann::json& config) {
  std::string best;
  auto meta = file.Metadata().find("method");
  if (meta != file.Metadata().end()) {
    for (const methods::MethodInfo* m : methods::Methods()) {
      const std::string& k = m->name;
      if ((meta->second == k || StartsWith(meta->second, k + "_")) && k.size() > best.size()) best = k;
    }
  }
  if (best.empty()) {
    std::vector<std::pair<std::string, std::string>> markers;  // (marker, method)
    const auto& all = methods::Methods();
    for (auto m = all.rbegin(); m != all.rend(); ++m) {
      for (const std::string& marker : (*m)->tensor_markers) markers.emplace_back(marker, (*m)->name);
    }
    for (const auto& [marker, method] : markers) {
      for (const std::string& n : file.Names()) {
        if (best.empty() && StartsWith(n, "param.") && n.find(marker) != std::string::npos) best = method;
      }
    }
  }
  if (best == "lora" && config.value("dora", false)) best = "dora";
  if (best.empty()) throw std::invalid_argument("cannot tell the adapter method (no metadata 'method')");
  return best;
}

// The module name of the wrapped layer: "frozen.<module>.base_layer.weight".
std::string ModuleName(const io::SafetensorsFile& file) {
  for (const std::string& n : file.Names()) {
    const std::string suffix = ".base_layer.weight";
    if (StartsWith(n, "frozen.") && n.size() > suffix.size() + 7 &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return n.substr(7, n.size() - 7 - suffix.size());
    }
  }
  throw std::invalid_argument("no tensor frozen.<module>.base_layer.weight");
}

// Tensors "<kind>.<module>.<name>" as name → float64 tensor.
std::map<std::string, torch::Tensor> Group(const io::SafetensorsFile& file, const std::string& kind,
                                           const std::string& module) {
  std::map<std::string, torch::Tensor> out;
  const std::string prefix = kind + "." + module + ".";
  for (const std::string& n : file.Names()) {
    if (!StartsWith(n, prefix)) continue;
    torch::Tensor t = file.Get(n);
    out[n.substr(prefix.size())] = t.is_floating_point() ? t.to(torch::kFloat64).clone() : t.clone();
  }
  return out;
}

// PEFT's in-memory name of a tensor ("lora_A.default.weight") → our saved name.
std::string Canonical(std::string name) {
  for (size_t at = name.find(".default"); at != std::string::npos; at = name.find(".default")) name.erase(at, 8);
  return name;
}

const NamedTensor* FindTrainable(const std::vector<NamedTensor>& ours, const std::string& file_name) {
  const std::string c = Canonical(file_name);
  for (const NamedTensor& nt : ours) {
    if (nt.name == c || nt.name + ".weight" == c) return &nt;
  }
  return nullptr;
}

// Compares factors of an SVD up to the sign of each singular pair (LAPACK may flip them).
double SignInvariantError(torch::Tensor ours, torch::Tensor ref, int64_t component_dim) {
  if (ours.sizes() != ref.sizes()) return INFINITY;
  torch::Tensor dots = (ours * ref).sum(1 - component_dim, /*keepdim=*/true);
  return MaxAbs(ours * torch::sign(dots), ref);
}

struct FileResult {
  std::string method;
  std::vector<Check> checks;
  std::vector<std::string> notes;
};

FileResult RunFile(const std::string& path) {
  io::SafetensorsFile file = io::SafetensorsFile::Open(path);
  nlohmann::json config = nlohmann::json::object();
  if (auto it = file.Metadata().find("config"); it != file.Metadata().end()) {
    config = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (!config.is_object()) throw std::invalid_argument("metadata 'config' is not a JSON object");
  }
  FileResult result;
  result.method = DetectMethod(file, config);
  const std::string module = ModuleName(file);
  std::map<std::string, torch::Tensor> frozen = Group(file, "frozen", module);
  std::map<std::string, torch::Tensor> params = Group(file, "param", module);
  std::map<std::string, torch::Tensor> buffers = Group(file, "buffer", module);
  std::map<std::string, torch::Tensor> grads = Group(file, "grad", module);

  torch::Tensor weight = frozen.at("base_layer.weight");
  torch::Tensor bias = frozen.count("base_layer.bias") ? frozen.at("base_layer.bias") : torch::Tensor();
  nlohmann::json settings = config;
  settings.erase("source");  // where the reference came from, not an adapter option
  // PEFT writes DoRA as LoRA with use_dora; the files say "dora": true beside method dora.
  if (result.method == "dora" && settings.value("dora", false)) settings.erase("dora");
  settings["method"] = result.method;
  settings["init_weights"] = false;
  if (result.method == "boft") {
    // PEFT builds BOFT with one butterfly factor when its CUDA extension is absent, whatever
    // the config says; the stored boft_R [factors, blocks, b, b] is what ran.
    for (const auto& [n, t] : params) {
      if (Canonical(n) == "boft_R") {
        if (t.size(0) != config.value("boft_n_butterfly_factor", 1)) {
          result.notes.push_back("boft_R has " + std::to_string(t.size(0)) + " butterfly factor(s); config says " +
                                 config.value("boft_n_butterfly_factor", nlohmann::json(1)).dump() +
                                 " (PEFT without its CUDA extension uses 1): using the file's");
        }
        settings["boft_n_butterfly_factor"] = t.size(0);
        settings["boft_block_size"] = t.size(2);
        settings.erase("boft_block_num");
      }
    }
  }
  if (result.method == "oft" && !settings.contains("use_cayley_neumann")) {
    settings["use_cayley_neumann"] = true;  // PEFT 0.21's default
    result.notes.push_back("use_cayley_neumann not in config: PEFT 0.21's default (true)");
  }
  Result<methods::MethodSettings> resolved = methods::Resolve(settings);
  if (!resolved.ok()) throw std::invalid_argument("metadata 'config': " + resolved.status().message());
  const methods::ConformanceTolerances& tolerances = resolved->method().tolerances;
  settings = resolved->json();
  LinearShape shape;
  shape.name = module;
  shape.d_out = weight.size(0);
  shape.d_in = weight.size(1);
  shape.has_bias = bias.defined();
  shape.feed_forward = config.value("feedforward", false);

  std::shared_ptr<Adapter> adapter = MakeAdapter(settings, weight.clone(), bias.defined() ? bias.clone() : bias, shape);
  adapter->train();
  std::map<std::string, torch::Tensor> to_load = params;
  for (const auto& [n, t] : buffers) to_load[n] = t;
  std::vector<std::string> missing = adapter->Load(to_load);
  std::vector<NamedTensor> ours = adapter->Trainable();
  for (const std::string& m : missing) {
    for (const NamedTensor& nt : ours) {
      if (nt.name == m) throw std::invalid_argument("file has no tensor for our trainable '" + m + "'");
    }
  }

  torch::Tensor x = file.Get("x").to(torch::kFloat64);
  torch::Tensor y_ref = file.Get("y").to(torch::kFloat64);
  torch::Tensor y = adapter->Forward(x);
  result.checks.push_back({"y", MaxAbs(y, y_ref), tolerances.value});
  (y * file.Get("grad_y").to(torch::kFloat64)).sum().backward();
  for (const auto& [n, g] : grads) {
    const NamedTensor* nt = FindTrainable(ours, n);
    if (nt == nullptr) {
      result.checks.push_back({"grad." + n, INFINITY, tolerances.value, "we have no such trainable tensor"});
      continue;
    }
    torch::Tensor our = nt->tensor.grad().defined() ? nt->tensor.grad() : torch::zeros_like(nt->tensor);
    const auto& f32 = tolerances.float32_gradients;
    const bool float32 = std::find(f32.begin(), f32.end(), nt->name) != f32.end();
    result.checks.push_back({"grad." + Canonical(n), MaxAbs(our, g), float32 ? tolerances.float32 : tolerances.value,
                             float32 ? "computed in float32 by the reference" : ""});
  }
  for (const NamedTensor& nt : ours) {
    bool in_file = false;
    for (const auto& [n, _] : grads) in_file = in_file || FindTrainable(ours, n) == &nt;
    if (in_file) continue;
    // The reference left this tensor without a gradient (unused there): ours must be zero.
    torch::Tensor our = nt.tensor.grad().defined() ? nt.tensor.grad() : torch::zeros_like(nt.tensor);
    result.checks.push_back({"grad." + nt.name, MaxAbs(our, torch::zeros_like(our)), tolerances.value,
                             "no gradient in the file: must be zero"});
  }

  if (file.Has("ortho_loss")) {  // SORSA's regulariser for this one layer, and its gradients
    for (const NamedTensor& nt : ours) {
      if (nt.tensor.grad().defined()) nt.tensor.mutable_grad().zero_();
    }
    torch::Tensor reg = adapter->RegularizationLoss();
    result.checks.push_back({"ortho_loss", MaxAbs(reg, file.Get("ortho_loss")), tolerances.value});
    reg.backward();
    for (const auto& [n, g] : Group(file, "grad_ortho", module)) {
      const NamedTensor* nt = FindTrainable(ours, n);
      torch::Tensor our = nt && nt->tensor.grad().defined() ? nt->tensor.grad() : torch::Tensor();
      result.checks.push_back({"grad_ortho." + n, our.defined() ? MaxAbs(our, g) : INFINITY, tolerances.value});
    }
  }
  if (file.Has("init.weight")) {  // SORSA's SVD split of the original weight
    nlohmann::json init_settings = settings;
    init_settings.erase("init_weights");
    torch::Tensor w0 = file.Get("init.weight").to(torch::kFloat64).clone();
    std::shared_ptr<Adapter> fresh = MakeAdapter(init_settings, w0, bias.defined() ? bias.clone() : bias, shape);
    if (file.Has("init.residual_weight")) {
      result.checks.push_back(
          {"init.residual_weight", MaxAbs(fresh->BaseWeight(), file.Get("init.residual_weight")), tolerances.value});
    }
    for (const NamedTensor& nt : fresh->Trainable()) {
      const std::string ref_name = "init." + nt.name;
      if (!file.Has(ref_name)) continue;
      torch::Tensor ref = file.Get(ref_name).to(torch::kFloat64);
      const bool rows = nt.name.size() >= 2 && nt.name.compare(nt.name.size() - 2, 2, "_A") == 0;
      const double err = nt.tensor.dim() == 2 ? SignInvariantError(nt.tensor.detach(), ref, rows ? 0 : 1)
                                              : MaxAbs(nt.tensor, ref);
      result.checks.push_back({ref_name, err, tolerances.value, nt.tensor.dim() == 2 ? "up to SVD signs" : ""});
    }
  }

  if (settings.value("tanh_clip", false)) {
    result.notes.push_back("tanh_clip: δ is not linear in x, so there is no merge to check");
    return result;
  }
  // SORA's exact rotation exp(s_p K) goes through φ of a small matrix: the looser merged
  // tolerance of a matrix inverse, as OFT's and BOFT's registrations give.
  const bool inverse = resolved->Has("rotation") && resolved->String("rotation") == "exact";
  const double merged_tolerance = inverse ? std::max(tolerances.merged, 1e-6) : tolerances.merged;
  {
    torch::NoGradGuard no_grad;
    adapter->Merge();
    if (file.Has("merged.weight")) {
      result.checks.push_back(
          {"merged.weight", MaxAbs(adapter->EffectiveWeight(), file.Get("merged.weight")), merged_tolerance});
    }
    if (file.Has("merged.bias") && bias.defined()) {
      result.checks.push_back(
          {"merged.bias", MaxAbs(adapter->EffectiveBias(), file.Get("merged.bias")), merged_tolerance});
    }
    result.checks.push_back({"y(our merge)", MaxAbs(adapter->Forward(x), y_ref), tolerances.value});
    adapter->Unmerge();
    result.checks.push_back({"y(after unmerge)", MaxAbs(adapter->Forward(x), y_ref), tolerances.value});
  }
  return result;
}

}  // namespace
}  // namespace sweepd::trainer::adapter_conformance

namespace sweepd::trainer {

void AddConformanceCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("conformance",
                                 "Check adapters, models and tokenizers against reference files "
                                 "(the formats of tests/fixtures)");
  auto files = std::make_shared<std::vector<std::string>>();
  cmd->add_option("PATH", *files,
                  "adapter reference .safetensors files, model folders with reference.safetensors, "
                  "SentencePiece .model files with reference.json beside them")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->callback([files, exit_code] {
    torch::manual_seed(0);
    int failed = 0, unusable = 0;
    for (const std::string& path : *files) {
      if (IsModelConformancePath(path)) {
        const int status = RunModelConformance(path, std::cout);
        failed += status == 1;
        unusable += status == 2;
        continue;
      }
      adapter_conformance::FileResult r;
      try {
        r = adapter_conformance::RunFile(path);
      } catch (const std::exception& e) {
        std::cout << path << ": UNUSABLE: " << e.what() << "\n";
        ++unusable;
        continue;
      }
      bool ok = true;
      for (const auto& c : r.checks) ok = ok && c.ok();
      std::cout << path << " (" << r.method << "): " << (ok ? "ok" : "FAIL") << "\n";
      for (const std::string& n : r.notes) std::cout << "  note: " << n << "\n";
      for (const auto& c : r.checks) {
        char line[256];
        std::snprintf(line, sizeof line, "  %-34s %10.3e  (max %.0e)%s%s%s", c.name.c_str(), c.error, c.tolerance,
                      c.ok() ? "" : "  FAIL", c.note.empty() ? "" : "  ", c.note.c_str());
        std::cout << line << "\n";
        if (!c.ok()) std::cerr << "conformance: " << path << ": " << c.name << " error " << c.error << " > " << c.tolerance << "\n";
      }
      if (!ok) ++failed;
    }
    std::cout << files->size() << " file(s): " << (files->size() - failed - unusable) << " ok, " << failed
              << " failed, " << unusable << " unusable\n";
    *exit_code = unusable > 0 ? 2 : (failed > 0 ? 1 : 0);
  });
}

}  // namespace sweepd::trainer
