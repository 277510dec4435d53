// `sweep-train bench`: training throughput of one method on one track of a randomly initialised
// model, for bench/gpu (set against HF PEFT by bench/gpu/run.sh). Warm-up steps, then timed
// optimizer steps with no host sync inside a step: the device is synchronised only around the
// timed window. On CUDA a step's forward and backward replay as one CUDA graph (captured in the
// warm-up), as in `sweep-train run`. Prints one JSON line: tokens/s, peak CUDA allocator memory,
// step time, trainable parameters and model FLOPs utilisation (MFU). With --model it loads a
// Hugging Face folder instead of random weights and reports the load's time and host memory.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/job_config.h"
#include "common/methods/registry.h"
#include "worker/compat.h"
#include "worker/models/fused_ops.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/models/llama.h"
#include "worker/models/llama_config.h"
#include "worker/trainer/adamw.h"
#include "worker/trainer/adapter_set.h"
#include "worker/trainer/commands.h"
#include "worker/trainer/cuda_graph.h"
#include "worker/trainer/optimizer_groups.h"
#include "worker/trainer/step_profile.h"

#if defined(SWEEPD_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace sweepd::trainer {
namespace {

using json = nlohmann::json;

struct BenchOptions {
  std::string config;        // HF config.json (random weights)
  std::string model;         // or a HF model folder (its weights)
  bool load_only = false;    // --model: report the load and stop
  std::string profile;       // Chrome trace of one extra step after the timed ones
  std::string adapter;       // settings JSON, or empty with methods + method
  std::string methods;       // a methods.json (name -> settings)
  std::string method;        // its entry
  std::string track = "A";
  std::string device = "cuda";
  std::string dtype = "bf16";
  bool autocast = false;
  bool no_cuda_graph = false;
  int64_t batch = 8, seq = 1024, warmup = 3, steps = 10;
  double lr = 1e-4, weight_decay = 0.01, grad_clip = 1.0;
  double peak_tflops = 0;  // 0: from the device name
  uint64_t seed = 0;
};

json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read '" + path + "'");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::invalid_argument(path + ": not valid JSON: " + e.what());
  }
}

// The adapter settings of --adapter or of --methods' entry --method, read through the method
// registry like a job's (an unknown option is an error naming it and the known ones).
json AdapterSettings(const BenchOptions& o) {
  json settings;
  std::string where = "--adapter";
  if (!o.adapter.empty()) {
    settings = json::parse(o.adapter);
  } else {
    if (o.methods.empty() || o.method.empty()) {
      throw std::invalid_argument("give --adapter JSON, or --methods FILE with --method NAME");
    }
    json all = ReadJsonFile(o.methods);
    if (!all.contains(o.method) || !all[o.method].is_object()) {
      throw std::invalid_argument(o.methods + " has no method '" + o.method + "'");
    }
    settings = all[o.method];
    where = o.methods + ": '" + o.method + "'";
  }
  Result<methods::MethodSettings> resolved = methods::Resolve(settings);
  if (!resolved.ok()) throw std::invalid_argument(where + ": " + resolved.status().message());
  return resolved->json();
}

std::string DeviceName(const torch::Device& device) {
#if defined(SWEEPD_HAVE_CUDA)
  cudaDeviceProp prop{};
  if (device.is_cuda() && cudaGetDeviceProperties(&prop, device.has_index() ? device.index() : 0) == cudaSuccess) {
    return prop.name;
  }
#endif
  return device.str();
}

// Dense bf16 tensor-core peak in TFLOP/s by the vendor's datasheets; 0 when unknown.
double DatasheetBf16Tflops(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H100") && has("PCIe")) return 756.0;
  if (has("H100") || has("H200") || has("H800") || has("GH200")) return 989.4;
  if (has("A100")) return 312.0;
  if (has("L40S")) return 362.0;
  return 0.0;
}

