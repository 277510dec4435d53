// PEFT adapter folders written and read by sweep-train: the shipped PEFT 0.21 reference
// folder round-trips byte-equal in its tensors and key-equal in its config, every method
// with a PEFT layout (and every PEFT-made adapter fixture's settings) reads back as written,
// and bad folders fail with one line naming the folder and the key or tensor.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/methods/registry.h"
#include "tests/support/process.h"
#include "worker/io/safetensors.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/models/llama_config.h"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/peft_folder.h"

namespace sweepd::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kModels = std::string(SWEEPD_FIXTURES) + "/models/";
const std::string kAdapters = std::string(SWEEPD_FIXTURES) + "/adapters/";
const std::string kPeftLora = kModels + "tiny-llama-lora-qv";

json ReadJson(const std::string& path) { return json::parse(sweepd::testing::ReadFile(path)); }

void WriteJson(const std::string& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
}

std::set<std::string> KeysOf(const json& j) {
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  return keys;
}

// The same names, dtypes, shapes and bytes.
void ExpectSameTensorFiles(const std::string& a_path, const std::string& b_path) {
  io::SafetensorsFile a = io::SafetensorsFile::Open(a_path), b = io::SafetensorsFile::Open(b_path);
  ASSERT_EQ(a.Names(), b.Names());
  for (const std::string& name : a.Names()) {
    torch::Tensor x = a.Get(name).contiguous(), y = b.Get(name).contiguous();
    ASSERT_EQ(x.scalar_type(), y.scalar_type()) << name;
    ASSERT_EQ(x.sizes(), y.sizes()) << name;
    EXPECT_EQ(std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()), 0) << name << " differs";
  }
}

// Copies a folder's two files to a fresh folder, for edits.
std::string CopyFolder(const std::string& from, const std::string& prefix) {
  const std::string to = sweepd::testing::MakeTempDir(prefix);
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"}) {
    fs::copy_file(fs::path(from) / f, fs::path(to) / f, fs::copy_options::overwrite_existing);
  }
  return to;
}

// What a one-line error message must be: one line naming `folder` and `what`.
template <typename F>
void ExpectOneLineError(F f, const std::string& folder, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no error for " << folder << " (" << what << ")";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find(folder), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  }
}

TEST(PeftFolder, ShippedPeftLoraFolderRoundTripsByteEqual) {
  models::LlamaForCausalLM model = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  AdapterSet set = LoadPeftFolder(kPeftLora, model);
  const PeftAdapter read = ReadPeftConfig(kPeftLora);
  const json reference = ReadJson(kPeftLora + "/adapter_config.json");
  const std::string out = sweepd::testing::MakeTempDir("peft-lora-out-");
  WritePeftFolder(out, read.settings, read.context, set, reference["base_model_name_or_path"].is_string()
                                                             ? reference["base_model_name_or_path"].get<std::string>()
                                                             : "");
  ExpectSameTensorFiles(kPeftLora + "/adapter_model.safetensors", out + "/adapter_model.safetensors");
  const json written = ReadJson(out + "/adapter_config.json");
  EXPECT_EQ(KeysOf(written), KeysOf(reference));
  // Every field that shapes the adapter has PEFT's value (numbers compare by value: 8 == 8.0).
  for (const char* key : {"r", "lora_alpha", "lora_dropout", "use_rslora", "use_dora", "bias", "fan_in_fan_out",
                          "target_modules", "peft_type", "init_lora_weights", "rank_pattern", "alpha_pattern"}) {
    EXPECT_EQ(written[key], reference[key]) << key;
  }
}

