// The store's types as sweepd's server code names them: the store is its own component
// (store/, shared with sweepctl's read-only reader); the scheduler and the services use its
// records and requests as their domain types.
#pragma once

#include "store/store.h"

namespace sweepd::server {

using store::AddSweepResult;
using store::AttemptEnd;
using store::BackoffPolicy;
using store::FinishReport;
using store::HeartbeatReport;
using store::HeartbeatResult;
using store::IsTerminal;
using store::JobLog;
using store::JobRecord;
using store::JobState;
using store::JobStateName;
using store::Lease;
using store::LeaseOutcome;
using store::LeaseRequest;
using store::MetricPointIn;
using store::MetricsStored;
using store::Reply;
using store::ResultRecord;
using store::RunningProgress;
using store::SlotInfo;
using store::StatusReply;
using store::Store;
using store::StoredPoint;
using store::SweepRecord;
using store::WorkerRecord;

}  // namespace sweepd::server
