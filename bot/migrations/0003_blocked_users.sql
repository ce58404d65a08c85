-- People /admin block refused; loaded into the generation cog at start, so a block survives restarts.
CREATE TABLE blocked_users (
    user_id INTEGER PRIMARY KEY,
    blocked_by INTEGER,
    reason TEXT,
    created_at REAL NOT NULL
);
