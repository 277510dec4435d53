// Translation between the store's domain types and sweepd.v1 messages, used only by the
// gRPC service classes (proto types never reach the store or the scheduler).
#pragma once

#include <grpcpp/grpcpp.h>

#include "common/status.h"
#include "server/store_names.h"
#include "spec/sweep_spec.h"
#include "sweepd/v1/sweepd.pb.h"

namespace sweepd::server {

grpc::Status ToGrpc(const Status& status);
v1::JobState ToProto(JobState state);
void ToProto(const JobRecord& job, const std::string& sweep, v1::Job* out);
void ToProto(const SweepRecord& sweep, v1::SweepSummary* out);
void ToProto(const spec::SpecProblem& problem, v1::SpecProblem* out);
void ToProto(const WorkerRecord& worker, v1::WorkerInfo* out);
// A worker-reported outcome; anything unknown is a crash (retried).
Outcome FromProto(v1::Outcome outcome);

}  // namespace sweepd::server
