// Limits on every spec input, seen through the real sweepctl (and the real sweepd for
// submit): only regular files (or stdin) read, within the spec size cap; bytes that are not
// UTF-8, numbers out of range and impossible model shapes each one named problem; a spec of
// 60,000 problems answered with a bounded list; no message quoting a long input whole; and
// byte-flipped copies of sweeps/*.yaml never crash sweepctl validate.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "spec/spec_text.h"
#include "spec/sweep_spec.h"
#include "tests/support/process.h"

namespace sweepd::client {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitForPortFile;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
const std::string kSource = SWEEPD_SOURCE_DIR;
const std::string kFixtures = kSource + "/tests/client/fixtures/spec_limits/";
const std::string kModels = kSource + "/tests/spec/models/oversized/";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The demo spec with `line` added at the end: a valid spec but for what `line` says.
std::string DemoWith(const std::string& extra) {
  return ReadFile(kSource + "/sweeps/demo-cpu.yaml") + extra;
}

class SpecLimits : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("sweepctl-spec-limits-");
    const std::string addr_file = dir_ + "/addr";
    sweepd_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kBin + "/sweepd", "--db", dir_ + "/sweepd.db", "--listen", "127.0.0.1:0",
                                 "--port-file", addr_file},
        dir_ + "/sweepd.log");
    addr_ = WaitForPortFile(addr_file, 30s);
    ASSERT_FALSE(addr_.empty()) << ReadFile(dir_ + "/sweepd.log");
  }
  static void TearDownTestSuite() {
    if (sweepd_) {
      EXPECT_EQ(WEXITSTATUS(sweepd_->Stop()), 0) << ReadFile(dir_ + "/sweepd.log");
    }
    sweepd_.reset();
    std::filesystem::remove_all(dir_);
  }
  static int Ctl(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), kBin + "/sweepctl");
    return RunCommand(args, out, 60s);
  }
  // sweepctl through sh, for stdin redirection and ulimit.
  static int Shell(const std::string& command, std::string* out) {
    return RunCommand({"/bin/sh", "-c", command}, out, 60s);
  }
  static std::string Temp(const std::string& name) { return dir_ + "/" + name; }

  static inline std::string dir_, addr_;
  static inline std::unique_ptr<ChildProcess> sweepd_;
};

// One line naming the path and why, exit 2 (a bad argument), within the timeout (no hang).
void ExpectRefusedInOneLine(int status, const std::string& out, const std::string& path, const std::string& why) {
  EXPECT_EQ(status, 2) << out;
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_NE(lines[0].find(path), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(why), std::string::npos) << lines[0];
}

TEST_F(SpecLimits, DirectoryFifoDeviceAndSocketAreRefusedInOneLineWithoutReading) {
  const std::string folder = Temp("a-folder");
  std::filesystem::create_directories(folder);
  const std::string fifo = Temp("a-fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string sock = Temp("a-socket");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.size(), sizeof addr.sun_path);
  std::copy(sock.begin(), sock.end(), addr.sun_path);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const struct {
    std::string path, why;
  } cases[] = {{folder, "is a directory"}, {fifo, "is a pipe"}, {"/dev/zero", "is a device"}, {sock, "is a socket"}};
  for (const auto& c : cases) {
    std::string out;
    ExpectRefusedInOneLine(Ctl({"validate", c.path}, &out), out, c.path, c.why);
    ExpectRefusedInOneLine(Ctl({"submit", "--dry-run", c.path}, &out), out, c.path, c.why);
    ExpectRefusedInOneLine(Ctl({"--coordinator", addr_, "submit", c.path}, &out), out, c.path, c.why);
  }
  ::close(fd);
}

TEST_F(SpecLimits, SpecOverTheSizeCapIsRefusedFromAFileAndFromStdin) {
  const std::string big = Temp("big.yaml");
  std::string text = DemoWith("");
  text += "# " + std::string(static_cast<size_t>(spec::kMaxSpecBytes), 'x') + "\n";
  WriteFile(big, text);
  std::string out;
  ExpectRefusedInOneLine(Ctl({"validate", big}, &out), out, big, "1 MiB limit");
  ExpectRefusedInOneLine(Shell(kBin + "/sweepctl validate - < " + big, &out), out, "stdin", "1 MiB limit");
  // A stream with no end is cut at the cap as well.
  ExpectRefusedInOneLine(Shell(kBin + "/sweepctl validate - < /dev/zero", &out), out, "stdin", "1 MiB limit");
}

TEST_F(SpecLimits, StdinSpecIsReadLikeAFile) {
  std::string out;
  ASSERT_EQ(Shell(kBin + "/sweepctl validate - < " + kSource + "/sweeps/demo-cpu.yaml", &out), 0) << out;
  EXPECT_NE(out.find("-: ok, sweep 'demo'"), std::string::npos) << out;
  EXPECT_EQ(Shell(kBin + "/sweepctl submit --dry-run - < " + kSource + "/sweeps/demo-cpu.yaml", &out), 0) << out;
}

// Where the first byte that is not ASCII sits in `text`: line and column, 1-based.
std::pair<int, int> FirstNonAscii(const std::string& text) {
  int line = 1, column = 1;
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) >= 0x80) break;
    if (ch == '\n') ++line, column = 1;
    else ++column;
  }
  return {line, column};
}

