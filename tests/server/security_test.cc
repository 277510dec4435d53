// sweepd's security on the real binaries: tokens with roles (sweepd --auth-file), workers
// confined to their own attempts, TLS with certificates an `openssl` CA signs in the test.
// Each refusal is checked for its gRPC status (or sweepctl's exit status 7 and its line) and
// for what the database holds afterwards: nothing from the refused call.
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sweepd/v1/sweepd.grpc.pb.h"
#include "tests/support/process.h"
#include "tests/support/secure_sweepd.h"
#include "tests/support/sqlite_rows.h"

namespace sweepd {
namespace {

using sweepd::testing::MakeTempDir;
using sweepd::testing::QueryRows;
using sweepd::testing::TestPki;
using sweepd::testing::TestSweepd;
using sweepd::testing::TestTokens;
using sweepd::testing::WriteTextFile;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
const std::string kSweepctl = kBin + "/sweepctl";
// RunCommand wants paths.
const std::string kEnv = "/usr/bin/env";
const std::string kSpec = std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml";


// Tokens made by `sweepctl auth new-token` and their auth file.
struct Tokens : TestTokens {
  explicit Tokens(const std::string& dir) : TestTokens(dir, kSweepctl) {}
};

// A CA, sweepd's certificate for 127.0.0.1 (valid and expired) and the client certificates of
// two worker nodes, each CN the node's token name.
struct Pki : TestPki {
  explicit Pki(const std::string& dir) : TestPki(dir) {
    Sign("server", "2", /*server=*/true);
    Sign("expired", "-1", /*server=*/true);
    Sign("node-a", "2");
    Sign("node-b", "2");
  }
};

struct Sweepd : TestSweepd {
  Sweepd(const std::string& dir, const std::vector<std::string>& extra) : TestSweepd(kBin, dir, extra) {}
};

// Runs sweepctl against `sweepd` with `args`; returns its exit status, output in `out`.
int Sweepctl(const Sweepd& sweepd, std::vector<std::string> args, std::string* out) {
  args.insert(args.begin(), {kSweepctl, "--coordinator", sweepd.address});
  return RunCommand(args, out);
}

// An independent worker client: raw WorkerService calls with a bearer token of its own.
struct RawWorker {
  RawWorker(const std::string& address, std::string token)
      : stub(v1::WorkerService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
        token(std::move(token)) {}
  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  }
  grpc::Status Register(const std::string& worker_id, v1::RegisterResponse* resp) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::RegisterRequest req;
    req.set_hostname("test-host");
    req.set_worker_id(worker_id);
    v1::Slot* slot = req.add_slots();
    slot->set_device_kind("cpu");
    slot->set_memory_bytes(int64_t{64} << 30);
    return stub->Register(&ctx, req, resp);
  }
  grpc::Status Heartbeat(const std::string& worker_id, const std::string& attempt, int64_t fencing) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::HeartbeatRequest req;
    req.set_worker_id(worker_id);
    if (!attempt.empty()) {
      auto* r = req.add_running();
      r->set_attempt_id(attempt);
      r->set_fencing_token(fencing);
    }
    v1::HeartbeatResponse resp;
    return stub->Heartbeat(&ctx, req, &resp);
  }
  grpc::Status Lease(const std::string& worker_id, v1::LeaseJobResponse* resp) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::LeaseJobRequest req;
    req.set_worker_id(worker_id);
    req.set_device_kind("cpu");
    req.set_free_memory_bytes(int64_t{64} << 30);
    return stub->LeaseJob(&ctx, req, resp);
  }
  grpc::Status Started(const std::string& attempt, int64_t fencing, bool* accepted) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::StartedRequest req;
    req.set_attempt_id(attempt);
    req.set_fencing_token(fencing);
    v1::StartedResponse resp;
    grpc::Status s = stub->AttemptStarted(&ctx, req, &resp);
    *accepted = resp.accepted();
    return s;
  }
  grpc::Status Finish(const std::string& attempt, int64_t fencing) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::FinishAttemptRequest req;
    req.set_attempt_id(attempt);
    req.set_fencing_token(fencing);
    req.set_outcome(v1::OUTCOME_SUCCEEDED);
    req.set_result_json(R"({"type":"final","final_loss":0.0})");
    v1::FinishAttemptResponse resp;
    return stub->FinishAttempt(&ctx, req, &resp);
  }
  grpc::Status StreamOne(const std::string& attempt, int64_t fencing) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    auto stream = stub->StreamMetrics(&ctx);
    v1::MetricBatch batch;
    batch.set_attempt_id(attempt);
    batch.set_fencing_token(fencing);
    auto* p = batch.add_points();
    p->set_seq(1);
    p->set_json(R"({"type":"step","step":1,"loss":0.0})");
    stream->Write(batch);
    v1::MetricAck ack;
    stream->Read(&ack);
    stream->WritesDone();
    return stream->Finish();
  }
  std::unique_ptr<v1::WorkerService::Stub> stub;
  std::string token;
};

