// Test support: one of our binaries run as a real subprocess, its stdout and stderr
// collected until it exits (the process is killed and reaped if the test ends first).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "worker/agent/child_process.h"

namespace sweepd::agent::testing {

class RunningBinary {
 public:
  RunningBinary(const std::string& program, std::vector<std::string> args,
                std::map<std::string, std::string> env = {}) {
    auto child = ChildProcess::Spawn({program, std::move(args), "", std::move(env)});
    EXPECT_TRUE(child.ok()) << child.status().message();
    if (!child.ok()) return;
    child_ = std::move(*child);
    out_ = std::thread(
        [this] { ReadLines(child_->stdout_fd(), [this](const std::string& l) { Add(l); }); });
    err_ = std::thread(
        [this] { ReadLines(child_->stderr_fd(), [this](const std::string& l) { Add(l); }); });
  }
  ~RunningBinary() {
    if (child_ && !exited_) {
      Signal(SIGKILL);
      Wait();
    }
  }
  void Signal(int sig) {
    if (child_) kill(child_->pid(), sig);
  }
  ExitStatus Wait() {
    if (!child_) return {};
    if (!exited_) {
      status_ = child_->Wait();
      out_.join();
      err_.join();
      exited_ = true;
    }
    return status_;
  }
  // True while the process exists and has not ended (a zombie has ended).
  bool Running() {
    if (!child_ || exited_) return false;
    std::ifstream stat("/proc/" + std::to_string(child_->pid()) + "/stat");
    std::string pid, name, state;
    stat >> pid >> name >> state;  // the binaries' names hold no space
    return stat && state != "Z" && state != "X";
  }
  std::string output() {
    std::lock_guard<std::mutex> lock(mu_);
    return output_;
  }

 private:
  void Add(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    output_ += line + "\n";
  }
  std::unique_ptr<ChildProcess> child_;
  std::thread out_, err_;
  std::mutex mu_;
  std::string output_;
  bool exited_ = false;
  ExitStatus status_;
};

}  // namespace sweepd::agent::testing
