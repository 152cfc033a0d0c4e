-- opsjobs schema, version 7 (PostgreSQL): the retry policy of a job (issue 17), the time
-- before which a queued job is not claimed (run_after: a retry waiting out its delay), and the
-- attempts a retry ended (the job row holds the current attempt).
ALTER TABLE jobs ADD COLUMN retry_delay double precision NOT NULL DEFAULT 10.0;
ALTER TABLE jobs ADD COLUMN retry_backoff double precision NOT NULL DEFAULT 2.0;
ALTER TABLE jobs ADD COLUMN retry_max double precision NOT NULL DEFAULT 600.0;
ALTER TABLE jobs ADD COLUMN retry_on text NOT NULL DEFAULT 'failed,timed_out';
ALTER TABLE jobs ADD COLUMN run_after double precision;
-- the next due time of the jobs that wait (an idle worker's wake-up): a tiny index
CREATE INDEX jobs_waiting ON jobs (run_after) WHERE state = 'queued' AND run_after IS NOT NULL;

CREATE TABLE attempts (
    job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    state       text NOT NULL,
    started_at  double precision,
    finished_at double precision,
    runtime     double precision,
    worker_id   text,
    host        text,
    exit_code   integer,
    output      text NOT NULL DEFAULT '',
    error       text,
    peak_rss    bigint,
    PRIMARY KEY (job_id, attempt)
);
