-- opsjobs schema, version 8 (SQLite): notifications on job outcomes.
CREATE TABLE notify_rules (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    states        TEXT NOT NULL,
    job_name      TEXT NOT NULL,
    queue         TEXT NOT NULL DEFAULT '',
    owner         TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '[]',
    webhook       INTEGER NOT NULL DEFAULT 1,
    group_seconds REAL NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL
);

-- each job end is handled once per rule, however many workers report it
CREATE TABLE notify_ends (
    rule_id TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at      REAL NOT NULL,
    PRIMARY KEY (rule_id, job_id, attempt)
);
CREATE INDEX notify_ends_at ON notify_ends (at);

-- the grouping window of each rule and job name: when its last message went, ends held since
CREATE TABLE notify_groups (
    rule_id      TEXT NOT NULL,
    job_name     TEXT NOT NULL,
    window_start REAL,
    held         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_id, job_name)
);

-- every send and every failure to send (rule_id is no foreign key: history outlives rules)
CREATE TABLE notify_sends (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id   TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    job_id    TEXT NOT NULL,
    job_name  TEXT NOT NULL,
    owner     TEXT NOT NULL,
    state     TEXT NOT NULL,
    channel   TEXT NOT NULL,
    target    TEXT NOT NULL,
    ok        INTEGER NOT NULL,
    detail    TEXT NOT NULL DEFAULT '',
    count     INTEGER NOT NULL,
    at        REAL NOT NULL
);
CREATE INDEX notify_sends_rule ON notify_sends (rule_id);
CREATE INDEX notify_sends_owner ON notify_sends (owner);
