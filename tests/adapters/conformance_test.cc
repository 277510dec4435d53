// Every reference file in tests/fixtures/adapters passes `sweep-train conformance`: run
// in-process through the subcommand's CLI, and through the real binary when it is built.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "worker/io/safetensors.h"
#include "worker/trainer/commands.h"

namespace sweepd {
namespace {

std::vector<std::string> FixtureFiles() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(SWEEPD_FIXTURES) + "/adapters")) {
    if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

int RunConformance(const std::vector<std::string>& files) {
  CLI::App app;
  int exit_code = -1;
  trainer::AddConformanceCommand(app, &exit_code);
  std::vector<std::string> args = {"sweep-train", "conformance"};
  args.insert(args.end(), files.begin(), files.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return exit_code;
}

TEST(ConformanceTest, EveryFixtureFilePasses) {
  const auto files = FixtureFiles();
  ASSERT_GE(files.size(), 20u);
  for (const std::string& f : files) {
    EXPECT_EQ(RunConformance({f}), 0) << f;
  }
}

TEST(ConformanceTest, TamperedReferenceFails) {
  // A reference whose y is off must fail: the check can fail.
  const std::string dir = ::testing::TempDir() + "/conformance_tampered";
  std::filesystem::create_directories(dir);
  const std::string src = std::string(SWEEPD_FIXTURES) + "/adapters/lora_r4.safetensors";
  const std::string dst = dir + "/lora_r4_tampered.safetensors";
  std::filesystem::copy_file(src, dst, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::permissions(dst, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  // Flip one byte in the last tensor data block (the file's tail holds tensor data).
  std::FILE* fp = std::fopen(dst.c_str(), "r+b");
  ASSERT_NE(fp, nullptr);
  std::fseek(fp, -3, SEEK_END);
  int c = std::fgetc(fp);
  std::fseek(fp, -3, SEEK_END);
  std::fputc(c ^ 0x40, fp);
  std::fclose(fp);
  EXPECT_NE(RunConformance({dst}), 0);
}

// A reference file whose config has an option the method does not have is unusable (exit 2),
// and the message names the option and lists the known ones, as at every other entry point.
TEST(ConformanceTest, AnUnknownOptionInTheConfigMakesTheFileUnusable) {
  const std::string dir = ::testing::TempDir() + "/conformance_unknown_option";
  std::filesystem::create_directories(dir);
  const std::string dst = dir + "/jora_misspelt.safetensors";
  {
    io::SafetensorsFile src = io::SafetensorsFile::Open(std::string(SWEEPD_FIXTURES) + "/adapters/jora_diag_angle.safetensors");
    std::map<std::string, torch::Tensor> tensors;
    for (const std::string& n : src.Names()) tensors[n] = src.Get(n).clone();
    std::map<std::string, std::string> metadata = src.Metadata();
    nlohmann::json config = nlohmann::json::parse(metadata.at("config"));
    config["SL"] = config.at("S_L");  // the misspelling a user makes
    config.erase("S_L");
    metadata["config"] = config.dump();
    io::SaveSafetensors(dst, tensors, metadata);
  }
  std::ostringstream captured;
  std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
  const int status = RunConformance({dst});
  std::cout.rdbuf(old);
  EXPECT_EQ(status, 2) << captured.str();
  EXPECT_NE(captured.str().find("UNUSABLE"), std::string::npos) << captured.str();
  EXPECT_NE(captured.str().find("unknown option 'SL' of jora"), std::string::npos) << captured.str();
  EXPECT_NE(captured.str().find("S_L"), std::string::npos) << captured.str();
}

TEST(ConformanceTest, BinaryPassesEveryFixtureFile) {
  const std::string bin = std::string(SWEEPD_BIN_DIR) + "/sweep-train";
  if (!std::filesystem::exists(bin)) GTEST_SKIP() << bin << " not built";
  std::string cmd = bin + " conformance";
  for (const std::string& f : FixtureFiles()) cmd += " '" + f + "'";
  cmd += " > " + ::testing::TempDir() + "/conformance.out 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "see " << ::testing::TempDir() << "/conformance.out";
}

}  // namespace
}  // namespace sweepd
