// SweepService and WorkerService over real gRPC on loopback, with the real store on a
// temporary SQLite file. The scheduler's clock is driven by the test where leases expire.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/scheduler.h"
#include "server/store_names.h"
#include "server/sweep_service.h"
#include "server/worker_service.h"
#include "sweepd/v1/sweepd.grpc.pb.h"
#include "tests/support/final_line.h"
#include "tests/support/process.h"

namespace sweepd::server {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr int64_t kT0 = 1'700'000'000'000;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string DemoSpec() { return ReadText(std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml"); }

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sweepd::testing::MakeTempDir("sweepd-services-");
    auto store = Store::Open(dir_ + "/sweepd.db", kT0);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
    SchedulerOptions options;
    options.lease_ms = 60000;
    options.backoff = {1000, 10000};
    scheduler_ = std::make_unique<Scheduler>(*store_, options, [this] { return now_.load(); });
    SweepServiceOptions sweep_options;
    sweep_options.watch_poll_ms = 20;
    sweep_service_ = std::make_unique<SweepServiceImpl>(*store_, *scheduler_, sweep_options);
    worker_service_ = std::make_unique<WorkerServiceImpl>(*scheduler_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(sweep_service_.get());
    builder.RegisterService(worker_service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
    sweeps_ = v1::SweepService::NewStub(channel);
    workers_ = v1::WorkerService::NewStub(channel);
  }
  void TearDown() override {
    sweep_service_->Shutdown();
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  v1::SubmitSweepResponse Submit(const std::string& yaml, bool dry_run = false) {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    req.set_spec_yaml(yaml);
    req.set_spec_path("demo-cpu.yaml");
    req.set_dry_run(dry_run);
    v1::SubmitSweepResponse resp;
    grpc::Status s = sweeps_->SubmitSweep(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  std::string Register() {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_hostname("node1");
    req.set_version("test");
    v1::Slot* slot = req.add_slots();
    slot->set_index(0);
    slot->set_device_kind("cpu");
    v1::RegisterResponse resp;
    EXPECT_TRUE(workers_->Register(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.lease_duration_ms(), 60000);
    return resp.worker_id();
  }
  v1::LeaseJobResponse Lease(const std::string& worker) {
    grpc::ClientContext ctx;
    v1::LeaseJobRequest req;
    req.set_worker_id(worker);
    req.set_device_kind("cpu");
    v1::LeaseJobResponse resp;
    grpc::Status s = workers_->LeaseJob(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  // Streams `lines` as seq 1..n and returns the acks.
  std::vector<v1::MetricAck> Stream(const v1::LeaseJobResponse& lease, const std::vector<std::string>& lines) {
    grpc::ClientContext ctx;
    auto stream = workers_->StreamMetrics(&ctx);
    v1::MetricBatch batch;
    batch.set_attempt_id(lease.attempt_id());
    batch.set_fencing_token(lease.fencing_token());
    for (size_t i = 0; i < lines.size(); ++i) {
      v1::MetricPoint* p = batch.add_points();
      p->set_seq(static_cast<int64_t>(i + 1));
      p->set_json(lines[i]);
    }
    EXPECT_TRUE(stream->Write(batch));
    std::vector<v1::MetricAck> acks;
    v1::MetricAck ack;
    stream->WritesDone();
    while (stream->Read(&ack)) acks.push_back(ack);
    EXPECT_TRUE(stream->Finish().ok());
    return acks;
  }
  v1::FinishAttemptResponse Finish(const v1::LeaseJobResponse& lease, v1::Outcome outcome, int64_t last_seq,
                                   const std::string& result_json) {
    grpc::ClientContext ctx;
    v1::FinishAttemptRequest req;
    req.set_attempt_id(lease.attempt_id());
    req.set_fencing_token(lease.fencing_token());
    req.set_outcome(outcome);
    req.set_last_metric_seq(last_seq);
    req.set_result_json(result_json);
    v1::FinishAttemptResponse resp;
    EXPECT_TRUE(workers_->FinishAttempt(&ctx, req, &resp).ok());
    return resp;
  }
  // Runs a leased job to success with a final line carrying `scores`.
  void RunToSuccess(const v1::LeaseJobResponse& lease, const json& scores) {
    {
      grpc::ClientContext ctx;
      v1::StartedRequest req;
      req.set_attempt_id(lease.attempt_id());
      req.set_fencing_token(lease.fencing_token());
      v1::StartedResponse resp;
      ASSERT_TRUE(workers_->AttemptStarted(&ctx, req, &resp).ok());
      EXPECT_TRUE(resp.accepted());
    }
    const json step = {{"type", "step"}, {"step", 1}, {"total_steps", 1}, {"loss", 2.0}, {"tokens_per_s", 50.0}};
    const json final_line = testing::CompleteFinalLine({{"type", "final"}, {"job_id", lease.job().job_id()},
                                                        {"kind", lease.job().kind()}, {"final_loss", 1.5},
                                                        {"scores", scores}});
    auto acks = Stream(lease, {step.dump(), final_line.dump()});
    ASSERT_FALSE(acks.empty());
    EXPECT_EQ(acks.back().stored_through_seq(), 2);
    EXPECT_FALSE(acks.back().refused());
    EXPECT_TRUE(Finish(lease, v1::OUTCOME_SUCCEEDED, 2, final_line.dump()).accepted());
  }

  std::string dir_;
  std::atomic<int64_t> now_{kT0};
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<SweepServiceImpl> sweep_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::SweepService::Stub> sweeps_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_F(ServicesTest, DryRunExpandsWithoutStoring) {
  v1::SubmitSweepResponse resp = Submit(DemoSpec(), /*dry_run=*/true);
  EXPECT_TRUE(resp.accepted());
  EXPECT_EQ(resp.sweep(), "demo");
  EXPECT_EQ(resp.jobs_total(), 5);
  EXPECT_EQ(resp.jobs_new(), 5);
  EXPECT_EQ(resp.jobs().size(), 5);
  grpc::ClientContext ctx;
  v1::ListSweepsResponse list;
  ASSERT_TRUE(sweeps_->ListSweeps(&ctx, {}, &list).ok());
  EXPECT_EQ(list.sweeps_size(), 0);
}

TEST_F(ServicesTest, BadSpecComesBackAsProblems) {
  const std::string bad = ReadText(std::string(SWEEPD_SOURCE_DIR) + "/tests/spec/specs/many_problems.yaml");
  v1::SubmitSweepResponse resp = Submit(bad);
  EXPECT_FALSE(resp.accepted());
  ASSERT_GE(resp.problems_size(), 10);
  EXPECT_EQ(resp.problems(0).file(), "demo-cpu.yaml");
  EXPECT_GT(resp.problems(0).line(), 0);
}

TEST_F(ServicesTest, WorkerRunsTheDemoSweepToTheEnd) {
  v1::SubmitSweepResponse submitted = Submit(DemoSpec());
  ASSERT_TRUE(submitted.accepted());
  EXPECT_EQ(submitted.jobs_new(), 5);
  const std::string worker = Register();
  ASSERT_FALSE(worker.empty());

  const json base_scores = {{"gsm8k", 10.0}, {"arc_challenge", 25.0}};
  v1::LeaseJobResponse base = Lease(worker);
  ASSERT_TRUE(base.granted());
  EXPECT_EQ(base.job().kind(), "base_eval");
  EXPECT_EQ(base.attempt_number(), 1);
  // While the base evaluation runs, nothing else can be leased.
  v1::LeaseJobResponse idle = Lease(worker);
  EXPECT_FALSE(idle.granted());
  EXPECT_GT(idle.retry_after_ms(), 0);
  RunToSuccess(base, base_scores);

  for (int i = 0; i < 4; ++i) {
    v1::LeaseJobResponse train = Lease(worker);
    ASSERT_TRUE(train.granted()) << i;
    EXPECT_EQ(train.job().kind(), "train");
    EXPECT_EQ(json::parse(train.job().config_json()).at("base_scores"), base_scores);
    RunToSuccess(train, {{"gsm8k", 11.0}, {"arc_challenge", 30.0}});
  }
  EXPECT_FALSE(Lease(worker).granted());

  // Watching a finished sweep: one snapshot with every job, marked finished.
  grpc::ClientContext watch_ctx;
  v1::WatchSweepRequest watch_req;
  watch_req.set_sweep("demo");
  auto reader = sweeps_->WatchSweep(&watch_ctx, watch_req);
  v1::SweepEvent event, last;
  int events = 0;
  while (reader->Read(&event)) last = event, ++events;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(events, 1);
  EXPECT_TRUE(last.finished());
  EXPECT_EQ(last.changed_jobs_size(), 5);
  EXPECT_EQ(last.summary().total_jobs(), 5);

  grpc::ClientContext results_ctx;
  v1::QueryResultsRequest results_req;
  results_req.set_sweep("demo");
  v1::QueryResultsResponse results;
  ASSERT_TRUE(sweeps_->QueryResults(&results_ctx, results_req, &results).ok());
  EXPECT_EQ(results.rows_size(), 5);

  grpc::ClientContext log_ctx;
  v1::GetJobLogRequest log_req;
  log_req.set_job_id(base.job().job_id());
  v1::GetJobLogResponse log;
  ASSERT_TRUE(sweeps_->GetJobLog(&log_ctx, log_req, &log).ok());
  EXPECT_EQ(log.points_size(), 2);
  EXPECT_EQ(log.state(), v1::JOB_STATE_SUCCEEDED);

  grpc::ClientContext workers_ctx;
  v1::ListWorkersResponse listed;
  ASSERT_TRUE(sweeps_->ListWorkers(&workers_ctx, {}, &listed).ok());
  ASSERT_EQ(listed.workers_size(), 1);
  EXPECT_EQ(listed.workers(0).worker_id(), worker);
}

TEST_F(ServicesTest, WatchStreamsChangesUntilTheSweepFinishes) {
  ASSERT_TRUE(Submit(ReadText(std::string(SWEEPD_SOURCE_DIR) + "/tests/server/specs/urgent.yaml")).accepted());
  const std::string worker = Register();
  grpc::ClientContext watch_ctx;
  v1::WatchSweepRequest watch_req;
  watch_req.set_sweep("urgent");
  auto reader = sweeps_->WatchSweep(&watch_ctx, watch_req);
  v1::SweepEvent first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_FALSE(first.finished());
  ASSERT_EQ(first.changed_jobs_size(), 1);
  EXPECT_EQ(first.changed_jobs(0).state(), v1::JOB_STATE_QUEUED);

  v1::LeaseJobResponse lease = Lease(worker);
  ASSERT_TRUE(lease.granted());
  RunToSuccess(lease, {{"gsm8k", 1.0}});
  v1::SweepEvent event;
  bool finished = false;
  while (reader->Read(&event)) finished = event.finished();
  EXPECT_TRUE(finished);
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(ServicesTest, ExpiredLeaseRefusesTheLateWorker) {
  ASSERT_TRUE(Submit(ReadText(std::string(SWEEPD_SOURCE_DIR) + "/tests/server/specs/urgent.yaml")).accepted());
  const std::string worker = Register();
  v1::LeaseJobResponse lease = Lease(worker);
  ASSERT_TRUE(lease.granted());
  now_ += 60001;
  auto expired = scheduler_->Housekeep();
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);

  auto acks = Stream(lease, {R"({"type":"step","step":1})"});
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].refused());
  v1::FinishAttemptResponse late = Finish(lease, v1::OUTCOME_SUCCEEDED, 0, R"({"type":"final"})");
  EXPECT_FALSE(late.accepted());
  EXPECT_THAT(late.message(), HasSubstr("no longer holds its lease"));

  grpc::ClientContext ctx;
  v1::HeartbeatRequest hb;
  hb.set_worker_id(worker);
  auto* r = hb.add_running();
  r->set_attempt_id(lease.attempt_id());
  r->set_fencing_token(lease.fencing_token());
  v1::HeartbeatResponse hb_resp;
  ASSERT_TRUE(workers_->Heartbeat(&ctx, hb, &hb_resp).ok());
  ASSERT_EQ(hb_resp.lost_attempts_size(), 1);
  EXPECT_FALSE(hb_resp.reregister());
}

TEST_F(ServicesTest, CancelReachesTheRunningJobThroughHeartbeat) {
  ASSERT_TRUE(Submit(ReadText(std::string(SWEEPD_SOURCE_DIR) + "/tests/server/specs/urgent.yaml")).accepted());
  const std::string worker = Register();
  v1::LeaseJobResponse lease = Lease(worker);
  ASSERT_TRUE(lease.granted());
  {
    grpc::ClientContext ctx;
    v1::CancelSweepRequest req;
    req.set_sweep("urgent");
    v1::CancelSweepResponse resp;
    ASSERT_TRUE(sweeps_->CancelSweep(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.jobs_cancelled(), 1);
  }
  grpc::ClientContext ctx;
  v1::HeartbeatRequest hb;
  hb.set_worker_id(worker);
  auto* r = hb.add_running();
  r->set_attempt_id(lease.attempt_id());
  r->set_fencing_token(lease.fencing_token());
  v1::HeartbeatResponse hb_resp;
  ASSERT_TRUE(workers_->Heartbeat(&ctx, hb, &hb_resp).ok());
  ASSERT_EQ(hb_resp.cancel_attempts_size(), 1);
  EXPECT_EQ(hb_resp.cancel_attempts(0), lease.attempt_id());
  EXPECT_TRUE(Finish(lease, v1::OUTCOME_CANCELLED, 0, "").accepted());

  grpc::ClientContext get_ctx;
  v1::GetSweepRequest get_req;
  get_req.set_sweep("urgent");
  v1::GetSweepResponse sweep;
  ASSERT_TRUE(sweeps_->GetSweep(&get_ctx, get_req, &sweep).ok());
  ASSERT_EQ(sweep.jobs_size(), 1);
  EXPECT_EQ(sweep.jobs(0).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(sweep.summary().cancelled());
}

TEST_F(ServicesTest, UnknownWorkerIsToldToRegister) {
  grpc::ClientContext ctx;
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w-ghost");
  v1::HeartbeatResponse resp;
  ASSERT_TRUE(workers_->Heartbeat(&ctx, hb, &resp).ok());
  EXPECT_TRUE(resp.reregister());
  grpc::ClientContext lease_ctx;
  v1::LeaseJobRequest req;
  req.set_worker_id("w-ghost");
  req.set_device_kind("cpu");
  v1::LeaseJobResponse lease;
  EXPECT_EQ(workers_->LeaseJob(&lease_ctx, req, &lease).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace sweepd::server