TEST(Security, SweepctlWithoutTokenWrongTokenOrReaderRoleIsRefusedAndNothingIsStored) {
  const std::string dir = MakeTempDir("sweepd-security-");
  Tokens tokens(dir);
  const std::string reader = tokens.Add("reader", "alice");
  const std::string worker = tokens.Add("worker", "gpu-node-3");
  const std::string submitter = tokens.Add("submitter", "bob");
  WriteTextFile(dir + "/wrong.token", "0000000000000000000000000000000000000000000000000000000000000000\n");
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file});
  ASSERT_FALSE(sweepd.address.empty());

  std::string out;
  EXPECT_EQ(Sweepctl(sweepd, {"submit", kSpec}, &out), 7) << out;
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", dir + "/wrong.token", "submit", kSpec}, &out), 7) << out;
  EXPECT_THAT(out, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "submit", kSpec}, &out), 7) << out;
  EXPECT_THAT(out, HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", worker, "list"}, &out), 7) << out;
  EXPECT_THAT(out, HasSubstr("PERMISSION_DENIED"));
  // One line, and no token in it.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  for (const auto& [name, token] : tokens.tokens) EXPECT_THAT(out, ::testing::Not(HasSubstr(token)));
  EXPECT_EQ(sweepd.Count("sweeps"), 0);
  EXPECT_EQ(sweepd.Count("jobs"), 0);

  // The right roles succeed: the reader reads, the submitter submits (via the environment).
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "list"}, &out), 0) << out;
  EXPECT_EQ(RunCommand({kEnv, "SWEEPD_TOKEN_FILE=" + submitter, kSweepctl, "--coordinator",
                               sweepd.address, "submit", kSpec},
                              &out),
            0)
      << out;
  EXPECT_EQ(sweepd.Count("sweeps"), 1);
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "cancel", "demo"}, &out), 7) << out;
  EXPECT_EQ(QueryRows(sweepd.db, "SELECT cancelled FROM sweeps")[0][0], "0");

  // A new token line takes effect on SIGHUP, without a restart.
  const std::string late = tokens.Add("reader", "carol");
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", late, "list"}, &out), 7) << out;
  sweepd.process->Signal(SIGHUP);
  EXPECT_TRUE(sweepd::testing::WaitUntil(
      [&] { return Sweepctl(sweepd, {"--token-file", late, "list"}, &out) == 0; }, 10s))
      << out << ReadFile(dir + "/sweepd.log");
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
}

