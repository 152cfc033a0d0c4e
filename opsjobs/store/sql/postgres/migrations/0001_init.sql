-- opsjobs schema, version 1 (PostgreSQL). Times are epoch seconds (double precision), as in
-- the SQLite schema; JSON columns are jsonb and arrive decoded (rows.py accepts both). Columns
-- the results listing sorts by compare bytewise (COLLATE "C"), as SQLite does, whatever the
-- database's locale.
CREATE TABLE jobs (
    id               text PRIMARY KEY,
    name             text COLLATE "C" NOT NULL,
    description      text NOT NULL DEFAULT '',
    owner            text COLLATE "C" NOT NULL DEFAULT '',
    kind             text COLLATE "C" NOT NULL,
    payload          jsonb NOT NULL,
    mode             text COLLATE "C" NOT NULL,
    queue            text COLLATE "C" NOT NULL,
    priority         integer NOT NULL DEFAULT 0,
    timeout          double precision,
    retries          integer NOT NULL DEFAULT 0,
    schedule_id      text,
    state            text COLLATE "C" NOT NULL,
    submitted_at     double precision NOT NULL,
    started_at       double precision,
    finished_at      double precision,
    runtime          double precision,
    worker_id        text,
    host             text COLLATE "C",
    attempt          integer NOT NULL DEFAULT 0,
    lease_until      double precision,
    cancel_requested boolean NOT NULL DEFAULT false,
    exit_code        integer,
    output           text NOT NULL DEFAULT '',
    result           jsonb,
    error            text
);
-- claim: the head of each queue, read in order from this partial index
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, submitted_at) WHERE state = 'queued';
-- running jobs, for lease renewal and recovery
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_submitted ON jobs (submitted_at);
CREATE INDEX jobs_owner_submitted ON jobs (owner, submitted_at);
CREATE INDEX jobs_name ON jobs (name);
-- No index on state, started_at, finished_at or runtime: every claim and finish writes a new
-- row version, and each full index on the table costs an entry per version.

CREATE TABLE workers (
    id            text PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    queues        jsonb NOT NULL,
    threads       integer NOT NULL,
    started_at    double precision NOT NULL,
    heartbeat_at  double precision NOT NULL,
    lease_seconds double precision NOT NULL,
    stopped_at    double precision,
    busy          integer NOT NULL DEFAULT 0
);

CREATE TABLE metrics (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text NOT NULL,
    value     double precision NOT NULL,
    labels    jsonb NOT NULL DEFAULT '{}',
    at        double precision NOT NULL,
    job_id    text,
    worker_id text,
    host      text
);
CREATE INDEX metrics_name_at ON metrics (name, at);
CREATE INDEX metrics_job ON metrics (job_id);
