-- Named statements of the notifications domain (PostgreSQL): rules, handled ends, windows, sends.

-- name: notify_insert_rule
INSERT INTO notify_rules (id, name, states, job_name, queue, owner, email, webhook, group_seconds,
                          description, enabled, created_by, created_at)
VALUES (%(id)s, %(name)s, %(states)s::jsonb, %(job_name)s, %(queue)s, %(owner)s,
        %(email)s::jsonb, %(webhook)s, %(group_seconds)s, %(description)s, %(enabled)s,
        %(created_by)s, %(created_at)s);

-- name: notify_get_rule
SELECT * FROM notify_rules WHERE id = %(key)s OR name = %(key)s
 ORDER BY id = %(key)s DESC LIMIT 1;

-- name: notify_list_rules
SELECT * FROM notify_rules ORDER BY name;

-- name: notify_delete_rule
DELETE FROM notify_rules WHERE id = %(id)s;

-- name: notify_delete_ends
DELETE FROM notify_ends WHERE rule_id = %(id)s;

-- name: notify_delete_groups
DELETE FROM notify_groups WHERE rule_id = %(id)s;

-- name: notify_insert_end
INSERT INTO notify_ends (rule_id, job_id, attempt, at)
VALUES (%(rule_id)s, %(job_id)s, %(attempt)s, %(at)s)
ON CONFLICT DO NOTHING;

-- name: notify_ensure_group
INSERT INTO notify_groups (rule_id, job_name, window_start, held)
VALUES (%(rule_id)s, %(job_name)s, NULL, 0)
ON CONFLICT DO NOTHING;

-- name: notify_lock_group
-- workers noting ends of one name at once take turns here
SELECT window_start, held FROM notify_groups
 WHERE rule_id = %(rule_id)s AND job_name = %(job_name)s FOR UPDATE;

-- name: notify_open_window
UPDATE notify_groups SET window_start = %(at)s, held = 0
 WHERE rule_id = %(rule_id)s AND job_name = %(job_name)s;

-- name: notify_hold
UPDATE notify_groups SET held = held + 1
 WHERE rule_id = %(rule_id)s AND job_name = %(job_name)s;

-- name: notify_insert_send
INSERT INTO notify_sends (rule_id, rule_name, job_id, job_name, owner, state, channel, target,
                          ok, detail, count, at)
VALUES (%(rule_id)s, %(rule_name)s, %(job_id)s, %(job_name)s, %(owner)s, %(state)s,
        %(channel)s, %(target)s, %(ok)s, %(detail)s, %(count)s, %(at)s);

-- name: notify_sends
SELECT * FROM notify_sends
 WHERE (%(rule_id)s::text IS NULL OR rule_id = %(rule_id)s)
   AND (%(owner)s::text IS NULL OR owner = %(owner)s)
 ORDER BY id DESC LIMIT %(limit)s;

-- name: notify_purge_ends
DELETE FROM notify_ends WHERE at < %(before)s;

-- name: notify_purge_sends
DELETE FROM notify_sends WHERE at < %(before)s;