TEST(Security, NonLoopbackListenWithoutAuthFileIsRefused) {
  const std::string dir = MakeTempDir("sweepd-security-");
  std::string out;
  EXPECT_EQ(RunCommand({kBin + "/sweepd", "--db", dir + "/db", "--listen", "0.0.0.0:0"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--auth-file"));
  EXPECT_THAT(out, HasSubstr("--insecure-no-auth"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/db"));
}

TEST(Security, WorkerTouchesOnlyItsOwnAttempts) {
  const std::string dir = MakeTempDir("sweepd-security-");
  Tokens tokens(dir);
  const std::string submitter = tokens.Add("submitter", "bob");
  tokens.Add("worker", "node-a");
  tokens.Add("worker", "node-b");
  tokens.Add("reader", "alice");
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file});
  ASSERT_FALSE(sweepd.address.empty());
  std::string out;
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", submitter, "submit", kSpec}, &out), 0) << out;

  RawWorker a(sweepd.address, tokens.tokens["node-a"]);
  RawWorker b(sweepd.address, tokens.tokens["node-b"]);
  v1::RegisterResponse reg;
  ASSERT_TRUE(a.Register("", &reg).ok());
  const std::string a_id = reg.worker_id();
  EXPECT_THAT(a_id, ::testing::StartsWith("node-a@"));  // bound to the token's name
  ASSERT_TRUE(b.Register("", &reg).ok());
  const std::string b_id = reg.worker_id();
  EXPECT_THAT(b_id, ::testing::StartsWith("node-b@"));
  v1::LeaseJobResponse lease;
  ASSERT_TRUE(a.Lease(a_id, &lease).ok());
  ASSERT_TRUE(lease.granted());
  const std::string attempt = lease.attempt_id();
  const int64_t fencing = lease.fencing_token();
  const auto before = QueryRows(sweepd.db, "SELECT state, lease_expires_ms FROM attempts WHERE attempt_id = ?1",
                                {attempt});

  EXPECT_EQ(b.Register(a_id, &reg).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(b.Register("node-a", &reg).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(b.Heartbeat(a_id, "", 0).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::LeaseJobResponse stolen;
  EXPECT_EQ(b.Lease(a_id, &stolen).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  std::this_thread::sleep_for(20ms);  // a heartbeat that got through would move the lease
  EXPECT_EQ(b.Heartbeat(b_id, attempt, fencing).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  bool accepted = true;
  EXPECT_EQ(b.Started(attempt, fencing, &accepted).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(b.StreamOne(attempt, fencing).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(b.Finish(attempt, fencing).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Other roles and no token do not reach WorkerService at all.
  RawWorker reader(sweepd.address, tokens.tokens["alice"]);
  EXPECT_EQ(reader.Register("", &reg).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  RawWorker anonymous(sweepd.address, "");
  EXPECT_EQ(anonymous.Register("", &reg).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  EXPECT_EQ(QueryRows(sweepd.db, "SELECT state, lease_expires_ms FROM attempts WHERE attempt_id = ?1", {attempt}),
            before);
  EXPECT_EQ(sweepd.Count("metric_points"), 0);
  EXPECT_EQ(sweepd.Count("results"), 0);
  EXPECT_EQ(QueryRows(sweepd.db, "SELECT worker_id FROM workers ORDER BY worker_id"),
            (sweepd::testing::Rows{{a_id}, {b_id}}));

  // The owner's own calls go through.
  EXPECT_TRUE(a.Heartbeat(a_id, attempt, fencing).ok());
  // A second process on the same token is a worker of its own, and may re-register its id.
  RawWorker a2(sweepd.address, tokens.tokens["node-a"]);
  ASSERT_TRUE(a2.Register("", &reg).ok());
  EXPECT_NE(reg.worker_id(), a_id);
  EXPECT_TRUE(a.Register(a_id, &reg).ok());
  EXPECT_EQ(reg.worker_id(), a_id);
  ASSERT_TRUE(a.Started(attempt, fencing, &accepted).ok());
  EXPECT_TRUE(accepted);
  EXPECT_TRUE(a.StreamOne(attempt, fencing).ok());
  EXPECT_EQ(sweepd.Count("metric_points"), 1);
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
}

TEST(Security, TlsRefusesPlaintextClientsAndExpiredCertificates) {
  const std::string dir = MakeTempDir("sweepd-security-");
  Pki pki(dir);
  Tokens tokens(dir);
  const std::string reader = tokens.Add("reader", "alice");
  std::string out;
  {
    Sweepd sweepd(dir, {"--auth-file", tokens.auth_file, "--tls-cert", pki.cert("server"), "--tls-key",
                        pki.key("server")});
    ASSERT_FALSE(sweepd.address.empty()) << ReadFile(dir + "/sweepd.log");
    // A plaintext client cannot talk to a TLS port: unavailable (4), not served.
    EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "list"}, &out), 4) << out;
    EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "--tls-ca", pki.ca(), "list"}, &out), 0) << out;
    EXPECT_EQ(RunCommand({kEnv, "SWEEPD_TLS_CA=" + pki.ca(), kSweepctl, "--coordinator", sweepd.address,
                                 "--token-file", reader, "list"},
                                &out),
              0)
        << out;
    // TLS does not replace the token.
    EXPECT_EQ(Sweepctl(sweepd, {"--tls-ca", pki.ca(), "list"}, &out), 7) << out;
    EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
  }
  {
    Sweepd sweepd(dir, {"--auth-file", tokens.auth_file, "--tls-cert", pki.cert("expired"), "--tls-key",
                        pki.key("expired")});
    ASSERT_FALSE(sweepd.address.empty());
    EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "--tls-ca", pki.ca(), "list"}, &out), 4) << out;
    EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
  }
}

TEST(Security, MutualTlsRefusesAWorkerWithoutAValidClientCertificate) {
  const std::string dir = MakeTempDir("sweepd-security-");
  Pki pki(dir);
  Tokens tokens(dir);
  const std::string reader = tokens.Add("reader", "alice");
  tokens.Add("worker", "node-a");
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file, "--tls-cert", pki.cert("server"), "--tls-key",
                      pki.key("server"), "--tls-client-ca", pki.ca()});
  ASSERT_FALSE(sweepd.address.empty()) << ReadFile(dir + "/sweepd.log");
  std::string out;
  // Researchers need the CA and a token, no certificate of their own.
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "--tls-ca", pki.ca(), "list"}, &out), 0) << out;

  auto register_with = [&](const std::string& cert) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ReadFile(pki.ca());
    if (!cert.empty()) {
      tls.pem_cert_chain = ReadFile(pki.cert(cert));
      tls.pem_private_key = ReadFile(pki.key(cert));
    }
    auto stub = v1::WorkerService::NewStub(grpc::CreateChannel(sweepd.address, grpc::SslCredentials(tls)));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + tokens.tokens["node-a"]);
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::RegisterRequest req;
    req.set_hostname("test-host");
    v1::RegisterResponse resp;
    return stub->Register(&ctx, req, &resp);
  };
  EXPECT_EQ(register_with("").error_code(), grpc::StatusCode::UNAUTHENTICATED);  // no certificate
  EXPECT_EQ(register_with("expired").error_code(), grpc::StatusCode::UNAVAILABLE);  // handshake fails
  // Another node's certificate (valid, signed by the CA) with node-a's own token.
  const grpc::Status foreign = register_with("node-b");
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(foreign.error_message(), HasSubstr("node-b"));
  EXPECT_EQ(sweepd.Count("workers"), 0);
  EXPECT_TRUE(register_with("node-a").ok());
  EXPECT_EQ(sweepd.Count("workers"), 1);
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
}

