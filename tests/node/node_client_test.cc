// sweepd against an independent client: Node.js @grpc/grpc-js with @grpc/proto-loader reading
// proto/sweepd/v1/sweepd.proto (tests/node/sweepd_call.mjs, installed from npm into the test
// cache), on a real sweepd with tokens (--auth-file), TLS and mutual TLS for workers, with
// certificates an `openssl` CA makes in the test. Each refusal is checked for its exact gRPC
// status, and the SQLite file for holding nothing from the refused call.
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include "tests/support/secure_sweepd.h"
#include "tests/support/sqlite_rows.h"

namespace sweepd {
namespace {

using nlohmann::json;
using sweepd::testing::MakeTempDir;
using sweepd::testing::QueryRows;
using sweepd::testing::TestPki;
using sweepd::testing::TestSweepd;
using sweepd::testing::TestTokens;
using sweepd::testing::WriteTextFile;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
const std::string kSource = SWEEPD_SOURCE_DIR;
const std::string kSweepctl = kBin + "/sweepctl";
const std::string kEnv = "/usr/bin/env";  // RunCommand wants paths: `env node ...`
const std::string kSpec = kSource + "/sweeps/demo-cpu.yaml";


// The Node client, installed once per test binary (tests/node/install_client.sh).
const std::string& NodeClient() {
  static const std::string path = [] {
    std::string out;
    const int rc = RunCommand({kSource + "/tests/node/install_client.sh", SWEEPD_NPM_DIR}, &out, 5min);
    EXPECT_EQ(rc, 0) << out;
    std::smatch m;
    return std::regex_search(out, m, std::regex(R"((\S+/sweepd_call\.mjs))")) ? m[1].str() : std::string();
  }();
  return path;
}

// How the Node client reaches sweepd: TLS files and a token file, each optional.
struct Connection {
  std::string address;
  std::string token_file;
  std::string tls_ca;
  std::string tls_cert;  // with tls_key: a client certificate (mutual TLS)
  std::string tls_key;
};

// One call by the Node client: its gRPC status, details and responses.
struct Call {
  std::string code;  // grpc-js' name of the status: OK, UNAUTHENTICATED, ...
  std::string details;
  json responses = json::array();
  int64_t elapsed_ms = 0;
  std::string output;  // everything the client printed, for failure messages
};

class NodeCalls {
 public:
  explicit NodeCalls(std::string dir) : dir_(std::move(dir)) {}

  Call Run(const Connection& c, const std::string& service, const std::string& method, const json& request) {
    const std::string request_file = dir_ + "/request-" + std::to_string(++n_) + ".json";
    WriteTextFile(request_file, request.dump());
    std::vector<std::string> argv = {kEnv, "node", NodeClient(), "--proto-dir", kSource + "/proto",
                                      "--address", c.address, "--deadline-ms", "20000"};
    const std::pair<const char*, std::string> flags[] = {
        {"--token-file", c.token_file}, {"--tls-ca", c.tls_ca}, {"--tls-cert", c.tls_cert}, {"--tls-key", c.tls_key}};
    for (const auto& [flag, value] : flags) {
      if (!value.empty()) argv.insert(argv.end(), {flag, value});
    }
    argv.insert(argv.end(), {service, method, request_file});
    Call call;
    EXPECT_EQ(RunCommand(argv, &call.output, 2min), 0) << call.output;
    std::filesystem::remove(request_file);
    // The last line is the client's JSON report.
    const size_t start = call.output.rfind("\n{");
    const json report = json::parse(call.output.substr(start == std::string::npos ? 0 : start + 1), nullptr, false);
    EXPECT_TRUE(report.is_object()) << call.output.substr(0, 2000);
    if (!report.is_object()) return call;
    call.code = report.value("code_name", "");
    call.details = report.value("details", "");
    call.responses = report.value("responses", json::array());
    call.elapsed_ms = report.value("elapsed_ms", int64_t{0});
    return call;
  }