// Every method with a PEFT layout, with its defaults and with the settings of each PEFT-made
// adapter fixture: written from a trained-looking adapter set on the tiny Llama and read
// back, it gives the same settings, config and tensors.
TEST(PeftFolder, EveryPeftMethodReadsBackAsWritten) {
  std::vector<json> cases;
  for (const methods::MethodInfo* m : methods::Methods()) {
    if (m->to_peft) cases.push_back({{"method", m->name}});
  }
  for (const auto& entry : fs::directory_iterator(kAdapters)) {
    const auto meta = io::SafetensorsFile::Open(entry.path().string()).Metadata();
    if (!meta.count("config") || !meta.count("method")) continue;
    const std::string method = meta.at("method").substr(0, meta.at("method").find('_'));
    const methods::MethodInfo* info = methods::FindMethod(method);
    if (info == nullptr || !info->to_peft || meta.at("peft_version").rfind("0.21", 0) != 0) continue;
    json settings = json::parse(meta.at("config"));
    settings["method"] = method;
    // The DoRA fixtures carry LoRA's dora flag: they are LoRA settings.
    if (!methods::Resolve(settings).ok()) settings["method"] = "lora";
    cases.push_back(settings);
  }
  ASSERT_GE(cases.size(), 10u);
  for (const json& settings : cases) {
    SCOPED_TRACE(settings.dump());
    models::LlamaForCausalLM model = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
    methods::PeftContext context;
    // down_proj (d_in 176) for IA3's feed-forward scaling; OFT's default block of 32 needs d_in 64.
    context.targets = {"q_proj", "v_proj"};
    if (settings["method"] == "ia3") context.targets.push_back("down_proj");
    context.total_steps = 10;
    TrackSpec track;
    track.name = "peft";
    track.modules = context.targets;
    AdapterSet set = AdapterSet::Attach(model, settings, track);
    torch::manual_seed(7);
    {
      torch::NoGradGuard no_grad;
      for (auto& [key, t] : set.Tensors(false)) t.copy_(torch::randn_like(t) * 0.1);
    }
    const std::string out = sweepd::testing::MakeTempDir("peft-rt-");
    WritePeftFolder(out, settings, context, set, "");
    const json written = ReadJson(out + "/adapter_config.json");
    const PeftAdapter read = ReadPeftConfig(out);
    CheckSameAdapter(out, read, settings);
    const std::string again = sweepd::testing::MakeTempDir("peft-rt2-");
    models::LlamaForCausalLM other = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
    AdapterSet loaded = LoadPeftFolder(out, other);
    WritePeftFolder(again, read.settings, read.context, loaded, "");
    EXPECT_EQ(ReadJson(again + "/adapter_config.json"), written);
    ExpectSameTensorFiles(out + "/adapter_model.safetensors", again + "/adapter_model.safetensors");
    // In memory too: what was trained is what is loaded (OFT's sign convention undone).
    const auto before = set.Tensors(false), after = loaded.Tensors(false);
    ASSERT_EQ(before.size(), after.size());
    for (const auto& [key, t] : before) EXPECT_TRUE(torch::equal(t, after.at(key))) << key;
  }
}

// The settings of the first adapter fixture made for `method` (its provenance key "source"
// aside), else the method's defaults: JORA's default S does not fit the tiny Llama's v_proj.
json FixtureSettings(const std::string& method) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kAdapters)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    const auto meta = io::SafetensorsFile::Open(f.string()).Metadata();
    if (!meta.count("config") || !meta.count("method")) continue;
    if (meta.at("method").substr(0, meta.at("method").find('_')) != method) continue;
    json settings = json::parse(meta.at("config"));
    settings.erase("source");
    settings["method"] = method;
    return settings;
  }
  return {{"method", method}};
}

