// ChildProcess: posix_spawn with its own process group, pipes, group kill, reaping.
#include "worker/agent/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

extern char** environ;

namespace sweepd::agent {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// The caller's environment with `overrides` applied, as "K=V" strings.
std::vector<std::string> BuildEnvironment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos && overrides.count(entry.substr(0, eq)) > 0) continue;
    env.push_back(std::move(entry));
  }
  for (const auto& [k, v] : overrides) env.push_back(std::string(k).append("=").append(v));
  return env;
}

std::vector<char*> PointersTo(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const ChildSpec& spec) {
  int out[2], err[2];
  // O_CLOEXEC: other threads spawning at the same time must not inherit these ends.
  if (pipe2(out, O_CLOEXEC) != 0) return Status::Internal(Errno("pipe"));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return Status::Internal(Errno("pipe"));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  if (!spec.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The agent blocks its shutdown signals in every thread; the trainer must not inherit that.
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> argv_strings{spec.program};
  argv_strings.insert(argv_strings.end(), spec.args.begin(), spec.args.end());
  std::vector<std::string> env_strings = BuildEnvironment(spec.env);
  std::vector<char*> argv = PointersTo(argv_strings);
  std::vector<char*> envp = PointersTo(env_strings);

  pid_t pid = 0;
  const int rc = posix_spawn(&pid, spec.program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    return Status::Unavailable("cannot run " + spec.program + ": " + std::strerror(rc));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, out[0], err[0]));
}

ChildProcess::ChildProcess(pid_t pid, int stdout_fd, int stderr_fd)
    : pid_(pid), stdout_fd_(stdout_fd), stderr_fd_(stderr_fd) {}

ChildProcess::~ChildProcess() {
  bool reaped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reaped = reaped_;
  }
  if (!reaped) {
    SignalGroup(SIGKILL);
    Wait();
  }
  close(stdout_fd_);
  close(stderr_fd_);
}

void ChildProcess::SignalGroup(int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!reaped_) kill(-pid_, sig);
}

ExitStatus ChildProcess::Wait() {
  siginfo_t info{};
  // Wait without reaping: while the leader is a zombie its group id cannot be reused.
  while (waitid(P_PID, pid_, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  kill(-pid_, SIGKILL);  // stragglers (e.g. data loader processes) die with the job
  int wstatus = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  ExitStatus status;
  if (WIFEXITED(wstatus)) status.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) status.signal = WTERMSIG(wstatus);
  return status;
}

void ReadLines(int fd, const std::function<void(const std::string&)>& on_line, size_t max_line) {
  std::string pending;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t start = 0;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') continue;
      pending.append(buf + start, i - start);
      if (pending.size() > max_line) pending.resize(max_line);
      on_line(pending);
      pending.clear();
      start = i + 1;
    }
    pending.append(buf + start, n - start);
    if (pending.size() > max_line) pending.resize(max_line);
  }
  if (!pending.empty()) on_line(pending);
}

}  // namespace sweepd::agent
