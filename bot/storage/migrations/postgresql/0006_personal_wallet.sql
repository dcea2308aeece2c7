-- The personal wallet and credit packs. A user's personal wallet is the credit scope guild_id 0 (DMs, and servers
-- where the bot itself is not installed). A credit pack bought through Discord is a 'purchase' ledger row, at most
-- one per entitlement: the row is written before the entitlement is consumed, so a settlement is never repeated.

ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_kind_check;
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_kind_check
    CHECK (kind IN ('reserve', 'commit', 'refund', 'grant', 'revoke', 'reset', 'purchase'));
ALTER TABLE credit_ledger ADD COLUMN entitlement_id BIGINT;   -- the Discord entitlement a 'purchase' settles
CREATE UNIQUE INDEX credit_ledger_entitlement ON credit_ledger (entitlement_id) WHERE entitlement_id IS NOT NULL;