TEST_F(SpecLimits, ByteThatIsNotUtf8IsOneProblemNamingItsLineAndColumn) {
  const std::string path = kFixtures + "not_utf8.yaml";
  const auto [line, column] = FirstNonAscii(ReadFile(path));
  const std::string at = path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  std::string out;
  EXPECT_EQ(Ctl({"validate", path}, &out), 3) << out;
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u) << out;  // the problem and "1 problem; nothing was submitted"
  EXPECT_EQ(lines[0].rfind(at, 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("not UTF-8"), std::string::npos) << lines[0];

  EXPECT_EQ(Ctl({"--output", "json", "validate", path}, &out), 3) << out;
  const auto j = nlohmann::json::parse(out.substr(out.find('[')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  ASSERT_EQ(j[0]["problems"].size(), 1u) << out;
  EXPECT_EQ(j[0]["problems"][0]["line"], line);
  EXPECT_EQ(j[0]["problems"][0]["column"], column);

  EXPECT_EQ(Ctl({"--coordinator", addr_, "submit", path}, &out), 3) << out;
  EXPECT_NE(out.find(at), std::string::npos) << out;
}

TEST_F(SpecLimits, NumbersOutOfRangeAreEachANamedProblemNeverTruncated) {
  const std::string path = kFixtures + "out_of_range_options.yaml";
  std::string out;
  EXPECT_EQ(Ctl({"--output", "json", "validate", path}, &out), 3) << out;
  const auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  std::vector<std::string> fields;
  for (const auto& p : j[0]["problems"]) {
    fields.push_back(p["field"].get<std::string>());
    EXPECT_GT(p["line"].get<int>(), 0) << p.dump();
  }
  for (const char* field : {"methods[0].r", "methods[1].alpha", "methods[2].alpha", "methods[3].lr",
                            "methods[4].lr[0]", "priority", "max_attempts"}) {
    EXPECT_NE(std::find(fields.begin(), fields.end(), field), fields.end()) << field << " in " << out;
  }
  EXPECT_EQ(out.find("trainable parameters"), std::string::npos) << "r was counted: " << out;
}

TEST_F(SpecLimits, SixtyThousandProblemsAreAnsweredWithTheFirstHundredAndACount) {
  const int kProblems = 60000;  // the count that once made submit fail with a message-size error
  std::string extra;
  for (int i = 0; i < kProblems; ++i) extra += "k" + std::to_string(i) + ": 1\n";
  const std::string path = Temp("many.yaml");
  WriteFile(path, DemoWith(extra));
  const std::string more =
      "and " + std::to_string(kProblems - static_cast<int>(spec::kMaxReportedProblems)) + " more problems";
  std::string out;
  EXPECT_EQ(Ctl({"validate", path}, &out), 3) << out.substr(0, 2000);
  EXPECT_NE(out.find(more), std::string::npos) << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
  EXPECT_LE(Lines(out).size(), spec::kMaxReportedProblems + 2);

  EXPECT_EQ(Ctl({"--coordinator", addr_, "submit", path}, &out), 3) << out.substr(0, 2000);
  EXPECT_NE(out.find(more), std::string::npos) << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
  EXPECT_LE(Lines(out).size(), spec::kMaxReportedProblems + 2);
}

TEST_F(SpecLimits, LongInputsAreQuotedAsShortExcerpts) {
  const std::string long_text(100000, 'n');
  std::string spec = DemoWith("");
  const size_t at = spec.find("\nname: ");
  spec.replace(at + 7, spec.find('\n', at + 1) - (at + 7), long_text);
  spec += long_text + ": 1\n";                            // an unknown key
  spec += "resources_device_alias: " + long_text + "\n";  // an unknown key with a long value
  const std::string path = Temp("long.yaml");
  WriteFile(path, spec);
  std::string out;
  EXPECT_EQ(Ctl({"validate", path}, &out), 3) << out.substr(0, 2000);
  for (const std::string& line : Lines(out)) EXPECT_LT(line.size(), 2000u) << line.substr(0, 300);
  EXPECT_EQ(Ctl({"--coordinator", addr_, "submit", path}, &out), 3) << out.substr(0, 2000);
  for (const std::string& line : Lines(out)) EXPECT_LT(line.size(), 2000u) << line.substr(0, 300);
}

// sweepctl validate under a 1 GiB address-space limit: listing 10^9 layers, or allocating for
// them, would fail with bad_alloc instead of the named error.
TEST_F(SpecLimits, ImpossibleModelShapesAreRefusedByNameBeforeAnythingIsAllocated) {
  const struct {
    const char* folder;
    const char* key;
  } cases[] = {{"layers-1e9", "num_hidden_layers"}, {"layers-int", "num_hidden_layers"}, {"vocab-huge", "vocab_size"}};
  std::string tmpl = ReadFile(kFixtures + "huge_model.yaml");
  for (const auto& c : cases) {
    std::string spec = tmpl;
    spec.replace(spec.find("MODEL"), 5, "\"" + kModels + c.folder + "\"");
    const std::string path = Temp(std::string(c.folder) + ".yaml");
    WriteFile(path, spec);
    std::string out;
    EXPECT_EQ(Shell("ulimit -v 1048576; exec " + kBin + "/sweepctl validate " + path, &out), 3) << out;
    EXPECT_NE(out.find(std::string("base.model: ")), std::string::npos) << out;
    EXPECT_NE(out.find(std::string("'") + c.key + "' of at most"), std::string::npos) << out;
    EXPECT_EQ(Ctl({"--coordinator", addr_, "submit", path}, &out), 3) << out;
    EXPECT_NE(out.find(std::string("'") + c.key + "' of at most"), std::string::npos) << out;
  }
}

// Copies of every spec in sweeps/ with a few bytes replaced (a fixed seed, so a failure
// repeats): sweepctl validate answers each with exit 0 or 3 (docs/sweepctl.md), never a crash
// or a hang, and every problem names its line or its field.
TEST_F(SpecLimits, ByteFlippedSpecsNeverCrashValidate) {
  std::vector<std::string> specs;
  for (const auto& e : std::filesystem::directory_iterator(kSource + "/sweeps")) {
    if (e.path().extension() == ".yaml") specs.push_back(e.path().string());
  }
  std::sort(specs.begin(), specs.end());
  ASSERT_FALSE(specs.empty());
  std::mt19937 rng(20261203);
  const int kCopies = 300;
  int invalid = 0;
  for (int i = 0; i < kCopies; ++i) {
    std::string text = ReadFile(specs[static_cast<size_t>(i) % specs.size()]);
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      text[rng() % text.size()] = static_cast<char>(rng() % 256);
    }
    const std::string path = Temp("flipped-" + std::to_string(i) + ".yaml");
    WriteFile(path, text);
    std::string out;
    const int status = Ctl({"--output", "json", "validate", path}, &out);
    ASSERT_TRUE(status == 0 || status == 3) << "exit " << status << " for " << path << ":\n" << out;
    const auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << path << ":\n" << out;
    invalid += status == 3;
    for (const auto& p : j[0]["problems"]) {
      const bool placed = p["line"].get<int>() > 0 || !p["field"].get<std::string>().empty() ||
                          p["message"].get<std::string>().rfind("and ", 0) == 0;
      EXPECT_TRUE(placed) << path << ": " << p.dump();
    }
    std::filesystem::remove(path);
  }
  EXPECT_GT(invalid, 0) << "no copy was invalid: the flips changed nothing";
}

}  // namespace
}  // namespace sweepd::client
