-- Named statements of the SQLite store. Parameters are always bound (:name).
-- Dynamic parts (claim over N queues, result filters and sort column) are assembled in
-- sqlite.py from whitelisted pieces only.

-- name: insert_job
INSERT INTO jobs (id, name, description, owner, kind, payload, mode, queue, priority, timeout,
                  retries, schedule_id, rerun_of, retry_delay, retry_backoff, retry_max,
                  retry_on, state, submitted_at)
VALUES (:id, :name, :description, :owner, :kind, :payload, :mode, :queue, :priority, :timeout,
        :retries, :schedule_id, :rerun_of, :retry_delay, :retry_backoff, :retry_max, :retry_on,
        'queued', :now);

-- name: insert_job_row
-- insert_job with positional parameters (rows.job_row), for a batch: a tuple per job binds
-- faster than a dict
INSERT INTO jobs (id, name, description, owner, kind, payload, mode, queue, priority, timeout,
                  retries, schedule_id, rerun_of, retry_delay, retry_backoff, retry_max,
                  retry_on, state, submitted_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?);

-- name: get_job
SELECT * FROM jobs WHERE id = :id;

-- name: claim_pick
-- The worker's claim, in one BEGIN IMMEDIATE transaction: claim_pick takes the heads of one
-- queue straight from the partial index jobs_claim (with the columns a worker needs; a UNION
-- ALL of it per queue serves all of a worker's queues, see sqlite.heads_sql), the best heads
-- are chosen in Python and claim_take moves each by rowid.
-- No RETURNING: SQLite builds an ephemeral table for it, which cost more than the pick.
-- A job waiting out a retry's delay (run_after in the future) is passed over.
SELECT rowid, id, name, description, owner, kind, payload, mode, queue, priority, timeout,
       retries, schedule_id, submitted_at, attempt, cancel_requested, error,
       retry_delay, retry_backoff, retry_max, retry_on, rerun_of
  FROM jobs
 WHERE state = 'queued' AND queue = ? AND (run_after IS NULL OR run_after <= ?)
 ORDER BY priority DESC, submitted_at LIMIT ?;

-- name: claim_take
UPDATE jobs
   SET state = 'running', worker_id = ?, host = ?, attempt = attempt + 1, started_at = ?,
       lease_until = ?
 WHERE rowid = ? AND state = 'queued';

-- name: fail_unreadable
-- A queued job whose row the worker cannot read (a payload that is not JSON, a mode this
-- version does not know) is failed by the claim, with the reason, instead of stopping the
-- worker or staying running until its lease lapses.
UPDATE jobs
   SET state = 'failed', worker_id = ?, host = ?, attempt = attempt + 1, started_at = ?,
       finished_at = ?, runtime = 0.0, error = ?, lease_until = NULL
 WHERE rowid = ? AND state = 'queued';

-- name: finish_rowid
-- finish for a job this store claimed (it knows the rowid): one b-tree search
-- instead of two; the id and owner checks stay.
UPDATE jobs
   SET state = ?, finished_at = ?, runtime = max(? - started_at, 0.0), output = ?, result = ?,
       error = ?, exit_code = ?, peak_rss = ?, lease_until = NULL
 WHERE rowid = ? AND id = ? AND state = 'running' AND worker_id = ? AND attempt = ?;

-- name: finish
UPDATE jobs
   SET state = :state, finished_at = :now, runtime = max(:now - started_at, 0.0),
       output = :output, result = :result, error = :error, exit_code = :exit_code,
       peak_rss = :peak_rss, lease_until = NULL
 WHERE id = :id AND state = 'running' AND worker_id = :worker_id AND attempt = :attempt;

-- name: cancel_queued
UPDATE jobs SET state = 'cancelled', finished_at = :now, runtime = 0.0, cancel_requested = 1,
                error = CASE WHEN attempt > 0 THEN 'cancelled while waiting for attempt '
                                                   || (attempt + 1)
                             ELSE 'cancelled before it started' END
 WHERE id = :id AND state = 'queued';

-- name: cancel_running_cooperative
UPDATE jobs SET state = 'cancelled', finished_at = :now, runtime = max(:now - started_at, 0.0),
                cancel_requested = 1, lease_until = NULL, error = 'cancelled while running'
 WHERE id = :id AND state = 'running' AND mode IN ('inline', 'thread');

-- name: cancel_running_process
UPDATE jobs SET cancel_requested = 1
 WHERE id = :id AND state = 'running' AND mode NOT IN ('inline', 'thread');

-- name: delete_finished
DELETE FROM jobs WHERE id = :id AND state NOT IN ('queued', 'running');

-- name: purge
DELETE FROM jobs WHERE state NOT IN ('queued', 'running') AND finished_at < :before
RETURNING id;

-- name: renew_leases
UPDATE jobs SET lease_until = :lease_until WHERE worker_id = :worker_id AND state = 'running';

-- name: worker_heartbeat
UPDATE workers SET heartbeat_at = :now, lease_seconds = :lease, busy = :busy, stopped_at = NULL
 WHERE id = :worker_id;

-- name: held_jobs
SELECT id, state, worker_id, cancel_requested FROM jobs
 WHERE id IN (SELECT value FROM json_each(:held));

-- name: expired_select
SELECT id, worker_id, attempt, retries FROM jobs WHERE state = 'running' AND lease_until < :now;

-- name: attempt_from_job
-- Keep the attempt that just ended (a retry's, or a lost worker's), from the job row and its
-- outcome; only from the worker and attempt that own the running job.
INSERT INTO attempts (job_id, attempt, state, started_at, finished_at, runtime, worker_id, host,
                      exit_code, output, error, peak_rss)
SELECT id, attempt, :state, started_at, :now, max(:now - started_at, 0.0), worker_id, host,
       :exit_code, :output, :error, :peak_rss
  FROM jobs
 WHERE id = :id AND state = 'running' AND worker_id = :worker_id AND attempt = :attempt;

-- name: requeue_retry
UPDATE jobs SET state = 'queued', run_after = :run_after, worker_id = NULL, host = NULL,
                started_at = NULL, lease_until = NULL, output = '', result = NULL,
                exit_code = NULL, peak_rss = NULL, error = :note
 WHERE id = :id AND state = 'running' AND worker_id = :worker_id AND attempt = :attempt;

-- name: attempts_of_job
SELECT * FROM attempts WHERE job_id = :id ORDER BY attempt;

-- name: next_due
SELECT min(run_after) AS due FROM jobs
 WHERE state = 'queued' AND run_after > :now
   AND queue IN (SELECT value FROM json_each(:queues));

-- name: expired_attempt
INSERT INTO attempts (job_id, attempt, state, started_at, finished_at, runtime, worker_id, host,
                      error)
SELECT id, attempt, 'lost', started_at, :now, max(:now - started_at, 0.0), worker_id, host,
       'the worker running it stopped responding (lease expired)'
  FROM jobs
 WHERE id = :id AND state = 'running' AND lease_until < :now AND attempt <= retries
ON CONFLICT DO NOTHING;

-- name: expired_requeue
UPDATE jobs SET state = 'queued', worker_id = NULL, host = NULL, started_at = NULL,
                lease_until = NULL,
                error = 'attempt ' || attempt || ' lost its worker; re-queued'
 WHERE id = :id AND state = 'running' AND lease_until < :now AND attempt <= retries;

-- name: expired_lose
UPDATE jobs SET state = 'lost', finished_at = :now, runtime = max(:now - started_at, 0.0),
                lease_until = NULL,
                error = 'the worker running it stopped responding (lease expired)'
 WHERE id = :id AND state = 'running' AND lease_until < :now AND attempt > retries;

-- name: register_worker
INSERT INTO workers (id, host, pid, queues, threads, started_at, heartbeat_at, lease_seconds, busy)
VALUES (:id, :host, :pid, :queues, :threads, :started_at, :heartbeat_at, :lease_seconds, 0)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL;

-- name: stop_worker
UPDATE workers SET stopped_at = :now, busy = 0 WHERE id = :id;

-- name: list_workers
SELECT * FROM workers ORDER BY started_at DESC;

-- name: metrics
-- the points of one metric, newest first (the variants filter by time, by job or both)
SELECT * FROM metrics WHERE name = :name
 ORDER BY at DESC, id DESC LIMIT :limit;

-- name: metrics_since
SELECT * FROM metrics WHERE name = :name AND at >= :since
 ORDER BY at DESC, id DESC LIMIT :limit;

-- name: metrics_of_job
SELECT * FROM metrics WHERE name = :name AND job_id = :job_id
 ORDER BY at DESC, id DESC LIMIT :limit;

-- name: metrics_since_of_job
SELECT * FROM metrics WHERE name = :name AND at >= :since AND job_id = :job_id
 ORDER BY at DESC, id DESC LIMIT :limit;

-- name: insert_metric
INSERT INTO metrics (name, value, labels, at, job_id, worker_id, host)
VALUES (:name, :value, :labels, :at, :job_id, :worker_id, :host);

-- name: metrics_purge_batch
-- retention: points recorded before the cutoff that belong to no job or to one that is gone,
-- a batch at a time in id order (the caller passes the last id deleted)
DELETE FROM metrics WHERE id IN (
    SELECT m.id FROM metrics AS m
     WHERE m.id > :after AND m.at < :before
       AND (m.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.id = m.job_id))
     ORDER BY m.id LIMIT :batch)
RETURNING id;
