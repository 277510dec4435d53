// Per-caller limits on sweepd's calls: requests per second (a token bucket, as in RFC 2697's
// single-rate meter: `requests_per_second` refill, a burst of one second's worth) and streams
// open at once. A caller is a token's name, or without --auth-file the peer's address. In
// memory only; refusals are RESOURCE_EXHAUSTED with a one-line message. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

namespace sweepd::server {

struct CallLimitOptions {
  double requests_per_second = 10000;  // per caller; 0: no limit
  int64_t streams = 1000;              // open at once per caller; 0: no limit
};

class CallLimits {
 public:
  // A stream counted against its caller until this is destroyed.
  class StreamSlot {
   public:
    StreamSlot(CallLimits& limits, std::string caller) : limits_(&limits), caller_(std::move(caller)) {}
    ~StreamSlot() { Release(); }
    StreamSlot(StreamSlot&& other) noexcept : limits_(other.limits_), caller_(std::move(other.caller_)) {
      other.limits_ = nullptr;
    }
    StreamSlot& operator=(StreamSlot&& other) noexcept {
      if (this != &other) {
        Release();
        limits_ = other.limits_;
        caller_ = std::move(other.caller_);
        other.limits_ = nullptr;
      }
      return *this;
    }
    StreamSlot(const StreamSlot&) = delete;
    StreamSlot& operator=(const StreamSlot&) = delete;

   private:
    void Release();

    CallLimits* limits_;  // not owned; null once moved from
    std::string caller_;
  };

  explicit CallLimits(CallLimitOptions options) : options_(options) {}

  // The caller a call is counted under: "token NAME", or "peer HOST" without a token name.
  static std::string CallerOf(const grpc::ServerContextBase& context, const std::string& token_name);

  // OK when `caller` may make one more request now; RESOURCE_EXHAUSTED otherwise.
  grpc::Status AdmitRequest(const std::string& caller);
  // A slot for one more open stream of `caller` (and one request), or the refusal in `refused`.
  std::optional<StreamSlot> OpenStream(const std::string& caller, grpc::Status* refused);

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
    int64_t open_streams = 0;
  };
  // Forgets callers with a full bucket and no stream, so the map holds only recent callers.
  void PruneLocked(std::chrono::steady_clock::time_point now);
  grpc::Status TakeLocked(const std::string& caller, Bucket& bucket, std::chrono::steady_clock::time_point now);

  const CallLimitOptions options_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace sweepd::server
