-- opsjobs schema, version 9 (PostgreSQL): the queue and the running set leave the jobs table's
-- indexes (issue 21), so that a claim and an end update a job's row in place (HOT).
--
-- PostgreSQL writes a new entry into every index of a table for each new row version, unless
-- no indexed column changed (and the new version fits on the row's page): a heap-only (HOT)
-- update. Up to version 8 `state` was in the predicates of jobs_claim, jobs_running and
-- jobs_waiting and in jobs_schedule, so each claim and each end wrote an entry into all the
-- full indexes (primary key, jobs_submitted, jobs_owner_submitted, jobs_name) and more.
-- Now no index of jobs names a column that a claim, an end, a heartbeat or a retry changes;
-- two narrow tables do the indexing instead, kept in step by the same statements (jobs.state
-- stays the truth that listings, cancel and recovery read):
--   queued_jobs   one row per queued job: the claim's ordered heads and the next due retry;
--                 a claim deletes the rows it takes (FOR UPDATE SKIP LOCKED on these rows).
--   running_jobs  one row per running job and its worker: heartbeats and lease recovery;
--                 small, so it is read whole.
-- Lock order, to rule out deadlocks: queued_jobs before jobs (claim, cancel), jobs before
-- running_jobs (end, heartbeat, retry, recovery).
DROP INDEX jobs_claim;
DROP INDEX jobs_running;
DROP INDEX jobs_waiting;
DROP INDEX jobs_schedule;
CREATE INDEX jobs_schedule ON jobs (schedule_id) WHERE schedule_id IS NOT NULL;

CREATE TABLE queued_jobs (
    id           text PRIMARY KEY,
    queue        text COLLATE "C" NOT NULL,
    priority     integer NOT NULL,
    submitted_at double precision NOT NULL,
    run_after    double precision
);
-- the claim's heads: jobs ready to run, in claim order, and retries that wait out a delay
-- (few; also the next due time). Partial on run_after: the planner then expects few rows per
-- queue from the ready index even before the table has statistics, so it reads the index in
-- order instead of sorting the whole queue (a 10,000-job queue: 2 ms per claim).
CREATE INDEX queued_jobs_ready ON queued_jobs (queue, priority DESC, submitted_at)
    WHERE run_after IS NULL;
CREATE INDEX queued_jobs_waiting ON queued_jobs (queue, run_after) WHERE run_after IS NOT NULL;

CREATE TABLE running_jobs (
    id        text PRIMARY KEY,
    worker_id text NOT NULL
);

INSERT INTO queued_jobs (id, queue, priority, submitted_at, run_after)
SELECT id, queue, priority, submitted_at, run_after FROM jobs WHERE state = 'queued';
INSERT INTO running_jobs (id, worker_id)
SELECT id, coalesce(worker_id, '') FROM jobs WHERE state = 'running';

-- Room on each page for the versions a claim and an end add before the old ones are pruned:
-- without it the new version goes to another page and is not HOT (new pages only; existing
-- ones keep their fill).
ALTER TABLE jobs SET (fillfactor = 70);
