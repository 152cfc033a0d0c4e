-- Named statements of the notifications domain (SQLite): rules, handled ends, windows, sends.

-- name: notify_insert_rule
INSERT INTO notify_rules (id, name, states, job_name, queue, owner, email, webhook, group_seconds,
                          description, enabled, created_by, created_at)
VALUES (:id, :name, :states, :job_name, :queue, :owner, :email, :webhook, :group_seconds,
        :description, :enabled, :created_by, :created_at);

-- name: notify_get_rule
SELECT * FROM notify_rules WHERE id = :key OR name = :key ORDER BY id = :key DESC LIMIT 1;

-- name: notify_list_rules
SELECT * FROM notify_rules ORDER BY name;

-- name: notify_delete_rule
DELETE FROM notify_rules WHERE id = :id;

-- name: notify_delete_ends
DELETE FROM notify_ends WHERE rule_id = :id;

-- name: notify_delete_groups
DELETE FROM notify_groups WHERE rule_id = :id;

-- name: notify_insert_end
INSERT OR IGNORE INTO notify_ends (rule_id, job_id, attempt, at)
VALUES (:rule_id, :job_id, :attempt, :at);

-- name: notify_ensure_group
INSERT OR IGNORE INTO notify_groups (rule_id, job_name, window_start, held)
VALUES (:rule_id, :job_name, NULL, 0);

-- name: notify_lock_group
-- the write transaction (BEGIN IMMEDIATE) already holds the database's write lock
SELECT window_start, held FROM notify_groups WHERE rule_id = :rule_id AND job_name = :job_name;

-- name: notify_open_window
UPDATE notify_groups SET window_start = :at, held = 0
 WHERE rule_id = :rule_id AND job_name = :job_name;

-- name: notify_hold
UPDATE notify_groups SET held = held + 1 WHERE rule_id = :rule_id AND job_name = :job_name;

-- name: notify_insert_send
INSERT INTO notify_sends (rule_id, rule_name, job_id, job_name, owner, state, channel, target,
                          ok, detail, count, at)
VALUES (:rule_id, :rule_name, :job_id, :job_name, :owner, :state, :channel, :target,
        :ok, :detail, :count, :at);

-- name: notify_sends
SELECT * FROM notify_sends
 WHERE (:rule_id IS NULL OR rule_id = :rule_id) AND (:owner IS NULL OR owner = :owner)
 ORDER BY id DESC LIMIT :limit;

-- name: notify_purge_ends
DELETE FROM notify_ends WHERE at < :before;

-- name: notify_purge_sends
DELETE FROM notify_sends WHERE at < :before;
