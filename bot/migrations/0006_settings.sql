-- /settings: a person's defaults for /imagine and the buttons, and a channel's defaults and limits set by server
-- admins. A NULL column is "not set" (the next level decides: person, then channel, then bot.yaml).
CREATE TABLE user_settings (
    user_id    INTEGER PRIMARY KEY,
    style      TEXT,
    aspect     TEXT,
    count      INTEGER,
    model      TEXT,
    remix      INTEGER NOT NULL DEFAULT 0,  -- edit the prompt in a form before a button's new job is queued
    private    INTEGER NOT NULL DEFAULT 0,  -- results by direct message (or ephemeral when DMs are closed)
    updated_at REAL NOT NULL
);
CREATE TABLE channel_settings (
    channel_id     INTEGER PRIMARY KEY,
    style          TEXT,
    aspect         TEXT,
    count          INTEGER,
    max_count      INTEGER,
    allowed_models TEXT NOT NULL DEFAULT '[]',  -- JSON list of model names; empty: every model
    updated_by     INTEGER,
    updated_at     REAL NOT NULL
);
-- A job made with private results on: its messages go to the person alone (ephemeral answers, the result by DM),
-- and /show refuses it to anyone else. /history lists a person's jobs newest first.
ALTER TABLE jobs ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_user_and_age ON jobs (user_id, created_at);