// FLOPs per trained token of the frozen base model: forward 2·P (P = weights that multiply
// activations: the blocks' projections and lm_head) plus the backward's input gradients 2·P
// (frozen weights need no weight gradients); causal attention 4·d·(T+1)/2 per layer forward and
// twice that backward. The adapters' own FLOPs are not counted.
double FlopsPerToken(const models::LlamaConfig& c, int64_t seq) {
  const double d = static_cast<double>(c.hidden_size);
  const double q = static_cast<double>(c.num_heads * c.head_dim);
  const double kv = static_cast<double>(c.num_kv_heads * c.head_dim);
  const double layers = static_cast<double>(c.num_layers);
  const double per_layer = d * q + 2 * d * kv + q * d + 3 * d * static_cast<double>(c.intermediate_size);
  const double p = layers * per_layer + d * static_cast<double>(c.vocab_size);
  const double attention_forward = layers * 4 * q * (static_cast<double>(seq) + 1) / 2;
  return 4 * p + 3 * attention_forward;
}

void InitializeRandom(models::LlamaForCausalLM& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("norm") != std::string::npos) {
      p.value().fill_(1.0);
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      p.value().zero_();
    } else {
      p.value().normal_(0.0, 0.02);  // on the device, as transformers' _init_weights
    }
  }
}

// VmRSS / VmHWM of /proc/self/status in bytes (0 where there is no procfs).
int64_t ProcStatusBytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;  // "NNN kB"
  }
  return 0;
}

int64_t SafetensorsBytes(const std::string& folder) {
  int64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() == ".safetensors") total += static_cast<int64_t>(entry.file_size());
  }
  return total;
}

void Synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

