-- opsjobs schema, version 2 (PostgreSQL): schedules and their fire times
CREATE TABLE schedules (
    id            text PRIMARY KEY,
    name          text COLLATE "C" NOT NULL UNIQUE,
    spec          jsonb NOT NULL,
    trigger       text NOT NULL,
    every_seconds double precision,
    cron          text,
    tz            text NOT NULL DEFAULT 'UTC',
    enabled       boolean NOT NULL DEFAULT true,
    misfire       text NOT NULL DEFAULT 'coalesce',
    grace_seconds double precision NOT NULL DEFAULT 60,
    catchup_cap   integer NOT NULL DEFAULT 10,
    max_instances integer NOT NULL DEFAULT 1,
    next_fire_at  double precision,
    last_fire_at  double precision,
    last_job_id   text,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;

-- one row per fire time: the primary key is what makes a fire time fire at most once
CREATE TABLE schedule_fires (
    schedule_id text NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at     double precision NOT NULL,
    outcome     text NOT NULL,
    job_id      text,
    reason      text NOT NULL DEFAULT '',
    at          double precision NOT NULL,
    fired_by    text NOT NULL DEFAULT '',
    PRIMARY KEY (schedule_id, fire_at)
);

-- the instance limit counts a schedule's queued and running jobs
CREATE INDEX jobs_schedule ON jobs (schedule_id, state) WHERE schedule_id IS NOT NULL;
