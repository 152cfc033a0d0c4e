-- opsjobs schema, version 5 (SQLite): schedule names are unique per owner, not globally (a
-- clash with another user's name would tell one user the other's schedule exists).
-- SQLite cannot drop a column's UNIQUE: the table is rebuilt. Renaming it first moves
-- schedule_fires' foreign key to the old table, so schedule_fires is rebuilt too, with no
-- cascade firing (foreign keys stay on inside the migration's transaction).
ALTER TABLE schedules RENAME TO schedules_v4;
CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL,
    spec          TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    every_seconds REAL,
    cron          TEXT,
    tz            TEXT NOT NULL DEFAULT 'UTC',
    enabled       INTEGER NOT NULL DEFAULT 1,
    misfire       TEXT NOT NULL DEFAULT 'coalesce',
    grace_seconds REAL NOT NULL DEFAULT 60,
    catchup_cap   INTEGER NOT NULL DEFAULT 10,
    max_instances INTEGER NOT NULL DEFAULT 1,
    next_fire_at  REAL,
    last_fire_at  REAL,
    last_job_id   TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    UNIQUE (owner, name)
);
INSERT INTO schedules (id, owner, name, spec, trigger, every_seconds, cron, tz, enabled,
                       misfire, grace_seconds, catchup_cap, max_instances, next_fire_at,
                       last_fire_at, last_job_id, created_at, updated_at)
SELECT id, coalesce(json_extract(spec, '$.owner'), ''), name, spec, trigger, every_seconds,
       cron, tz, enabled, misfire, grace_seconds, catchup_cap, max_instances, next_fire_at,
       last_fire_at, last_job_id, created_at, updated_at
  FROM schedules_v4;
CREATE TABLE schedule_fires_v5 (
    schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at     REAL NOT NULL,
    outcome     TEXT NOT NULL,
    job_id      TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    at          REAL NOT NULL,
    fired_by    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (schedule_id, fire_at)
);
INSERT INTO schedule_fires_v5 (schedule_id, fire_at, outcome, job_id, reason, at, fired_by)
SELECT schedule_id, fire_at, outcome, job_id, reason, at, fired_by FROM schedule_fires;
DROP TABLE schedule_fires;
DROP TABLE schedules_v4;
ALTER TABLE schedule_fires_v5 RENAME TO schedule_fires;
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled = 1;
