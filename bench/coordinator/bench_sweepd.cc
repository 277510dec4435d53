// What the coordinator benchmarks share (bench_sweepd.h).
#include "bench/coordinator/bench_sweepd.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

extern char** environ;

namespace sweepd::bench {

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path,
            const std::vector<std::string>& extra_env) {
  std::vector<std::string> args = argv;
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  arg_ptrs.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> env_ptrs;
  for (auto& e : env) env_ptrs.push_back(e.data());
  env_ptrs.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, arg_ptrs[0], &actions, nullptr, arg_ptrs.data(),
                             env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::fprintf(stderr, "bench: cannot start %s\n", argv[0].c_str());
    std::exit(1);
  }
  return pid;
}

namespace {

std::string ReadAddress(const std::string& file, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(file);
    std::string addr;
    if (in >> addr && !addr.empty()) return addr;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "";
}

}  // namespace

pid_t StartSweepd(const std::string& sweepd, const std::string& dir, std::string& address) {
  const std::string port_file = dir + "/addr";
  const pid_t pid = Spawn({sweepd, "--db", dir + "/sweepd.db", "--listen", "127.0.0.1:0",
                           "--port-file", port_file},
                          dir + "/sweepd.log");
  address = ReadAddress(port_file, std::chrono::seconds(30));
  if (address.empty()) {
    std::fprintf(stderr, "bench: sweepd did not start; see %s/sweepd.log\n", dir.c_str());
    kill(pid, SIGKILL);
    std::exit(1);
  }
  return pid;
}

std::string GenerateSpec(const std::string& name, int jobs) {
  const int ranks = std::min(jobs, 100);
  const int seeds = (jobs + ranks - 1) / ranks;
  std::ostringstream s;
  s << "name: " << name
    << "\nbase: {model: \"synthetic:tiny\"}\ntracks: [A]\ntrain: {steps: 1}\nseeds: [";
  for (int i = 0; i < seeds; ++i) s << (i ? ", " : "") << i;
  s << "]\nmethods:\n  - {method: lora, r: [";
  for (int r = 1; r <= ranks; ++r) s << (r > 1 ? ", " : "") << r;
  s << "]}\n";
  return s.str();
}

int64_t PeakRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos) return 0;
  std::istringstream fields(stat.substr(end_of_name + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace sweepd::bench
