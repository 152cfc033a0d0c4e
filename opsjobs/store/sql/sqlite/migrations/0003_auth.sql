-- opsjobs schema, version 3 (SQLite): users and their API keys (stored hashed).
CREATE TABLE users (
    id       TEXT PRIMARY KEY,
    email    TEXT NOT NULL UNIQUE,
    name     TEXT NOT NULL,
    roles    TEXT NOT NULL DEFAULT '[]',
    is_test  INTEGER NOT NULL DEFAULT 0,
    created  REAL NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    created     REAL NOT NULL,
    last_used   REAL,
    revoked_at  REAL
);
CREATE INDEX api_keys_user ON api_keys (user_id);
