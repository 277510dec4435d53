// AttemptRunner; see attempt_runner.h.
#include "worker/agent/attempt_runner.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>
#include <thread>

#include "common/contracts.h"
#include "common/metric_line.h"
#include "common/utf8.h"
#include "worker/agent/child_process.h"

namespace sweepd::agent {
namespace fs = std::filesystem;
namespace {

// The last `max` bytes of `text` as valid UTF-8 (gRPC's string fields must be): a byte
// that does not start or continue a well-formed sequence becomes '?'.
std::string ValidUtf8Tail(const std::string& text, size_t max) {
  std::string_view in(text);
  if (in.size() > max) in.remove_prefix(in.size() - max);
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    if (const size_t n = Utf8SequenceLength(in, i); n > 0) {
      out.append(in.substr(i, n));
      i += n;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

}  // namespace

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

void AttemptRunner::Spool(const std::string& line) {
  if (!spool_error_.empty()) return;
  const Result<int64_t> seq = spool_->Append(line);
  if (seq.ok()) {
    ++spooled_lines_;
    spooled_bytes_ += static_cast<int64_t>(line.size());
    return;
  }
  spool_error_ = seq.status().message();
  spdlog::error("attempt {}: {}; stopping the trainer, the attempt fails as a crash",
                spec_.attempt_id, spool_error_);
  OnStderrLine("sweep-worker: " + spool_error_ +
               "; the attempt's metric lines are not all kept, so it fails as a crash (retried)");
  Stop(StopReason::kSpoolFailed);
}

void AttemptRunner::OnStdoutLine(const std::string& line) {
  // After a failed spool write nothing more is kept: the attempt is over.
  if (!spool_error_.empty() || line.find_first_not_of(" \t\r") == std::string::npos) return;
  ++stdout_lines_;
  const Result<MetricLine> metric = MetricLine::Read(line);
  const bool is_final = metric.ok() && metric->type() == metric_type::kFinal;
  // Over the attempt's limits only the final line is still kept, after one notice.
  const bool over = spooled_lines_ >= metric_limit::kAttemptLines ||
                    spooled_bytes_ + static_cast<int64_t>(line.size()) > metric_limit::kAttemptBytes;
  if (over && !is_final) {
    if (dropped_lines_++ == 0) {
      spdlog::warn("attempt {}: over the per-attempt limit of metric lines; dropping the rest",
                   spec_.attempt_id);
      Spool(MetricErrorLine("stdout line " + std::to_string(stdout_lines_) +
                                " and those after it are over the limit of " +
                                std::to_string(metric_limit::kAttemptLines) + " lines or " +
                                std::to_string(metric_limit::kAttemptBytes >> 20) +
                                " MiB of metric lines an attempt (docs/metrics.md); only the "
                                "final line is still kept",
                            line));
    }
    return;
  }
  if (!metric.ok()) {
    // Kept as an error of the attempt, with the reason; the whole line goes to the stderr
    // log (the spool's copy is an excerpt: a line can be too long or not UTF-8).
    if (invalid_lines_++ < 10) {
      spdlog::warn("attempt {}: stdout line {}: {}", spec_.attempt_id, stdout_lines_,
                   metric.status().message());
    }
    Spool(MetricErrorLine("stdout line " + std::to_string(stdout_lines_) + ": " +
                              metric.status().message(),
                          line));
    OnStderrLine("[stdout] " + line.substr(0, metric_limit::kLineBytes));
    return;
  }
  Spool(line);
  if (!is_final) return;
  final_line_ = line;
  Result<FinalLine> final_line = FinalLine::Read(*metric);
  final_error_ = final_line.ok() ? "" : final_line.status().message();
  if (!final_line.ok()) spdlog::warn("attempt {}: {}", spec_.attempt_id, final_error_);
}

void AttemptRunner::OnStderrLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(err_mu_);
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
    report.stderr_tail = ValidUtf8Tail(stderr_tail_, settings_.stderr_tail_bytes);
    report.outcome = Outcome::kCrashed;
    std::fclose(stderr_log_);
    stderr_log_ = nullptr;
    return report;
  }
  ChildProcess& proc = **child;
  spdlog::info("attempt {} of job {}: trainer pid {}{}", spec_.attempt_id, spec_.job_id, proc.pid(),
               resume_ ? " (resuming from checkpoint)" : "");
  std::thread out_reader([&] {
    // One byte past the limit: a longer line is seen as such, not cut to fit.
    ReadLines(
        proc.stdout_fd(), [this](const std::string& l) { OnStdoutLine(l); },
        metric_limit::kLineBytes + 1);
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
  if (!final_line_.empty() && !final_error_.empty() && report.end.exit.exit_code == 0) {
    OnStderrLine("sweep-worker: the final line does not count as success: " + final_error_);
  }
  if (!spool_error_.empty()) {  // last, so that the tail ends with the cause
    OnStderrLine("sweep-worker: the attempt failed as a crash: " + spool_error_);
  }
  if (dropped_lines_ > 0) {
    OnStderrLine("sweep-worker: " + std::to_string(dropped_lines_) +
                 " metric lines over the per-attempt limit were not kept (docs/metrics.md)");
  }
  std::fclose(stderr_log_);
  stderr_log_ = nullptr;

  report.end.hint = hint_;
  report.end.saw_final_line = !final_line_.empty() && final_error_.empty();
  report.outcome = ClassifyOutcome(report.end);
  report.result_json = final_line_;
  report.stderr_tail = ValidUtf8Tail(stderr_tail_, settings_.stderr_tail_bytes);
  spdlog::info("attempt {} of job {}: {} (exit {}, signal {}, {} metric lines)", spec_.attempt_id,
               spec_.job_id, OutcomeName(report.outcome), report.end.exit.exit_code,
               report.end.exit.signal, spool_->last_seq());
  return report;
}

}  // namespace sweepd::agent
