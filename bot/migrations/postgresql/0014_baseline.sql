-- PostgreSQL's schema starts here: SQLite's at its version 14 (bot/migrations/0001 ... 0014, where each table and
-- column is explained), created at once. Every later migration is written once for each engine, with the same
-- number (tests/test_schemas.py builds both and compares them). Types: BIGINT for Discord ids, counts and 0/1 flags
-- (SQLite's INTEGER), DOUBLE PRECISION for Unix-seconds timestamps (REAL), TEXT for text and JSON.
CREATE TABLE jobs (
    id                     TEXT PRIMARY KEY,
    user_id                BIGINT NOT NULL,
    guild_id               BIGINT,
    channel_id             BIGINT,
    kind                   TEXT NOT NULL,
    request                TEXT NOT NULL,
    init_path              TEXT,
    source_job_id          TEXT,
    source_index           BIGINT,
    state                  TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'expired', 'undeliverable')),
    error                  TEXT,
    application_id         BIGINT,
    token                  TEXT,
    interaction_created_at DOUBLE PRECISION,
    progress_message_id    BIGINT,
    result_message_id      BIGINT,
    delivered              BIGINT NOT NULL DEFAULT 0,
    created_at             DOUBLE PRECISION NOT NULL,
    started_at             DOUBLE PRECISION,
    finished_at            DOUBLE PRECISION,
    attempts               BIGINT NOT NULL DEFAULT 0,
    delivery_attempts      BIGINT NOT NULL DEFAULT 0,
    next_delivery_at       DOUBLE PRECISION,
    private                BIGINT NOT NULL DEFAULT 0,
    reference_paths        TEXT,
    webhook_only           BIGINT NOT NULL DEFAULT 0,
    notice                 TEXT,
    described              TEXT,
    locale                 TEXT,
    init_owner             BIGINT,
    references_owner       BIGINT,
    input_paths            TEXT,
    inputs_owner           BIGINT,
    -- SQLite's implicit rowid: the order rows were inserted in, which breaks ties between jobs created at the same
    -- time (ORDER BY created_at, rowid reads the same on both engines). Not part of the compared schema.
    rowid                  BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX jobs_by_state ON jobs (state, created_at);
CREATE INDEX jobs_by_user ON jobs (user_id);
CREATE INDEX jobs_result_message ON jobs (result_message_id);
CREATE INDEX jobs_by_source ON jobs (source_job_id);
CREATE INDEX jobs_by_user_and_age ON jobs (user_id, created_at);
CREATE INDEX jobs_with_notice ON jobs (user_id) WHERE notice IS NOT NULL;

CREATE TABLE images (
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx        BIGINT NOT NULL,
    path       TEXT NOT NULL,
    recipe     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expired    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX images_by_age ON images (created_at) WHERE expired = 0;

CREATE TABLE blocked_users (
    user_id    BIGINT PRIMARY KEY,
    blocked_by BIGINT,
    reason     TEXT,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE user_settings (
    user_id    BIGINT PRIMARY KEY,
    style      TEXT,
    aspect     TEXT,
    count      BIGINT,
    model      TEXT,
    remix      BIGINT NOT NULL DEFAULT 0,
    private    BIGINT NOT NULL DEFAULT 0,
    updated_at DOUBLE PRECISION NOT NULL,
    draft      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE channel_settings (
    channel_id     BIGINT PRIMARY KEY,
    style          TEXT,
    aspect         TEXT,
    count          BIGINT,
    max_count      BIGINT,
    allowed_models TEXT NOT NULL DEFAULT '[]',
    updated_by     BIGINT,
    updated_at     DOUBLE PRECISION NOT NULL,
    safety         TEXT
);
