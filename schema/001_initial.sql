-- sweepd schema, migration 1: sweeps, jobs, attempts, workers, metric points, results.
-- Applied by sweepd at start inside one transaction; schema_version records it.
-- Times are Unix milliseconds (UTC). JSON columns hold canonical JSON text.

CREATE TABLE sweeps (
  name          TEXT PRIMARY KEY,
  spec_yaml     TEXT NOT NULL,             -- the spec exactly as submitted
  spec_path     TEXT NOT NULL DEFAULT '',
  priority      INTEGER NOT NULL DEFAULT 0,
  cancelled     INTEGER NOT NULL DEFAULT 0,
  submitted_ms  INTEGER NOT NULL
);

-- A job is identified by the hash of its normalised resolved configuration, so an
-- overlapping sweep reuses it; sweep_jobs says which sweeps include which jobs.
CREATE TABLE jobs (
  job_id           TEXT PRIMARY KEY,
  kind             TEXT NOT NULL CHECK (kind IN ('train', 'base_eval')),
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
  updated_ms       INTEGER NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, priority DESC, created_ms);

CREATE TABLE sweep_jobs (
  sweep    TEXT NOT NULL REFERENCES sweeps (name) ON DELETE CASCADE,
  job_id   TEXT NOT NULL REFERENCES jobs (job_id),
  ordinal  INTEGER NOT NULL,                     -- position in the expanded grid
  PRIMARY KEY (sweep, job_id)
);
CREATE INDEX sweep_jobs_by_job ON sweep_jobs (job_id);

-- A job waits for every job it depends on to succeed (the base-model evaluation).
CREATE TABLE job_deps (
  job_id     TEXT NOT NULL REFERENCES jobs (job_id),
  depends_on TEXT NOT NULL REFERENCES jobs (job_id),
  PRIMARY KEY (job_id, depends_on)
);

CREATE TABLE workers (
  worker_id       TEXT PRIMARY KEY,
  hostname        TEXT NOT NULL,
  version         TEXT NOT NULL DEFAULT '',
  slots_json      TEXT NOT NULL DEFAULT '[]',
  labels_json     TEXT NOT NULL DEFAULT '{}',
  state           TEXT NOT NULL DEFAULT 'alive',  -- alive | draining | lost | gone
  registered_ms   INTEGER NOT NULL,
  last_heartbeat_ms INTEGER NOT NULL
);

-- One row per lease of a job. fencing_token is unique and increasing: a call that
-- carries an older token than the job's current attempt is refused.
CREATE TABLE attempts (
  attempt_id     TEXT PRIMARY KEY,
  job_id         TEXT NOT NULL REFERENCES jobs (job_id),
  number         INTEGER NOT NULL,               -- 1 for the job's first attempt
  worker_id      TEXT NOT NULL REFERENCES workers (worker_id),
  slot_index     INTEGER NOT NULL DEFAULT 0,
  fencing_token  INTEGER NOT NULL UNIQUE,
  state          TEXT NOT NULL CHECK (state IN ('leased', 'running', 'finished', 'expired')),
  leased_ms      INTEGER NOT NULL,
  lease_expires_ms INTEGER NOT NULL,
  started_ms     INTEGER,
  finished_ms    INTEGER,
  outcome        TEXT NOT NULL DEFAULT '',       -- succeeded | out_of_memory | non_finite_loss | crashed | timed_out | cancelled | handed_back | invalid_config | lease_expired
  exit_code      INTEGER,
  signal         INTEGER,
  stderr_tail    TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attempts_by_job ON attempts (job_id, number);
CREATE INDEX attempts_live ON attempts (state, lease_expires_ms);

-- Every line the trainer printed, in order, once: (attempt_id, seq) is unique.
CREATE TABLE metric_points (
  attempt_id TEXT NOT NULL REFERENCES attempts (attempt_id),
  seq        INTEGER NOT NULL,
  job_id     TEXT NOT NULL,
  type       TEXT NOT NULL,                      -- the line's "type" (docs/metrics.md)
  step       INTEGER,
  json       TEXT NOT NULL,
  stored_ms  INTEGER NOT NULL,
  PRIMARY KEY (attempt_id, seq)
) WITHOUT ROWID;
CREATE INDEX metric_points_by_job ON metric_points (job_id, type);

-- The final metrics of a succeeded job (the trainer's "final" line), one row per job.
CREATE TABLE results (
  job_id       TEXT PRIMARY KEY REFERENCES jobs (job_id),
  attempt_id   TEXT NOT NULL REFERENCES attempts (attempt_id),
  result_json  TEXT NOT NULL,
  finished_ms  INTEGER NOT NULL
);
