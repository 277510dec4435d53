// Every kind of bad spec (tests/client/fixtures/bad_specs/) is refused the same way by
// `sweepctl validate` (no server) and `sweepctl submit` (against the real sweepd): exit 3
// (an invalid spec), the problem printed as FILE:LINE:COL: FIELD: MESSAGE, and not one row
// of sweepd's database changed.
#include <sqlite3.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

struct BadSpec {
  const char* file;  // under tests/client/fixtures/bad_specs/
  int line;
  const char* field;  // "" where the problem is not about one field (YAML syntax)
  const char* text;   // part of the message
};

const BadSpec kBadSpecs[] = {
    {"yaml_syntax.yaml", 4, "", "YAML syntax"},
    {"unknown_key.yaml", 7, "colour", "unknown key"},
    {"unknown_method.yaml", 7, "methods[1].method", "unknown method 'lorra'"},
    {"unknown_option.yaml", 6, "methods[0].rank", "unknown option of lora"},
    {"jora_unknown_option.yaml", 6, "methods[0].SL", "unknown option of jora; known: S_L"},
    {"lora_plus_negative_ratio.yaml", 6, "methods[0].lr_ratio", "must be greater than 0, got -1"},
    {"wrong_type.yaml", 7, "methods[1].r", "must be an integer"},
    {"empty_grid.yaml", 6, "methods[0].alpha", "empty list"},
    {"grid_over_limit.yaml", 6, "methods", "over the limit of 10000"},
    {"over_budget.yaml", 9, "methods[1]", "1.241x the reference"},
    {"eval_unknown_metric.yaml", 6, "eval[0].metric", "unknown metric 'accuracy' for arc_challenge"},
    {"eval_fewshot_without_source.yaml", 6, "eval[0].fewshot", "set fewshot: FILE"},
};

void PrintTo(const BadSpec& spec, std::ostream* os) { *os << spec.file; }

// Every row of every table, as text: equal dumps mean an unchanged database.
std::vector<std::string> DumpTables(const std::string& db_path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  auto rows_of = [&](const std::string& sql) {
    std::vector<std::string> rows;
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const auto* text = sqlite3_column_text(stmt, i);
        row += (text ? reinterpret_cast<const char*>(text) : "NULL") + std::string("|");
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    return rows;
  };
  std::vector<std::string> dump;
  for (const std::string& table :
       rows_of("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")) {
    const std::string name = table.substr(0, table.size() - 1);
    std::vector<std::string> rows = rows_of("SELECT * FROM \"" + name + "\"");
    std::sort(rows.begin(), rows.end());
    dump.push_back("table " + name + ": " + std::to_string(rows.size()) + " rows");
    for (std::string& r : rows) dump.push_back(name + ": " + r);
  }
  sqlite3_close(db);
  return dump;
}

// One sweepd for the suite, holding one good sweep (sweeps/demo-cpu.yaml) so the tables
// have rows to keep.
class BadSpecs : public ::testing::TestWithParam<BadSpec> {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("sweepctl-bad-specs-");
    db_ = dir_ + "/sweepd.db";
    const std::string addr_file = dir_ + "/addr";
    sweepd_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kBin + "/sweepd", "--db", db_, "--listen", "127.0.0.1:0",
                                 "--port-file", addr_file},
        dir_ + "/sweepd.log");
    addr_ = WaitForPortFile(addr_file, 30s);
    ASSERT_FALSE(addr_.empty()) << ReadFile(dir_ + "/sweepd.log");
    std::string out;
    ASSERT_EQ(Ctl({"--coordinator", addr_, "submit", kSource + "/sweeps/demo-cpu.yaml"}, &out), 0)
        << out;
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
    return RunCommand(args, out);
  }
  // The problem line sweepctl must print: FILE:LINE:COL: FIELD: ...text...
  static void ExpectProblemNamed(const BadSpec& spec, const std::string& out) {
    const std::string at = std::string(spec.file) + ":" + std::to_string(spec.line) + ":";
    const size_t pos = out.find(at);
    ASSERT_NE(pos, std::string::npos) << "no problem at " << at << " in:\n" << out;
    const std::string line = out.substr(pos, out.find('\n', pos) - pos);
    if (*spec.field != '\0') {
      EXPECT_NE(line.find(std::string(": ") + spec.field + ": "), std::string::npos) << line;
    }
    EXPECT_NE(line.find(spec.text), std::string::npos) << line;
  }

  static inline std::string dir_, db_, addr_;
  static inline std::unique_ptr<ChildProcess> sweepd_;
};

TEST_P(BadSpecs, ValidateAndSubmitBothRefuseItNamingLineAndFieldAndTheDatabaseIsUnchanged) {
  const BadSpec& spec = GetParam();
  const std::string path = kSource + "/tests/client/fixtures/bad_specs/" + spec.file;
  const std::vector<std::string> before = DumpTables(db_);
  ASSERT_NE(std::find_if(before.begin(), before.end(),
                         [](const std::string& row) { return row.rfind("jobs: ", 0) == 0; }),
            before.end())
      << "the demo sweep's jobs are stored";

  std::string out;
  EXPECT_EQ(Ctl({"validate", path}, &out), 3) << out;
  ExpectProblemNamed(spec, out);

  EXPECT_EQ(Ctl({"--coordinator", addr_, "submit", path}, &out), 3) << out;
  ExpectProblemNamed(spec, out);

  // The refusal is recorded in the audit trail (who, when, outcome) and nowhere else.
  auto except_audit = [](std::vector<std::string> rows) {
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [](const std::string& r) {
                                return r.rfind("audit: ", 0) == 0 || r.rfind("table audit:", 0) == 0 ||
                                       r.rfind("sqlite_sequence: audit|", 0) == 0;
                              }),
               rows.end());
    return rows;
  };
  const std::vector<std::string> after = DumpTables(db_);
  EXPECT_EQ(except_audit(after), except_audit(before)) << "submitting " << spec.file << " changed the database";
  ASSERT_FALSE(after.empty());
  const auto last_audit = std::find_if(after.rbegin(), after.rend(),
                                       [](const std::string& r) { return r.rfind("audit: ", 0) == 0; });
  ASSERT_NE(last_audit, after.rend());
  EXPECT_NE(last_audit->find("|submit|"), std::string::npos) << *last_audit;
  EXPECT_NE(last_audit->find("INVALID_ARGUMENT"), std::string::npos) << *last_audit;
  ASSERT_EQ(Ctl({"--coordinator", addr_, "list"}, &out), 0) << out;
  EXPECT_NE(out.find("demo"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(EveryKind, BadSpecs, ::testing::ValuesIn(kBadSpecs),
                         [](const ::testing::TestParamInfo<BadSpec>& info) {
                           std::string name = info.param.file;
                           name = name.substr(0, name.find('.'));
                           name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
                           return name;
                         });

}  // namespace
}  // namespace sweepd::client
