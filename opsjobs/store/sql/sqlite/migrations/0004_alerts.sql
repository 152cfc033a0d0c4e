-- opsjobs schema, version 4 (SQLite): alert rules, alerts and their events.
CREATE TABLE alert_rules (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    metric         TEXT NOT NULL,
    labels         TEXT NOT NULL DEFAULT '{}',
    condition      TEXT NOT NULL,
    threshold      REAL NOT NULL,
    for_points     INTEGER NOT NULL DEFAULT 1,
    for_seconds    REAL NOT NULL DEFAULT 0,
    window_seconds REAL NOT NULL,
    per_seconds    REAL NOT NULL,
    severity       TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    enabled        INTEGER NOT NULL DEFAULT 1,
    created_at     REAL NOT NULL
);

-- rule_id is not a foreign key: a removed rule's alerts stay as history.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    rule_name   TEXT NOT NULL,
    metric      TEXT NOT NULL,
    series      TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    host        TEXT,
    severity    TEXT NOT NULL,
    state       TEXT NOT NULL,
    value       REAL,
    message     TEXT NOT NULL DEFAULT '',
    opened_at   REAL NOT NULL,
    updated_at  REAL NOT NULL,
    resolved_at REAL
);
-- at most one open alert per rule and series: evaluators racing store each opening once
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, series) WHERE state = 'open';
CREATE INDEX alerts_opened ON alerts (opened_at);

CREATE TABLE alert_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    at       REAL NOT NULL,
    value    REAL,
    message  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_alert ON alert_events (alert_id);

-- the Prometheus exposition reads the latest point of every recent series
CREATE INDEX metrics_at ON metrics (at);