 private:
  std::string dir_;
  int n_ = 0;
};

// A request field given as a file's bytes, unchanged (sweepd_call.mjs's {"$file": PATH}).
json FileBytes(const std::string& path) { return json{{"$file", path}}; }

// Tokens made by `sweepctl auth new-token` and their auth file.
struct Tokens : TestTokens {
  explicit Tokens(const std::string& dir) : TestTokens(dir, kSweepctl) {}
};

using Pki = TestPki;

struct Sweepd : TestSweepd {
  Sweepd(const std::string& dir, const std::vector<std::string>& extra) : TestSweepd(kBin, dir, extra) {}
};

json Submit(const std::string& spec_file) { return {{"spec_yaml", FileBytes(spec_file)}, {"spec_path", spec_file}}; }

json RegisterCpu() {
  return {{"hostname", "node-test-host"}, {"slots", {{{"index", 0}, {"device_kind", "cpu"}, {"memory_bytes", "68719476736"}}}}};
}

TEST(NodeClient, TokensRolesTlsAndWorkerConfinementHold) {
  const std::string dir = MakeTempDir("sweepd-node-");
  ASSERT_FALSE(NodeClient().empty());
  Pki pki(dir);
  pki.Sign("server", "2", /*server=*/true);
  pki.Sign("node-a", "2");
  pki.Sign("node-b", "2");
  pki.Sign("node-expired", "-1");
  Tokens tokens(dir);
  const std::string reader = tokens.Add("reader", "alice");
  const std::string submitter = tokens.Add("submitter", "bob");
  const std::string node_a = tokens.Add("worker", "node-a");
  const std::string node_b = tokens.Add("worker", "node-b");
  WriteTextFile(dir + "/wrong.token", std::string(64, '0') + "\n");
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file, "--tls-cert", pki.cert("server"), "--tls-key",
                      pki.key("server"), "--tls-client-ca", pki.ca()});
  ASSERT_FALSE(sweepd.address.empty());
  NodeCalls node(dir);
  auto as = [&](const std::string& token) { return Connection{sweepd.address, token, pki.ca(), "", ""}; };
  auto worker = [&](const std::string& token, const std::string& cert) {
    return Connection{sweepd.address, token, pki.ca(), cert.empty() ? "" : pki.cert(cert),
                      cert.empty() ? "" : pki.key(cert)};
  };

  // Refused submissions: no token, a wrong token, a reader, a worker; in plaintext.
  EXPECT_EQ(node.Run(as(""), "SweepService", "SubmitSweep", Submit(kSpec)).code, "UNAUTHENTICATED");
  EXPECT_EQ(node.Run(as(dir + "/wrong.token"), "SweepService", "SubmitSweep", Submit(kSpec)).code,
            "UNAUTHENTICATED");
  EXPECT_EQ(node.Run(as(reader), "SweepService", "SubmitSweep", Submit(kSpec)).code, "PERMISSION_DENIED");
  EXPECT_EQ(node.Run(worker(node_a, "node-a"), "SweepService", "SubmitSweep", Submit(kSpec)).code,
            "PERMISSION_DENIED");
  EXPECT_EQ(node.Run(worker(node_a, "node-a"), "SweepService", "ListSweeps", json::object()).code,
            "PERMISSION_DENIED");
  EXPECT_EQ(node.Run(Connection{sweepd.address, submitter, "", "", ""}, "SweepService", "SubmitSweep", Submit(kSpec))
                .code,
            "UNAVAILABLE");
  EXPECT_EQ(sweepd.Count("sweeps"), 0);
  EXPECT_EQ(sweepd.Count("jobs"), 0);

  // The right token and role succeed, and the reader sees the sweep.
  const Call submitted = node.Run(as(submitter), "SweepService", "SubmitSweep", Submit(kSpec));
  ASSERT_EQ(submitted.code, "OK") << submitted.output;
  ASSERT_TRUE(submitted.responses[0].value("accepted", false)) << submitted.output;
  const std::string sweep = submitted.responses[0].value("sweep", "");
  EXPECT_EQ(sweepd.Count("sweeps"), 1);
  const Call got = node.Run(as(reader), "SweepService", "GetSweep", {{"sweep", sweep}});
  ASSERT_EQ(got.code, "OK") << got.output;
  EXPECT_EQ(got.responses[0]["summary"].value("name", ""), sweep);

  // Workers: no client certificate, an expired one, then node-a's and node-b's own.
  EXPECT_EQ(node.Run(worker(node_a, ""), "WorkerService", "Register", RegisterCpu()).code, "UNAUTHENTICATED");
  EXPECT_EQ(node.Run(worker(node_a, "node-expired"), "WorkerService", "Register", RegisterCpu()).code,
            "UNAVAILABLE");
  EXPECT_EQ(sweepd.Count("workers"), 0);
  const Call reg_a = node.Run(worker(node_a, "node-a"), "WorkerService", "Register", RegisterCpu());
  const Call reg_b = node.Run(worker(node_b, "node-b"), "WorkerService", "Register", RegisterCpu());
  ASSERT_EQ(reg_a.code, "OK") << reg_a.output;
  ASSERT_EQ(reg_b.code, "OK") << reg_b.output;
  const std::string a_id = reg_a.responses[0].value("worker_id", "");
  const std::string b_id = reg_b.responses[0].value("worker_id", "");
  const Call lease = node.Run(worker(node_a, "node-a"), "WorkerService", "LeaseJob",
                              {{"worker_id", a_id}, {"device_kind", "cpu"}, {"free_memory_bytes", "68719476736"}});
  ASSERT_EQ(lease.code, "OK") << lease.output;
  ASSERT_TRUE(lease.responses[0].value("granted", false)) << lease.output;
  const std::string attempt = lease.responses[0].value("attempt_id", "");
  const int64_t fencing = std::stoll(lease.responses[0].value("fencing_token", "0"));

