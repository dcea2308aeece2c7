-- The personal wallet and credit packs. A user's personal wallet is the credit scope guild_id 0 (DMs, and servers
-- where the bot itself is not installed). A credit pack bought through Discord is a 'purchase' ledger row, at most
-- one per entitlement: the row is written before the entitlement is consumed, so a settlement is never repeated.
-- SQLite cannot change a CHECK constraint in place: the ledger is rebuilt with its rows and ids.

CREATE TABLE credit_ledger_new (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    job_id          INTEGER REFERENCES jobs (id),
    kind            TEXT    NOT NULL
                    CHECK (kind IN ('reserve', 'commit', 'refund', 'grant', 'revoke', 'reset', 'purchase')),
    period          TEXT,
    period_delta    INTEGER NOT NULL DEFAULT 0,   -- change of credits used in `period`
    bonus_delta     INTEGER NOT NULL DEFAULT 0,   -- change of the bonus balance
    actor_id        INTEGER,
    reason          TEXT,
    created_at      REAL    NOT NULL,
    entitlement_id  INTEGER                       -- the Discord entitlement a 'purchase' settles
);
INSERT INTO credit_ledger_new (id, guild_id, user_id, job_id, kind, period, period_delta, bonus_delta, actor_id,
                               reason, created_at)
    SELECT id, guild_id, user_id, job_id, kind, period, period_delta, bonus_delta, actor_id, reason, created_at
    FROM credit_ledger;
DROP TABLE credit_ledger;
ALTER TABLE credit_ledger_new RENAME TO credit_ledger;
CREATE UNIQUE INDEX credit_ledger_job_kind ON credit_ledger (job_id, kind) WHERE job_id IS NOT NULL;
CREATE UNIQUE INDEX credit_ledger_job_settled ON credit_ledger (job_id)
    WHERE job_id IS NOT NULL AND kind IN ('commit', 'refund');
CREATE INDEX credit_ledger_by_user ON credit_ledger (guild_id, user_id, id);
CREATE UNIQUE INDEX credit_ledger_entitlement ON credit_ledger (entitlement_id) WHERE entitlement_id IS NOT NULL;
