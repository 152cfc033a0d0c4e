-- opsjobs schema, version 5 (PostgreSQL): schedule names are unique per owner, not globally (a
-- clash with another user's name would tell one user the other's schedule exists).
ALTER TABLE schedules ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT '';
UPDATE schedules SET owner = coalesce(spec ->> 'owner', '');
ALTER TABLE schedules DROP CONSTRAINT schedules_name_key;
ALTER TABLE schedules ADD CONSTRAINT schedules_owner_name_key UNIQUE (owner, name);
