// Per-caller request rates and open streams (see call_limits.h).
#include "server/call_limits.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace sweepd::server {
namespace {

// Beyond this many callers remembered, idle ones are forgotten before a new one is added.
constexpr size_t kPruneAbove = 4096;

std::string LimitNumber(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

void CallLimits::StreamSlot::Release() {
  if (limits_ == nullptr) return;
  std::lock_guard<std::mutex> lock(limits_->mu_);
  auto it = limits_->buckets_.find(caller_);
  if (it != limits_->buckets_.end() && it->second.open_streams > 0) --it->second.open_streams;
  limits_ = nullptr;
}

std::string CallLimits::CallerOf(const grpc::ServerContextBase& context, const std::string& token_name) {
  if (!token_name.empty()) return "token '" + token_name + "'";
  // gRPC's peer is "ipv4:127.0.0.1:PORT" or "ipv6:[::1]:PORT": the host without the port.
  std::string peer = context.peer();
  const size_t scheme = peer.find(':');
  const size_t port = peer.rfind(':');
  if (scheme != std::string::npos && port != std::string::npos && port > scheme) {
    peer = peer.substr(scheme + 1, port - scheme - 1);
  }
  return "peer " + peer;
}

void CallLimits::PruneLocked(std::chrono::steady_clock::time_point now) {
  if (buckets_.size() <= kPruneAbove) return;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double seconds = std::chrono::duration<double>(now - it->second.refilled).count();
    const bool idle = it->second.open_streams == 0 &&
                      (options_.requests_per_second <= 0 ||
                       it->second.tokens + seconds * options_.requests_per_second >= options_.requests_per_second);
    it = idle ? buckets_.erase(it) : std::next(it);
  }
}

grpc::Status CallLimits::TakeLocked(const std::string& caller, Bucket& bucket,
                                    std::chrono::steady_clock::time_point now) {
  const double rate = options_.requests_per_second;
  if (rate <= 0) return grpc::Status::OK;
  const double seconds = std::chrono::duration<double>(now - bucket.refilled).count();
  bucket.tokens = std::min(rate, bucket.tokens + seconds * rate);  // a burst of one second
  bucket.refilled = now;
  if (bucket.tokens < 1) {
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "too many requests from " + caller + " (more than " + LimitNumber(rate) +
                " a second, sweepd --max-requests-per-second); wait a moment and try again"};
  }
  bucket.tokens -= 1;
  return grpc::Status::OK;
}

grpc::Status CallLimits::AdmitRequest(const std::string& caller) {
  if (options_.requests_per_second <= 0) return grpc::Status::OK;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(caller);
  if (it == buckets_.end()) {
    PruneLocked(now);
    it = buckets_.emplace(caller, Bucket{options_.requests_per_second, now, 0}).first;
  }
  return TakeLocked(caller, it->second, now);
}

std::optional<CallLimits::StreamSlot> CallLimits::OpenStream(const std::string& caller, grpc::Status* refused) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(caller);
  if (it == buckets_.end()) {
    PruneLocked(now);
    it = buckets_.emplace(caller, Bucket{options_.requests_per_second, now, 0}).first;
  }
  Bucket& bucket = it->second;
  if (options_.streams > 0 && bucket.open_streams >= options_.streams) {
    *refused = {grpc::StatusCode::RESOURCE_EXHAUSTED,
                caller + " has " + std::to_string(bucket.open_streams) +
                    " streams open (sweepd --max-streams-per-caller); close a watch or a worker first"};
    return std::nullopt;
  }
  if (grpc::Status s = TakeLocked(caller, bucket, now); !s.ok()) {
    *refused = s;
    return std::nullopt;
  }
  ++bucket.open_streams;
  return StreamSlot(*this, caller);
}

}  // namespace sweepd::server
