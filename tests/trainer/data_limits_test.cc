// sweep-train's data readers as a real process (worker/data/jsonl.h): a JSONL row over the
// per-line cap ends the run at once with one "invalid input" line naming FILE:LINE (exit 2)
// and bounded memory, and SIGTERM while a large data file is read stops it promptly.
#include <sys/resource.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/contracts.h"
#include "tests/support/process.h"
#include "worker/data/jsonl.h"

namespace sweepd::trainer {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using namespace std::chrono_literals;

const std::string kTrain = std::string(SWEEPD_BIN_DIR) + "/sweep-train";
const std::string kJobs = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/jobs/";
const std::string kData = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/";

// The job fixture with its train.data set to `data`, written into `dir`.
std::string JobReading(const std::string& data, const std::string& dir) {
  nlohmann::json job = nlohmann::json::parse(ReadFile(kJobs + "jsonl_train_data.json"));
  job["train"]["data"] = data;
  const std::string path = dir + "/job.json";
  std::ofstream(path) << job.dump(2);
  return path;
}

// The largest resident set of the children waited for so far, in KiB (Linux: ru_maxrss).
long ChildrenMaxRssKib() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  return usage.ru_maxrss;
}

TEST(SweepTrainData, LineOverTheCapIsOneInvalidInputLineNamingFileAndLine) {
  const std::string dir = MakeTempDir("sweep-train-long-line-");
  const std::string data = dir + "/train.jsonl";
  const std::string good_rows = ReadFile(kData + "alpaca.jsonl");
  int64_t good_lines = 0;
  for (char c : good_rows) good_lines += c == '\n';
  {
    // 100 MB in one row, after the fixture's good rows.
    std::ofstream out(data, std::ios::binary);
    out << good_rows << "{\"instruction\": \"x\", \"output\": \"";
    const std::string chunk(1 << 20, 'y');
    for (int i = 0; i < 100; ++i) out << chunk;
    out << "\"}\n";
  }
  ChildProcess run({kTrain, "run", "--job", JobReading(data, dir), "--workdir", dir + "/work"}, dir + "/log",
                   {"SWEEPD_CACHE=" + dir + "/cache"});
  const auto start = std::chrono::steady_clock::now();
  const int status = run.Wait(60s);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_NE(status, -1) << "still running after 60 s";
  ASSERT_TRUE(WIFEXITED(status)) << ReadFile(dir + "/log");
  EXPECT_EQ(WEXITSTATUS(status), exit_status::kInvalid) << ReadFile(dir + "/log");
  const std::string log = ReadFile(dir + "/log");
  EXPECT_NE(log.find("invalid input: " + data + ":" + std::to_string(good_lines + 1) + ": the line is over the"),
            std::string::npos)
      << log;
  EXPECT_LT(log.size(), 2000u) << "the error quotes the row";
  EXPECT_LT(took, 20s);
  // The cap and the runtime, with room; far from the row's size times JSON's overhead.
  EXPECT_LT(ChildrenMaxRssKib(), (data::kMaxJsonLineBytes >> 10) * 4 + 1024 * 1024);
  std::filesystem::remove_all(dir);
}

TEST(SweepTrainData, SigtermWhileReadingDataStopsPromptly) {
  const std::string dir = MakeTempDir("sweep-train-sigterm-data-");
  const std::string data = dir + "/train.jsonl";
  {
    // Many valid rows, so that reading takes seconds.
    std::ofstream out(data, std::ios::binary);
    const std::string rows = ReadFile(kData + "alpaca.jsonl");
    while (out.tellp() < (int64_t{150} << 20)) out << rows;
  }
  ChildProcess run({kTrain, "run", "--job", JobReading(data, dir), "--workdir", dir + "/work"}, dir + "/log",
                   {"SWEEPD_CACHE=" + dir + "/cache"});
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(run.running()) << "sweep-train ended before the signal: " << ReadFile(dir + "/log");
  run.Signal(SIGTERM);
  const auto start = std::chrono::steady_clock::now();
  const int status = run.Wait(30s);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_NE(status, -1) << "still running 30 s after SIGTERM";
  ASSERT_TRUE(WIFEXITED(status)) << ReadFile(dir + "/log");
  EXPECT_EQ(WEXITSTATUS(status), exit_status::kTerminated) << ReadFile(dir + "/log");
  EXPECT_LT(took, 3s) << ReadFile(dir + "/log");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::trainer
