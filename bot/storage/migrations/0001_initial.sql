-- Jobs, their outputs, credits (usage per period, bonus, ledger), per-server settings, limits and the audit trail.
-- Times are Unix seconds (REAL) passed in from Python. guild_id 0 is the scope of direct messages.

CREATE TABLE jobs (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: button custom_ids carry it
    user_id               INTEGER NOT NULL,
    guild_id              INTEGER NOT NULL DEFAULT 0,
    channel_id            INTEGER,
    model_key             TEXT    NOT NULL,
    provider              TEXT    NOT NULL,
    kind                  TEXT    NOT NULL CHECK (kind IN ('image', 'image_edit', 'video')),
    prompt                TEXT    NOT NULL,
    params                TEXT    NOT NULL DEFAULT '{}',      -- JSON: request fields and stored input files
    status                TEXT    NOT NULL CHECK (status IN
                              ('queued', 'submitting', 'running', 'succeeded', 'failed', 'cancelled')),
    cost                  INTEGER NOT NULL CHECK (cost >= 0),
    origin                TEXT    NOT NULL DEFAULT 'command', -- command, reroll, edit, animate
    parent_job_id         INTEGER REFERENCES jobs (id),
    remote_id             TEXT,
    upstream_status       TEXT,
    upstream_request_id   TEXT,
    error_code            TEXT,
    error_message         TEXT,
    created_at            REAL    NOT NULL,
    submitted_at          REAL,
    finished_at           REAL,
    next_poll_at          REAL,
    deadline_at           REAL,
    poll_errors           INTEGER NOT NULL DEFAULT 0,
    -- where and how the result is shown
    application_id        INTEGER,
    interaction_token     TEXT,
    token_expires_at      REAL,
    token_edits_original  INTEGER NOT NULL DEFAULT 0,         -- the token's @original is the job message
    message_id            INTEGER,
    ephemeral             INTEGER NOT NULL DEFAULT 0,
    interaction_context   INTEGER,                            -- 0 guild, 1 bot DM, 2 private channel
    guild_installed       INTEGER NOT NULL DEFAULT 1,
    channel_nsfw          INTEGER NOT NULL DEFAULT 0,
    attachment_size_limit INTEGER NOT NULL DEFAULT 10485760,
    delivery_path         TEXT,                               -- token, channel, dm
    delivered_at          REAL,
    ping_sent_at          REAL,
    message_deleted_at    REAL,
    outputs_purged_at     REAL
);
CREATE INDEX jobs_active ON jobs (provider, status, id) WHERE status IN ('queued', 'submitting', 'running');
CREATE INDEX jobs_undelivered ON jobs (finished_at) WHERE delivered_at IS NULL AND finished_at IS NOT NULL;
CREATE INDEX jobs_by_user ON jobs (user_id, guild_id, id DESC);
CREATE INDEX jobs_active_by_user ON jobs (user_id) WHERE status IN ('queued', 'submitting', 'running');
CREATE INDEX jobs_by_finish ON jobs (finished_at) WHERE outputs_purged_at IS NULL;

CREATE TABLE job_outputs (
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    idx         INTEGER NOT NULL,
    path        TEXT    NOT NULL,
    media_type  TEXT    NOT NULL,
    size_bytes  INTEGER NOT NULL,
    width       INTEGER,
    height      INTEGER,
    nsfw        INTEGER NOT NULL DEFAULT 0,
    source_url  TEXT,                       -- where the provider served it (for links to large files)
    url_expires_at REAL,                    -- when that URL stops working, when known
    PRIMARY KEY (job_id, idx)
);

-- Credits spent in one period (a day by default). Reserving adds to used; a refund takes it back.
CREATE TABLE credit_usage (
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    period    TEXT    NOT NULL,
    used      INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (guild_id, user_id, period)
);

-- Bonus credits granted by moderators: spent after the period's credits, never reset.
CREATE TABLE credit_bonus (
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    balance   INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    PRIMARY KEY (guild_id, user_id)
);

-- Every change of credits. A job has at most one reserve and at most one of commit or refund.
CREATE TABLE credit_ledger (
    id            INTEGER PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    job_id        INTEGER REFERENCES jobs (id),
    kind          TEXT    NOT NULL CHECK (kind IN ('reserve', 'commit', 'refund', 'grant', 'revoke', 'reset')),
    period        TEXT,
    period_delta  INTEGER NOT NULL DEFAULT 0,   -- change of credits used in `period`
    bonus_delta   INTEGER NOT NULL DEFAULT 0,   -- change of the bonus balance
    actor_id      INTEGER,
    reason        TEXT,
    created_at    REAL    NOT NULL
);
CREATE UNIQUE INDEX credit_ledger_job_kind ON credit_ledger (job_id, kind) WHERE job_id IS NOT NULL;
CREATE UNIQUE INDEX credit_ledger_job_settled ON credit_ledger (job_id)
    WHERE job_id IS NOT NULL AND kind IN ('commit', 'refund');
CREATE INDEX credit_ledger_by_user ON credit_ledger (guild_id, user_id, id);

-- A member's own limit and ban, per server.
CREATE TABLE member_quota (
    guild_id      INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    credit_limit  INTEGER CHECK (credit_limit >= 0),
    banned        INTEGER NOT NULL DEFAULT 0,
    ban_reason    TEXT,
    updated_at    REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE role_limits (
    guild_id      INTEGER NOT NULL,
    role_id       INTEGER NOT NULL,
    credit_limit  INTEGER NOT NULL CHECK (credit_limit >= 0),
    PRIMARY KEY (guild_id, role_id)
);

CREATE TABLE guild_settings (
    guild_id          INTEGER PRIMARY KEY,
    default_limit     INTEGER CHECK (default_limit >= 0),
    default_model     TEXT,
    enabled_models    TEXT,                        -- JSON array; NULL means every configured model
    nsfw_policy       TEXT CHECK (nsfw_policy IN ('block', 'spoiler', 'age_restricted')),
    allowed_channels  TEXT NOT NULL DEFAULT '[]',  -- JSON array of channel ids; empty means everywhere
    moderator_roles   TEXT NOT NULL DEFAULT '[]',
    banned_words      TEXT NOT NULL DEFAULT '[]',
    completion_ping   INTEGER NOT NULL DEFAULT 1,
    updated_at        REAL NOT NULL
);

-- Every moderator action, written in the same transaction as the change it records.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    actor_id        INTEGER NOT NULL,
    action          TEXT    NOT NULL,
    target_user_id  INTEGER,
    target_role_id  INTEGER,
    before          TEXT,   -- JSON
    after           TEXT,   -- JSON
    reason          TEXT,
    created_at      REAL    NOT NULL
);
CREATE INDEX audit_log_by_guild ON audit_log (guild_id, id DESC);
CREATE INDEX audit_log_by_target ON audit_log (guild_id, target_user_id, id DESC);
