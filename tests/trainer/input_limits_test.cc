// sweep-train's input limits as a real process: a JSONL row over the per-line cap
// (worker/data/jsonl.h) ends the run at once with one "invalid input" line naming FILE:LINE
// (exit 2) and bounded memory; SIGTERM while a large data file is read stops it promptly; a
// config.json with sizes no model has (common/model_shapes.h) is refused before allocating.
#include <sys/resource.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

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
using sweepd::testing::RunCommand;
using namespace std::chrono_literals;

const std::string kTrain = std::string(SWEEPD_BIN_DIR) + "/sweep-train";
const std::string kJobs = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/jobs/";
const std::string kData = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/";

// The job fixture with its train.data set to `data` (and model.source to `model` if given),
// written into `dir`.
std::string JobReading(const std::string& data, const std::string& dir, const std::string& model = "") {
  nlohmann::json job = nlohmann::json::parse(ReadFile(kJobs + "jsonl_train_data.json"));
  job["train"]["data"] = data;
  if (!model.empty()) job["model"]["source"] = model;
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
  // Signalled once it has the data file open: while it reads it.
  const auto reading = [&] {
    std::error_code ec;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(run.pid()) + "/fd", ec)) {
      if (std::filesystem::read_symlink(fd.path(), ec) == data) return true;
    }
    return false;
  };
  ASSERT_TRUE(sweepd::testing::WaitUntil(reading, 60s)) << "never opened " << data << ": " << ReadFile(dir + "/log");
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

// Under an 8 GiB address-space limit: listing or allocating 10^9 layers would end in "out of
// host memory" (or take the machine's memory) instead of the named error.
TEST(SweepTrainData, ConfigWithSizesNoModelHasIsRefusedByNameBeforeAllocating) {
  const std::string models = std::string(SWEEPD_SOURCE_DIR) + "/tests/spec/models/oversized/";
  const std::string dir = MakeTempDir("sweep-train-oversized-model-");
  const std::string data = kData + "alpaca.jsonl";
  for (const char* kind : {"train", "base_eval"}) {
    for (const auto& [folder, key] : {std::pair<const char*, const char*>{"layers-1e9", "num_hidden_layers"},
                                      {"layers-int", "num_hidden_layers"},
                                      {"vocab-huge", "vocab_size"}}) {
      const std::string job = JobReading(data, dir, models + folder);
      nlohmann::json j = nlohmann::json::parse(ReadFile(job));
      j["kind"] = kind;
      std::ofstream(job) << j.dump(2);
      std::string out;
      const int status = RunCommand({"/bin/sh", "-c",
                                     "ulimit -v 8388608; exec " + kTrain + " run --job " + job + " --workdir " + dir +
                                         "/work"},
                                    &out, 120s);
      EXPECT_EQ(status, exit_status::kInvalid) << kind << " " << folder << ": " << out;
      EXPECT_NE(out.find(std::string("invalid input: ") + models + folder + "/config.json: config needs a positive integer '" +
                         key + "' of at most"),
                std::string::npos)
          << kind << " " << folder << ": " << out;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::trainer
