-- opsjobs schema, version 6 (PostgreSQL): a job run again from another (rerun_of) and the peak
-- resident memory of each run in bytes (peak_rss), recorded by the worker.
ALTER TABLE jobs ADD COLUMN rerun_of text;
ALTER TABLE jobs ADD COLUMN peak_rss bigint;
CREATE INDEX jobs_rerun_of ON jobs (rerun_of) WHERE rerun_of IS NOT NULL;