// The methods PEFT lacks: a folder of the same shape, peft_type the method's name, every
// option written, trainable tensors and state under the reference implementations' names.
TEST(PeftFolder, MethodsPeftLacksReadBackAsWritten) {
  int methods_seen = 0;
  for (const methods::MethodInfo* m : methods::Methods()) {
    if (!m->peft_type.empty()) continue;
    ++methods_seen;
    json settings = FixtureSettings(m->name);
    SCOPED_TRACE(m->name);
    models::LlamaForCausalLM model = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
    TrackSpec track;
    track.name = "A";
    methods::PeftContext context;
    context.targets = TrackModules(track);
    AdapterSet set = AdapterSet::Attach(model, settings, track);
    torch::manual_seed(11);
    {
      torch::NoGradGuard no_grad;
      for (auto& [key, t] : set.Tensors(false)) t.copy_(torch::randn_like(t) * 0.1);
    }
    const std::string out = sweepd::testing::MakeTempDir("own-rt-");
    WritePeftFolder(out, settings, context, set, "");
    const json c = ReadJson(out + "/adapter_config.json");
    std::string upper = m->name;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(c["peft_type"], upper);
    EXPECT_TRUE(c["sweepd_version"].is_string());
    const PeftAdapter read = ReadPeftConfig(out);
    EXPECT_TRUE(read.own_layout);
    EXPECT_EQ(read.settings["method"], m->name);
    CheckSameAdapter(out, read, settings);
    models::LlamaForCausalLM other = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
    AdapterSet loaded = LoadPeftFolder(out, other);
    const auto before = set.Tensors(true), after = loaded.Tensors(true);
    ASSERT_EQ(before.size(), after.size());
    for (const auto& [key, t] : before) EXPECT_TRUE(torch::equal(t, after.at(key))) << key;
    // The same adapted model: equal logits on the same tokens.
    torch::NoGradGuard no_grad;
    torch::Tensor ids = torch::arange(12, torch::kInt64).view({1, 12});
    EXPECT_TRUE(torch::equal(model->forward(ids), other->forward(ids)));
    // An option the method does not have is refused, naming it.
    json bad = c;
    bad["lora_rank"] = 4;
    WriteJson(out + "/adapter_config.json", bad);
    ExpectOneLineError([&] { ReadPeftConfig(out); }, out, "lora_rank");
  }
  EXPECT_GE(methods_seen, 4);
}

TEST(PeftFolder, Ia3ConfigHasNoBiasAndOftWritesEveryRotationField) {
  const json fields_ia3 = methods::FindMethod("ia3")->peft_fields;
  EXPECT_FALSE(fields_ia3.contains("bias"));
  for (const char* key : {"use_cayley_neumann", "num_cayley_neumann_terms", "coft", "eps", "block_share",
                          "oft_block_size", "r"}) {
    EXPECT_TRUE(methods::FindMethod("oft")->peft_fields.contains(key)) << key;
  }
  models::LlamaForCausalLM model = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  TrackSpec track;
  track.name = "A";
  const json settings = {{"method", "oft"}, {"oft_block_size", 16}};
  AdapterSet set = AdapterSet::Attach(model, settings, track);
  methods::PeftContext context;
  context.targets = TrackModules(track);
  const std::string out = sweepd::testing::MakeTempDir("peft-oft-");
  WritePeftFolder(out, settings, context, set, "");
  const json c = ReadJson(out + "/adapter_config.json");
  // Our default is the exact Cayley transform; PEFT 0.21's default is the series.
  EXPECT_EQ(c["use_cayley_neumann"], false);
  EXPECT_EQ(c["oft_block_size"], 16);
  EXPECT_EQ(c["r"], 0);
  EXPECT_EQ(c["block_share"], false);
}