// The audit trail: one row per submit, cancel, retry and registration, with the token's name
// and role, in the database and on sweepd's log; sweepctl audit reads it through sweepd (admin
// token only) and from the file (--db), with --since.
TEST(Security, AuditTrailRecordsWhoChangedWhatAndSweepctlReadsIt) {
  const std::string dir = MakeTempDir("sweepd-security-");
  Tokens tokens(dir);
  const std::string admin = tokens.Add("admin", "root-1");
  const std::string submitter = tokens.Add("submitter", "bob");
  const std::string reader = tokens.Add("reader", "alice");
  tokens.Add("worker", "node-a");
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file});
  ASSERT_FALSE(sweepd.address.empty());
  std::string out;
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", submitter, "submit", kSpec}, &out), 0) << out;
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "submit", kSpec}, &out), 7) << out;  // refused
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", submitter, "cancel", "demo"}, &out), 0) << out;
  // A cancelled job retried by name (sweepctl retries only failed ones on its own).
  const auto cancelled = QueryRows(sweepd.db, "SELECT job_id FROM jobs WHERE state = 'cancelled' LIMIT 1");
  ASSERT_EQ(cancelled.size(), 1u);
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", admin, "retry", "demo", cancelled[0][0]}, &out), 0) << out;
  EXPECT_NE(Sweepctl(sweepd, {"--token-file", submitter, "cancel", "no-such-sweep"}, &out), 0) << out;
  RawWorker worker(sweepd.address, tokens.tokens["node-a"]);
  v1::RegisterResponse reg;
  ASSERT_TRUE(worker.Register("", &reg).ok());

  using Row = std::vector<std::string>;
  const std::vector<Row> expected = {{"bob", "submitter", "submit", "demo", "ok"},
                                     {"bob", "submitter", "cancel", "demo", "ok"},
                                     {"root-1", "admin", "retry", "demo", "ok"},
                                     {"bob", "submitter", "cancel", "no-such-sweep", "NOT_FOUND"},
                                     {"node-a", "worker", "register", reg.worker_id(), "ok"}};
  auto rows_of = [](const std::string& json_text) {
    std::vector<Row> rows;
    const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, false);
    if (!j.is_array()) return rows;
    for (const auto& e : j) {
      const std::string outcome = e.value("outcome", "");
      rows.push_back({e.value("caller", ""), e.value("role", ""), e.value("action", ""), e.value("target", ""),
                      outcome.substr(0, outcome.find(':'))});
    }
    return rows;
  };
  // The table itself, written by sweepd (a registration's row right after its commit).
  EXPECT_TRUE(sweepd::testing::WaitUntil(
      [&] { return sweepd.Count("audit") == static_cast<int64_t>(expected.size()); }, 10s));
  const auto stored = QueryRows(sweepd.db, "SELECT caller, role, action, target, outcome FROM audit ORDER BY seq");
  ASSERT_EQ(stored.size(), expected.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i][3], expected[i][3]);
    EXPECT_THAT(stored[i][4], ::testing::StartsWith(expected[i][4]));
  }
  // Through sweepd, with the admin token; and every row on sweepd's log.
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", admin, "audit", "--format", "json"}, &out), 0) << out;
  EXPECT_EQ(rows_of(out), expected) << out;
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", admin, "audit", "--since", "1h"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Outcome"));
  EXPECT_THAT(out, HasSubstr(reg.worker_id()));
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", admin, "audit", "--since", "2099-01-01", "--format", "json"}, &out),
            0)
      << out;
  EXPECT_TRUE(rows_of(out).empty()) << out;
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", admin, "audit", "--since", "yesterday"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("--since"));
  const std::string log = ReadFile(dir + "/sweepd.log");
  EXPECT_THAT(log, HasSubstr("audit: bob (submitter) submit demo: ok"));
  EXPECT_THAT(log, HasSubstr("audit: submit refused: PERMISSION_DENIED"));
  EXPECT_THAT(log, HasSubstr("audit: node-a (worker) register " + reg.worker_id() + ": ok"));
  // Only admin tokens read the trail.
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", reader, "audit"}, &out), 7) << out;
  EXPECT_THAT(out, HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", submitter, "audit"}, &out), 7) << out;
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
  // From the file, with sweepd stopped.
  ASSERT_EQ(RunCommand({kSweepctl, "--db", sweepd.db, "audit", "--format", "json"}, &out), 0) << out;
  EXPECT_EQ(rows_of(out), expected) << out;
}

