// AttemptRunner; see attempt_runner.h.
#include "worker/agent/attempt_runner.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/contracts.h"
#include "common/metric_line.h"
#include "worker/agent/child_process.h"

namespace sweepd::agent {
namespace fs = std::filesystem;

AttemptRunner::AttemptRunner(AttemptSettings settings, AttemptSpec spec)
    : settings_(std::move(settings)), spec_(std::move(spec)) {}

Status AttemptRunner::Prepare() {
  job_dir_ = settings_.workdir / "jobs" / spec_.job_id;
  std::error_code ec;
  fs::create_directories(job_dir_, ec);
  if (ec) return Status::Unavailable("cannot create " + job_dir_.string() + ": " + ec.message());
  {
    std::ofstream job(job_dir_ / "job.json", std::ios::trunc);
    job << spec_.config_json << "\n";
    if (!job.flush())
      return Status::Unavailable("cannot write " + (job_dir_ / "job.json").string());
  }
  const fs::path checkpoints = job_dir_ / "checkpoints";
  if (settings_.artifacts) {
    // The trainer always writes DIR/checkpoints; pointing it at the shared folder lets
    // a retry on another node resume.
    const fs::path shared = *settings_.artifacts / spec_.job_id / "checkpoints";
    fs::create_directories(shared, ec);
    if (ec) return Status::Unavailable("cannot create " + shared.string() + ": " + ec.message());
    if (!fs::exists(fs::symlink_status(checkpoints))) {
      fs::create_directory_symlink(fs::absolute(shared), checkpoints, ec);
      if (ec) {
        return Status::Unavailable("cannot link " + checkpoints.string() + ": " + ec.message());
      }
    }
  }
  resume_ = fs::is_directory(checkpoints, ec) && !fs::is_empty(checkpoints, ec);
  const std::string stem = "attempt-" + std::to_string(spec_.attempt_number);
  auto spool = MetricSpool::Create(job_dir_ / (stem + ".metrics.jsonl"));
  if (!spool.ok()) return spool.status();
  spool_ = std::move(*spool);
  const fs::path log = job_dir_ / (stem + ".stderr.log");
  stderr_log_ = std::fopen(log.c_str(), "we");
  if (stderr_log_ == nullptr) {
    return Status::Unavailable("cannot create " + log.string() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

void AttemptRunner::Stop(StopReason reason) {
  std::lock_guard<std::mutex> lock(mu_);
  // A lost lease overrides: nothing about this attempt will be reported anyway.
  if (stop_ == StopReason::kNone || reason == StopReason::kLeaseLost) stop_ = reason;
  cv_.notify_all();
}

void AttemptRunner::OnStdoutLine(const std::string& line) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return;
  const auto parsed = nlohmann::json::parse(line, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    // Not a metric: keep it with the diagnostics rather than lose it.
    OnStderrLine("[stdout] " + line);
    return;
  }
  // Every JSON object goes to sweepd, which stores a malformed one as such; only a line that
  // reads as a metric line (typed: {"type":1} is not one) can be the final line.
  auto seq = spool_->Append(line);
  if (!seq.ok()) spdlog::error("attempt {}: {}", spec_.attempt_id, seq.status().message());
  const Result<MetricLine> metric = MetricLine::Read(line);
  if (!metric.ok()) {
    spdlog::warn("attempt {}: {}", spec_.attempt_id, metric.status().message());
    return;
  }
  if (metric->type() != metric_type::kFinal) return;
  final_line_ = line;
  if (Result<FinalLine> final_line = FinalLine::Read(*metric); !final_line.ok()) {
    spdlog::warn("attempt {}: {}", spec_.attempt_id, final_line.status().message());
  }
}

void AttemptRunner::OnStderrLine(const std::string& line) {
  if (stderr_log_ != nullptr) {
    std::fputs(line.c_str(), stderr_log_);
    std::fputc('\n', stderr_log_);
    std::fflush(stderr_log_);
  }
  const StderrHint hint = ScanStderrLine(line);
  if (hint != StderrHint::kNone && hint_ == StderrHint::kNone) hint_ = hint;
  stderr_tail_ += line;
  stderr_tail_ += '\n';
  if (stderr_tail_.size() > 2 * settings_.stderr_tail_bytes) {
    stderr_tail_.erase(0, stderr_tail_.size() - settings_.stderr_tail_bytes);
  }
}

AttemptReport AttemptRunner::Run(const std::function<void()>& on_started) {
  AttemptReport report;
  report.resumed = resume_;
  ChildSpec child_spec;
  child_spec.program = settings_.trainer;
  child_spec.args = {"run", "--job", (job_dir_ / "job.json").string(), "--workdir",
                     job_dir_.string()};
  if (resume_) child_spec.args.push_back("--resume");
  child_spec.working_dir = job_dir_.string();
  child_spec.env = spec_.env;
  child_spec.env["SWEEPD_JOB_ID"] = spec_.job_id;
  child_spec.env["SWEEPD_ATTEMPT_ID"] = spec_.attempt_id;

  auto child = ChildProcess::Spawn(child_spec);
  if (!child.ok()) {
    spool_->Close();
    OnStderrLine("sweep-worker: " + child.status().message());
    report.stderr_tail = stderr_tail_;
    report.outcome = Outcome::kCrashed;
    std::fclose(stderr_log_);
    stderr_log_ = nullptr;
    return report;
  }
  ChildProcess& proc = **child;
  spdlog::info("attempt {} of job {}: trainer pid {}{}", spec_.attempt_id, spec_.job_id, proc.pid(),
               resume_ ? " (resuming from checkpoint)" : "");
  std::thread out_reader([&] {
    ReadLines(proc.stdout_fd(), [this](const std::string& l) { OnStdoutLine(l); });
    spool_->Close();
  });
  std::thread err_reader(
      [&] { ReadLines(proc.stderr_fd(), [this](const std::string& l) { OnStderrLine(l); }); });
  std::thread reaper([&] {
    report.end.exit = proc.Wait();
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
    cv_.notify_all();
  });
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  if (on_started) on_started();

  std::optional<Clock::time_point> kill_at;
  bool killed = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (!exited_) {
      const auto now = Clock::now();
      const bool has_timeout = settings_.timeout.count() > 0;
      if (stop_ == StopReason::kNone && has_timeout && now >= started + settings_.timeout) {
        spdlog::warn("attempt {}: timed out after {} s", spec_.attempt_id,
                     settings_.timeout.count() / 1000);
        stop_ = StopReason::kTimedOut;
      }
      if (stop_ != StopReason::kNone && !kill_at) {
        proc.SignalGroup(SIGTERM);
        kill_at = now + settings_.kill_grace;
      }
      if (kill_at && !killed && now >= *kill_at) {
        proc.SignalGroup(SIGKILL);
        killed = true;
      }
      // Sleep until the next deadline; an hour bounds it when there is none.
      auto wake = now + std::chrono::hours(1);
      if (kill_at && !killed) wake = std::min(wake, *kill_at);
      if (stop_ == StopReason::kNone && has_timeout) {
        wake = std::min(wake, started + settings_.timeout);
      }
      const auto stop_before = stop_;
      cv_.wait_until(lock, wake, [&] { return exited_ || stop_ != stop_before; });
    }
    report.end.stop = stop_;
  }
  reaper.join();
  out_reader.join();
  err_reader.join();
  std::fclose(stderr_log_);
  stderr_log_ = nullptr;

  report.end.hint = hint_;
  report.end.saw_final_line = !final_line_.empty();
  report.outcome = ClassifyOutcome(report.end);
  report.result_json = final_line_;
  report.stderr_tail = stderr_tail_.size() > settings_.stderr_tail_bytes
                           ? stderr_tail_.substr(stderr_tail_.size() - settings_.stderr_tail_bytes)
                           : stderr_tail_;
  spdlog::info("attempt {} of job {}: {} (exit {}, signal {}, {} metric lines)", spec_.attempt_id,
               spec_.job_id, OutcomeName(report.outcome), report.end.exit.exit_code,
               report.end.exit.signal, spool_->last_seq());
  return report;
}

}  // namespace sweepd::agent