// AdaLoRA pruned by its own rank allocator: the folder carries PEFT's rank_pattern (per layer,
// "<module>.lora_E" → one boolean per initial rank, true where kept, as RankAllocator writes it)
// and the kept ranks only, in the shapes PEFT's resize_modules_by_rank_pattern builds (lora_A
// [kept, d_in], lora_E [kept, 1], lora_B [d_out, kept]); read back, it is the same adapter.
TEST(PeftFolder, PrunedAdaloraCarriesRankPatternAndKeptRanksOnly) {
  const json settings = {{"method", "adalora"}, {"init_r", 6}, {"target_r", 2}, {"tinit", 0}, {"tfinal", 0}};
  models::LlamaForCausalLM model = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  TrackSpec track;
  track.name = "A";
  AdapterSet set = AdapterSet::Attach(model, settings, track);
  torch::manual_seed(3);
  {
    torch::NoGradGuard no_grad;
    for (auto& [key, t] : set.Tensors(false)) t.copy_(torch::randn_like(t) * 0.1);
  }
  const torch::Tensor ids = torch::arange(16, torch::kInt64).view({1, 16});
  model->forward(ids).pow(2).mean().backward();
  const int64_t total_steps = 2;
  for (const auto& a : set.adapters()) a.adapter->AfterOptimizerStep(total_steps, total_steps);  // the final budget
  methods::PeftContext context;
  context.targets = TrackModules(track);
  context.total_steps = total_steps;
  const std::string out = sweepd::testing::MakeTempDir("peft-adalora-pruned-");
  WritePeftFolder(out, settings, context, set, "");

  const json c = ReadJson(out + "/adapter_config.json");
  ASSERT_TRUE(c["rank_pattern"].is_object()) << c["rank_pattern"].dump();
  EXPECT_EQ(c["rank_pattern"].size(), set.adapters().size());
  io::SafetensorsFile file = io::SafetensorsFile::Open(out + "/adapter_model.safetensors");
  const auto state = set.Tensors(true);
  for (const auto& a : set.adapters()) {
    const std::string key = a.module + ".lora_E";
    ASSERT_TRUE(c["rank_pattern"].contains(key)) << key;
    const json& kept = c["rank_pattern"][key];
    ASSERT_EQ(kept.size(), settings["init_r"].get<size_t>()) << key;
    int64_t k = 0;
    for (const json& b : kept) {
      ASSERT_TRUE(b.is_boolean()) << key;
      k += b.get<bool>();
    }
    EXPECT_EQ(k, settings["target_r"].get<int64_t>()) << key << " after the final budget";
    const std::string prefix = "base_model.model." + a.module + ".";
    const torch::Tensor mask = state.at(prefix + "rank_mask").view({-1});
    for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i].get<bool>(), mask[i].item<double>() != 0) << key;
    const torch::Tensor weight = model->Linears().at(a.module)->weight();
    EXPECT_EQ(file.Get(prefix + "lora_A").sizes(), torch::IntArrayRef({k, weight.size(1)})) << key;
    EXPECT_EQ(file.Get(prefix + "lora_E").sizes(), torch::IntArrayRef({k, 1})) << key;
    EXPECT_EQ(file.Get(prefix + "lora_B").sizes(), torch::IntArrayRef({weight.size(0), k})) << key;
    // The kept ranks, in order, exactly.
    const torch::Tensor idx = mask.nonzero().view({-1});
    EXPECT_TRUE(torch::equal(file.Get(prefix + "lora_A"), state.at(prefix + "lora_A").index_select(0, idx))) << key;
    EXPECT_TRUE(torch::equal(file.Get(prefix + "lora_B"), state.at(prefix + "lora_B").index_select(1, idx))) << key;
  }

  // Read back: the same config, tensors and rank masks, and the same adapted model.
  models::LlamaForCausalLM other = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  AdapterSet loaded = LoadPeftFolder(out, other);
  const auto loaded_state = loaded.Tensors(true);
  for (const auto& a : set.adapters()) {
    const std::string mask_key = "base_model.model." + a.module + ".rank_mask";
    EXPECT_TRUE(torch::equal(state.at(mask_key), loaded_state.at(mask_key))) << mask_key;
  }
  const PeftAdapter read = ReadPeftConfig(out);
  const std::string again = sweepd::testing::MakeTempDir("peft-adalora-again-");
  WritePeftFolder(again, read.settings, read.context, loaded, "");
  EXPECT_EQ(ReadJson(again + "/adapter_config.json"), c);
  ExpectSameTensorFiles(out + "/adapter_model.safetensors", again + "/adapter_model.safetensors");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(model->forward(ids), other->forward(ids), 1e-6, 1e-6));

  // A rank pattern that does not fit the layers is named.
  json bad = c;
  bad["rank_pattern"][set.adapters().front().module + ".lora_E"].push_back(true);
  WriteJson(out + "/adapter_config.json", bad);
  models::LlamaForCausalLM third = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  ExpectOneLineError([&] { LoadPeftFolder(out, third); }, out, "rank_pattern '" + set.adapters().front().module);
}

