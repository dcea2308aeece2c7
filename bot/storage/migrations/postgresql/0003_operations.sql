-- PostgreSQL twin of ../0003_operations.sql: same tables, columns and indexes (BIGINT for INTEGER, DOUBLE
-- PRECISION for REAL). tests/storage/test_backends.py compares them.

CREATE TABLE job_spending (
    job_id      BIGINT  PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,  -- at most one row per job
    provider    TEXT    NOT NULL,
    model_key   TEXT    NOT NULL,
    guild_id    BIGINT  NOT NULL DEFAULT 0,
    day         TEXT    NOT NULL,                                            -- UTC date, YYYY-MM-DD
    usd         DOUBLE PRECISION NOT NULL CHECK (usd >= 0),
    recorded_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX job_spending_by_day ON job_spending (day, provider);

CREATE TABLE provider_pauses (
    provider  TEXT PRIMARY KEY,
    code      TEXT NOT NULL,   -- operator, key_rejected, no_balance
    reason    TEXT NOT NULL,   -- shown to users whose jobs wait, and in /operator status
    paused_by TEXT NOT NULL,   -- "bot" or the operator's user id
    paused_at DOUBLE PRECISION NOT NULL
);
