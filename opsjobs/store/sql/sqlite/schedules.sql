-- Named statements of the schedules domain (SQLite). See store/schedules.py for the firing
-- transaction they make up.

-- name: insert_schedule
INSERT INTO schedules (id, owner, name, spec, trigger, every_seconds, cron, tz, enabled, misfire,
                       grace_seconds, catchup_cap, max_instances, next_fire_at, created_at,
                       updated_at)
VALUES (:id, :owner, :name, :spec, :trigger, :every_seconds, :cron, :tz, :enabled, :misfire,
        :grace_seconds, :catchup_cap, :max_instances, :next_fire_at, :now, :now);

-- name: get_schedule
-- the schedule with this id, else those with this name (of this owner when one is given)
SELECT s.*, j.state AS last_job_state
  FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id
 WHERE s.id = :key OR (s.name = :key AND (:owner IS NULL OR s.owner = :owner))
 ORDER BY s.id = :key DESC, s.owner;

-- name: list_schedules
SELECT s.*, j.state AS last_job_state
  FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id
 ORDER BY s.name, s.owner;

-- name: update_schedule
UPDATE schedules
   SET owner = :owner, name = :name, spec = :spec, trigger = :trigger, every_seconds = :every_seconds,
       cron = :cron, tz = :tz, enabled = :enabled, misfire = :misfire,
       grace_seconds = :grace_seconds, catchup_cap = :catchup_cap,
       max_instances = :max_instances, next_fire_at = :next_fire_at, updated_at = :now
 WHERE id = :id;

-- name: delete_schedule
DELETE FROM schedules WHERE id = :id;

-- name: next_due_at
SELECT min(next_fire_at) AS at FROM schedules WHERE enabled = 1;

-- name: due_schedules
SELECT s.*, NULL AS last_job_state FROM schedules s
 WHERE enabled = 1 AND next_fire_at <= :now
 ORDER BY next_fire_at;

-- name: advance_schedule
UPDATE schedules SET next_fire_at = :next_fire_at
 WHERE id = :id AND enabled = 1 AND next_fire_at = :expected;

-- name: insert_fire
INSERT INTO schedule_fires (schedule_id, fire_at, outcome, job_id, reason, at, fired_by)
VALUES (:schedule_id, :fire_at, :outcome, :job_id, :reason, :at, :fired_by)
ON CONFLICT (schedule_id, fire_at) DO NOTHING;

-- name: active_instances
SELECT count(*) AS n FROM jobs WHERE schedule_id = :id AND state IN ('queued', 'running');

-- name: lock_schedule
-- (the transaction holds the file's write lock already)
SELECT id FROM schedules WHERE id = :id;

-- name: set_last_fire
UPDATE schedules
   SET last_fire_at = max(coalesce(last_fire_at, :fire_at), :fire_at),
       last_job_id = coalesce(:job_id, last_job_id)
 WHERE id = :id;

-- name: list_fires
SELECT * FROM schedule_fires WHERE schedule_id = :id
 ORDER BY fire_at DESC LIMIT :limit;

-- name: purge_keeping
DELETE FROM jobs WHERE id IN (
    SELECT id FROM (
        SELECT id, finished_at,
               row_number() OVER (PARTITION BY name ORDER BY finished_at DESC, id DESC) AS rank
          FROM jobs WHERE state NOT IN ('queued', 'running')
    ) WHERE rank > :keep AND finished_at < :before
) AND state NOT IN ('queued', 'running')
RETURNING id;

-- name: existing_job_ids
SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(:ids));
