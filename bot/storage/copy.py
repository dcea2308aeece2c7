"""``python -m bot copy-db``: every row of one database into another, empty one (SQLite → PostgreSQL to move to
several processes; any direction works). One transaction on the target: it ends with everything or nothing.

Both are migrated to the same level first (their migrations are twins, so the columns match). Rows keep their ids
(button custom_ids carry job ids); the target's id sequences then continue after the highest one. The counts of
both sides are compared before the commit.
"""

from __future__ import annotations

import logging

from bot.storage.database import Connection, Database, fetch_one

log = logging.getLogger(__name__)

# In an order that satisfies the foreign keys (jobs before their outputs, steps and ledger rows).
TABLES = (
    "jobs",
    "job_outputs",
    "job_steps",
    "credit_usage",
    "credit_bonus",
    "credit_ledger",
    "member_quota",
    "role_limits",
    "guild_settings",
    "audit_log",
    "job_spending",
    "provider_pauses",
    "user_preferences",
    "job_callbacks",
    "callback_deliveries",
    "job_run_times",
)
IDENTITY_TABLES = ("jobs", "job_steps", "credit_ledger", "audit_log")  # an ``id`` the database hands out
BATCH = 500


class TargetNotEmpty(Exception):
    """copy-db writes only into an empty database."""


async def counts(database: Database) -> dict[str, int]:
    return {table: int(await database.fetch_value(f"SELECT COUNT(*) FROM {table}") or 0) for table in TABLES}


async def copy_database(source: Database, target: Database, *, batch: int = BATCH) -> dict[str, int]:
    """Copy every table; returns the rows copied per table. Raises ``TargetNotEmpty`` before writing anything
    when the target has any row, and ``RuntimeError`` (nothing written) when the counts differ at the end."""
    before = await counts(target)
    if any(before.values()):
        busy = ", ".join(f"{table} ({n})" for table, n in before.items() if n)
        raise TargetNotEmpty(f"the target database is not empty: {busy}")
    want = await counts(source)
    async with target.transaction() as conn:
        for table in TABLES:
            await _copy_table(source, conn, table, batch)
        if target.dialect == "postgresql":
            for table in IDENTITY_TABLES:
                await conn.execute(
                    f"""SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false)
                        FROM {table}"""
                )
        got = {}
        for table in TABLES:
            row = await fetch_one(conn, f"SELECT COUNT(*) FROM {table}")
            got[table] = int(row[0]) if row is not None else 0
        if got != want:
            raise RuntimeError(f"row counts differ after the copy (nothing kept): source {want}, target {got}")
    return got


async def _copy_table(source: Database, conn: Connection, table: str, batch: int) -> None:
    offset = 0
    while True:
        rows = await source.fetch_all(f"SELECT * FROM {table} ORDER BY 1, 2 LIMIT ? OFFSET ?", (batch, offset))
        if not rows:
            return
        columns = list(rows[0].keys())
        marks = ", ".join("?" for _ in columns)
        await conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [tuple(row[c] for c in columns) for row in rows],
        )
        offset += len(rows)
        log.info("copy-db: %s: %d rows", table, offset)
