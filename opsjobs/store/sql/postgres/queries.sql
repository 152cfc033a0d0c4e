-- Named statements of the PostgreSQL store. Parameters are always bound (%(name)s).
-- Dynamic parts ({where}, {order}, {filters}) are filled in by postgres.py from whitelisted
-- pieces only; values still travel as bound parameters.

-- name: schema_version_table
CREATE TABLE IF NOT EXISTS opsjobs_schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at double precision NOT NULL DEFAULT extract(epoch FROM now())
);

-- name: migration_lock
SELECT pg_advisory_xact_lock(hashtext('opsjobs.migrate:' || current_schema()));

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM opsjobs_schema_version;

-- name: record_migration
INSERT INTO opsjobs_schema_version (version, name) VALUES (%(version)s, %(name)s);

-- name: current_schema
SELECT current_schema() AS schema;

-- name: notify
SELECT pg_notify(%(channel)s, '');

-- name: submit_job
-- Insert (the job and its queue entry) and wake workers in one autocommit statement: one round
-- trip, where BEGIN, SET LOCAL, the insert and COMMIT took four (each a wait for the server on
-- a busy machine, all of it in the pickup latency). NOTIFY is delivered on commit; the
-- set_config makes this statement's commit wait for the WAL flush (synchronous_commit is off
-- for the session: see "Durability" in postgres.py), so a submitted job survives a server
-- crash. It is in the select list of the one row always returned, so it always runs. ON
-- CONFLICT makes a retry after an unknown commit harmless (the id is made by the caller).
WITH ins AS (
  INSERT INTO jobs (id, name, description, owner, kind, payload, mode, queue, priority, timeout,
                    retries, schedule_id, rerun_of, retry_delay, retry_backoff, retry_max,
                    retry_on, state, submitted_at)
  VALUES (%(id)s, %(name)s, %(description)s, %(owner)s, %(kind)s, %(payload)s::jsonb, %(mode)s,
          %(queue)s, %(priority)s, %(timeout)s, %(retries)s, %(schedule_id)s, %(rerun_of)s,
          %(retry_delay)s, %(retry_backoff)s, %(retry_max)s, %(retry_on)s, 'queued', %(now)s)
  ON CONFLICT (id) DO NOTHING
  RETURNING id, queue, priority, submitted_at
), q AS (
  INSERT INTO queued_jobs (id, queue, priority, submitted_at) SELECT * FROM ins
)
SELECT set_config('synchronous_commit', 'on', true) AS durable,
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT FROM ins LIMIT 1) AS one) AS woken;

-- name: submit_jobs
-- Many jobs in one autocommit statement, sent as one JSON array of objects (see
-- finish_and_claim_many), their queue entries, one wake-up and a durable commit (as
-- submit_job). json_to_recordset, not jsonb_to_recordset: it reads the text once instead of
-- first building a jsonb value of the whole batch (1,000 jobs: ~18 per cent less wall time, loaded). ON CONFLICT makes a retry after an unknown commit harmless (the caller makes
-- the ids).
WITH ins AS (
  INSERT INTO jobs (id, name, description, owner, kind, payload, mode, queue, priority, timeout,
                    retries, schedule_id, retry_delay, retry_backoff, retry_max, retry_on,
                    rerun_of, state, submitted_at)
  SELECT t.id, t.name, t.description, t.owner, t.kind, t.payload, t.mode, t.queue,
         t.priority, t.timeout, t.retries, t.schedule_id, t.retry_delay, t.retry_backoff,
         t.retry_max, t.retry_on, t.rerun_of, 'queued', %(now)s
    FROM json_to_recordset(%(jobs)s::json)
         AS t(id text, name text, description text, owner text, kind text, payload jsonb,
              mode text, queue text, priority int, timeout float8, retries int,
              schedule_id text, retry_delay float8, retry_backoff float8, retry_max float8,
              retry_on text, rerun_of text)
  ON CONFLICT (id) DO NOTHING
  RETURNING id, queue, priority, submitted_at
), q AS (
  INSERT INTO queued_jobs (id, queue, priority, submitted_at) SELECT * FROM ins
)
SELECT set_config('synchronous_commit', 'on', true) AS durable,
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT FROM ins LIMIT 1) AS one) AS woken;

