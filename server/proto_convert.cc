// Domain <-> proto translation for the sweepd.v1 services.
#include "server/proto_convert.h"

namespace sweepd::server {

grpc::Status ToGrpc(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kInvalidArgument: return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
    case StatusCode::kNotFound: return {grpc::StatusCode::NOT_FOUND, s.message()};
    case StatusCode::kAlreadyExists: return {grpc::StatusCode::ALREADY_EXISTS, s.message()};
    case StatusCode::kFailedPrecondition: return {grpc::StatusCode::FAILED_PRECONDITION, s.message()};
    case StatusCode::kUnavailable: return {grpc::StatusCode::UNAVAILABLE, s.message()};
    case StatusCode::kInternal: return {grpc::StatusCode::INTERNAL, s.message()};
  }
  return {grpc::StatusCode::INTERNAL, s.message()};
}

v1::JobState ToProto(JobState state) {
  switch (state) {
    case JobState::kBlocked: return v1::JOB_STATE_BLOCKED;
    case JobState::kQueued: return v1::JOB_STATE_QUEUED;
    case JobState::kLeased: return v1::JOB_STATE_LEASED;
    case JobState::kRunning: return v1::JOB_STATE_RUNNING;
    case JobState::kSucceeded: return v1::JOB_STATE_SUCCEEDED;
    case JobState::kFailed: return v1::JOB_STATE_FAILED;
    case JobState::kCancelled: return v1::JOB_STATE_CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

void ToProto(const JobRecord& j, const std::string& sweep, v1::Job* out) {
  out->set_job_id(j.job_id);
  out->set_sweep(sweep);
  out->set_state(ToProto(j.state));
  out->set_config_json(j.config_json);
  out->set_method(j.method);
  out->set_track(j.track);
  out->set_seed(j.seed);
  out->set_trainable_params(j.trainable_params);
  out->set_attempts(j.attempts);
  out->set_last_outcome(j.last_outcome);
  out->set_last_error(j.last_error);
  out->set_created_unix_ms(j.created_ms);
  out->set_updated_unix_ms(j.updated_ms);
  for (const std::string& d : j.depends_on) out->add_depends_on(d);
  out->set_kind(j.kind);
}

void ToProto(const SweepRecord& s, v1::SweepSummary* out) {
  out->set_name(s.name);
  out->set_submitted_unix_ms(s.submitted_ms);
  out->set_total_jobs(s.total_jobs);
  for (const auto& [state, n] : s.counts) {
    v1::StateCount* c = out->add_counts();
    c->set_state(ToProto(state));
    c->set_count(n);
  }
  out->set_priority(s.priority);
  out->set_cancelled(s.cancelled);
}

void ToProto(const spec::SpecProblem& p, v1::SpecProblem* out) {
  out->set_file(p.file);
  out->set_line(p.line);
  out->set_column(p.column);
  out->set_field(p.field);
  out->set_message(p.message);
}

void ToProto(const WorkerRecord& w, v1::WorkerInfo* out) {
  out->set_worker_id(w.worker_id);
  out->set_hostname(w.hostname);
  out->set_state(w.state);
  out->set_last_heartbeat_unix_ms(w.last_heartbeat_ms);
  for (const SlotInfo& s : w.slots) {
    v1::Slot* slot = out->add_slots();
    slot->set_index(s.index);
    slot->set_device_kind(s.device_kind);
    slot->set_device_name(s.device_name);
    slot->set_memory_bytes(s.memory_bytes);
    slot->set_compute_capability(s.compute_capability);
  }
  for (const auto& [k, v] : w.labels) (*out->mutable_labels())[k] = v;
  for (const std::string& j : w.running_jobs) out->add_running_jobs(j);
}

Outcome FromProto(v1::Outcome o) {
  switch (o) {
    case v1::OUTCOME_SUCCEEDED: return Outcome::kSucceeded;
    case v1::OUTCOME_OUT_OF_MEMORY: return Outcome::kOutOfMemory;
    case v1::OUTCOME_NON_FINITE_LOSS: return Outcome::kNonFiniteLoss;
    case v1::OUTCOME_TIMED_OUT: return Outcome::kTimedOut;
    case v1::OUTCOME_CANCELLED: return Outcome::kCancelled;
    case v1::OUTCOME_HANDED_BACK: return Outcome::kHandedBack;
    case v1::OUTCOME_INVALID_CONFIG: return Outcome::kInvalidConfig;
    default: return Outcome::kCrashed;
  }
}

}  // namespace sweepd::server
