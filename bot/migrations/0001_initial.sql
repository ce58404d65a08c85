-- Jobs and the images they produced. Timestamps are Unix seconds (REAL); ids of Discord objects are INTEGER.
CREATE TABLE jobs (
    id                     TEXT PRIMARY KEY,
    user_id                INTEGER NOT NULL,
    guild_id               INTEGER,
    channel_id             INTEGER,
    kind                   TEXT NOT NULL,
    request                TEXT NOT NULL,          -- GenerationRequest.to_dict() as JSON
    init_path              TEXT,                   -- img2img source image, relative to the storage directory
    source_job_id          TEXT,
    source_index           INTEGER,
    state                  TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'expired')),
    error                  TEXT,
    application_id         INTEGER,
    token                  TEXT,                   -- interaction token: valid 15 minutes after interaction_created_at
    interaction_created_at REAL,
    progress_message_id    INTEGER,
    result_message_id      INTEGER,
    delivered              INTEGER NOT NULL DEFAULT 0,
    created_at             REAL NOT NULL,
    started_at             REAL,
    finished_at            REAL
);
CREATE INDEX jobs_by_state ON jobs (state, created_at);

CREATE TABLE images (
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    path       TEXT NOT NULL,                      -- PNG with the recipe in text chunks, relative to the storage directory
    recipe     TEXT NOT NULL,                      -- Recipe.to_dict() as JSON
    created_at REAL NOT NULL,
    expired    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
);
