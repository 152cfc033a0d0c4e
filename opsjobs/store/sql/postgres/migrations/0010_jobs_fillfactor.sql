-- opsjobs schema, version 10 (PostgreSQL): half of each new page of jobs is left free
-- (fillfactor 70 -> 50; issue 21), so that the new row versions of a batch's claims and ends
-- stay on their rows' pages (HOT: no entry into the primary key, jobs_submitted,
-- jobs_owner_submitted, jobs_name, jobs_schedule). A step of 100 ends and 100 claims touches
-- ~40 rows of one page at once: with 30 % free, 57 % of the updates of a 5,000-job drain were
-- HOT; with 50 %, 93 %, the server's CPU per job ~5 % lower and the table smaller after the
-- drain (389 against 461 pages; bench/README.md, issue 21). Applies to pages written from now
-- on: no rewrite, a brief lock.
ALTER TABLE jobs SET (fillfactor = 50);
