// Progress text. Terminal redraws use only "cursor up" and "clear to end of screen"
// (ESC[nA, ESC[J), which every terminal emulator in use understands.
#include "client/progress_view.h"

#include <cstdio>
#include <ctime>

#include "client/table_format.h"

namespace sweepd::client {
namespace {

int64_t Done(const SweepInfo& s) { return s.Count("succeeded") + s.Count("failed") + s.Count("cancelled"); }

std::string UtcNow(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string ProgressView::Bar(int64_t done, int64_t total, int width) {
  int filled = total > 0 ? static_cast<int>(done * width / total) : width;
  return "[" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
}

std::string ProgressView::Duration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  char buf[32];
  if (seconds >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(seconds / 3600),
                  static_cast<long long>(seconds % 3600 / 60));
  } else if (seconds >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(seconds / 60),
                  static_cast<long long>(seconds % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(seconds));
  }
  return buf;
}

std::string ProgressView::Eta(const SweepInfo& s, int64_t now_ms) {
  const int64_t done = Done(s);
  if (done == 0 || s.submitted_ms <= 0 || now_ms <= s.submitted_ms) return "";
  const double per_job_ms = static_cast<double>(now_ms - s.submitted_ms) / static_cast<double>(done);
  return Duration(static_cast<int64_t>(per_job_ms * static_cast<double>(s.total_jobs - done) / 1000.0));
}

std::string ProgressView::CountsText(const SweepInfo& s) const {
  std::string text;
  for (const auto& state : JobStates()) {
    if (s.Count(state) == 0) continue;
    text += (text.empty() ? "" : "  ") + state + " " + std::to_string(s.Count(state));
  }
  return text.empty() ? "no jobs" : text;
}

void ProgressView::Show(const SweepProgress& p, int64_t now_ms) {
  const SweepInfo& s = p.summary;
  const int64_t done = Done(s);
  const int pct = s.total_jobs > 0 ? static_cast<int>(100 * done / s.total_jobs) : 100;
  const std::string eta = Eta(s, now_ms);
  if (!redraw_) {
    // Counts only: the ETA changes every poll and would repeat the line.
    std::string line = s.name + " " + std::to_string(done) + "/" + std::to_string(s.total_jobs) + " done (" +
                       std::to_string(pct) + "%)  " + CountsText(s);
    if (line == last_plain_) return;
    last_plain_ = line;
    out_ << UtcNow(now_ms) << " " << line << (eta.empty() ? "" : "  eta " + eta) << "\n";
    out_.flush();
    return;
  }
  std::string block = s.name + "  " + Bar(done, s.total_jobs, 30) + "  " + std::to_string(done) + "/" +
                      std::to_string(s.total_jobs) + "  " + std::to_string(pct) + "%  ETA " +
                      (eta.empty() ? "unknown" : eta) + "\n" + CountsText(s) + "\n";
  if (!p.running.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : p.running) {
      char loss[32], tps[32];
      std::snprintf(loss, sizeof loss, "%.4f", r.loss);
      std::snprintf(tps, sizeof tps, "%.0f", r.tokens_per_s);
      const bool started = r.total_steps > 0;
      rows.push_back({r.job_id, r.worker, started ? std::to_string(r.step) + "/" + std::to_string(r.total_steps) : "-",
                      started ? loss : "-", started ? tps : "-"});
    }
    block += "\n" + RenderPlainTable({"Running job", "Worker", "Step", "Loss", "Tokens/s"}, rows,
                                     {false, false, true, true, true});
  }
  if (lines_drawn_ > 0) out_ << "\x1b[" << lines_drawn_ << "A\x1b[J";
  out_ << block;
  out_.flush();
  lines_drawn_ = 0;
  for (char ch : block) lines_drawn_ += ch == '\n';
}

void ProgressView::Finish(const SweepProgress& p) {
  const SweepInfo& s = p.summary;
  out_ << "sweep " << s.name << " ended: " << s.Count("succeeded") << " succeeded, " << s.Count("failed")
       << " failed, " << s.Count("cancelled") << " cancelled";
  if (s.Count("failed") > 0) out_ << "; see `sweepctl status " << s.name << "`, then `sweepctl retry " << s.name << "`";
  out_ << "\n";
  out_.flush();
}

}  // namespace sweepd::client
