// RecordingCoordinator; see recording_coordinator.h.
#include "tests/agent/recording_coordinator.h"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace sweepd::agent::testing {

namespace pb = ::sweepd::v1;

class RecordingCoordinator::Service final : public pb::WorkerService::Service {
 public:
  explicit Service(CoordinatorState& s) : s_(s) {}

  grpc::Status Register(grpc::ServerContext*, const pb::RegisterRequest* req,
                        pb::RegisterResponse* resp) override {
    std::lock_guard<std::mutex> lock(s_.mu);
    s_.registrations.push_back(*req);
    resp->set_worker_id(req->worker_id().empty() ? "w-" + req->hostname() : req->worker_id());
    resp->set_heartbeat_interval_ms(100);
    resp->set_lease_duration_ms(60000);
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest* req,
                         pb::HeartbeatResponse* resp) override {
    std::lock_guard<std::mutex> lock(s_.mu);
    s_.heartbeats.push_back(*req);
    for (const auto& r : req->running()) {
      auto it = s_.attempts.find(r.attempt_id());
      if (it == s_.attempts.end()) continue;
      if (it->second.cancel) resp->add_cancel_attempts(r.attempt_id());
      if (it->second.lost) resp->add_lost_attempts(r.attempt_id());
    }
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status LeaseJob(grpc::ServerContext*, const pb::LeaseJobRequest* req,
                        pb::LeaseJobResponse* resp) override {
    std::lock_guard<std::mutex> lock(s_.mu);
    s_.lease_free_devices.push_back(req->free_devices());
    // The first queued job whose `devices` the slot offers (as sweepd's scheduler does).
    auto fits = [&](const std::string& id) {
      const auto j = nlohmann::json::parse(s_.configs[id], nullptr, false);
      const int64_t devices = j.is_object() ? j.value("devices", int64_t{1}) : 1;
      return devices <= std::max(1, req->free_devices());
    };
    auto it = std::find_if(s_.queue.begin(), s_.queue.end(), fits);
    if (it == s_.queue.end()) {
      resp->set_granted(false);
      resp->set_retry_after_ms(50);
      return grpc::Status::OK;
    }
    const std::string job_id = *it;
    s_.queue.erase(it);
    AttemptRecord a;
    a.job_id = job_id;
    a.number = ++s_.attempts_of[job_id];
    a.attempt_id = job_id + "-a" + std::to_string(a.number);
    a.fencing_token = s_.next_token++;
    a.leased_at = std::chrono::steady_clock::now();
    s_.attempts[a.attempt_id] = a;
    s_.attempt_order.push_back(a.attempt_id);
    resp->set_granted(true);
    resp->mutable_job()->set_job_id(job_id);
    resp->mutable_job()->set_config_json(s_.configs[job_id]);
    resp->mutable_job()->set_kind("train");
    resp->set_attempt_id(a.attempt_id);
    resp->set_fencing_token(a.fencing_token);
    resp->set_attempt_number(a.number);
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status AttemptStarted(grpc::ServerContext*, const pb::StartedRequest* req,
                              pb::StartedResponse* resp) override {
    std::lock_guard<std::mutex> lock(s_.mu);
    auto* a = Find(req->attempt_id(), req->fencing_token());
    if (a != nullptr) a->started = true;
    resp->set_accepted(a != nullptr && !a->lost);
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status StreamMetrics(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<pb::MetricAck, pb::MetricBatch>* stream) override {
    // Acks go out from their own thread so that hold_acks can withhold them while
    // batches keep being read, as a slow sweepd would.
    std::string attempt_id;
    bool refused = false, done = false;
    {
      std::lock_guard<std::mutex> lock(s_.mu);
      ++s_.streams_opened;
    }
    std::thread acker([&] {
      std::unique_lock<std::mutex> lock(s_.mu);
      for (;;) {
        s_.cv.wait(lock, [&] {
          if (done || refused) return true;
          auto it = s_.attempts.find(attempt_id);
          return !s_.hold_acks && it != s_.attempts.end() &&
                 static_cast<int64_t>(it->second.stored.size()) > it->second.acked;
        });
        pb::MetricAck ack;
        if (refused) {
          ack.set_refused(true);
          ack.set_message("no such lease");
        } else if (done) {
          return;
        } else {
          auto& a = s_.attempts[attempt_id];
          a.acked = static_cast<int64_t>(a.stored.size());
          ack.set_stored_through_seq(a.acked);
        }
        lock.unlock();
        const bool ok = stream->Write(ack);
        lock.lock();
        if (!ok || refused) return;
      }
    });
    pb::MetricBatch batch;
    while (stream->Read(&batch)) {
      std::lock_guard<std::mutex> lock(s_.mu);
      auto* a = Find(batch.attempt_id(), batch.fencing_token());
      if (a == nullptr || a->lost) {
        refused = true;
        s_.cv.notify_all();
        break;
      }
      attempt_id = batch.attempt_id();
      a->max_batch = std::max(a->max_batch, batch.points_size());
      for (const auto& p : batch.points()) {
        const auto stored = static_cast<int64_t>(a->stored.size());
        if (p.seq() <= stored) {
          ++a->duplicates;
        } else if (p.seq() == stored + 1) {
          a->stored.push_back(p.json());
        } else {
          a->gap = true;
        }
      }
      a->max_unacked = std::max(a->max_unacked, static_cast<int64_t>(a->stored.size()) - a->acked);
      s_.cv.notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(s_.mu);
      done = true;
      s_.cv.notify_all();
    }
    acker.join();
    return grpc::Status::OK;
  }

  grpc::Status FinishAttempt(grpc::ServerContext*, const pb::FinishAttemptRequest* req,
                             pb::FinishAttemptResponse* resp) override {
    std::lock_guard<std::mutex> lock(s_.mu);
    auto* a = Find(req->attempt_id(), req->fencing_token());
    if (a == nullptr || a->lost) {
      resp->set_accepted(false);
      resp->set_message("no such lease");
      return grpc::Status::OK;
    }
    if (req->last_metric_seq() > static_cast<int64_t>(a->stored.size())) {
      resp->set_accepted(false);
      resp->set_message("metrics not all stored");
      return grpc::Status::OK;
    }
    if (a->finish) {  // a repeated report of the same attempt is answered the same way
      resp->set_accepted(true);
      return grpc::Status::OK;
    }
    a->finish = *req;
    a->finished_at = std::chrono::steady_clock::now();
    const bool failed = req->outcome() != pb::OUTCOME_SUCCEEDED &&
                        req->outcome() != pb::OUTCOME_CANCELLED &&
                        req->outcome() != pb::OUTCOME_INVALID_CONFIG;
    const bool handed_back = req->outcome() == pb::OUTCOME_HANDED_BACK;
    if (handed_back || (failed && s_.attempts_of[a->job_id] < s_.max_attempts[a->job_id])) {
      s_.queue.push_front(a->job_id);
    }
    resp->set_accepted(true);
    s_.cv.notify_all();
    return grpc::Status::OK;
  }

 private:
  AttemptRecord* Find(const std::string& id, int64_t token) {
    auto it = s_.attempts.find(id);
    if (it == s_.attempts.end() || it->second.fencing_token != token) return nullptr;
    return &it->second;
  }

  CoordinatorState& s_;
};

RecordingCoordinator::RecordingCoordinator() : service_(std::make_unique<Service>(state_)) {}

RecordingCoordinator::~RecordingCoordinator() { Stop(); }

void RecordingCoordinator::Start() {
  // A fresh service object per server: a gRPC service registers with one server only.
  service_ = std::make_unique<Service>(state_);
  grpc::ServerBuilder builder;
  int selected = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port_), grpc::InsecureServerCredentials(),
                           &selected);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || selected == 0) throw std::runtime_error("cannot start test coordinator");
  port_ = selected;
}

