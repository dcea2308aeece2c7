-- What each finished job showed of its run time (for the learned poll schedule), and provider callbacks
-- (WEBHOOK_PUBLIC_URL): the hash of each job's callback secret (the secret itself is only in
-- the URL given to the provider) and the delivery ids already taken (a replayed delivery is refused).

CREATE TABLE job_callbacks (
    job_id      INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    provider    TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL,  -- hex SHA-256 of the secret in the callback URL
    created_at  REAL    NOT NULL
);

CREATE TABLE callback_deliveries (
    provider    TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL,  -- the provider's delivery id (WaveSpeed webhook-id), or job id and state
    job_id      INTEGER NOT NULL,
    received_at REAL    NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX callback_deliveries_by_time ON callback_deliveries (received_at);

-- Each succeeded job's run time as seen: it was still running seen_running_s after acceptance (0: found done at the
-- first look) and found done at done_s. Read per model, newest first.
CREATE TABLE job_run_times (
    job_id         INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    model_key      TEXT    NOT NULL,
    seen_running_s REAL NOT NULL,
    done_s         REAL NOT NULL,
    recorded_at    REAL NOT NULL
);
CREATE INDEX job_run_times_by_model ON job_run_times (model_key, recorded_at);