-- name: copy_jobs
-- submit_many's first run (see PostgresStore.submit_many): COPY of the rows submit_jobs inserts,
-- then copy_queued_jobs and durable_notify, in one transaction.
-- The columns of rows.job_row (SQLite's insert_job_row), then the state.
COPY jobs (id, name, description, owner, kind, payload, mode, queue, priority, timeout, retries,
           schedule_id, rerun_of, retry_delay, retry_backoff, retry_max, retry_on, submitted_at,
           state)
FROM STDIN;

-- name: copy_queued_jobs
COPY queued_jobs (id, queue, priority, submitted_at) FROM STDIN;

-- name: durable_notify
-- The end of a COPY submit: its commit waits for the WAL flush (as submit_job), one wake-up.
SELECT set_config('synchronous_commit', 'on', true) AS durable, pg_notify(%(channel)s, '') AS woken;

-- name: insert_job
WITH ins AS (
  INSERT INTO jobs (id, name, description, owner, kind, payload, mode, queue, priority, timeout,
                    retries, schedule_id, rerun_of, retry_delay, retry_backoff, retry_max,
                    retry_on, state, submitted_at)
  VALUES (%(id)s, %(name)s, %(description)s, %(owner)s, %(kind)s, %(payload)s::jsonb, %(mode)s,
          %(queue)s, %(priority)s, %(timeout)s, %(retries)s, %(schedule_id)s, %(rerun_of)s,
          %(retry_delay)s, %(retry_backoff)s, %(retry_max)s, %(retry_on)s, 'queued', %(now)s)
  RETURNING id, queue, priority, submitted_at
)
INSERT INTO queued_jobs (id, queue, priority, submitted_at) SELECT * FROM ins;

-- name: get_job
SELECT * FROM jobs WHERE id = %(id)s;

-- name: finish_and_claim_many
-- The worker's hot path in one statement: record many ends, then claim up to %(want)s jobs.
--
-- Ends: sent as one JSON array of objects (one text parameter: psycopg dumps a Python list
-- element by element, ~10 us each, where json.dumps of the whole batch costs a few us per
-- end); each is accepted only from the worker and attempt that own the running job, as in
-- finish, and leaves running_jobs. `j.id = ANY(ARRAY(...))` makes the rows of jobs found by
-- their key whatever the planner guesses of the JSON (it once chose to scan the whole table).
--
-- Claim: each of the worker's queues gives its best %(want)s ready entries nobody else holds,
-- read in order from queued_jobs_ready (no sort: `queue = ANY(...)` over the whole table made
-- the planner sort every queued job while the statistics were stale), and its best %(want)s
-- retries that are due (queued_jobs_waiting: few), each list locked as it is read (SKIP
-- LOCKED below its LIMIT: rows another claimer holds do not count); the best %(want)s of
-- those are deleted. A queue entry is deleted once, by the claimer that locked it (FOR UPDATE
-- skips an entry deleted meanwhile), so no job is taken twice. Entries locked but not among
-- the best (several lists gave some) stay queued; other claimers pass over them until this
-- statement commits. Locking in the lists, rather than reading more heads and locking the
-- best of them after a join back to queued_jobs, cut the server's CPU per job by a tenth to
-- a sixth (bench/README.md, issue 21).
-- `id = ANY(ARRAY(subquery))`, not `id IN (subquery)`: the ARRAY is an init plan run exactly
-- once, where the planner may turn IN into a join that runs the LIMITed, SKIP LOCKED subquery
-- again per row. The jobs taken become running (their row updated in place: no index of jobs
-- names a column changed here) with one lease each, and enter running_jobs (ON CONFLICT: a
-- stale entry never fails a claim). Both parts see one snapshot, and the ended jobs are
-- running, so the claim cannot take them. Rows come back in no particular order: the caller
-- sorts them; finished_ids, the ends accepted, is on every row (one all-NULL row when nothing
-- was claimed).
--
-- Claimed rows are lean: only what a worker needs to start a job, in the layout of SQLite's
-- claim_pick (finished_ids in the place of its rowid; the attempt before this claim; the payload
-- as text, read by rows._loads), read by rows.claimed_job by position. What the claim set
-- (state, worker, host, start, lease) the caller knows; a queued job has no output, result,
-- exit code, end or peak yet. RETURNING * sent and parsed ~30 columns a job (a step of 100:
-- ~2-3 ms of the worker's CPU, under the GIL its job threads want too).
WITH e AS (
  SELECT * FROM json_to_recordset(%(ends)s::json)
         AS e(id text, attempt int, state text, at float8, output text, result text,
              error text, exit_code int, peak_rss bigint)
), fin AS (
  UPDATE jobs AS j
     SET state = e.state, finished_at = e.at, runtime = greatest(e.at - j.started_at, 0.0),
         output = e.output, result = e.result::jsonb, error = e.error, exit_code = e.exit_code,
         peak_rss = e.peak_rss, lease_until = NULL
    FROM e
   WHERE j.id = ANY(ARRAY(SELECT id FROM e)) AND j.id = e.id
     AND j.state = 'running' AND j.worker_id = %(worker_id)s
     AND j.attempt = e.attempt
  RETURNING j.id
), fin_out AS (
  DELETE FROM running_jobs WHERE id IN (SELECT id FROM fin)
), picked AS (
  DELETE FROM queued_jobs
   WHERE id = ANY(ARRAY(SELECT c.id
                          FROM unnest(%(queues)s::text[]) AS w(name)
                          CROSS JOIN LATERAL (SELECT * FROM (SELECT id, priority, submitted_at
                                                               FROM queued_jobs
                                                              WHERE queue = w.name
                                                                AND run_after IS NULL
                                                              ORDER BY priority DESC, submitted_at
                                                              LIMIT %(want)s
                                                                FOR UPDATE SKIP LOCKED) AS ready
                                              UNION ALL
                                              SELECT * FROM (SELECT id, priority, submitted_at
                                                               FROM queued_jobs
                                                              WHERE queue = w.name
                                                                AND run_after <= %(now)s
                                                              ORDER BY priority DESC, submitted_at
                                                              LIMIT %(want)s
                                                                FOR UPDATE SKIP LOCKED) AS due
                                             ) AS c
                         ORDER BY c.priority DESC, c.submitted_at
                         LIMIT %(want)s))
  RETURNING id
), nxt AS (
  UPDATE jobs
     SET state = 'running', worker_id = %(worker_id)s, host = %(host)s, attempt = attempt + 1,
         started_at = %(now)s, lease_until = %(lease_until)s
   WHERE id IN (SELECT id FROM picked) AND state = 'queued'
  RETURNING id, name, description, owner, kind, payload::text, mode, queue, priority, timeout,
            retries, schedule_id, submitted_at, attempt - 1 AS claimed_from, cancel_requested,
            error, retry_delay, retry_backoff, retry_max, retry_on, rerun_of
), nxt_in AS (
  INSERT INTO running_jobs (id, worker_id) SELECT id, %(worker_id)s::text FROM nxt
  ON CONFLICT (id) DO UPDATE SET worker_id = excluded.worker_id
)
SELECT (SELECT array_agg(id) FROM fin) AS finished_ids, nxt.*
  FROM (SELECT 1) AS one LEFT JOIN nxt ON true;

-- name: claimed_by_call
-- The jobs a claim by this worker at exactly this time took, if it committed (see _adopt), as
-- finish_and_claim_many returns them.
SELECT NULL::text[] AS finished_ids, id, name, description, owner, kind, payload::text, mode,
       queue, priority, timeout, retries, schedule_id, submitted_at, attempt - 1 AS claimed_from,
       cancel_requested, error, retry_delay, retry_backoff, retry_max, retry_on, rerun_of
  FROM jobs
 WHERE id IN (SELECT id FROM running_jobs WHERE worker_id = %(worker_id)s)
   AND state = 'running' AND worker_id = %(worker_id)s AND started_at = %(now)s;

-- name: finish
WITH fin AS (
  UPDATE jobs
     SET state = %(state)s, finished_at = %(now)s,
         runtime = greatest(%(now)s - started_at, 0.0),
         output = %(output)s, result = %(result)s::jsonb, error = %(error)s,
         exit_code = %(exit_code)s, peak_rss = %(peak_rss)s, lease_until = NULL
   WHERE id = %(id)s AND state = 'running' AND worker_id = %(worker_id)s
     AND attempt = %(attempt)s
  RETURNING id
), gone AS (
  DELETE FROM running_jobs WHERE id IN (SELECT id FROM fin)
)
SELECT id FROM fin;

-- name: cancel_queued
-- queued_jobs first (a claim locks it first too); a job a claim took meanwhile is left alone
WITH q AS (DELETE FROM queued_jobs WHERE id = %(id)s RETURNING id)
UPDATE jobs SET state = 'cancelled', finished_at = %(now)s, runtime = 0.0,
                cancel_requested = true,
                error = CASE WHEN attempt > 0 THEN 'cancelled while waiting for attempt '
                                                   || (attempt + 1)
                             ELSE 'cancelled before it started' END
 WHERE id IN (SELECT id FROM q) AND state = 'queued';

-- name: cancel_running_cooperative
WITH c AS (
  UPDATE jobs SET state = 'cancelled', finished_at = %(now)s,
                  runtime = greatest(%(now)s - started_at, 0.0),
                  cancel_requested = true, lease_until = NULL, error = 'cancelled while running'
   WHERE id = %(id)s AND state = 'running' AND mode IN ('inline', 'thread')
  RETURNING id
), r AS (
  DELETE FROM running_jobs WHERE id IN (SELECT id FROM c)
)
SELECT id FROM c;

-- name: cancel_running_process
UPDATE jobs SET cancel_requested = true
 WHERE id = %(id)s AND state = 'running' AND mode NOT IN ('inline', 'thread');

-- name: delete_finished
DELETE FROM jobs WHERE id = %(id)s AND state NOT IN ('queued', 'running');

-- name: results
SELECT * FROM jobs{where} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s;

-- name: count
SELECT count(*) AS n FROM jobs{where};

-- name: stats
SELECT count(*) AS total,
       count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE state IN ('failed', 'timed_out', 'lost')) AS failed,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'queued') AS queued,
       avg(runtime) AS avg_runtime
  FROM jobs{where};

