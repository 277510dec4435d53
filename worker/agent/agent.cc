// Agent; see agent.h.
#include "worker/agent/agent.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sweepd::agent {
namespace {

std::string EnvOrEmpty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// Host memory the kernel could give a new process now (MemAvailable), in bytes.
int64_t AvailableHostMemory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

int64_t FreeMemory(const SlotInfo& slot) {
  // Accelerator memory is not shared between slots: the device's size is what a job gets.
  if (slot.device.kind != "cpu") return slot.device.memory_bytes;
  return AvailableHostMemory();
}

}  // namespace

Agent::Agent(AgentOptions options, std::vector<SlotInfo> slots, CoordinatorClient& client)
    : options_(std::move(options)),
      slots_(std::move(slots)),
      client_(client),
      inherited_cuda_(EnvOrEmpty("CUDA_VISIBLE_DEVICES")),
      inherited_npu_(EnvOrEmpty("ASCEND_RT_VISIBLE_DEVICES")),
      claims_(slots_) {}

Agent::~Agent() = default;

std::string Agent::worker_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return worker_id_;
}

void Agent::Drain() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!draining_) {
    spdlog::info("draining: no new leases; running jobs get {} s to finish",
                 options_.drain_timeout.count() / 1000);
  }
  draining_ = true;
  cv_.notify_all();
}

void Agent::HandBackNow() {
  std::lock_guard<std::mutex> lock(mu_);
  spdlog::info("draining: handing running jobs back now");
  draining_ = true;
  hand_back_now_ = true;
  cv_.notify_all();
}

int Agent::Run() {
  std::thread supervisor([this] { SupervisorLoop(); });
  std::vector<std::thread> slot_threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_slots_ = static_cast<int>(slots_.size());
  }
  for (const auto& slot : slots_) slot_threads.emplace_back([this, &slot] { SlotLoop(slot); });

  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return draining_ || active_slots_ == 0; });
  // Drain phase 1: running jobs may finish on their own.
  const auto drain_deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
  cv_.wait_until(lock, drain_deadline, [this] { return active_slots_ == 0 || hand_back_now_; });
  // Phase 2: stop what still runs and hand it back to sweepd.
  hand_back_now_ = true;
  for (auto& [id, attempt] : running_) {
    spdlog::info("handing back attempt {}", id);
    attempt.runner->Stop(StopReason::kHandedBack);
  }
  // Phase 3: reporting may wait on an unreachable sweepd, but not forever.
  const auto report_deadline =
      std::chrono::steady_clock::now() + options_.attempt.kill_grace + options_.report_timeout;
  if (!cv_.wait_until(lock, report_deadline, [this] { return active_slots_ == 0; })) {
    spdlog::warn("sweepd did not take the reports in time; its lease expiry will requeue the jobs");
    give_up_reporting_ = true;
    for (auto& [id, attempt] : running_) attempt.streamer->Stop();
    cv_.notify_all();
  }
  lock.unlock();
  for (auto& t : slot_threads) t.join();
  lock.lock();
  stopping_ = true;
  cv_.notify_all();
  lock.unlock();
  supervisor.join();
  // A last word, so sweepd sees the worker leave rather than go silent. Best effort.
  bool tell;
  {
    std::lock_guard<std::mutex> relock(mu_);
    tell = registered_ && !give_up_reporting_;
  }
  if (tell) (void)client_.Heartbeat(worker_id(), {}, /*draining=*/true);
  std::lock_guard<std::mutex> relock(mu_);
  spdlog::info("drained{}", unreported_ > 0 ? " with unreported attempts" : "");
  return unreported_ > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Supervisor: registration and heartbeats.

bool Agent::RegisterOnce(Backoff& backoff) {
  RegisterInfo info;
  info.hostname = options_.hostname;
  info.version = options_.version;
  info.slots = slots_;
  info.labels = options_.labels;
  info.worker_id = worker_id();
  auto reg = client_.Register(info);
  if (!reg.ok()) {
    // Loud once, then quiet: a worker started before sweepd would otherwise flood its log.
    spdlog::log(register_failures_++ == 0 ? spdlog::level::warn : spdlog::level::debug,
                "cannot register with sweepd ({}); retrying", reg.status().message());
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, backoff.Next(), [this] { return stopping_; });
    return false;
  }
  backoff.Reset();
  register_failures_ = 0;
  std::lock_guard<std::mutex> lock(mu_);
  if (worker_id_ != reg->worker_id) {
    spdlog::info("registered as {} with {} slot(s)", reg->worker_id, slots_.size());
  }
  worker_id_ = reg->worker_id;
  heartbeat_interval_ = reg->heartbeat_interval;
  registered_ = true;
  cv_.notify_all();
  return true;
}

std::vector<AttemptRef> Agent::RunningRefs() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AttemptRef> refs;
  for (const auto& [id, a] : running_) refs.push_back(a.ref);
  return refs;
}