  // node-b forges the attempt as the issue describes: the leased job's id + ".a" + its
  // attempt count from GetSweep, and fencing tokens counted from 1.
  const Call status = node.Run(as(reader), "SweepService", "GetSweep", {{"sweep", sweep}});
  std::string forged;
  for (const json& job : status.responses[0]["jobs"]) {
    if (job.value("state", "") == "JOB_STATE_LEASED") {
      forged = job.value("job_id", "") + ".a" + std::to_string(job.value("attempts", 0));
    }
  }
  ASSERT_EQ(forged, attempt) << "the forgery recipe no longer finds the attempt id; update the test";
  const auto attempt_row = [&] {
    return QueryRows(sweepd.db, "SELECT state, lease_expires_ms, fencing_token FROM attempts WHERE attempt_id = ?1",
                     {attempt});
  };
  const auto before = attempt_row();
  const Connection b = worker(node_b, "node-b");
  for (int64_t guess = 1; guess <= fencing; ++guess) {
    const std::string token = std::to_string(guess);
    const json running = {{{"attempt_id", forged}, {"fencing_token", token}}};
    EXPECT_EQ(node.Run(b, "WorkerService", "Heartbeat", {{"worker_id", b_id}, {"running", running}}).code,
              "PERMISSION_DENIED");
    EXPECT_EQ(node.Run(b, "WorkerService", "Heartbeat", {{"worker_id", a_id}, {"running", running}}).code,
              "PERMISSION_DENIED");
    EXPECT_EQ(node.Run(b, "WorkerService", "AttemptStarted", {{"attempt_id", forged}, {"fencing_token", token}}).code,
              "PERMISSION_DENIED");
    const json batch = {{"attempt_id", forged}, {"fencing_token", token},
                        {"points", {{{"seq", "1"}, {"json", R"({"type":"step","step":1,"loss":0.5})"}}}}};
    EXPECT_EQ(node.Run(b, "WorkerService", "StreamMetrics", json::array({batch})).code, "PERMISSION_DENIED");
    const json finish = {{"attempt_id", forged}, {"fencing_token", token}, {"outcome", "OUTCOME_SUCCEEDED"},
                         {"result_json", R"({"type":"final","final_loss":0.0})"}};
    EXPECT_EQ(node.Run(b, "WorkerService", "FinishAttempt", finish).code, "PERMISSION_DENIED");
  }
  EXPECT_EQ(node.Run(b, "WorkerService", "LeaseJob", {{"worker_id", a_id}, {"device_kind", "cpu"}}).code,
            "PERMISSION_DENIED");
  EXPECT_EQ(attempt_row(), before);
  EXPECT_EQ(sweepd.Count("metric_points"), 0);
  EXPECT_EQ(sweepd.Count("results"), 0);

  // node-a's own calls on its attempt go through.
  const json running = {{{"attempt_id", attempt}, {"fencing_token", std::to_string(fencing)}}};
  const Call beat = node.Run(worker(node_a, "node-a"), "WorkerService", "Heartbeat",
                             {{"worker_id", a_id}, {"running", running}});
  EXPECT_EQ(beat.code, "OK") << beat.output;
  const json batch = {{"attempt_id", attempt}, {"fencing_token", std::to_string(fencing)},
                      {"points", {{{"seq", "1"}, {"json", R"({"type":"step","step":1,"loss":0.5})"}}}}};
  const Call streamed = node.Run(worker(node_a, "node-a"), "WorkerService", "StreamMetrics", json::array({batch}));
  EXPECT_EQ(streamed.code, "OK") << streamed.output;
  EXPECT_EQ(sweepd.Count("metric_points"), 1);
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0) << ReadFile(sweepd.log);
}

// A copy of the demo spec whose name is `n` characters long.
std::string LongNameSpec(const std::string& dir, size_t n) {
  const std::string text = ReadFile(kSpec);
  const std::regex name_line("\nname: [^\n]*");
  EXPECT_TRUE(std::regex_search(text, name_line));
  const std::string path = dir + "/name-" + std::to_string(n) + ".yaml";
  WriteTextFile(path, std::regex_replace(text, name_line, "\nname: " + std::string(n, 'a'),
                                     std::regex_constants::format_first_only));
  return path;
}