// Without --auth-file every row is the anonymous caller "-".
TEST(Security, AuditTrailWithoutAuthNamesNoCaller) {
  const std::string dir = MakeTempDir("sweepd-security-");
  Sweepd sweepd(dir, {});
  ASSERT_FALSE(sweepd.address.empty());
  std::string out;
  ASSERT_EQ(Sweepctl(sweepd, {"submit", kSpec}, &out), 0) << out;
  ASSERT_EQ(Sweepctl(sweepd, {"audit", "--format", "json"}, &out), 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << out;
  EXPECT_EQ(j[0].value("caller", ""), "-");
  EXPECT_EQ(j[0].value("role", ""), "-");
  EXPECT_EQ(j[0].value("action", ""), "submit");
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
}

// Requests per second and open streams are limited per token: one token over its limit is
// refused RESOURCE_EXHAUSTED with one line, nothing stored, while another token is served.
TEST(Security, PerTokenLimitsRefuseOneCallerAndServeTheOthers) {
  const std::string dir = MakeTempDir("sweepd-security-");
  Tokens tokens(dir);
  const std::string submitter = tokens.Add("submitter", "bob");
  const std::string reader = tokens.Add("reader", "alice");
  tokens.Add("reader", "carol");
  constexpr int kRate = 5;
  constexpr int kStreams = 2;
  Sweepd sweepd(dir, {"--auth-file", tokens.auth_file, "--max-requests-per-second", std::to_string(kRate),
                      "--max-streams-per-caller", std::to_string(kStreams)});
  ASSERT_FALSE(sweepd.address.empty());
  std::string out;
  ASSERT_EQ(Sweepctl(sweepd, {"--token-file", submitter, "submit", kSpec}, &out), 0) << out;

  auto stub = v1::SweepService::NewStub(grpc::CreateChannel(sweepd.address, grpc::InsecureChannelCredentials()));
  auto list_as = [&](const std::string& name) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + tokens.tokens[name]);
    v1::ListSweepsResponse resp;
    return stub->ListSweeps(&ctx, v1::ListSweepsRequest(), &resp);
  };
  // alice floods: at most a second's worth (plus what refills meanwhile) gets through.
  const auto start = std::chrono::steady_clock::now();
  int ok = 0;
  grpc::Status refused;
  for (int i = 0; i < 10 * kRate; ++i) {
    grpc::Status s = list_as("alice");
    if (s.ok()) {
      ++ok;
    } else {
      refused = s;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(ok, kRate + static_cast<int>(seconds * kRate) + 1);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("alice"));
  EXPECT_THAT(refused.error_message(), HasSubstr("--max-requests-per-second"));
  EXPECT_EQ(refused.error_message().find('\n'), std::string::npos);
  EXPECT_TRUE(list_as("carol").ok());  // another token has its own allowance
  // A submit over the limit stores nothing, and is not in the audit trail.
  for (int i = 0; i < 2 * kRate; ++i) list_as("bob");
  const std::string other_spec = dir + "/other.yaml";
  {
    std::string spec = ReadFile(kSpec);
    const size_t name = spec.find("name: demo");
    ASSERT_NE(name, std::string::npos);
    spec.replace(name, std::string("name: demo").size(), "name: demo-two");
    WriteTextFile(other_spec, spec);
  }
  const int64_t audit_rows = sweepd.Count("audit");
  EXPECT_EQ(Sweepctl(sweepd, {"--token-file", submitter, "submit", other_spec}, &out), 7) << out;
  EXPECT_THAT(out, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(sweepd.Count("sweeps"), 1);
  EXPECT_EQ(sweepd.Count("audit"), audit_rows);

  // Open streams: alice's third watch is refused until one of hers ends; carol is served.
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));  // the bucket refills
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::SweepEvent>> reader;
    bool first = false;
  };
  auto watch_as = [&](const std::string& name) {
    auto w = std::make_unique<Watch>();
    w->ctx.AddMetadata("authorization", "Bearer " + tokens.tokens[name]);
    w->ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::WatchSweepRequest req;
    req.set_sweep("demo");
    w->reader = stub->WatchSweep(&w->ctx, req);
    v1::SweepEvent event;
    w->first = w->reader->Read(&event);
    return w;
  };
  std::vector<std::unique_ptr<Watch>> open;
  for (int i = 0; i < kStreams; ++i) {
    open.push_back(watch_as("alice"));
    EXPECT_TRUE(open.back()->first);
  }
  auto third = watch_as("alice");
  EXPECT_FALSE(third->first);
  const grpc::Status third_status = third->reader->Finish();
  EXPECT_EQ(third_status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third_status.error_message(), HasSubstr("--max-streams-per-caller"));
  auto carols = watch_as("carol");
  EXPECT_TRUE(carols->first);
  open.front()->ctx.TryCancel();
  open.front()->reader->Finish();
  open.erase(open.begin());
  // The cancelled watch gives its slot back once sweepd notices (within a poll).
  EXPECT_TRUE(sweepd::testing::WaitUntil(
      [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // within the request rate
        return watch_as("alice")->first;
      },
      10s));
  for (auto& w : open) w->ctx.TryCancel();
  carols->ctx.TryCancel();
  EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
}

}  // namespace
}  // namespace sweepd
