// Request field limits: each check names the message and field, the size and the limit.
#include "server/request_limits.h"

#include <cstdio>
#include <string>

namespace sweepd::server::request_limits {
namespace {

// The first field over its limit, of one request.
class FieldChecks {
 public:
  explicit FieldChecks(std::string message) : message_(std::move(message)) {}

  FieldChecks& Text(const std::string& field, const std::string& value, size_t max) {
    if (!first_.empty() || value.size() <= max) return *this;
    first_ = message_ + "." + field + " is " + std::to_string(value.size()) + " bytes; sweepd accepts at most " +
             std::to_string(max) + " (docs/security.md lists the limits). Nothing was stored.";
    return *this;
  }
  FieldChecks& Count(const std::string& field, size_t n, size_t max) {
    if (!first_.empty() || n <= max) return *this;
    first_ = message_ + "." + field + " has " + std::to_string(n) + " entries; sweepd accepts at most " +
             std::to_string(max) + " (docs/security.md lists the limits). Nothing was stored.";
    return *this;
  }
  bool failed() const { return !first_.empty(); }
  grpc::Status status() const {
    return first_.empty() ? grpc::Status::OK : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, first_);
  }

 private:
  std::string message_;
  std::string first_;
};

std::string Index(const std::string& field, int i) { return field + "[" + std::to_string(i) + "]"; }

// The length of the UTF-8 sequence at text[i], or 0 when it is not one (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceAt(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = byte(i);
  if (b < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b >= 0xC2 && b <= 0xDF) n = 2;
  else if (b == 0xE0) n = 3, lo = 0xA0;
  else if (b == 0xED) n = 3, hi = 0x9F;
  else if (b >= 0xE1 && b <= 0xEF) n = 3;
  else if (b == 0xF0) n = 4, lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3) n = 4;
  else if (b == 0xF4) n = 4, hi = 0x8F;
  else return 0;
  if (i + n > text.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

std::string Excerpt(std::string_view text) {
  if (text.size() <= kExcerptBytes) return std::string(text);
  size_t cut = kExcerptBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "... (" + std::to_string(text.size()) + " bytes)";
}

std::optional<spec::SpecProblem> FindInvalidUtf8(std::string_view text, const std::string& file) {
  int line = 1, column = 1;
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceAt(text, i);
    if (n == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[i]));
      return spec::SpecProblem{file, line, column, "",
                               std::string("byte ") + hex + " is not UTF-8; save the spec as UTF-8 "
                               "(e.g. iconv -f latin1 -t utf-8)"};
    }
    if (text[i] == '\n') ++line, column = 1;
    else ++column;
    i += n;
  }
  return std::nullopt;
}

grpc::Status Check(const v1::SubmitSweepRequest& req) {
  return FieldChecks("SubmitSweepRequest")
      .Text("spec_yaml", req.spec_yaml(), kSpecBytes)
      .Text("spec_path", req.spec_path(), kPathBytes)
      .status();
}

grpc::Status Check(const v1::GetSweepRequest& req) {
  return FieldChecks("GetSweepRequest").Text("sweep", req.sweep(), kIdBytes).status();
}

grpc::Status Check(const v1::CancelSweepRequest& req) {
  return FieldChecks("CancelSweepRequest").Text("sweep", req.sweep(), kIdBytes).status();
}

grpc::Status Check(const v1::RetryRequest& req) {
  FieldChecks checks("RetryRequest");
  checks.Text("sweep", req.sweep(), kIdBytes).Count("job_ids", req.job_ids_size(), kRetryJobIds);
  for (int i = 0; i < req.job_ids_size() && !checks.failed(); ++i) {
    checks.Text(Index("job_ids", i), req.job_ids(i), kIdBytes);
  }
  return checks.status();
}

grpc::Status Check(const v1::WatchSweepRequest& req) {
  return FieldChecks("WatchSweepRequest").Text("sweep", req.sweep(), kIdBytes).status();
}

grpc::Status Check(const v1::QueryResultsRequest& req) {
  return FieldChecks("QueryResultsRequest").Text("sweep", req.sweep(), kIdBytes).status();
}

grpc::Status Check(const v1::GetJobLogRequest& req) {
  return FieldChecks("GetJobLogRequest").Text("job_id", req.job_id(), kIdBytes).status();
}

grpc::Status Check(const v1::RegisterRequest& req) {
  FieldChecks checks("RegisterRequest");
  checks.Text("hostname", req.hostname(), kHostnameBytes)
      .Text("version", req.version(), kWordBytes)
      .Text("worker_id", req.worker_id(), kIdBytes)
      .Count("slots", req.slots_size(), kSlots)
      .Count("labels", req.labels_size(), kLabels);
  for (int i = 0; i < req.slots_size() && !checks.failed(); ++i) {
    const v1::Slot& s = req.slots(i);
    checks.Text(Index("slots", i) + ".device_kind", s.device_kind(), kWordBytes)
        .Text(Index("slots", i) + ".device_name", s.device_name(), kDeviceNameBytes)
        .Text(Index("slots", i) + ".compute_capability", s.compute_capability(), kWordBytes);
  }
  int i = 0;
  for (const auto& [key, value] : req.labels()) {
    if (checks.failed()) break;
    checks.Text("labels key " + std::to_string(i), key, kLabelKeyBytes)
        .Text("labels[" + Excerpt(key) + "]", value, kLabelValueBytes);
    ++i;
  }
  return checks.status();
}

grpc::Status Check(const v1::HeartbeatRequest& req) {
  FieldChecks checks("HeartbeatRequest");
  checks.Text("worker_id", req.worker_id(), kIdBytes).Count("running", req.running_size(), kRunningAttempts);
  for (int i = 0; i < req.running_size() && !checks.failed(); ++i) {
    checks.Text(Index("running", i) + ".attempt_id", req.running(i).attempt_id(), kIdBytes);
  }
  return checks.status();
}

grpc::Status Check(const v1::LeaseJobRequest& req) {
  return FieldChecks("LeaseJobRequest")
      .Text("worker_id", req.worker_id(), kIdBytes)
      .Text("device_kind", req.device_kind(), kWordBytes)
      .status();
}

grpc::Status Check(const v1::StartedRequest& req) {
  return FieldChecks("StartedRequest").Text("attempt_id", req.attempt_id(), kIdBytes).status();
}

grpc::Status Check(const v1::MetricBatch& req) {
  FieldChecks checks("MetricBatch");
  checks.Text("attempt_id", req.attempt_id(), kIdBytes).Count("points", req.points_size(), kMetricPoints);
  for (int i = 0; i < req.points_size() && !checks.failed(); ++i) {
    checks.Text(Index("points", i) + ".json", req.points(i).json(), kMetricLineBytes);
  }
  return checks.status();
}

grpc::Status Check(const v1::FinishAttemptRequest& req) {
  return FieldChecks("FinishAttemptRequest")
      .Text("attempt_id", req.attempt_id(), kIdBytes)
      .Text("stderr_tail", req.stderr_tail(), kStderrTailBytes)
      .Text("result_json", req.result_json(), kMetricLineBytes)
      .status();
}

}  // namespace sweepd::server::request_limits
