// Test support: real child processes (the project's binaries) with their output in
// files, started in their own process group and always reaped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sweepd::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with `argv`; stdout and stderr are appended to `log_path`.
  ChildProcess(std::vector<std::string> argv, std::string log_path,
               std::vector<std::string> extra_env = {});
  ~ChildProcess();  // SIGKILLs the group if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits up to `timeout` for exit; returns the wait status or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`; returns the wait status.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string log_path_;
};

// Polls `done` every 50 ms until it returns true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
std::string ReadFile(const std::string& path);
// Waits until `port_file` (sweepd's --port-file, written once sweepd serves) holds an
// address and returns it without trailing whitespace; "" when `timeout` passes first.
std::string WaitForPortFile(const std::string& port_file, std::chrono::milliseconds timeout);
// A fresh directory under the system temp dir, removed by the caller if wanted.
std::string MakeTempDir(const std::string& prefix);
// Runs a command to completion, returning its exit status and (combined) output.
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::milliseconds timeout = std::chrono::minutes(5));

}  // namespace sweepd::testing
