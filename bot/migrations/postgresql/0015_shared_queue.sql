-- Several bot processes on one queue: see bot/migrations/0015_shared_queue.sql (the same columns and tables).
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_claim ON jobs (claimed_by, state);
CREATE TABLE rate_buckets (
    user_id BIGINT PRIMARY KEY,
    tokens  DOUBLE PRECISION,
    at      DOUBLE PRECISION NOT NULL
);
CREATE TABLE job_holds (
    job_id  TEXT PRIMARY KEY,
    held_by TEXT NOT NULL,
    until   DOUBLE PRECISION NOT NULL
);
CREATE TABLE queue_processes (
    name    TEXT PRIMARY KEY,
    seen_at DOUBLE PRECISION NOT NULL
);