-- name: purge
DELETE FROM jobs WHERE state NOT IN ('queued', 'running') AND finished_at < %(before)s
RETURNING id;

-- name: renew_leases
UPDATE jobs SET lease_until = %(lease_until)s
 WHERE id IN (SELECT id FROM running_jobs WHERE worker_id = %(worker_id)s)
   AND worker_id = %(worker_id)s AND state = 'running';

-- name: worker_heartbeat
UPDATE workers SET heartbeat_at = %(now)s, lease_seconds = %(lease)s, busy = %(busy)s,
                   stopped_at = NULL
 WHERE id = %(worker_id)s;

-- name: held_jobs
SELECT id, state, worker_id, cancel_requested FROM jobs WHERE id = ANY(%(held)s);

-- name: expired_select
-- SKIP LOCKED: two recoverers running at once each handle (and report) a job only once. The
-- running set is small: read whole, the jobs rows locked (jobs before running_jobs).
SELECT j.id, j.worker_id FROM running_jobs AS r JOIN jobs AS j ON j.id = r.id
 WHERE j.state = 'running' AND j.lease_until < %(now)s
 ORDER BY j.lease_until
   FOR UPDATE OF j SKIP LOCKED;

-- name: attempt_from_job
-- Keep the attempt that just ended (a retry's, or a lost worker's), from the job row and its
-- outcome; only from the worker and attempt that own the running job.
INSERT INTO attempts (job_id, attempt, state, started_at, finished_at, runtime, worker_id, host,
                      exit_code, output, error, peak_rss)
