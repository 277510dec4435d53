// JSON (de)serialisation of JobConfig; see docs/job-config.md for the format.
#include "common/job_config.h"

#include "common/byte_size.h"
#include "common/eval_settings.h"
#include "common/job_folder_name.h"

namespace sweepd {
namespace {

using nlohmann::json;

// Reads `key` of `obj` into `out` when present; records the first type error.
template <typename T>
void Read(const json& obj, const char* key, const std::string& path, T& out, std::string& err) {
  if (!err.empty() || !obj.contains(key)) return;
  try {
    out = obj.at(key).get<T>();
  } catch (const json::exception&) {
    err = "field '" + path + key + "' has the wrong type (" + obj.at(key).dump() + ")";
  }
}

template <typename T>
void ReadOptional(const json& obj, const char* key, const std::string& path, std::optional<T>& out,
                  std::string& err) {
  if (!err.empty() || !obj.contains(key) || obj.at(key).is_null()) return;
  T v{};
  Read(obj, key, path, v, err);
  out = v;
}

// The job's adapter object: the method's settings and, when set, init_from and its digest.
json AdapterJson(const JobConfig& c) {
  json adapter = c.adapter;
  if (!c.init_from.empty()) adapter["init_from"] = c.init_from;
  if (!c.init_from_sha256.empty()) adapter["init_from_sha256"] = c.init_from_sha256;
  return adapter;
}

}  // namespace

json ToJson(const JobConfig& c) {
  json train = {{"data", c.train.data},
                {"steps", c.train.steps},
                {"lr", c.train.lr},
                {"schedule", c.train.schedule},
                {"warmup_ratio", c.train.warmup_ratio},
                {"seq_len", c.train.seq_len},
                {"tokens_per_update", c.train.tokens_per_update},
                {"micro_batch", c.train.micro_batch},
                {"weight_decay", c.train.weight_decay},
                {"grad_clip", c.train.grad_clip},
                {"log_every", c.train.log_every},
                {"checkpoint_every", c.train.checkpoint_every}};
  // Written only when set, so that jobs without them keep their identity.
  if (c.train.eval_every > 0) train["eval_every"] = c.train.eval_every;
  if (c.train.spectrum_every > 0) train["spectrum_every"] = c.train.spectrum_every;
  if (c.train.lr_theta) train["lr_theta"] = *c.train.lr_theta;
  if (c.train.lr_core) train["lr_core"] = *c.train.lr_core;
  json eval = json::array();
  for (const auto& e : c.eval) eval.push_back(EvalSpecToJson(e));
  json out = {{"job_id", c.job_id},
              {"sweep", c.sweep},
              {"kind", c.kind},
              {"model",
               {{"source", c.model.source}, {"tokenizer", c.model.tokenizer}, {"dtype", c.model.dtype}}},
              {"track", {{"name", c.track.name}, {"modules", c.track.modules}}},
              {"adapter", AdapterJson(c)},
              {"train", train},
              {"eval", eval},
              {"tradeoff", {{"lambda", c.tradeoff_lambda}}},
              {"seed", c.seed},
              {"device", c.device},
              {"base_eval_job", c.base_eval_job},
              {"base_scores", c.base_scores}};
  if (!c.base_fingerprint.empty()) out["base_fingerprint"] = c.base_fingerprint;
  if (c.devices != 1) out["devices"] = c.devices;  // written only when set: one-device jobs unchanged
  if (!c.model.chat_template.empty()) out["model"]["chat_template"] = c.model.chat_template;  // ids unchanged without
  if (!c.output_dir.empty()) out["output_dir"] = c.output_dir;
  if (c.kind == "merge") {
    out["merge"] = {{"from_job", c.merge.from_job}, {"dtype", c.merge.dtype}, {"max_shard_size", c.merge.max_shard_size}};
  }
  return out;
}

std::string OutputFolder(const std::string& output_dir, const std::string& job_id) {
  return output_dir + (output_dir.empty() || output_dir.back() == '/' ? "" : "/") + job_id;
}

Result<JobConfig> JobConfigFromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("job configuration is not a JSON object");
  JobConfig c;
  std::string err;
  Read(j, "job_id", "", c.job_id, err);
  Read(j, "sweep", "", c.sweep, err);
  Read(j, "kind", "", c.kind, err);
  Read(j, "seed", "", c.seed, err);
  Read(j, "device", "", c.device, err);
  Read(j, "devices", "", c.devices, err);
  Read(j, "base_eval_job", "", c.base_eval_job, err);
  Read(j, "base_scores", "", c.base_scores, err);
  Read(j, "base_fingerprint", "", c.base_fingerprint, err);
  Read(j, "output_dir", "", c.output_dir, err);
  if (j.contains("merge")) {
    if (!j["merge"].is_object()) return Status::InvalidArgument("field 'merge' is not an object");
    Read(j["merge"], "from_job", "merge.", c.merge.from_job, err);
    Read(j["merge"], "dtype", "merge.", c.merge.dtype, err);
    Read(j["merge"], "max_shard_size", "merge.", c.merge.max_shard_size, err);
  }
  if (j.contains("model")) {
    const json& m = j["model"];
    Read(m, "source", "model.", c.model.source, err);
    Read(m, "tokenizer", "model.", c.model.tokenizer, err);
    Read(m, "dtype", "model.", c.model.dtype, err);
    Read(m, "chat_template", "model.", c.model.chat_template, err);
  }
  if (j.contains("track")) {
    Read(j["track"], "name", "track.", c.track.name, err);
    Read(j["track"], "modules", "track.", c.track.modules, err);
  }
  if (j.contains("adapter")) {
    if (!j["adapter"].is_object()) return Status::InvalidArgument("field 'adapter' is not an object");
    c.adapter = j["adapter"];
    Read(c.adapter, "init_from", "adapter.", c.init_from, err);
    Read(c.adapter, "init_from_sha256", "adapter.", c.init_from_sha256, err);
    c.adapter.erase("init_from");  // not a method option: the settings stay the method's own
    c.adapter.erase("init_from_sha256");
  }
  if (j.contains("train")) {
    const json& t = j["train"];
    const std::string p = "train.";
    Read(t, "data", p, c.train.data, err);
    Read(t, "steps", p, c.train.steps, err);
    Read(t, "lr", p, c.train.lr, err);
    Read(t, "schedule", p, c.train.schedule, err);
    Read(t, "warmup_ratio", p, c.train.warmup_ratio, err);
    Read(t, "seq_len", p, c.train.seq_len, err);
    Read(t, "tokens_per_update", p, c.train.tokens_per_update, err);
    Read(t, "micro_batch", p, c.train.micro_batch, err);
    Read(t, "weight_decay", p, c.train.weight_decay, err);
    Read(t, "grad_clip", p, c.train.grad_clip, err);
    ReadOptional(t, "lr_theta", p, c.train.lr_theta, err);
    ReadOptional(t, "lr_core", p, c.train.lr_core, err);
    Read(t, "log_every", p, c.train.log_every, err);
    Read(t, "checkpoint_every", p, c.train.checkpoint_every, err);
    Read(t, "eval_every", p, c.train.eval_every, err);
    Read(t, "spectrum_every", p, c.train.spectrum_every, err);
  }
  if (j.contains("eval")) {
    if (!j["eval"].is_array()) return Status::InvalidArgument("field 'eval' is not a list");
    for (size_t i = 0; i < j["eval"].size(); ++i) {
      std::vector<EvalProblem> problems;
      EvalSpec spec = ReadEvalSpec(j["eval"][i], problems);
      if (!problems.empty() && err.empty()) {
        const std::string field = "eval[" + std::to_string(i) + "]";
        err = "field '" + field + (problems[0].field.empty() ? "" : "." + problems[0].field) + "' " +
              problems[0].message;
      }
      c.eval.push_back(spec);
    }
  }
  if (j.contains("tradeoff")) Read(j["tradeoff"], "lambda", "tradeoff.", c.tradeoff_lambda, err);
  if (!err.empty()) return Status::InvalidArgument(err);
  if (c.kind != "train" && c.kind != "base_eval" && c.kind != "merge") {
    return Status::InvalidArgument("field 'kind' must be train, base_eval or merge, not '" + c.kind + "'");
  }
  if (!c.output_dir.empty() && c.output_dir[0] != '/') {
    return Status::InvalidArgument("field 'output_dir' must be an absolute folder, not '" + c.output_dir + "'");
  }
  if (c.kind == "merge") {
    if (c.merge.from_job.empty()) return Status::InvalidArgument("field 'merge.from_job' is missing: a merge job names its train job");
    if (c.output_dir.empty()) {
      return Status::InvalidArgument("field 'output_dir' is missing: a merge job reads its train job's adapter there");
    }
    if (Status name = CheckJobFolderName(c.merge.from_job); !name.ok()) {
      return Status::InvalidArgument("field 'merge.from_job' is not a job id: " + name.message());
    }
    if (!c.merge.dtype.empty() && c.merge.dtype != "float32" && c.merge.dtype != "bfloat16" && c.merge.dtype != "float16") {
      return Status::InvalidArgument("field 'merge.dtype' must be float32, bfloat16 or float16, not '" + c.merge.dtype + "'");
    }
    if (Result<int64_t> size = ParseByteSize(c.merge.max_shard_size); !size.ok()) {
      return Status::InvalidArgument("field 'merge.max_shard_size': " + size.status().message());
    }
  }
  if (c.train.steps < 0) return Status::InvalidArgument("field 'train.steps' must be >= 0");
  if (c.devices < 1 || c.devices > kMaxJobDevices) {
    return Status::InvalidArgument("field 'devices' must be 1.." + std::to_string(kMaxJobDevices) + ", not " +
                                   std::to_string(c.devices));
  }
  return c;
}

std::string CanonicalJobJson(const JobConfig& config) {
  json j = ToJson(config);
  j.erase("job_id");
  j.erase("sweep");
  j.erase("base_scores");
  j.erase("base_fingerprint");
  j.erase("devices");
  j.erase("output_dir");
  // The folder's content identifies the job, not where it lies (a moved copy is the same job).
  if (!config.init_from_sha256.empty()) j["adapter"].erase("init_from");
  return j.dump();  // nlohmann::json objects keep keys sorted: the dump is canonical
}

}  // namespace sweepd
