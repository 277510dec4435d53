// Request field limits: each check names the message and field, the size and the limit.
#include "server/request_limits.h"

#include <cstdio>
#include <string>

#include "spec/spec_text.h"

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

}  // namespace

std::string Excerpt(std::string_view text) { return spec::Excerpt(std::string(text), kExcerptBytes); }

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
