-- Whose pictures a job keeps, so that /forget-me deletes every copy of someone's pictures, however far they were
-- carried: init_owner is the person whose picture init_path is (who attached it, or whose result it is a copy of:
-- a variation, upscale or edit), references_owner the person whose reference_paths are (who attached them). A job
-- made from another (a reroll, remix, variation) carries its source's pictures, and their owners with them.
-- NULL: the job keeps no such picture, or whose it is can't be known any more.
ALTER TABLE jobs ADD COLUMN init_owner INTEGER;
ALTER TABLE jobs ADD COLUMN references_owner INTEGER;

-- Jobs stored before: their owners follow from their lineage, as Storage.insert_job sets them now. A lineage whose
-- first job was deleted (its person asked to be forgotten) can't say whose its pictures were: they stay NULL (and
-- go when housekeeping expires them).
CREATE TEMP TABLE lineage (id TEXT PRIMARY KEY, init_owner INTEGER, references_owner INTEGER);
WITH RECURSIVE owners (id, init_owner, references_owner) AS (
    SELECT id, CASE WHEN source_job_id IS NULL THEN user_id END, CASE WHEN source_job_id IS NULL THEN user_id END
    FROM jobs WHERE source_job_id IS NULL OR source_job_id NOT IN (SELECT id FROM jobs)
    UNION ALL
    SELECT child.id, CASE WHEN child.source_index IS NOT NULL THEN source.user_id ELSE owners.init_owner END,
           owners.references_owner
    FROM jobs AS child JOIN owners ON child.source_job_id = owners.id JOIN jobs AS source ON source.id = owners.id
)
INSERT OR IGNORE INTO lineage SELECT id, init_owner, references_owner FROM owners;
UPDATE jobs SET
    init_owner = CASE WHEN init_path IS NOT NULL AND init_path != ''
                      THEN (SELECT init_owner FROM lineage WHERE lineage.id = jobs.id) END,
    references_owner = CASE WHEN reference_paths IS NOT NULL AND reference_paths != ''
                            THEN (SELECT references_owner FROM lineage WHERE lineage.id = jobs.id) END;
DROP TABLE lineage;
