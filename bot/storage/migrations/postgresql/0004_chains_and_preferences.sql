-- PostgreSQL twin of ../0004_chains_and_preferences.sql: same tables, columns and indexes (BIGINT for INTEGER,
-- DOUBLE PRECISION for REAL). tests/storage/test_backends.py compares them.

-- Video chains and personal defaults. An Extend job is an ordinary job (origin 'extend') whose parent_job_id is the
-- job it continues: this index finds what extended a job. user_preferences holds each user's own defaults for
-- /imagine, /edit and /video (per user, not per server); NULL means "not set".

CREATE INDEX jobs_by_parent ON jobs (parent_job_id) WHERE parent_job_id IS NOT NULL;

CREATE TABLE user_preferences (
    user_id      BIGINT  PRIMARY KEY,
    model_key    TEXT,
    aspect_ratio TEXT,
    private      BIGINT  CHECK (private IN (0, 1)),
    suffix       TEXT,                              -- appended to the prompt; may hold inline flags
    updated_at   DOUBLE PRECISION NOT NULL
);
