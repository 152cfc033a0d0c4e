-- Named statements of the schedules domain (PostgreSQL). See store/schedules.py for the
-- firing transaction they make up.

-- name: insert_schedule
INSERT INTO schedules (id, owner, name, spec, trigger, every_seconds, cron, tz, enabled, misfire,
                       grace_seconds, catchup_cap, max_instances, next_fire_at, created_at,
                       updated_at)
VALUES (%(id)s, %(owner)s, %(name)s, %(spec)s::jsonb, %(trigger)s, %(every_seconds)s, %(cron)s, %(tz)s,
        %(enabled)s, %(misfire)s, %(grace_seconds)s, %(catchup_cap)s, %(max_instances)s,
        %(next_fire_at)s, %(now)s, %(now)s);

-- name: get_schedule
-- the schedule with this id, else those with this name (of this owner when one is given)
SELECT s.*, j.state AS last_job_state
  FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id
 WHERE s.id = %(key)s OR (s.name = %(key)s AND (%(owner)s::text IS NULL OR s.owner = %(owner)s))
 ORDER BY s.id = %(key)s DESC, s.owner;

-- name: list_schedules
SELECT s.*, j.state AS last_job_state
  FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id
 ORDER BY s.name, s.owner;

-- name: update_schedule
UPDATE schedules
   SET owner = %(owner)s, name = %(name)s, spec = %(spec)s::jsonb, trigger = %(trigger)s,
       every_seconds = %(every_seconds)s, cron = %(cron)s, tz = %(tz)s, enabled = %(enabled)s,
       misfire = %(misfire)s, grace_seconds = %(grace_seconds)s,
       catchup_cap = %(catchup_cap)s, max_instances = %(max_instances)s,
       next_fire_at = %(next_fire_at)s, updated_at = %(now)s
 WHERE id = %(id)s;

-- name: delete_schedule
DELETE FROM schedules WHERE id = %(id)s;

-- name: next_due_at
SELECT min(next_fire_at) AS at FROM schedules WHERE enabled;

-- name: due_schedules
SELECT s.*, NULL AS last_job_state FROM schedules s
 WHERE enabled AND next_fire_at <= %(now)s
 ORDER BY next_fire_at;

-- name: advance_schedule
-- The conditional update: the row lock makes a concurrent scheduler wait here, and then the
-- re-checked WHERE finds next_fire_at moved on, so it updates nothing.
UPDATE schedules SET next_fire_at = %(next_fire_at)s
 WHERE id = %(id)s AND enabled AND next_fire_at = %(expected)s;

-- name: insert_fire
INSERT INTO schedule_fires (schedule_id, fire_at, outcome, job_id, reason, at, fired_by)
VALUES (%(schedule_id)s, %(fire_at)s, %(outcome)s, %(job_id)s, %(reason)s, %(at)s,
        %(fired_by)s)
ON CONFLICT (schedule_id, fire_at) DO NOTHING;

-- name: active_instances
SELECT count(*) AS n FROM jobs
 WHERE schedule_id = %(id)s AND state IN ('queued', 'running');

-- name: lock_schedule
SELECT id FROM schedules WHERE id = %(id)s FOR UPDATE;

-- name: set_last_fire
UPDATE schedules
   SET last_fire_at = greatest(coalesce(last_fire_at, %(fire_at)s), %(fire_at)s),
       last_job_id = coalesce(%(job_id)s, last_job_id)
 WHERE id = %(id)s;

-- name: list_fires
SELECT * FROM schedule_fires WHERE schedule_id = %(id)s
 ORDER BY fire_at DESC LIMIT %(limit)s;

-- name: purge_keeping
DELETE FROM jobs WHERE id IN (
    SELECT id FROM (
        SELECT id, finished_at,
               row_number() OVER (PARTITION BY name ORDER BY finished_at DESC, id DESC) AS rank
          FROM jobs WHERE state NOT IN ('queued', 'running')
    ) ranked
     WHERE rank > %(keep)s AND finished_at < %(before)s
) AND state NOT IN ('queued', 'running')
RETURNING id;

-- name: existing_job_ids
SELECT id FROM jobs WHERE id = ANY(%(ids)s);