void Agent::ApplyHeartbeat(const HeartbeatReply& reply) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& id : reply.cancel_attempts) {
    auto it = running_.find(id);
    if (it == running_.end()) continue;
    spdlog::info("attempt {}: cancelled by sweepd", id);
    it->second.runner->Stop(StopReason::kCancelled);
  }
  for (const auto& id : reply.lost_attempts) {
    auto it = running_.find(id);
    if (it == running_.end()) continue;
    spdlog::warn("attempt {}: sweepd says its lease is gone; stopping it", id);
    it->second.lost = true;
    it->second.runner->Stop(StopReason::kLeaseLost);
    it->second.streamer->Stop();
  }
  if (reply.reregister) registered_ = false;
}

void Agent::SupervisorLoop() {
  Backoff backoff(options_.backoff);
  bool away = false;
  for (;;) {
    bool registered, draining;
    std::chrono::milliseconds interval;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      registered = registered_;
      interval = heartbeat_interval_;
    }
    if (!registered) {
      RegisterOnce(backoff);
      continue;
    }
    {
      // Wake early when draining starts, so sweepd hears of it at once.
      std::unique_lock<std::mutex> lock(mu_);
      const bool was_draining = draining_;
      cv_.wait_for(lock, interval, [&] { return stopping_ || draining_ != was_draining; });
      if (stopping_) return;
      draining = draining_;
    }
    auto reply = client_.Heartbeat(worker_id(), RunningRefs(), draining);
    if (!reply.ok()) {
      if (reply.status().code() != StatusCode::kUnavailable) {
        spdlog::warn("heartbeat refused ({}); registering again", reply.status().message());
        std::lock_guard<std::mutex> lock(mu_);
        registered_ = false;
        continue;
      }
      if (!away) {
        spdlog::warn("sweepd unreachable ({}); running jobs go on, retrying",
                     reply.status().message());
      }
      away = true;
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, backoff.Next(), [this] { return stopping_; });
      continue;
    }
    if (away) spdlog::info("sweepd is reachable again");
    away = false;
    backoff.Reset();
    ApplyHeartbeat(*reply);
  }
}

// ---------------------------------------------------------------------------
// Slots: lease, run, deliver, report.

bool Agent::WaitRegistered(std::string* worker_id) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return registered_ || draining_; });
  if (draining_) return false;
  *worker_id = worker_id_;
  return true;
}

bool Agent::IsDraining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_;
}

bool Agent::SleepUnlessDraining(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return draining_; });
}

void Agent::SlotLoop(const SlotInfo& slot) {
  Backoff backoff(options_.backoff);
  std::string worker_id;
  auto release = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    claims_.Release(slot.index);
    cv_.notify_all();
  };
  while (WaitRegistered(&worker_id)) {
    int free_devices = 0;
    {
      // A slot that another slot's lease holds (a job across devices) waits for it to end.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return draining_ || claims_.Available(slot.index); });
      if (draining_) continue;
      free_devices = claims_.Reserve(slot.index);
    }
    auto lease = client_.LeaseJob(worker_id, slot, FreeMemory(slot), free_devices);
    if (!lease.ok()) {
      release();
      if (lease.status().code() != StatusCode::kUnavailable) {
        // sweepd does not know this worker (e.g. it lost its state): register again.
        spdlog::warn("slot {}: lease refused ({})", slot.index, lease.status().message());
        std::lock_guard<std::mutex> lock(mu_);
        if (worker_id_ == worker_id) registered_ = false;
      }
      SleepUnlessDraining(backoff.Next());
      continue;
    }
    backoff.Reset();
    if (!lease->granted) {
      release();
      SleepUnlessDraining(lease->retry_after);
      continue;
    }
    const int devices = JobDevices(lease->config_json);
    std::vector<SlotInfo> group;
    {
      std::lock_guard<std::mutex> lock(mu_);
      group = claims_.Claim(slot.index, devices);
      cv_.notify_all();  // the reserved slots the job does not need lease again
    }
    if (group.empty()) {
      // sweepd leased more devices than this slot offered: give the job back unstarted.
      spdlog::error("slot {}: job {} needs {} devices, {} were offered; handing it back", slot.index,
                    lease->job_id, devices, free_devices);
      FinishReport report;
      report.attempt = {lease->attempt_id, lease->fencing_token};
      report.outcome = Outcome::kHandedBack;
      if (!ReportFinish(report)) {
        std::lock_guard<std::mutex> lock(mu_);
        ++unreported_;
      }
      release();
      continue;
    }
    RunLease(slot, group, *lease);
    release();
  }
  std::lock_guard<std::mutex> lock(mu_);
  --active_slots_;
  cv_.notify_all();
}

