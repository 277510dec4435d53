// MetricStreamer: one writer (this thread) and one ack reader per stream.
#include "worker/agent/metric_streamer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/metric_line.h"

namespace sweepd::agent {

MetricStreamer::MetricStreamer(CoordinatorClient& client, MetricSpool& spool, AttemptRef attempt,
                               StreamSettings settings, std::function<void()> on_refused)
    : client_(client),
      spool_(spool),
      attempt_(std::move(attempt)),
      settings_(settings),
      on_refused_(std::move(on_refused)) {
  spool_.set_listener([this] {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  });
  thread_ = std::thread([this] { Run(); });
}

MetricStreamer::~MetricStreamer() {
  Stop();
  thread_.join();
  spool_.set_listener(nullptr);
}

bool MetricStreamer::Done() const {
  return stopped_ || refused_ || (spool_.closed() && acked_ >= spool_.last_seq());
}

bool MetricStreamer::WaitDelivered() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return finished_; });
  return !refused_ && !stopped_ && acked_ >= spool_.last_seq();
}

void MetricStreamer::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

int64_t MetricStreamer::acked_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

bool MetricStreamer::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

void MetricStreamer::Run() {
  Backoff backoff(settings_.backoff);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Done()) break;
    }
    StreamOnce(backoff);
    std::unique_lock<std::mutex> lock(mu_);
    if (Done()) break;
    // The stream broke: wait before reconnecting, unless told to stop.
    cv_.wait_for(lock, backoff.Next(), [this] { return stopped_; });
  }
  bool refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    refused = refused_;
    cv_.notify_all();
  }
  if (refused && on_refused_) on_refused_();
}

void MetricStreamer::StreamOnce(Backoff& backoff) {
  using Clock = std::chrono::steady_clock;
  std::unique_ptr<MetricStream> stream = client_.OpenMetricStream();
  // Guarded by mu_ while the helper threads run.
  bool broken = false;
  bool over = false;
  int64_t sent;
  Clock::time_point last_progress = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    sent = acked_;  // resend everything sweepd has not confirmed
  }
  std::thread reader([&] {
    MetricAckInfo ack;
    while (stream->ReadAck(&ack)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (ack.stored_through_seq > acked_) {
        acked_ = ack.stored_through_seq;
        last_progress = Clock::now();
        backoff.Reset();
      }
      if (ack.refused) {
        spdlog::warn("attempt {}: sweepd refused its metrics ({}); the lease is gone",
                     attempt_.attempt_id, ack.message);
        refused_ = true;
      }
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    broken = true;
    cv_.notify_all();
  });
  // A peer that vanished without closing the connection (a network partition, a hung
  // sweepd) acknowledges nothing; after ack_timeout the stream is abandoned and redone.
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!over) {
      cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return over; });
      if (!over && sent > acked_ && Clock::now() - last_progress > settings_.ack_timeout) {
        spdlog::warn("attempt {}: sweepd acknowledged no metrics for {} s; reconnecting",
                     attempt_.attempt_id, settings_.ack_timeout.count() / 1000);
        broken = true;
        stream->Cancel();
        cv_.notify_all();
        return;
      }
    }
  });
  for (;;) {
    std::vector<SpooledPoint> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return Done() || broken || (spool_.last_seq() > sent && sent - acked_ < settings_.window);
      });
      if (Done() || broken) break;
      const auto room = static_cast<size_t>(settings_.window - (sent - acked_));
      // Within sweepd's limits of a call, however many lines piled up while it was away.
      batch = spool_.ReadFrom(sent + 1, std::min({settings_.batch_size, room, metric_limit::kCallLines}),
                              metric_limit::kCallBytes);
      if (batch.empty()) break;                          // the spool file could not be read back
      if (sent == acked_) last_progress = Clock::now();  // the ack clock starts now
      sent = batch.back().seq;
    }
    if (!stream->Send(attempt_, batch)) break;
  }
  // Everything is acknowledged, or the stream is useless: end it either way.
  stream->CloseWrites();
  stream->Cancel();
  reader.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    over = true;
    cv_.notify_all();
  }
  watchdog.join();
  const Status st = stream->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  if (!Done() && !st.ok()) {
    spdlog::info("attempt {}: metric stream to sweepd broke ({}); {} of {} points stored, retrying",
                 attempt_.attempt_id, st.message(), acked_, spool_.last_seq());
  }
}

}  // namespace sweepd::agent
