-- The job engine's durable steps: every pending piece of work of every job (submit, poll, download, each Discord
-- message to send or edit, the completion ping) is a row with a due time, claimed with a lease. `fence` grows on
-- every claim; every write made on behalf of a claimed step checks it in the same transaction, so a process that
-- lost its lease writes nothing.

CREATE TABLE job_steps (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: a stale lease cannot match a new step
    job_id            INTEGER NOT NULL REFERENCES jobs (id),
    kind              TEXT    NOT NULL CHECK (kind IN ('submit', 'poll', 'download', 'message', 'ping')),
    lane              TEXT    NOT NULL,
    due_at            REAL    NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,      -- higher first among due steps (final results first)
    attempts          INTEGER NOT NULL DEFAULT 0,      -- failed tries so far (drives the backoff)
    fence             INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  REAL,
    created_at        REAL    NOT NULL,
    UNIQUE (job_id, kind)
);
CREATE INDEX job_steps_due ON job_steps (lane, priority DESC, due_at);
CREATE INDEX job_steps_owner ON job_steps (lease_owner) WHERE lease_owner IS NOT NULL;

ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;      -- grows with every change a person can see
ALTER TABLE jobs ADD COLUMN shown_version INTEGER;                   -- the version Discord confirmed last
ALTER TABLE jobs ADD COLUMN message_sent_at REAL;                    -- when the job message was last sent or edited
ALTER TABLE jobs ADD COLUMN submit_sent_at REAL;                     -- written just before the upstream submit call
ALTER TABLE jobs ADD COLUMN upstream_result TEXT;                    -- JSON: the finished upstream state, until downloaded
ALTER TABLE jobs ADD COLUMN delivery_error TEXT;                     -- why the result could not be shown anywhere
ALTER TABLE jobs ADD COLUMN shown_key TEXT;                        -- what the last confirmed message showed (render key)
ALTER TABLE jobs ADD COLUMN shown_place INTEGER;                     -- the place in line it showed, while queued

-- A job caught in 'submitting' by the previous engine may have reached its service: it counts as sent (never
-- resent; the sweep fails and refunds it).
UPDATE jobs SET submit_sent_at = created_at WHERE status = 'submitting';
