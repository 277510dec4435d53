// End to end with security on: sweepd with --auth-file and mutual TLS (a CA made by
// `openssl` here), sweep-worker with a worker token and a client certificate, sweepctl with
// a submitter token and the CA; the demo sweep runs to the end and every attempt is stored
// under the worker's token name.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include "tests/support/sqlite_rows.h"

namespace sweepd {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::QueryRows;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitForPortFile;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
const std::string kOpenssl = "/usr/bin/openssl";  // RunCommand wants a path

void RunOk(const std::vector<std::string>& argv, std::string* out = nullptr) {
  std::string local;
  std::string& o = out ? *out : local;
  ASSERT_EQ(RunCommand(argv, &o), 0) << o;
}

// A token of `role` for `name`: the token in DIR/NAME.token, its line appended to `auth_file`.
std::string MakeToken(const std::string& dir, const std::string& auth_file, const std::string& role,
                      const std::string& name) {
  std::string out;
  RunOk({kBin + "/sweepctl", "--output", "json", "auth", "new-token", "--role", role, "--name", name}, &out);
  const nlohmann::json j = nlohmann::json::parse(out);
  std::ofstream(auth_file, std::ios::app) << j.at("auth_file_line").get<std::string>() << "\n";
  const std::string path = dir + "/" + name + ".token";
  std::ofstream(path) << j.at("token").get<std::string>() << "\n";
  return path;
}

void MakeCertificate(const std::string& dir, const std::string& name, bool server) {
  RunOk({kOpenssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/" + name + ".key", "-out",
       dir + "/" + name + ".csr", "-subj", "/CN=" + name});
  std::vector<std::string> argv = {kOpenssl, "x509", "-req", "-in", dir + "/" + name + ".csr", "-CA",
                                   dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial", "-out",
                                   dir + "/" + name + ".pem", "-days", "2"};
  if (server) {
    std::ofstream(dir + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
    argv.insert(argv.end(), {"-extfile", dir + "/san.ext"});
  }
  RunOk(argv);
}

TEST(SecureSweep, RunsToTheEndWithMutualTlsAndTokens) {
  const std::string dir = MakeTempDir("sweepd-secure-e2e-");
  const std::string db = dir + "/sweepd.db";
  const std::string auth = dir + "/auth";
  const std::string spec = std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml";
  RunOk({kOpenssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key", "-out",
       dir + "/ca.pem", "-days", "2", "-subj", "/CN=sweepd-test-ca"});
  MakeCertificate(dir, "sweepd", true);
  MakeCertificate(dir, "node-1", false);
  const std::string submitter = MakeToken(dir, auth, "submitter", "bob");
  const std::string worker_token = MakeToken(dir, auth, "worker", "node-1");

  ChildProcess sweepd({kBin + "/sweepd", "--db", db, "--listen", "127.0.0.1:0", "--port-file",
                       dir + "/sweepd.addr", "--auth-file", auth, "--tls-cert", dir + "/sweepd.pem",
                       "--tls-key", dir + "/sweepd.key", "--tls-client-ca", dir + "/ca.pem"},
                      dir + "/sweepd.log");
  const std::string address = WaitForPortFile(dir + "/sweepd.addr", 30s);
  ASSERT_FALSE(address.empty()) << ReadFile(dir + "/sweepd.log");
  ChildProcess worker({kBin + "/sweep-worker", "--coordinator", address, "--workdir", dir + "/worker",
                       "--token-file", worker_token, "--tls-ca", dir + "/ca.pem", "--tls-cert",
                       dir + "/node-1.pem", "--tls-key", dir + "/node-1.key"},
                      dir + "/worker.log", {"SWEEPD_CACHE=" + std::string(SWEEPD_TEST_CACHE)});
  // sweepctl: a submitter token and the CA, from the environment.
  const std::vector<std::string> sweepctl = {"/usr/bin/env", "SWEEPD_TLS_CA=" + dir + "/ca.pem",
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
      << ReadFile(dir + "/sweepd.log");
  EXPECT_EQ(WEXITSTATUS(worker.Stop()), 0) << ReadFile(dir + "/worker.log");
  EXPECT_EQ(WEXITSTATUS(sweepd.Stop()), 0) << ReadFile(dir + "/sweepd.log");

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
    EXPECT_EQ(ReadFile(dir + "/sweepd.log").find(token), std::string::npos);
  }
}

}  // namespace
}  // namespace sweepd
