-- sweepd schema, migration 4: jobs.kind may also be 'merge' (a merge job folds its train job's
-- adapter into the base model, docs/job-config.md). SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt as its documented procedure does: a new table with the same
-- columns in the same order (attempts_base, added by migration 2, last), the rows copied, the old
-- table dropped, the new one renamed and its index made again. ApplyMigrations runs every
-- migration with foreign keys off and checks them before committing.
CREATE TABLE jobs_new (
  job_id           TEXT PRIMARY KEY,
  kind             TEXT NOT NULL CHECK (kind IN ('train', 'base_eval', 'merge')),
  config_json      TEXT NOT NULL,
  method           TEXT NOT NULL,
  track            TEXT NOT NULL,
  seed             INTEGER NOT NULL,
  trainable_params INTEGER NOT NULL DEFAULT 0,
  device_kind      TEXT NOT NULL DEFAULT 'cpu',
  memory_bytes     INTEGER NOT NULL DEFAULT 0,   -- required free device memory; 0: any
  priority         INTEGER NOT NULL DEFAULT 0,
  state            TEXT NOT NULL CHECK (state IN
                     ('blocked', 'queued', 'leased', 'running', 'succeeded', 'failed', 'cancelled')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL DEFAULT 3,
  not_before_ms    INTEGER NOT NULL DEFAULT 0,   -- retry backoff
  last_outcome     TEXT NOT NULL DEFAULT '',
  last_error       TEXT NOT NULL DEFAULT '',
  created_ms       INTEGER NOT NULL,
  updated_ms       INTEGER NOT NULL,
  attempts_base    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_new (job_id, kind, config_json, method, track, seed, trainable_params, device_kind, memory_bytes,
                      priority, state, attempts, max_attempts, not_before_ms, last_outcome, last_error, created_ms,
                      updated_ms, attempts_base)
  SELECT job_id, kind, config_json, method, track, seed, trainable_params, device_kind, memory_bytes, priority, state,
         attempts, max_attempts, not_before_ms, last_outcome, last_error, created_ms, updated_ms, attempts_base
  FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_by_state ON jobs (state, priority DESC, created_ms);
