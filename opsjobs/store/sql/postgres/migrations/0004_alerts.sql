-- opsjobs schema, version 4 (PostgreSQL): alert rules, alerts and their events.
CREATE TABLE alert_rules (
    id             text PRIMARY KEY,
    name           text COLLATE "C" NOT NULL UNIQUE,
    metric         text NOT NULL,
    labels         jsonb NOT NULL DEFAULT '{}',
    condition      text NOT NULL,
    threshold      double precision NOT NULL,
    for_points     integer NOT NULL DEFAULT 1,
    for_seconds    double precision NOT NULL DEFAULT 0,
    window_seconds double precision NOT NULL,
    per_seconds    double precision NOT NULL,
    severity       text NOT NULL,
    description    text NOT NULL DEFAULT '',
    enabled        boolean NOT NULL DEFAULT true,
    created_at     double precision NOT NULL
);

-- rule_id is not a foreign key: a removed rule's alerts stay as history.
CREATE TABLE alerts (
    id          text PRIMARY KEY,
    rule_id     text NOT NULL,
    rule_name   text NOT NULL,
    metric      text NOT NULL,
    series      text NOT NULL,
    labels      jsonb NOT NULL DEFAULT '{}',
    host        text,
    severity    text NOT NULL,
    state       text NOT NULL,
    value       double precision,
    message     text NOT NULL DEFAULT '',
    opened_at   double precision NOT NULL,
    updated_at  double precision NOT NULL,
    resolved_at double precision
);
-- at most one open alert per rule and series: evaluators racing store each opening once
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, series) WHERE state = 'open';
CREATE INDEX alerts_opened ON alerts (opened_at);

CREATE TABLE alert_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id text NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    kind     text NOT NULL,
    at       double precision NOT NULL,
    value    double precision,
    message  text NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_alert ON alert_events (alert_id);

-- the Prometheus exposition reads the latest point of every recent series
CREATE INDEX metrics_at ON metrics (at);
