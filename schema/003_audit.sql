-- sweepd schema, migration 3: the audit trail. One row per submit, cancel, retry and
-- worker registration that a known caller made: when, who (the token's name and role, '-'
-- without --auth-file), what on which sweep or worker, and how it ended ('ok' or the
-- status code and message of the error). Rows are only ever appended.
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  caller TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  outcome TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (time_ms);
