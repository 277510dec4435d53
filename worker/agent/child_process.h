// ChildProcess: one program run in its own process group with its stdout and stderr
// on pipes, so that the whole tree it starts can be signalled and nothing outlives it.
// Waiting follows the "waitid(WNOWAIT), kill the group, then reap" order: the group id
// stays reserved by the zombie leader until the stragglers are killed.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace sweepd::agent {

struct ChildSpec {
  std::string program;                     // a path; not looked up in PATH
  std::vector<std::string> args;           // without argv[0]
  std::string working_dir;                 // empty: the caller's
  std::map<std::string, std::string> env;  // set on top of the caller's environment
};

// How a child ended: exactly one of exit_code >= 0 or signal > 0.
struct ExitStatus {
  int exit_code = -1;
  int signal = 0;
};

// Threads: Spawn and the fd accessors from the owner; SignalGroup from any thread;
// Wait from one thread (usually a dedicated reaper). Destruction kills and reaps a
// child that was never waited for, so no zombie or orphan is left behind.
class ChildProcess {
 public:
  static Result<std::unique_ptr<ChildProcess>> Spawn(const ChildSpec& spec);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Read ends of the child's stdout and stderr; owned here, closed by the destructor.
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }

  // Sends `sig` to every process of the child's group; a no-op once it was reaped.
  void SignalGroup(int sig);
  // Blocks until the child exits, kills what is left of its group, reaps it.
  ExitStatus Wait();

 private:
  ChildProcess(pid_t pid, int stdout_fd, int stderr_fd);

  const pid_t pid_;
  const int stdout_fd_;
  const int stderr_fd_;
  std::mutex mu_;
  bool reaped_ = false;  // guarded by mu_
};

// Calls on_line for each line read from `fd` (without the newline) until end of file.
// A last line without a newline is delivered too. Lines longer than max_line are cut.
void ReadLines(int fd, const std::function<void(const std::string&)>& on_line,
               size_t max_line = 1 << 20);

}  // namespace sweepd::agent
