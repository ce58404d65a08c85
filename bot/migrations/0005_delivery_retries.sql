-- Delivery is confirmed before a job counts as delivered: a failed delivery is retried with a growing wait that a
-- restart keeps (delivery_attempts, next_delivery_at), and a job that could not be delivered for
-- queue.undeliverable_after_h becomes 'undeliverable'. SQLite cannot change a CHECK constraint in place, so the
-- table is rebuilt (SQLite's documented procedure; Storage.open runs migrations with foreign keys off, so dropping
-- the old table does not cascade to the images).
CREATE TABLE jobs_new (  -- 0001's columns (see there what they hold) and 0002's attempts, then the new ones
    id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, guild_id INTEGER, channel_id INTEGER, kind TEXT NOT NULL,
    request TEXT NOT NULL, init_path TEXT, source_job_id TEXT, source_index INTEGER,
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'expired', 'undeliverable')),
    error TEXT, application_id INTEGER, token TEXT, interaction_created_at REAL, progress_message_id INTEGER,
    result_message_id INTEGER, delivered INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, started_at REAL,
    finished_at REAL, attempts INTEGER NOT NULL DEFAULT 0,
    delivery_attempts      INTEGER NOT NULL DEFAULT 0,  -- failed deliveries of a stored result
    next_delivery_at       REAL                         -- when the next one is due (NULL: none failed)
);
INSERT INTO jobs_new (id, user_id, guild_id, channel_id, kind, request, init_path, source_job_id, source_index, state,
                      error, application_id, token, interaction_created_at, progress_message_id, result_message_id,
                      delivered, created_at, started_at, finished_at, attempts)
    SELECT id, user_id, guild_id, channel_id, kind, request, init_path, source_job_id, source_index, state,
           error, application_id, token, interaction_created_at, progress_message_id, result_message_id,
           delivered, created_at, started_at, finished_at, attempts
    FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_by_state ON jobs (state, created_at);
CREATE INDEX jobs_by_user ON jobs (user_id);
CREATE INDEX jobs_result_message ON jobs (result_message_id);
-- forget_user follows derived jobs (variations, rerolls, upscales) of someone's jobs through source_job_id.
CREATE INDEX jobs_by_source ON jobs (source_job_id);
