-- opsjobs schema, version 10 (SQLite): nothing changes. Version 10 of the PostgreSQL schema
-- leaves more free space in each page of jobs for in-place (HOT) updates; SQLite has no such
-- setting. The number is kept in step so that both dialects share one sequence of versions.
SELECT 1;