void Agent::RunLease(const SlotInfo& slot, const std::vector<SlotInfo>& group, const Lease& lease) {
  const AttemptRef ref{lease.attempt_id, lease.fencing_token};
  bool draining;
  std::string slots_text;
  for (const SlotInfo& s : group) slots_text += (slots_text.empty() ? "" : ",") + std::to_string(s.index);
  spdlog::info("slot {}: leased job {} (attempt {}, #{}){}", slot.index, lease.job_id, lease.attempt_id,
               lease.attempt_number, group.size() > 1 ? " on slots " + slots_text : std::string());
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining = draining_;
  }
  if (draining) {
    // The lease was granted as draining began: give it straight back, unstarted.
    FinishReport report;
    report.attempt = ref;
    report.outcome = Outcome::kHandedBack;
    if (!ReportFinish(report)) {
      std::lock_guard<std::mutex> lock(mu_);
      ++unreported_;
    }
    return;
  }
  AttemptSpec spec;
  spec.job_id = lease.job_id;
  spec.attempt_id = lease.attempt_id;
  spec.attempt_number = lease.attempt_number;
  spec.config_json = lease.config_json;
  spec.env = GroupEnvironment(group, inherited_cuda_, inherited_npu_);
  AttemptRunner runner(options_.attempt, spec);
  const Status prepared = runner.Prepare();
  if (!prepared.ok()) {
    // The node cannot host the job (disk full, permissions): let sweepd retry elsewhere.
    spdlog::error("slot {}: job {}: {}", slot.index, lease.job_id, prepared.message());
    FinishReport report;
    report.attempt = ref;
    report.outcome = Outcome::kCrashed;
    report.stderr_tail = "sweep-worker: " + prepared.message();
    if (!ReportFinish(report)) {
      std::lock_guard<std::mutex> lock(mu_);
      ++unreported_;
    }
    return;
  }
  MetricStreamer streamer(client_, runner.spool(), ref, options_.stream,
                          [&runner] { runner.Stop(StopReason::kLeaseLost); });
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[ref.attempt_id] = RunningAttempt{ref, &runner, &streamer};
    if (hand_back_now_) runner.Stop(StopReason::kHandedBack);
  }
  const AttemptReport report = runner.Run([&] {
    auto started = client_.AttemptStarted(ref);
    if (!started.ok()) {
      spdlog::warn("attempt {}: could not tell sweepd it started ({})", ref.attempt_id,
                   started.status().message());
    } else if (!*started) {
      spdlog::warn("attempt {}: sweepd refused its start; the lease is gone", ref.attempt_id);
      runner.Stop(StopReason::kLeaseLost);
    }
  });

  Outcome outcome = report.outcome;
  if (outcome == Outcome::kCrashed && IsDraining() &&
      (report.end.exit.signal == SIGTERM || report.end.exit.exit_code == 128 + SIGTERM)) {
    // Launchers (SLURM's scancel, a container runtime) send the SIGTERM that drains us to
    // the trainers too: that is no fault of the job, so it goes back unpenalised.
    outcome = Outcome::kHandedBack;
  }
  bool reported = false;
  if (report.end.stop == StopReason::kLeaseLost) {
    streamer.Stop();
    reported = true;  // nothing to report: sweepd already moved on
  } else if (streamer.WaitDelivered()) {
    FinishReport finish;
    finish.attempt = ref;
    finish.outcome = outcome;
    finish.exit_code = report.end.exit.exit_code;
    finish.signal = report.end.exit.signal;
    finish.stderr_tail = report.stderr_tail;
    finish.result_json = report.result_json;
    finish.last_metric_seq = runner.spool().last_seq();
    reported = ReportFinish(finish);
  } else {
    reported = streamer.refused();  // refused: the lease is gone, nothing left to say
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (running_[ref.attempt_id].lost) reported = true;  // sweepd has moved on; nothing owed
  running_.erase(ref.attempt_id);
  if (!reported) ++unreported_;
}

bool Agent::ReportFinish(const FinishReport& report) {
  Backoff backoff(options_.backoff);
  for (;;) {
    auto reply = client_.FinishAttempt(report);
    if (reply.ok()) {
      if (reply->accepted) {
        spdlog::info("attempt {}: reported {}", report.attempt.attempt_id,
                     OutcomeName(report.outcome));
      } else {
        spdlog::warn("attempt {}: sweepd refused the report: {}", report.attempt.attempt_id,
                     reply->message);
      }
      return true;
    }
    if (reply.status().code() != StatusCode::kUnavailable) {
      spdlog::warn("attempt {}: sweepd refused the report: {}", report.attempt.attempt_id,
                   reply.status().message());
      return true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, backoff.Next(), [this] { return give_up_reporting_; })) {
      spdlog::warn("attempt {}: giving up reporting {} to an unreachable sweepd",
                   report.attempt.attempt_id, OutcomeName(report.outcome));
      return false;
    }
  }
}

}  // namespace sweepd::agent
