#include "tests/support/local_sweep.h"

#include <chrono>
#include <fstream>

#include "tests/support/process.h"

namespace sweepd::testing {

using namespace std::chrono_literals;

std::string ReplaceAll(std::string text, const std::vector<std::pair<std::string, std::string>>& replacements) {
  for (const auto& [key, value] : replacements) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

LocalSweepRun RunLocalSweep(const std::string& dir, const std::string& spec_template,
                            const std::vector<std::pair<std::string, std::string>>& replacements,
                            const std::string& sweep) {
  const std::string bin = SWEEPD_BIN_DIR;
  std::ofstream(dir + "/sweep.yaml") << ReplaceAll(ReadFile(spec_template), replacements);
  LocalSweepRun run;
  const std::string addr_file = dir + "/sweepd.addr";
  ChildProcess sweepd({bin + "/sweepd", "--db", dir + "/sweepd.db", "--listen", "127.0.0.1:0", "--port-file", addr_file},
                      dir + "/sweepd.log");
  const std::string address = WaitForPortFile(addr_file, 30s);
  if (address.empty()) {
    run.output = "sweepd did not listen:\n" + ReadFile(dir + "/sweepd.log");
    return run;
  }
  ChildProcess worker({bin + "/sweep-worker", "--coordinator", address, "--workdir", dir + "/worker"},
                      dir + "/worker.log", {"SWEEPD_CACHE=" + dir + "/cache"});
  if (RunCommand({bin + "/sweepctl", "--coordinator", address, "submit", dir + "/sweep.yaml"}, &run.output) != 0) {
    return run;
  }
  run.started = true;
  run.watch_status = RunCommand({bin + "/sweepctl", "--coordinator", address, "watch", sweep}, &run.output, 15min);
  if (run.watch_status != 0) run.output += "\nworker log:\n" + ReadFile(dir + "/worker.log");
  worker.Stop();
  sweepd.Stop();
  return run;
}

}  // namespace sweepd::testing
