// The size limits of every field of every sweepd request, in one place, and the checks the
// services run before a field is parsed, matched, stored or quoted: no request can make
// sweepd recurse, allocate or answer without bound (docs/security.md has the table).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <grpcpp/support/status.h>

#include "common/metric_line.h"
#include "spec/spec_text.h"
#include "spec/sweep_spec.h"
#include "sweepd/v1/sweepd.pb.h"

namespace sweepd::server::request_limits {

// Sweep names, job, attempt and worker ids: longer than any sweepd makes or accepts
// (worker ids are "w-" + a hostname + 9 characters, or a token name + 9).
inline constexpr size_t kIdBytes = 512;
// SubmitSweepRequest.spec_yaml: what the spec reader accepts from a file (spec/spec_text.h).
inline constexpr size_t kSpecBytes = static_cast<size_t>(spec::kMaxSpecBytes);
inline constexpr size_t kPathBytes = 4096;             // SubmitSweepRequest.spec_path (PATH_MAX)
inline constexpr size_t kHostnameBytes = 253;          // a full domain name (RFC 1035)
inline constexpr size_t kWordBytes = 128;              // versions, device kinds, compute capabilities
inline constexpr size_t kDeviceNameBytes = 256;
inline constexpr size_t kLabelKeyBytes = 128;
inline constexpr size_t kLabelValueBytes = 1024;
inline constexpr size_t kLabels = 64;
inline constexpr size_t kSlots = 256;
inline constexpr size_t kRunningAttempts = 1024;  // HeartbeatRequest.running
inline constexpr size_t kRetryJobIds = 100000;
// One metric line, and a final line (result_json): the metric-line reader's limit.
inline constexpr size_t kMetricLineBytes = metric_limit::kLineBytes;
inline constexpr size_t kMetricPoints = 10000;  // points in one MetricBatch
inline constexpr size_t kStderrTailBytes = size_t{64} << 10;
// How much of a client's input an error message may quote.
inline constexpr size_t kExcerptBytes = 64;

// At most kExcerptBytes of `text` (cut on a UTF-8 character boundary), followed by
// "... (N bytes)" when cut.
std::string Excerpt(std::string_view text);

// OK, or INVALID_ARGUMENT naming the first field over its limit, its size and the limit,
// quoting none of its value.
grpc::Status Check(const v1::SubmitSweepRequest& req);
grpc::Status Check(const v1::GetSweepRequest& req);
grpc::Status Check(const v1::CancelSweepRequest& req);
grpc::Status Check(const v1::RetryRequest& req);
grpc::Status Check(const v1::WatchSweepRequest& req);
grpc::Status Check(const v1::QueryResultsRequest& req);
grpc::Status Check(const v1::GetJobLogRequest& req);
grpc::Status Check(const v1::RegisterRequest& req);
grpc::Status Check(const v1::HeartbeatRequest& req);
grpc::Status Check(const v1::LeaseJobRequest& req);
grpc::Status Check(const v1::StartedRequest& req);
grpc::Status Check(const v1::MetricBatch& req);
grpc::Status Check(const v1::FinishAttemptRequest& req);

}  // namespace sweepd::server::request_limits
