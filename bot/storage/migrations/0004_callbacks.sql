-- Provider callbacks (WEBHOOK_PUBLIC_URL): the hash of each job's callback secret (the secret itself is only in
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
