-- opsjobs schema, version 9 (SQLite): nothing changes. Version 9 of the PostgreSQL schema moves
-- the queue and the running set into tables of their own so that claims and ends update a job's
-- row in place (HOT); SQLite has no such row versions and keeps its partial indexes. The number
-- is kept in step so that both dialects share one sequence of versions.
SELECT 1;
