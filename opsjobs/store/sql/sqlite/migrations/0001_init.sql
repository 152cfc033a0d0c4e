-- opsjobs schema, version 1 (SQLite)
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    owner            TEXT NOT NULL DEFAULT '',
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    mode             TEXT NOT NULL,
    queue            TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    timeout          REAL,
    retries          INTEGER NOT NULL DEFAULT 0,
    schedule_id      TEXT,
    state            TEXT NOT NULL,
    submitted_at     REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    runtime          REAL,
    worker_id        TEXT,
    host             TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    lease_until      REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    exit_code        INTEGER,
    output           TEXT NOT NULL DEFAULT '',
    result           TEXT,
    error            TEXT
);
-- claim: the best queued job of one queue, straight from this partial index
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, submitted_at) WHERE state = 'queued';
-- running jobs, for lease renewal (a scan of this small index) and recovery (a range on it)
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_submitted ON jobs (submitted_at);
CREATE INDEX jobs_owner_submitted ON jobs (owner, submitted_at);
CREATE INDEX jobs_name ON jobs (name);
-- No index on state, started_at, finished_at or runtime: claim and finish rewrite those columns
-- on every job, and each such index nearly doubled their cost; listings sorted by them use a
-- top-N sort, which stays fast at 100,000 rows.

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    queues        TEXT NOT NULL,
    threads       INTEGER NOT NULL,
    started_at    REAL NOT NULL,
    heartbeat_at  REAL NOT NULL,
    lease_seconds REAL NOT NULL,
    stopped_at    REAL,
    busy          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE metrics (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL,
    value     REAL NOT NULL,
    labels    TEXT NOT NULL DEFAULT '{}',
    at        REAL NOT NULL,
    job_id    TEXT,
    worker_id TEXT,
    host      TEXT
);
CREATE INDEX metrics_name_at ON metrics (name, at);
CREATE INDEX metrics_job ON metrics (job_id);
