-- opsjobs schema, version 7 (SQLite): the retry policy of a job (issue 17), the time before
-- which a queued job is not claimed (run_after: a retry waiting out its delay), and the
-- attempts a retry ended (the job row holds the current attempt).
ALTER TABLE jobs ADD COLUMN retry_delay REAL NOT NULL DEFAULT 10.0;
ALTER TABLE jobs ADD COLUMN retry_backoff REAL NOT NULL DEFAULT 2.0;
ALTER TABLE jobs ADD COLUMN retry_max REAL NOT NULL DEFAULT 600.0;
ALTER TABLE jobs ADD COLUMN retry_on TEXT NOT NULL DEFAULT 'failed,timed_out';
ALTER TABLE jobs ADD COLUMN run_after REAL;
-- the next due time of the jobs that wait (an idle worker's wake-up): a tiny index
CREATE INDEX jobs_waiting ON jobs (run_after) WHERE state = 'queued' AND run_after IS NOT NULL;

CREATE TABLE attempts (
    job_id      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    started_at  REAL,
    finished_at REAL,
    runtime     REAL,
    worker_id   TEXT,
    host        TEXT,
    exit_code   INTEGER,
    output      TEXT NOT NULL DEFAULT '',
    error       TEXT,
    peak_rss    INTEGER,
    PRIMARY KEY (job_id, attempt)
);
-- a deleted or purged job takes its attempts with it
CREATE TRIGGER jobs_delete_attempts AFTER DELETE ON jobs
BEGIN
    DELETE FROM attempts WHERE job_id = old.id;
END;
