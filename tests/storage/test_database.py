"""The database: PRAGMAs, migrations by user_version, whole-transaction locking, rollback."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot.storage.database import Database, migrations, sql_statements


@pytest.fixture
async def db(tmp_path):
    async with Database(tmp_path / "sub" / "bot.sqlite3") as database:
        yield database


async def test_opens_with_wal_foreign_keys_and_busy_timeout(db):
    assert (await db.fetch_value("PRAGMA journal_mode")) == "wal"
    assert (await db.fetch_value("PRAGMA foreign_keys")) == 1
    assert (await db.fetch_value("PRAGMA busy_timeout")) >= 5000
    async with db.transaction() as conn, conn.execute("PRAGMA foreign_keys") as cur:
        assert (await cur.fetchone())[0] == 1


async def test_migrations_are_applied_once_and_recorded(db, tmp_path):
    latest = migrations()[-1][0]
    assert await db.schema_version() == latest
    tables = {row[0] for row in await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "jobs",
        "job_outputs",
        "credit_usage",
        "credit_bonus",
        "credit_ledger",
        "member_quota",
        "role_limits",
        "guild_settings",
        "audit_log",
    } <= tables
    await db.close()
    async with Database(db.path) as again:  # reopening applies nothing new
        assert await again.schema_version() == latest


async def test_two_processes_opening_a_new_database_at_once_both_succeed(tmp_path):
    path = tmp_path / "race.sqlite3"
    first, second = Database(path), Database(path)
    await asyncio.gather(first.open(), second.open())
    assert await first.schema_version() == await second.schema_version() == migrations()[-1][0]
    await first.close()
    await second.close()


async def test_a_migration_another_process_applied_while_we_waited_is_not_applied_again(tmp_path):
    # Another process holds the write lock while it applies 0006 (which rebuilds the ledger) onwards; we start
    # at version 5 and wait for the lock. Reading the version before the lock re-applied 0006 over its work: the
    # purchase's entitlement id was lost and the version went back to 6.
    path = tmp_path / "upgrade.sqlite3"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL")
    for number, _, sql in migrations()[:5]:
        other.executescript(f"{sql}\nPRAGMA user_version = {number};")
    other.execute("BEGIN IMMEDIATE")
    ours = asyncio.create_task(Database(path).open())
    await asyncio.sleep(0.5)  # we are now waiting on the write lock
    for number, _, sql in migrations()[5:]:
        for statement in sql_statements(sql):
            other.execute(statement)
        if number == 6:
            other.execute(
                "INSERT INTO credit_ledger (guild_id, user_id, kind, bonus_delta, created_at, entitlement_id)"
                " VALUES (0, 7, 'purchase', 100, 0, 42)"
            )
    other.execute(f"PRAGMA user_version = {migrations()[-1][0]}")
    other.execute("COMMIT")
    db = await ours
    assert await db.schema_version() == migrations()[-1][0]
    assert await db.fetch_value("SELECT entitlement_id FROM credit_ledger WHERE kind = 'purchase'") == 42
    await db.close()
    other.close()


def test_migration_scripts_split_into_their_statements():
    script = "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT ';');\nCREATE INDEX i ON a (x);\n-- end\n"
    assert sql_statements(script) == [
        "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE INDEX i ON a (x);",
    ]
    with pytest.raises(ValueError, match="incomplete statement"):
        sql_statements("CREATE TABLE a (x)")


async def test_transaction_rolls_back_on_error(db):
    with pytest.raises(RuntimeError):  # noqa: PT012 - the error must come from inside the transaction
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO role_limits (guild_id, role_id, credit_limit) VALUES (1, 2, 3)")
            raise RuntimeError("boom")
    assert await db.fetch_value("SELECT COUNT(*) FROM role_limits") == 0


async def test_transactions_do_not_interleave(db):
    """Read-modify-write in concurrent transactions never loses an update."""
    await db.execute("INSERT INTO credit_bonus (guild_id, user_id, balance) VALUES (1, 1, 0)")

    async def increment() -> None:
        async with db.transaction() as conn:
            async with conn.execute("SELECT balance FROM credit_bonus") as cur:
                value = (await cur.fetchone())[0]
            await asyncio.sleep(0)
            await conn.execute("UPDATE credit_bonus SET balance = ?", (value + 1,))

    await asyncio.gather(*(increment() for _ in range(50)))
    assert await db.fetch_value("SELECT balance FROM credit_bonus") == 50


async def test_constraints_hold(db):
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute("INSERT INTO credit_bonus (guild_id, user_id, balance) VALUES (1, 1, -1)")
    with pytest.raises(sqlite3.IntegrityError):  # foreign key: no such job
        await db.execute(
            "INSERT INTO credit_ledger (guild_id, user_id, job_id, kind, created_at) VALUES (1, 1, 999, 'reserve', 0)"
        )
    with pytest.raises(sqlite3.OperationalError):  # the read connection is read-only
        await db.reader.execute("DELETE FROM jobs")


def test_migration_files_are_numbered_without_gaps():
    numbers = [number for number, _, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_a_transaction_cancelled_while_beginning_leaves_no_transaction_open(db):
    for _ in range(20):

        async def write() -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO role_limits (guild_id, role_id, credit_limit) VALUES (1, 1, 1)")

        task = asyncio.create_task(write())
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.execute("DELETE FROM role_limits")  # would fail with "cannot start a transaction within a transaction"
    assert not db.writer.in_transaction