// Every status message stays far below gRPC's 8 KiB default metadata limit.
constexpr size_t kBoundedDetails = 1024;

TEST(NodeClient, OversizedFieldsAreRefusedPromptlyAndNothingIsStored) {
  const std::string dir = MakeTempDir("sweepd-node-");
  ASSERT_FALSE(NodeClient().empty());
  Tokens tokens(dir);
  const std::string admin = tokens.Add("admin", "root");
  const std::string worker = tokens.Add("worker", "node-a");
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file});
  ASSERT_FALSE(sweepd.address.empty());
  NodeCalls node(dir);
  const Connection as_admin{sweepd.address, admin, "", "", ""};
  const Connection as_worker{sweepd.address, worker, "", "", ""};

  // A name inside the spec is a problem of the spec: one, at `name`, quoting a bounded excerpt.
  for (size_t n : {40000u, 100000u}) {
    const Call c = node.Run(as_admin, "SweepService", "SubmitSweep", Submit(LongNameSpec(dir, n)));
    ASSERT_EQ(c.code, "OK") << c.output.substr(0, 2000);
    EXPECT_LT(c.elapsed_ms, 5000);
    EXPECT_FALSE(c.responses[0].value("accepted", true));
    ASSERT_EQ(c.responses[0]["problems"].size(), 1u);
    EXPECT_EQ(c.responses[0]["problems"][0].value("field", ""), "name");
    EXPECT_LT(c.responses[0]["problems"][0].value("message", "").size(), kBoundedDetails);
    EXPECT_TRUE(sweepd.process->running()) << ReadFile(sweepd.log);
  }

  // Request fields over their limits: INVALID_ARGUMENT naming the field, at once, with a short
  // message (a message quoting a 100,000-character name made grpc-js wait to its deadline).
  const std::string huge(100000, 'a');
  const std::string big_spec = dir + "/big.yaml";
  WriteTextFile(big_spec, ReadFile(kSpec) + "# " + std::string(size_t{2} << 20, 'x') + "\n");
  json labels = json::object();
  for (int i = 0; i < 100; ++i) labels["k" + std::to_string(i)] = "v";
  json many_running = json::array();
  for (int i = 0; i < 2000; ++i) many_running.push_back({{"attempt_id", "a"}, {"fencing_token", "1"}});
  json hostname_10mb = RegisterCpu();
  hostname_10mb["hostname"] = std::string(size_t{10} << 20, 'h');
  json labelled = RegisterCpu();
  labelled["labels"] = labels;
  json long_device = RegisterCpu();
  long_device["slots"][0]["device_name"] = huge;
  struct Case {
    const Connection& as;
    std::string service, method, field;
    json request;
  };
  const std::vector<Case> cases = {
      {as_admin, "SweepService", "SubmitSweep", "spec_yaml", Submit(big_spec)},
      {as_admin, "SweepService", "SubmitSweep", "spec_path", {{"spec_yaml", FileBytes(kSpec)}, {"spec_path", huge}}},
      {as_admin, "SweepService", "GetSweep", "sweep", {{"sweep", huge}}},
      {as_admin, "SweepService", "CancelSweep", "sweep", {{"sweep", huge}}},
      {as_admin, "SweepService", "RetryJobs", "sweep", {{"sweep", huge}}},
      {as_admin, "SweepService", "RetryJobs", "job_ids[1]", {{"sweep", "s"}, {"job_ids", {"j", huge}}}},
      {as_admin, "SweepService", "WatchSweep", "sweep", {{"sweep", huge}}},
      {as_admin, "SweepService", "QueryResults", "sweep", {{"sweep", huge}}},
      {as_admin, "SweepService", "GetJobLog", "job_id", {{"job_id", huge}}},
      {as_worker, "WorkerService", "Register", "hostname", hostname_10mb},
      {as_worker, "WorkerService", "Register", "labels", labelled},
      {as_worker, "WorkerService", "Register", "slots[0].device_name", long_device},
      {as_worker, "WorkerService", "Register", "worker_id", {{"worker_id", huge}}},
      {as_worker, "WorkerService", "Heartbeat", "worker_id", {{"worker_id", huge}}},
      {as_worker, "WorkerService", "Heartbeat", "running", {{"worker_id", "node-a@x"}, {"running", many_running}}},
      {as_worker, "WorkerService", "LeaseJob", "worker_id", {{"worker_id", huge}}},
      {as_worker, "WorkerService", "AttemptStarted", "attempt_id", {{"attempt_id", huge}}},
      {as_worker, "WorkerService", "StreamMetrics", "attempt_id", json::array({{{"attempt_id", huge}}})},
      {as_worker, "WorkerService", "StreamMetrics", "points[0].json",
       json::array({{{"attempt_id", "a"}, {"points", {{{"seq", "1"}, {"json", std::string(size_t{2} << 20, 'x')}}}}}})},
      {as_worker, "WorkerService", "FinishAttempt", "attempt_id", {{"attempt_id", huge}}},
      {as_worker, "WorkerService", "FinishAttempt", "stderr_tail", {{"attempt_id", "a"}, {"stderr_tail", huge}}},
  };
  for (const Case& k : cases) {
    const Call c = node.Run(k.as, k.service, k.method, k.request);
    EXPECT_EQ(c.code, "INVALID_ARGUMENT") << k.method << " " << k.field << ": " << c.output.substr(0, 2000);
    EXPECT_THAT(c.details, HasSubstr("." + k.field + " ")) << k.method;
    EXPECT_LT(c.details.size(), kBoundedDetails) << k.method << " " << k.field;
    EXPECT_THAT(c.details, Not(HasSubstr(std::string(kBoundedDetails, 'a'))));
    EXPECT_LT(c.elapsed_ms, 5000) << k.method << " " << k.field;
  }
  EXPECT_TRUE(sweepd.process->running()) << ReadFile(sweepd.log);
  for (const char* table : {"sweeps", "jobs", "workers", "attempts", "metric_points", "results"}) {
    EXPECT_EQ(sweepd.Count(table), 0) << table;
  }
  // The worker list still serves everyone, and a worker of normal size registers.
  std::string out;
  EXPECT_EQ(RunCommand({kSweepctl, "--coordinator", sweepd.address, "--token-file", admin, "workers"}, &out), 0)
      << out;
  EXPECT_EQ(node.Run(as_worker, "WorkerService", "Register", RegisterCpu()).code, "OK");
  EXPECT_EQ(RunCommand({kSweepctl, "--coordinator", sweepd.address, "--token-file", admin, "workers"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("node-a@"));
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0) << ReadFile(sweepd.log);
}

