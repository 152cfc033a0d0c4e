-- opsjobs schema, version 3 (PostgreSQL): users and their API keys (stored hashed).
CREATE TABLE users (
    id       text PRIMARY KEY,
    email    text COLLATE "C" NOT NULL UNIQUE,
    name     text NOT NULL,
    roles    jsonb NOT NULL DEFAULT '[]',
    is_test  boolean NOT NULL DEFAULT false,
    created  double precision NOT NULL
);

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prefix      text COLLATE "C" NOT NULL UNIQUE,
    hash        text NOT NULL,
    name        text NOT NULL DEFAULT '',
    created     double precision NOT NULL,
    last_used   double precision,
    revoked_at  double precision
);
CREATE INDEX api_keys_user ON api_keys (user_id);
