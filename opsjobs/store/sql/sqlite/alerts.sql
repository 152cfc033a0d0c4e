-- Named statements of the alerts domain (SQLite): rules, alerts, events, metric reads.

-- name: alerts_insert_rule
INSERT INTO alert_rules (id, name, metric, labels, condition, threshold, for_points, for_seconds,
                         window_seconds, per_seconds, severity, description, enabled, created_at)
VALUES (:id, :name, :metric, :labels, :condition, :threshold, :for_points, :for_seconds,
        :window_seconds, :per_seconds, :severity, :description, :enabled, :created_at);

-- name: alerts_get_rule
SELECT * FROM alert_rules WHERE id = :key OR name = :key ORDER BY id = :key DESC LIMIT 1;

-- name: alerts_list_rules
SELECT * FROM alert_rules ORDER BY name;

-- name: alerts_delete_rule
DELETE FROM alert_rules WHERE id = :id;

-- name: alerts_insert_alert
INSERT OR IGNORE INTO alerts (id, rule_id, rule_name, metric, series, labels, host, severity,
                              state, value, message, opened_at, updated_at, resolved_at)
VALUES (:id, :rule_id, :rule_name, :metric, :series, :labels, :host, :severity,
        'open', :value, :message, :opened_at, :updated_at, NULL);

-- name: alerts_insert_event
INSERT INTO alert_events (alert_id, kind, at, value, message)
VALUES (:alert_id, :kind, :at, :value, :message);

-- name: alerts_find_open
SELECT * FROM alerts WHERE rule_id = :rule_id AND series = :series AND state = 'open';

-- name: alerts_refresh
UPDATE alerts SET value = :value, updated_at = :now WHERE id = :id AND state = 'open';

-- name: alerts_resolve
UPDATE alerts SET state = 'resolved', value = :value, updated_at = :at, resolved_at = :at
 WHERE id = :alert_id AND state = 'open'
RETURNING *;

-- name: alerts_list
SELECT * FROM alerts ORDER BY opened_at DESC, id DESC LIMIT :limit;

-- name: alerts_list_open
SELECT * FROM alerts WHERE state = 'open' ORDER BY opened_at DESC, id DESC LIMIT :limit;

-- name: alerts_events
SELECT * FROM alert_events ORDER BY id DESC LIMIT :limit;

-- name: alerts_events_of
SELECT * FROM alert_events WHERE alert_id = :alert_id ORDER BY id DESC LIMIT :limit;

-- name: alerts_series_points
SELECT * FROM metrics
 WHERE name = :name AND at >= :since AND labels = :labels AND host IS :host
 ORDER BY at DESC, id DESC LIMIT :limit;

-- name: alerts_latest_metrics
-- SQLite takes the bare columns from the row holding max(at) of each group.
SELECT *, max(at) AS latest FROM metrics WHERE at >= :since GROUP BY name, labels, host
 ORDER BY name;

-- name: alerts_job_counts
SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state ORDER BY queue, state;

-- name: alerts_purge_events
DELETE FROM alert_events WHERE alert_id IN (
    SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < :before);

-- name: alerts_purge
DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < :before;