// Line and column (1-based) of byte `offset` of `text`, whose bytes before it are ASCII.
std::pair<int, int> LineAndColumn(const std::string& text, size_t offset) {
  const size_t line_start = text.rfind('\n', offset - 1);
  const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + offset, '\n'));
  return {line, static_cast<int>(offset - (line_start == std::string::npos ? 0 : line_start + 1)) + 1};
}

TEST(NodeClient, SpecThatIsNotUtf8IsOneProblemNamingLineAndColumn) {
  const std::string dir = MakeTempDir("sweepd-node-");
  ASSERT_FALSE(NodeClient().empty());
  Tokens tokens(dir);
  const std::string submitter = tokens.Add("submitter", "bob");
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file});
  ASSERT_FALSE(sweepd.address.empty());
  NodeCalls node(dir);
  const Connection as_submitter{sweepd.address, submitter, "", "", ""};
  const std::string text = ReadFile(kSpec);
  // The issue's small case (a data value) and a byte in a comment: both refused.
  const size_t in_value = text.find("synthetic:arith");
  const size_t in_comment = text.find('#') + 2;
  ASSERT_NE(in_value, std::string::npos);
  for (size_t offset : {in_value + 10, in_comment}) {
    const std::string path = dir + "/latin1-" + std::to_string(offset) + ".yaml";
    std::string bad = text;
    bad.insert(offset, "\xf9");
    WriteTextFile(path, bad);
    const Call c = node.Run(as_submitter, "SweepService", "SubmitSweep", Submit(path));
    ASSERT_EQ(c.code, "OK") << c.output.substr(0, 2000);
    EXPECT_FALSE(c.responses[0].value("accepted", true));
    ASSERT_EQ(c.responses[0]["problems"].size(), 1u) << c.output;
    const json& p = c.responses[0]["problems"][0];
    const auto [line, column] = LineAndColumn(bad, offset);
    EXPECT_EQ(p.value("line", 0), line) << c.output;
    EXPECT_EQ(p.value("column", 0), column) << c.output;
    EXPECT_EQ(p.value("file", ""), path);
    EXPECT_THAT(p.value("message", ""), HasSubstr("UTF-8"));
  }
  EXPECT_TRUE(sweepd.process->running()) << ReadFile(sweepd.log);
  EXPECT_EQ(sweepd.Count("sweeps"), 0);
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0) << ReadFile(sweepd.log);
}

}  // namespace
}  // namespace sweepd
