// Typed reads of sweep-train's metric lines; see metric_line.h. Every access checks the
// JSON type first, so nlohmann's type_error never escapes.
#include "common/metric_line.h"

#include <limits>

#include "common/contracts.h"

namespace sweepd {
namespace {

using nlohmann::json;

const json* FindMetricField(const json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}


std::optional<int64_t> JsonInteger(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  return std::nullopt;
}

Status WrongMetricField(std::string_view type, std::string_view key, std::string_view expected) {
  return Status::InvalidArgument("a \"" + std::string(type) + "\" metric line needs \"" +
                                 std::string(key) + "\" as " + std::string(expected) +
                                 " (docs/metrics.md)");
}

}  // namespace

Result<MetricLine> MetricLine::Read(std::string_view text) {
  MetricLine line;
  line.value_ = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (line.value_.is_discarded()) {
    return Status::InvalidArgument("not a metric line: not one JSON value (docs/metrics.md)");
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

Result<FinalLine> FinalLine::Read(const MetricLine& line) {
  if (line.type() != metric_type::kFinal) {
    return Status::InvalidArgument("a final line needs \"type\": \"final\", not \"" + line.type() +
                                   "\"");
  }
  FinalLine out;
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
  std::optional<std::map<std::string, double>> scores = ReadScores(line.value(), metric_key::kScores);
  if (!scores) {
    return WrongMetricField(metric_type::kFinal, metric_key::kScores, "an object of task -> number");
  }
  out.scores = std::move(*scores);
  SWEEPD_RETURN_IF_ERROR(integer("total_params", out.total_params));
  std::optional<double> wall = line.Number("wall_s");
  if (!wall) return WrongMetricField(metric_type::kFinal, "wall_s", "a number");
  out.wall_s = *wall;
  SWEEPD_RETURN_IF_ERROR(integer("peak_mem_bytes", out.peak_mem_bytes));
  if (const json* fp = FindMetricField(line.value(), metric_key::kBaseFingerprint)) {
    if (!fp->is_string()) {
      return WrongMetricField(metric_type::kFinal, metric_key::kBaseFingerprint, "a string");
    }
    out.base_fingerprint = fp->get<std::string>();
  }
  out.trainable_params = line.Integer("trainable_params");
  out.final_loss = line.Number("final_loss");
  out.tradeoff = line.Number("tradeoff");
  return out;
}

}  // namespace sweepd