SELECT id, attempt, %(state)s, started_at, %(now)s, greatest(%(now)s - started_at, 0.0),
       worker_id, host, %(exit_code)s, %(output)s, %(error)s, %(peak_rss)s
  FROM jobs
 WHERE id = %(id)s AND state = 'running' AND worker_id = %(worker_id)s
   AND attempt = %(attempt)s;

-- name: requeue_retry
WITH r AS (
  UPDATE jobs SET state = 'queued', run_after = %(run_after)s, worker_id = NULL, host = NULL,
                  started_at = NULL, lease_until = NULL, output = '', result = NULL,
                  exit_code = NULL, peak_rss = NULL, error = %(note)s
   WHERE id = %(id)s AND state = 'running' AND worker_id = %(worker_id)s
     AND attempt = %(attempt)s
  RETURNING id, queue, priority, submitted_at, run_after
), gone AS (
  DELETE FROM running_jobs WHERE id IN (SELECT id FROM r)
), q AS (
  INSERT INTO queued_jobs (id, queue, priority, submitted_at, run_after) SELECT * FROM r
  ON CONFLICT (id) DO UPDATE SET run_after = excluded.run_after
)
SELECT id FROM r;

-- name: attempts_of_job
SELECT * FROM attempts WHERE job_id = %(id)s ORDER BY attempt;

