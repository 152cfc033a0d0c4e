-- opsjobs schema, version 8 (PostgreSQL): notifications on job outcomes.
CREATE TABLE notify_rules (
    id            text PRIMARY KEY,
    name          text COLLATE "C" NOT NULL UNIQUE,
    states        jsonb NOT NULL,
    job_name      text NOT NULL,
    queue         text NOT NULL DEFAULT '',
    owner         text NOT NULL DEFAULT '',
    email         jsonb NOT NULL DEFAULT '[]',
    webhook       boolean NOT NULL DEFAULT true,
    group_seconds double precision NOT NULL,
    description   text NOT NULL DEFAULT '',
    enabled       boolean NOT NULL DEFAULT true,
    created_by    text NOT NULL DEFAULT '',
    created_at    double precision NOT NULL
);

-- each job end is handled once per rule, however many workers report it
CREATE TABLE notify_ends (
    rule_id text NOT NULL,
    job_id  text NOT NULL,
    attempt integer NOT NULL,
    at      double precision NOT NULL,
    PRIMARY KEY (rule_id, job_id, attempt)
);
CREATE INDEX notify_ends_at ON notify_ends (at);

-- the grouping window of each rule and job name: when its last message went, ends held since
CREATE TABLE notify_groups (
    rule_id      text NOT NULL,
    job_name     text NOT NULL,
    window_start double precision,
    held         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_id, job_name)
);

-- every send and every failure to send (rule_id is no foreign key: history outlives rules)
CREATE TABLE notify_sends (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id   text NOT NULL,
    rule_name text NOT NULL,
    job_id    text NOT NULL,
    job_name  text NOT NULL,
    owner     text NOT NULL,
    state     text NOT NULL,
    channel   text NOT NULL,
    target    text NOT NULL,
    ok        boolean NOT NULL,
    detail    text NOT NULL DEFAULT '',
    count     integer NOT NULL,
    at        double precision NOT NULL
);
CREATE INDEX notify_sends_rule ON notify_sends (rule_id);
CREATE INDEX notify_sends_owner ON notify_sends (owner);
