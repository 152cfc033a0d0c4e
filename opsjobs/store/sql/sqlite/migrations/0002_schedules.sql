-- opsjobs schema, version 2 (SQLite): schedules and their fire times
CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
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
    updated_at    REAL NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled = 1;

-- one row per fire time: the primary key is what makes a fire time fire at most once
CREATE TABLE schedule_fires (
    schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at     REAL NOT NULL,
    outcome     TEXT NOT NULL,
    job_id      TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    at          REAL NOT NULL,
    fired_by    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (schedule_id, fire_at)
);

-- the instance limit counts a schedule's queued and running jobs
CREATE INDEX jobs_schedule ON jobs (schedule_id, state) WHERE schedule_id IS NOT NULL;