-- name: next_due
SELECT min(run_after) AS due FROM queued_jobs
 WHERE run_after > %(now)s AND queue = ANY(%(queues)s::text[]);

-- name: expired_attempt
INSERT INTO attempts (job_id, attempt, state, started_at, finished_at, runtime, worker_id, host,
                      error)
SELECT id, attempt, 'lost', started_at, %(now)s, greatest(%(now)s - started_at, 0.0),
       worker_id, host, 'the worker running it stopped responding (lease expired)'
  FROM jobs
 WHERE id = %(id)s AND state = 'running' AND lease_until < %(now)s AND attempt <= retries
ON CONFLICT DO NOTHING;

-- name: expired_requeue
WITH r AS (
  UPDATE jobs SET state = 'queued', worker_id = NULL, host = NULL, started_at = NULL,
                  lease_until = NULL,
                  error = 'attempt ' || attempt || ' lost its worker; re-queued'
   WHERE id = %(id)s AND state = 'running' AND lease_until < %(now)s AND attempt <= retries
  RETURNING id, queue, priority, submitted_at, run_after
), gone AS (
  DELETE FROM running_jobs WHERE id IN (SELECT id FROM r)
), q AS (
  INSERT INTO queued_jobs (id, queue, priority, submitted_at, run_after) SELECT * FROM r
  ON CONFLICT (id) DO NOTHING
)
SELECT id FROM r;

-- name: expired_lose
WITH l AS (
  UPDATE jobs SET state = 'lost', finished_at = %(now)s,
                  runtime = greatest(%(now)s - started_at, 0.0), lease_until = NULL,
                  error = 'the worker running it stopped responding (lease expired)'
   WHERE id = %(id)s AND state = 'running' AND lease_until < %(now)s AND attempt > retries
  RETURNING id
), gone AS (
  DELETE FROM running_jobs WHERE id IN (SELECT id FROM l)
)
SELECT id FROM l;

-- name: register_worker
INSERT INTO workers (id, host, pid, queues, threads, started_at, heartbeat_at, lease_seconds,
                     busy)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s::jsonb, %(threads)s, %(started_at)s,
        %(heartbeat_at)s, %(lease_seconds)s, 0)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL;

-- name: stop_worker
UPDATE workers SET stopped_at = %(now)s, busy = 0 WHERE id = %(id)s;

-- name: connection_counts
-- Connections per opsjobs process of this database (application_name `opsjobs <pid>@<host>`).
SELECT application_name AS name, count(*) AS n FROM pg_stat_activity
 WHERE datname = current_database() AND application_name LIKE 'opsjobs %%@%%'
 GROUP BY application_name;

-- name: list_workers
SELECT * FROM workers ORDER BY started_at DESC;

-- name: metrics
-- the points of one metric, newest first (the variants filter by time, by job or both)
SELECT * FROM metrics WHERE name = %(name)s
 ORDER BY at DESC, id DESC LIMIT %(limit)s;

-- name: metrics_since
SELECT * FROM metrics WHERE name = %(name)s AND at >= %(since)s
 ORDER BY at DESC, id DESC LIMIT %(limit)s;

-- name: metrics_of_job
SELECT * FROM metrics WHERE name = %(name)s AND job_id = %(job_id)s
 ORDER BY at DESC, id DESC LIMIT %(limit)s;

-- name: metrics_since_of_job
SELECT * FROM metrics WHERE name = %(name)s AND at >= %(since)s AND job_id = %(job_id)s
 ORDER BY at DESC, id DESC LIMIT %(limit)s;

-- name: insert_metric
INSERT INTO metrics (name, value, labels, at, job_id, worker_id, host)
VALUES (%(name)s, %(value)s, %(labels)s::jsonb, %(at)s, %(job_id)s, %(worker_id)s, %(host)s);

-- name: metrics_purge_batch
-- retention: points recorded before the cutoff that belong to no job or to one that is gone,
-- a batch at a time in id order (the caller passes the last id deleted)
DELETE FROM metrics WHERE id IN (
    SELECT m.id FROM metrics AS m
     WHERE m.id > %(after)s AND m.at < %(before)s
       AND (m.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.id = m.job_id))
     ORDER BY m.id LIMIT %(batch)s)
RETURNING id;
