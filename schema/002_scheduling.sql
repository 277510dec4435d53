-- sweepd schema, migration 2: bookkeeping the scheduler needs.
-- metrics_through: every metric point of the attempt up to this seq is stored (the ack).
-- attempts_base: attempts numbered at or below it were before the last RetryJobs, so
-- they no longer count against max_attempts.
ALTER TABLE attempts ADD COLUMN metrics_through INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN attempts_base INTEGER NOT NULL DEFAULT 0;
CREATE INDEX job_deps_by_dependency ON job_deps (depends_on);