TEST(PeftFolder, UnknownPeftKeyIsOneLineNamingFolderAndKey) {
  const std::string folder = CopyFolder(kPeftLora, "peft-unknown-");
  json c = ReadJson(folder + "/adapter_config.json");
  c["lora_scale_pattern"] = json::object();
  WriteJson(folder + "/adapter_config.json", c);
  ExpectOneLineError([&] { ReadPeftConfig(folder); }, folder, "lora_scale_pattern");
}

TEST(PeftFolder, Ia3BiasKeyIsUnknown) {
  models::LlamaForCausalLM model = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  TrackSpec track;
  track.name = "A";
  AdapterSet set = AdapterSet::Attach(model, {{"method", "ia3"}}, track);
  methods::PeftContext context;
  context.targets = TrackModules(track);
  const std::string folder = sweepd::testing::MakeTempDir("peft-ia3-");
  WritePeftFolder(folder, {{"method", "ia3"}}, context, set, "");
  json c = ReadJson(folder + "/adapter_config.json");
  c["bias"] = "none";
  WriteJson(folder + "/adapter_config.json", c);
  ExpectOneLineError([&] { ReadPeftConfig(folder); }, folder, "'bias'");
}

TEST(PeftFolder, ValueSweepTrainDoesNotBuildIsRefused) {
  const std::string folder = CopyFolder(kPeftLora, "peft-bias-");
  json c = ReadJson(folder + "/adapter_config.json");
  c["bias"] = "lora_only";
  WriteJson(folder + "/adapter_config.json", c);
  ExpectOneLineError([&] { ReadPeftConfig(folder); }, folder, "bias");
}

TEST(PeftFolder, FolderOfAnotherMethodIsRefused) {
  const PeftAdapter read = ReadPeftConfig(kPeftLora);
  ExpectOneLineError([&] { CheckSameAdapter(kPeftLora, read, {{"method", "oft"}}); }, kPeftLora, "oft");
  const json reference = ReadJson(kPeftLora + "/adapter_config.json");
  json other = {{"method", "lora"}, {"r", reference["r"].get<int64_t>() * 2}};
  ExpectOneLineError([&] { CheckSameAdapter(kPeftLora, read, other); }, kPeftLora, "r is");
}

TEST(PeftFolder, MissingTensorIsNamed) {
  const std::string folder = CopyFolder(kPeftLora, "peft-missing-");
  const std::string file = folder + "/adapter_model.safetensors";
  std::map<std::string, torch::Tensor> tensors = ReadAllTensors(file);
  const std::string dropped = tensors.begin()->first;
  tensors.erase(tensors.begin());
  io::SaveSafetensors(file, tensors, {{"format", "pt"}});
  models::LlamaForCausalLM model = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  ExpectOneLineError([&] { LoadPeftFolder(folder, model); }, folder, dropped);
}

TEST(PeftFolder, AdapterForAnotherBaseIsRefusedByShape) {
  // The fixture's base made twice as wide: every attention projection has other shapes.
  json config = ReadJson(kModels + "tiny-llama/config.json");
  config["hidden_size"] = config["hidden_size"].get<int64_t>() * 2;
  config["head_dim"] = config["head_dim"].get<int64_t>() * 2;
  Result<models::LlamaConfig> wide = models::LlamaConfigFromJson(config, "wide config");
  ASSERT_TRUE(wide.ok()) << wide.status().message();
  models::LlamaForCausalLM other(*wide);
  ExpectOneLineError([&] { LoadPeftFolder(kPeftLora, other); }, kPeftLora, "has shape");
}

TEST(PeftFolder, UnknownPeftTypeListsTheReadableOnes) {
  const std::string folder = CopyFolder(kPeftLora, "peft-type-");
  json c = ReadJson(folder + "/adapter_config.json");
  c["peft_type"] = "LOHA";
  WriteJson(folder + "/adapter_config.json", c);
  ExpectOneLineError([&] { ReadPeftConfig(folder); }, folder, "LOHA");
}

}  // namespace
}  // namespace sweepd::trainer