void RecordingCoordinator::Stop() {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
}

void RecordingCoordinator::AddJob(const std::string& job_id, const std::string& config_json,
                                  int max_attempts) {
  std::lock_guard<std::mutex> lock(state_.mu);
  state_.queue.push_back(job_id);
  state_.configs[job_id] = config_json;
  state_.max_attempts[job_id] = max_attempts;
  state_.cv.notify_all();
}

bool RecordingCoordinator::WaitFor(const std::function<bool(CoordinatorState&)>& pred,
                                   std::chrono::seconds limit) {
  std::unique_lock<std::mutex> lock(state_.mu);
  return state_.cv.wait_for(lock, limit, [&] { return pred(state_); });
}

void RecordingCoordinator::With(const std::function<void(CoordinatorState&)>& f) {
  std::lock_guard<std::mutex> lock(state_.mu);
  f(state_);
  state_.cv.notify_all();
}

std::vector<AttemptRecord> RecordingCoordinator::AttemptsOf(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(state_.mu);
  std::vector<AttemptRecord> out;
  for (const auto& id : state_.attempt_order) {
    if (state_.attempts[id].job_id == job_id) out.push_back(state_.attempts[id]);
  }
  return out;
}

bool RecordingCoordinator::JobFinished(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(state_.mu);
  for (const auto& q : state_.queue) {
    if (q == job_id) return false;
  }
  const std::string last = job_id + "-a" + std::to_string(state_.attempts_of[job_id]);
  auto it = state_.attempts.find(last);
  return it != state_.attempts.end() && it->second.finish.has_value();
}

}  // namespace sweepd::agent::testing
