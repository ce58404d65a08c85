-- attempts: how many times a job has been handed to the engine. A request that kills the process (a crash or an
-- out-of-memory kill in the driver) would otherwise be resumed and kill it again on every start.
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

-- forget_user and the per-user statistics look jobs up by user; housekeeping looks images up by age.
CREATE INDEX jobs_by_user ON jobs (user_id);
CREATE INDEX images_by_age ON images (created_at) WHERE expired = 0;
