// End to end with security on: sweepd with --auth-file and mutual TLS (a CA made by
// `openssl` here), sweep-worker with a worker token and a client certificate, sweepctl with
// a submitter token and the CA; the demo sweep runs to the end and every attempt is stored
// under the worker's token name.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/secure_sweepd.h"
#include "tests/support/sqlite_rows.h"

namespace sweepd {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::QueryRows;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::TestPki;
using sweepd::testing::TestSweepd;
using sweepd::testing::TestTokens;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
TEST(SecureSweep, RunsToTheEndWithMutualTlsAndTokens) {
  const std::string dir = MakeTempDir("sweepd-secure-e2e-");
  const std::string spec = std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml";
  TestPki pki(dir);
  pki.Sign("sweepd", "2", /*server=*/true);
  pki.Sign("node-1", "2");
  TestTokens tokens(dir, kBin + "/sweepctl");
  const std::string submitter = tokens.Add("submitter", "bob");
  const std::string worker_token = tokens.Add("worker", "node-1");

  TestSweepd sweepd(kBin, dir, {"--auth-file", tokens.auth_file, "--tls-cert", pki.cert("sweepd"), "--tls-key",
                                pki.key("sweepd"), "--tls-client-ca", pki.ca()});
  ASSERT_FALSE(sweepd.address.empty());
  const std::string& address = sweepd.address;
  const std::string& db = sweepd.db;
  ChildProcess worker({kBin + "/sweep-worker", "--coordinator", address, "--workdir", dir + "/worker",
                       "--token-file", worker_token, "--tls-ca", pki.ca(), "--tls-cert", pki.cert("node-1"),
                       "--tls-key", pki.key("node-1")},
                      dir + "/worker.log", {"SWEEPD_CACHE=" + std::string(SWEEPD_TEST_CACHE)});
  // sweepctl: a submitter token and the CA, from the environment.
  const std::vector<std::string> sweepctl = {"/usr/bin/env", "SWEEPD_TLS_CA=" + pki.ca(),
                                             "SWEEPD_TOKEN_FILE=" + submitter, kBin + "/sweepctl",
                                             "--coordinator", address};
  auto run_sweepctl = [&](std::vector<std::string> args, std::string* out,
                          std::chrono::milliseconds timeout = 5min) {
    args.insert(args.begin(), sweepctl.begin(), sweepctl.end());
    return RunCommand(args, out, timeout);
  };
  std::string out;
  ASSERT_EQ(run_sweepctl({"submit", spec}, &out), 0) << out;
  ASSERT_EQ(run_sweepctl({"watch", "demo"}, &out, 15min), 0)
      << out << "\nworker log:\n" << ReadFile(dir + "/worker.log") << "\nsweepd log:\n"
      << ReadFile(sweepd.log);
  EXPECT_EQ(WEXITSTATUS(worker.Stop()), 0) << ReadFile(dir + "/worker.log");
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0) << ReadFile(sweepd.log);

  const auto states = QueryRows(db,
                                "SELECT j.state FROM jobs j JOIN sweep_jobs s ON s.job_id = j.job_id "
                                "WHERE s.sweep = 'demo'");
  ASSERT_FALSE(states.empty());
  for (const auto& row : states) EXPECT_EQ(row[0], "succeeded");
  // Every attempt ran under the worker token's name.
  const auto workers = QueryRows(db, "SELECT DISTINCT worker_id FROM attempts");
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0][0].rfind("node-1@", 0), 0u) << workers[0][0];
  EXPECT_FALSE(QueryRows(db, "SELECT job_id FROM results").empty());
  // No token ever reached a log.
  for (const std::string& f : {submitter, worker_token}) {
    std::string token = ReadFile(f);
    token.erase(token.find_last_not_of("\n") + 1);
    EXPECT_EQ(ReadFile(dir + "/worker.log").find(token), std::string::npos);
    EXPECT_EQ(ReadFile(sweepd.log).find(token), std::string::npos);
  }
}

}  // namespace
}  // namespace sweepd
