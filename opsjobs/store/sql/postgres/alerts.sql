-- Named statements of the alerts domain (PostgreSQL): rules, alerts, events, metric reads.

-- name: alerts_insert_rule
INSERT INTO alert_rules (id, name, metric, labels, condition, threshold, for_points, for_seconds,
                         window_seconds, per_seconds, severity, description, enabled, created_at)
VALUES (%(id)s, %(name)s, %(metric)s, %(labels)s::jsonb, %(condition)s, %(threshold)s,
        %(for_points)s, %(for_seconds)s, %(window_seconds)s, %(per_seconds)s, %(severity)s,
        %(description)s, %(enabled)s, %(created_at)s);

-- name: alerts_get_rule
SELECT * FROM alert_rules WHERE id = %(key)s OR name = %(key)s
 ORDER BY id = %(key)s DESC LIMIT 1;

-- name: alerts_list_rules
SELECT * FROM alert_rules ORDER BY name;

-- name: alerts_delete_rule
DELETE FROM alert_rules WHERE id = %(id)s;

-- name: alerts_insert_alert
INSERT INTO alerts (id, rule_id, rule_name, metric, series, labels, host, severity,
                    state, value, message, opened_at, updated_at, resolved_at)
VALUES (%(id)s, %(rule_id)s, %(rule_name)s, %(metric)s, %(series)s, %(labels)s::jsonb, %(host)s,
        %(severity)s, 'open', %(value)s, %(message)s, %(opened_at)s, %(updated_at)s, NULL)
ON CONFLICT (rule_id, series) WHERE state = 'open' DO NOTHING;

-- name: alerts_insert_event
INSERT INTO alert_events (alert_id, kind, at, value, message)
VALUES (%(alert_id)s, %(kind)s, %(at)s, %(value)s, %(message)s);

-- name: alerts_find_open
SELECT * FROM alerts WHERE rule_id = %(rule_id)s AND series = %(series)s AND state = 'open';

-- name: alerts_refresh
UPDATE alerts SET value = %(value)s, updated_at = %(now)s WHERE id = %(id)s AND state = 'open';

-- name: alerts_resolve
UPDATE alerts SET state = 'resolved', value = %(value)s, updated_at = %(at)s, resolved_at = %(at)s
 WHERE id = %(alert_id)s AND state = 'open'
RETURNING *;

-- name: alerts_list
SELECT * FROM alerts ORDER BY opened_at DESC, id DESC LIMIT %(limit)s;

-- name: alerts_list_open
SELECT * FROM alerts WHERE state = 'open' ORDER BY opened_at DESC, id DESC LIMIT %(limit)s;

-- name: alerts_events
SELECT * FROM alert_events ORDER BY id DESC LIMIT %(limit)s;

-- name: alerts_events_of
SELECT * FROM alert_events WHERE alert_id = %(alert_id)s ORDER BY id DESC LIMIT %(limit)s;

-- name: alerts_series_points
SELECT * FROM metrics
 WHERE name = %(name)s AND at >= %(since)s AND labels = %(labels)s::jsonb
   AND host IS NOT DISTINCT FROM %(host)s
 ORDER BY at DESC, id DESC LIMIT %(limit)s;

-- name: alerts_latest_metrics
SELECT DISTINCT ON (name, labels, host) * FROM metrics WHERE at >= %(since)s
 ORDER BY name, labels, host, at DESC, id DESC;

-- name: alerts_job_counts
SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state ORDER BY queue, state;

-- name: alerts_purge_events
DELETE FROM alert_events WHERE alert_id IN (
    SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < %(before)s);

-- name: alerts_purge
DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < %(before)s;
