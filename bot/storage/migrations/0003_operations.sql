-- Operations: what each finished job cost upstream in USD (spending per day, provider and server, budget caps)
-- and the providers an operator (or the bot itself, on a rejected key or an empty balance) has paused.

CREATE TABLE job_spending (
    job_id      INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,  -- at most one row per job
    provider    TEXT    NOT NULL,
    model_key   TEXT    NOT NULL,
    guild_id    INTEGER NOT NULL DEFAULT 0,
    day         TEXT    NOT NULL,                                            -- UTC date, YYYY-MM-DD
    usd         REAL    NOT NULL CHECK (usd >= 0),
    recorded_at REAL    NOT NULL
);
CREATE INDEX job_spending_by_day ON job_spending (day, provider);

CREATE TABLE provider_pauses (
    provider  TEXT PRIMARY KEY,
    code      TEXT NOT NULL,   -- operator, key_rejected, no_balance
    reason    TEXT NOT NULL,   -- shown to users whose jobs wait, and in /operator status
    paused_by TEXT NOT NULL,   -- "bot" or the operator's user id
    paused_at REAL NOT NULL
);
