-- Several bot processes on one queue (bot.shared): which process runs or holds a job (claimed_by, a process name)
-- and until when its claim lasts unless renewed (lease_until, Unix seconds); a cancel clicked on another process
-- (cancel_requested). Written on every engine so the schemas stay one; only PostgreSQL shares a queue.
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_claim ON jobs (claimed_by, state);
-- Each person's rate-limit token bucket, shared by the processes: tokens as they were at `at` (NULL: a full bucket).
CREATE TABLE rate_buckets (
    user_id INTEGER PRIMARY KEY,
    tokens  REAL,
    at      REAL NOT NULL
);
-- A job just queued whose process is still answering the person (the "queued" message): another process that runs it
-- shows its result or failure only after that answer (or `until`), which would otherwise overwrite it.
CREATE TABLE job_holds (
    job_id  TEXT PRIMARY KEY,
    held_by TEXT NOT NULL,
    until   REAL NOT NULL
);
-- The processes on the queue and when each last renewed its leases: a process starting alone treats what it finds
-- as a restart does (jobs too old to answer are expired).
CREATE TABLE queue_processes (
    name    TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