int RunBench(const BenchOptions& o) {
  if (o.batch <= 0 || o.seq <= 1 || o.steps <= 0 || o.warmup < 0) {
    throw std::invalid_argument("--batch and --steps must be positive, --seq at least 2, --warmup not negative");
  }
  if (o.config.empty() == o.model.empty()) throw std::invalid_argument("give --config FILE or --model FOLDER");
  if (o.load_only && o.model.empty()) throw std::invalid_argument("--load-only needs --model FOLDER");
  const std::string config_path =
      o.model.empty() ? o.config : (std::filesystem::path(o.model) / "config.json").string();
  Result<models::LlamaConfig> config = models::LlamaConfigFromJson(ReadJsonFile(config_path), config_path);
  if (!config.ok()) throw std::invalid_argument(config.status().message());
  const json settings = o.load_only ? json::object() : AdapterSettings(o);
  const torch::Device device(o.device);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw std::invalid_argument("--device " + o.device + " but this sweep-train sees no CUDA device");
  }
  torch::ScalarType dtype;
  if (o.dtype == "bf16") {
    dtype = torch::kBFloat16;
  } else if (o.dtype == "float32") {
    dtype = torch::kFloat32;
  } else {
    throw std::invalid_argument("--dtype must be bf16 or float32, not '" + o.dtype + "'");
  }
  const int cuda_index = device.has_index() ? device.index() : 0;
  const std::string device_name = DeviceName(device);
  const double peak_tflops = o.peak_tflops > 0 ? o.peak_tflops : DatasheetBf16Tflops(device_name);

  json line = {{"impl", "sweep_train"},
               {"method", settings.value("method", "")},
               {"method_name", o.method.empty() ? settings.value("method", "") : o.method},
               {"track", o.track},
               {"config", config_path},
               {"device", device_name},
               {"torch", TORCH_VERSION},
               {"dtype", o.dtype},
               {"autocast", o.autocast},
               {"batch", o.batch},
               {"seq", o.seq},
               {"warmup", o.warmup},
               {"steps", o.steps}};
  if (device.is_cuda()) {
    (void)torch::zeros({1}, torch::TensorOptions().device(device));  // initialises the allocator
    compat::ResetCudaPeak(cuda_index);
  }
  try {
    models::LlamaForCausalLM model(nullptr);
    if (o.model.empty()) {
      model = models::LlamaForCausalLM(*config);
      // Storage of `dtype` on the device in place of the CPU float32 one (a 7B shape's 27 GB,
      // never written: the random values are drawn on the device).
      for (auto& p : model->parameters()) p.set_data(torch::empty(p.sizes(), torch::TensorOptions().dtype(dtype).device(device)));
      InitializeRandom(model, o.seed);
    } else {
      const int64_t rss_before = ProcStatusBytes("VmRSS");
      const auto load_start = std::chrono::steady_clock::now();
      model = models::LoadHfModel(o.model, dtype, device);  // synchronises the device
      const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
      const int64_t bytes = SafetensorsBytes(o.model);
      line["model"] = o.model;
      line["load_seconds"] = load_s;
      line["load_bytes"] = bytes;
      line["load_gb_per_s"] = static_cast<double>(bytes) / 1e9 / load_s;
      line["host_rss_before_load_bytes"] = rss_before;
      line["host_peak_rss_bytes"] = ProcStatusBytes("VmHWM");
      if (device.is_cuda()) line["load_peak_mem_bytes"] = compat::CudaPeakAllocatedBytes(cuda_index);
      if (o.load_only) {
        std::cout << line.dump() << std::endl;
        return 0;
      }
    }
    TrackSpec track;
    track.name = o.track;
    AdapterSet adapters = AdapterSet::Attach(model, settings, track);
    line["trainable_params"] = adapters.TrainableParameters();

    AdamW optimizer;
    TrainSpec train;  // the job's groups (LoRA+'s lr_ratio included) at --lr; lr_theta/lr_core unset
    train.lr = o.lr;
    train.weight_decay = o.weight_decay;
    AddAdapterParams(optimizer, adapters, settings, train, "");
    const std::vector<torch::Tensor> params = optimizer.Params();

    auto long_opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
    torch::Tensor ids = torch::randint(0, config->vocab_size, {o.batch, o.seq}, long_opts);
    // HF's labels=input_ids: position t predicts token t+1; the last position has no target.
    torch::Tensor targets = torch::cat({ids.narrow(1, 1, o.seq - 1), torch::full({o.batch, 1}, -100, long_opts)}, 1);

    model->train();
    int64_t step_index = 0;
    const int64_t total = o.warmup + o.steps;
    // Forward, loss and backward: what a CUDA graph holds (the optimizer runs outside it).
    auto pass = [&] {
      torch::Tensor logits;
      {
        compat::CudaAutocast autocast(o.autocast && device.is_cuda());
        logits = model->forward(ids);
      }
      torch::Tensor loss = models::NextTokenLoss(logits, targets);
      logits = torch::Tensor();
      for (const auto& a : adapters.adapters()) {
        torch::Tensor reg = a.adapter->RegularizationLoss();
        if (reg.defined()) loss = loss + reg / static_cast<double>(adapters.adapters().size());
      }
      loss.backward();
      return loss.detach();
    };
    const bool graphs = !o.no_cuda_graph && UseCudaGraphs(device, adapters.CudaGraphSafe());
    if (graphs && o.warmup < 2) {
      throw std::invalid_argument("--warmup must be at least 2 with CUDA graphs (an eager step, then the capture)");
    }
    optimizer.KeepGradients(graphs);
    GraphedPass graphed(device, pass);
    auto train_step = [&] {
      optimizer.ZeroGrad();
      torch::Tensor loss = graphs ? graphed.Run() : pass();
      ClipGradNormOnDevice(params, o.grad_clip);
      optimizer.Step(1.0);
      ++step_index;
      for (const auto& a : adapters.adapters()) a.adapter->AfterOptimizerStep(step_index, total);
      return loss;
    };

    for (int64_t i = 0; i < o.warmup; ++i) train_step();
    Synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor loss;
    for (int64_t i = 0; i < o.steps; ++i) loss = train_step();
    Synchronize(device);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const double tokens_per_s = static_cast<double>(o.batch * o.seq * o.steps) / seconds;
    const double flops = FlopsPerToken(*config, o.seq);
    line["tokens_per_s"] = tokens_per_s;
    line["step_time_s"] = seconds / static_cast<double>(o.steps);
    line["peak_mem_bytes"] = device.is_cuda() ? json(compat::CudaPeakAllocatedBytes(cuda_index)) : json(nullptr);
    line["flops_per_token"] = flops;
    line["peak_tflops"] = peak_tflops > 0 ? json(peak_tflops) : json(nullptr);
    line["mfu"] = peak_tflops > 0 ? json(tokens_per_s * flops / (peak_tflops * 1e12)) : json(nullptr);
    line["loss"] = loss.item<double>();
    line["cuda_graph"] = graphed.Captured();
    line["fused_kernels"] = models::FusedKernelStatus();
    if (!o.profile.empty()) {
      json summary = ProfileStep([&] { train_step(); }, [&] { Synchronize(device); }, device.is_cuda(), o.profile);
      const std::string table = ProfileSummaryMarkdown(summary);
      std::ofstream(o.profile + ".summary.md") << table;
      std::cerr << table;
      summary.erase("top_kernels");  // in the .summary.md file
      line["profile"] = summary;
    }
  } catch (const c10::OutOfMemoryError& e) {
    line["oom"] = true;
    line["peak_mem_bytes"] = compat::CudaPeakAllocatedBytes(cuda_index);
    std::cout << line.dump() << std::endl;
    std::cerr << "sweep-train bench: out of memory: " << std::string(e.what()).substr(0, 300) << std::endl;
    return 4;
  }
  std::cout << line.dump() << std::endl;
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand(
      "bench", "Time training steps of one adapter method on a random-weight model; prints one JSON line");
  bench->add_option("--config", options->config, "model config.json (Hugging Face format); random weights");
  bench->add_option("--model", options->model,
                    "a Hugging Face model folder (config.json + safetensors) to load instead; the line "
                    "gains load_seconds, load_gb_per_s and the host's peak RSS");
  bench->add_flag("--load-only", options->load_only, "with --model: load the weights, print the line, stop");
  bench->add_option("--adapter", options->adapter, "adapter settings JSON, e.g. '{\"method\":\"lora\",\"r\":16}'");
  bench->add_option("--methods", options->methods, "a methods.json mapping names to adapter settings");
  bench->add_option("--method", options->method, "the entry of --methods to run");
  bench->add_option("--track", options->track, "A (q_proj,v_proj) or B (every linear layer of the blocks)")
      ->check(CLI::IsMember({"A", "B"}));
  bench->add_option("--device", options->device, "cpu or cuda[:N]");
  bench->add_option("--dtype", options->dtype, "weights and adapters: bf16 or float32");
  bench->add_flag("--autocast", options->autocast, "run the forward pass under CUDA bf16 autocast");
  bench->add_flag("--no-cuda-graph", options->no_cuda_graph,
                  "launch every kernel from the host (default on CUDA: each step's forward and backward "
                  "replayed as one CUDA graph where the method allows it)");
  bench->add_option("--batch", options->batch, "rows per step");
  bench->add_option("--seq", options->seq, "tokens per row");
  bench->add_option("--warmup", options->warmup, "untimed steps first");
  bench->add_option("--steps", options->steps, "timed optimizer steps");
  bench->add_option("--lr", options->lr, "AdamW learning rate");
  bench->add_option("--weight-decay", options->weight_decay, "AdamW weight decay (torch.optim.AdamW's default)");
  bench->add_option("--grad-clip", options->grad_clip, "gradient-norm clip (0: off)");
  bench->add_option("--profile", options->profile,
                    "after the timed steps, one more step under the profiler: a Chrome trace to FILE "
                    "(chrome://tracing, Perfetto), and FILE.summary.md: GPU time by kernel group and the top kernels");
  bench->add_option("--peak-tflops", options->peak_tflops, "bf16 peak for MFU (default: datasheet value by GPU name)");
  bench->add_option("--seed", options->seed, "random seed for weights, adapters and tokens");
  bench->callback([options, exit_code] { *exit_code = RunBench(*options); });
}

}  // namespace sweepd::trainer
