// Typed reads of sweep-train's metric lines; see metric_line.h. Every access checks the
// JSON type first, so nlohmann's type_error never escapes; the walk over a line's numbers
// is iterative, so a deeply nested line cannot exhaust the stack.
#include "common/metric_line.h"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "common/contracts.h"

namespace sweepd {
namespace {

using nlohmann::json;

constexpr size_t kExcerptBytes = 200;

const json* FindMetricField(const json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::optional<int64_t> JsonInteger(const json& v) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<int64_t>();
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  return std::nullopt;
}

Status WrongMetricField(std::string_view type, std::string_view key, std::string_view expected) {
  return Status::InvalidArgument("a \"" + std::string(type) + "\" metric line needs \"" +
                                 std::string(key) + "\" as " + std::string(expected) +
                                 " (docs/metrics.md)");
}

std::string Excerpt(std::string_view text) {
  return std::string(text.substr(0, kExcerptBytes)) + (text.size() > kExcerptBytes ? "..." : "");
}

// What a field of a known line type must be (docs/metrics.md's tables).
enum class FieldKind {
  kString,
  kInteger,
  kCount,         // integer >= 0
  kNumber,
  kNumberOrNull,  // a loss: null when it was not finite
  kNonNegative,   // number >= 0
  kScore,         // number in [0, 100]
  kObject,
};

struct FieldRule {
  const char* type;
  const char* key;
  FieldKind kind;
};

constexpr FieldRule kFieldRules[] = {
    {"start", "job_id", FieldKind::kString},
    {"start", "kind", FieldKind::kString},
    {"start", "method", FieldKind::kString},
    {"start", "track", FieldKind::kString},
    {"start", "seed", FieldKind::kInteger},
    {"start", "model", FieldKind::kString},
    {"start", "device", FieldKind::kString},
    {"start", "steps", FieldKind::kCount},
    {"start", "torch_version", FieldKind::kString},
    {"step", "total_steps", FieldKind::kCount},
    {"step", "loss", FieldKind::kNumberOrNull},
    {"step", "lr", FieldKind::kNonNegative},
    {"step", "tokens_per_s", FieldKind::kNonNegative},
    {"step", "peak_mem_bytes", FieldKind::kCount},
    {"step", "tokens", FieldKind::kCount},
    {"step", "elapsed_s", FieldKind::kNonNegative},
    {"step", "svd", FieldKind::kObject},
    {"eval", "stage", FieldKind::kString},
    {"eval", "task", FieldKind::kString},
    {"eval", "score_name", FieldKind::kString},
    {"eval", "score", FieldKind::kScore},
    {"eval", "delta", FieldKind::kNumber},
    {"eval", "metrics", FieldKind::kObject},
    {"eval", "subjects", FieldKind::kObject},
    {"eval", "num_fewshot", FieldKind::kCount},
    {"eval", "n", FieldKind::kCount},
    {"eval", "elapsed_s", FieldKind::kNonNegative},
    {"checkpoint", "path", FieldKind::kString},
    // A final line's fields (FinalLine::Read checks that the required ones are there).
    {"final", "job_id", FieldKind::kString},
    {"final", "kind", FieldKind::kString},
    {"final", "method", FieldKind::kString},
    {"final", "track", FieldKind::kString},
    {"final", "seed", FieldKind::kInteger},
    {"final", "total_params", FieldKind::kCount},
    {"final", "wall_s", FieldKind::kNonNegative},
    {"final", "peak_mem_bytes", FieldKind::kCount},
    {"final", "base_fingerprint", FieldKind::kString},
    {"final", "steps", FieldKind::kCount},
    {"final", "final_loss", FieldKind::kNumberOrNull},
    {"final", "tokens_per_s", FieldKind::kNonNegative},
    {"final", "trainable_params", FieldKind::kCount},
    {"final", "avg_delta", FieldKind::kNumber},
    {"final", "tradeoff", FieldKind::kNumber},
    {"final", "svd", FieldKind::kObject},
    {"final", "diagnostics", FieldKind::kObject},
    {"error", "error", FieldKind::kString},
    {"error", "excerpt", FieldKind::kString},
};

const char* KindText(FieldKind kind) {
  switch (kind) {
    case FieldKind::kString: return "a string";
    case FieldKind::kInteger: return "an integer";
    case FieldKind::kCount: return "an integer >= 0";
    case FieldKind::kNumber: return "a number";
    case FieldKind::kNumberOrNull: return "a number or null";
    case FieldKind::kNonNegative: return "a number >= 0";
    case FieldKind::kScore: return "a number from 0 to 100 (percent)";
    case FieldKind::kObject: return "an object";
  }
  return "a value";
}

bool HasKind(const json& v, FieldKind kind) {
  switch (kind) {
    case FieldKind::kString: return v.is_string();
    case FieldKind::kInteger: return JsonInteger(v).has_value();
    case FieldKind::kCount: return JsonInteger(v).value_or(-1) >= 0;
    case FieldKind::kNumber: return v.is_number();
    case FieldKind::kNumberOrNull: return v.is_number() || v.is_null();
    case FieldKind::kNonNegative: return v.is_number() && v.get<double>() >= 0;
    case FieldKind::kScore: return v.is_number() && v.get<double>() >= 0 && v.get<double>() <= 100;
    case FieldKind::kObject: return v.is_object();
  }
  return false;
}

// Every number of `root` finite and within metric_limit::kMagnitude; the error names the
// top-level field that holds the first one that is not (a path per node would make the
// walk quadratic in the depth).
Status CheckMagnitudes(std::string_view type, const json& root) {
  for (const auto& [key, field] : root.items()) {
    std::vector<const json*> pending{&field};
    while (!pending.empty()) {
      const json* v = pending.back();
      pending.pop_back();
      if (v->is_structured()) {
        for (const json& child : *v) pending.push_back(&child);
      } else if (v->is_number()) {
        const double x = v->get<double>();
        if (!std::isfinite(x) || std::fabs(x) > metric_limit::kMagnitude) {
          return Status::InvalidArgument("a \"" + std::string(type) + "\" metric line has a " +
                                         "number beyond +-1e15 in \"" + Excerpt(key) +
                                         "\" (docs/metrics.md)");
        }
      }
    }
  }
  return Status::Ok();
}

// The task -> number object under `key`, each number checked against `kind`.
Status ReadTaskNumbers(const MetricLine& line, const char* key, FieldKind kind, bool required,
                       std::map<std::string, double>* out) {
  const json* v = FindMetricField(line.value(), key);
  if (v == nullptr && !required) return Status::Ok();
  const std::string expected = std::string("an object of task -> ") + KindText(kind);
  if (v == nullptr || !v->is_object()) return WrongMetricField(metric_type::kFinal, key, expected);
  for (const auto& [task, score] : v->items()) {
    if (!HasKind(score, kind)) {
      return WrongMetricField(metric_type::kFinal, std::string(key) + "." + task, KindText(kind));
    }
    if (out != nullptr) (*out)[task] = score.get<double>();
  }
  return Status::Ok();
}

}  // namespace

Result<MetricLine> MetricLine::Read(std::string_view text) {
  if (text.size() > metric_limit::kLineBytes) {
    return Status::InvalidArgument("not a metric line: " + std::to_string(text.size()) +
                                   " bytes, over the limit of " +
                                   std::to_string(metric_limit::kLineBytes) +
                                   " bytes a line (docs/metrics.md)");
  }
  MetricLine line;
  line.value_ = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (line.value_.is_discarded()) {
    return Status::InvalidArgument(
        "not a metric line: not one JSON value (a number out of range, NaN and Infinity are "
        "not JSON; docs/metrics.md)");
  }
  if (!line.value_.is_object()) {
    return Status::InvalidArgument("not a metric line: a JSON object is expected (docs/metrics.md)");
  }
  const json* type = FindMetricField(line.value_, metric_key::kType);
  if (type == nullptr || !type->is_string() || type->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(
        "not a metric line: \"type\" must be a non-empty string (docs/metrics.md)");
  }
  line.type_ = type->get<std::string>();
  if (const json* step = FindMetricField(line.value_, metric_key::kStep)) {
    const std::optional<int64_t> n = JsonInteger(*step);
    if (!n || *n < 0) return WrongMetricField(line.type_, metric_key::kStep, "an integer >= 0");
    line.step_ = n;
  }
  for (const FieldRule& rule : kFieldRules) {
    if (line.type_ != rule.type) continue;
    const json* v = FindMetricField(line.value_, rule.key);
    if (v != nullptr && !HasKind(*v, rule.kind)) {
      return WrongMetricField(line.type_, rule.key, KindText(rule.kind));
    }
  }
  SWEEPD_RETURN_IF_ERROR(CheckMagnitudes(line.type_, line.value_));
  line.text_ = std::string(text);
  return line;
}

std::optional<double> MetricLine::Number(std::string_view key) const {
  const json* v = FindMetricField(value_, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

std::optional<int64_t> MetricLine::Integer(std::string_view key) const {
  const json* v = FindMetricField(value_, key);
  return v == nullptr ? std::nullopt : JsonInteger(*v);
}

std::optional<std::string> MetricLine::Text(std::string_view key) const {
  const json* v = FindMetricField(value_, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

std::optional<std::map<std::string, double>> ReadScores(const json& line, std::string_view key) {
  if (!line.is_object()) return std::nullopt;
  const json* v = FindMetricField(line, key);
  if (v == nullptr || !v->is_object()) return std::nullopt;
  std::map<std::string, double> out;
  for (const auto& [task, score] : v->items()) {
    if (!score.is_number()) return std::nullopt;
    out[task] = score.get<double>();
  }
  return out;
}

std::string MetricErrorLine(std::string_view message, std::string_view line) {
  return json{{metric_key::kType, metric_type::kError},
              {"error", std::string(message)},
              {"excerpt", Excerpt(line)}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::string> MetricLineError(std::string_view text) {
  Result<MetricLine> line = MetricLine::Read(text);
  if (!line.ok()) return line.status().message() + ": " + Excerpt(text);
  if (line->type() != metric_type::kError) return std::nullopt;
  return line->Text("error").value_or("error") + ": " + line->Text("excerpt").value_or("");
}

Result<FinalLine> FinalLine::Read(const MetricLine& line) {
  if (line.type() != metric_type::kFinal) {
    return Status::InvalidArgument("a final line needs \"type\": \"final\", not \"" + line.type() +
                                   "\"");
  }
  FinalLine out;
  // MetricLine::Read checked the type of every field that is present; here: present.
  auto text = [&](const char* key, std::string& into) -> Status {
    std::optional<std::string> v = line.Text(key);
    if (!v) return WrongMetricField(metric_type::kFinal, key, "a string");
    into = std::move(*v);
    return Status::Ok();
  };
  auto integer = [&](const char* key, int64_t& into) -> Status {
    std::optional<int64_t> v = line.Integer(key);
    if (!v) return WrongMetricField(metric_type::kFinal, key, "an integer");
    into = *v;
    return Status::Ok();
  };
  SWEEPD_RETURN_IF_ERROR(text("job_id", out.job_id));
  SWEEPD_RETURN_IF_ERROR(text("kind", out.kind));
  SWEEPD_RETURN_IF_ERROR(text("method", out.method));
  SWEEPD_RETURN_IF_ERROR(text("track", out.track));
  SWEEPD_RETURN_IF_ERROR(integer("seed", out.seed));
  SWEEPD_RETURN_IF_ERROR(
      ReadTaskNumbers(line, metric_key::kScores, FieldKind::kScore, /*required=*/true, &out.scores));
  SWEEPD_RETURN_IF_ERROR(integer("total_params", out.total_params));
  std::optional<double> wall = line.Number("wall_s");
  if (!wall) return WrongMetricField(metric_type::kFinal, "wall_s", "a number");
  out.wall_s = *wall;
  SWEEPD_RETURN_IF_ERROR(integer("peak_mem_bytes", out.peak_mem_bytes));
  out.base_fingerprint = line.Text(metric_key::kBaseFingerprint).value_or("");
  SWEEPD_RETURN_IF_ERROR(
      ReadTaskNumbers(line, "base_scores", FieldKind::kScore, /*required=*/false, nullptr));
  SWEEPD_RETURN_IF_ERROR(
      ReadTaskNumbers(line, "delta", FieldKind::kNumber, /*required=*/false, nullptr));
  out.trainable_params = line.Integer("trainable_params");
  out.final_loss = line.Number("final_loss");
  out.tradeoff = line.Number("tradeoff");
  return out;
}

}  // namespace sweepd
