"""The two stores behind ``Database``: which one a target names, the placeholder rewrite, and the PostgreSQL
migrations as the twin of the SQLite ones (same numbers, same tables and columns)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.storage.database import Database, migrations, redacted_url, sqlite_path
from bot.storage.postgres import PostgresDatabase, pg_sql


def test_a_target_names_its_store(tmp_path):
    assert type(Database(tmp_path / "a.sqlite3")) is Database
    assert Database("sqlite:///data/bot.sqlite3").path == Path("data/bot.sqlite3")
    assert sqlite_path("sqlite:////var/lib/bot.sqlite3") == Path("/var/lib/bot.sqlite3")
    pg = Database("postgresql://bot:secret@db.example/bot", pool_size=7)
    assert isinstance(pg, PostgresDatabase)
    assert pg.pool_size == 7
    assert isinstance(Database("postgres://localhost/bot"), PostgresDatabase)
    assert "secret" not in repr(pg)
    assert redacted_url("postgresql://bot:secret@host/db") == "postgresql://bot:***@host/db"


def test_database_url_selects_the_store_and_database_path_stays_the_default():
    assert Settings(_env_file=None).database_target == "data/bot.sqlite3"  # type: ignore[call-arg]
    chosen = Settings(_env_file=None, database_path="x.db", database_url="postgresql://h/db")  # type: ignore[call-arg]
    assert chosen.database_target == "postgresql://h/db"
    assert "postgresql" not in repr(chosen)  # a URL may carry a password


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b IN (?, ?)", "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"),
        ("SELECT '?', \"we?ird\" FROM t WHERE a = ?", "SELECT '?', \"we?ird\" FROM t WHERE a = $1"),
        ("SELECT 'it''s ?' WHERE x = ? -- why?\n AND y = ?", "SELECT 'it''s ?' WHERE x = $1 -- why?\n AND y = $2"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_placeholders_become_numbered_outside_literals_and_comments(sql, expected):
    assert pg_sql(sql) == expected


def test_both_dialects_have_the_same_migration_numbers():
    assert [n for n, _, _ in migrations("sqlite")] == [n for n, _, _ in migrations("postgresql")]
    assert [name for _, name, _ in migrations("sqlite")] == [name for _, name, _ in migrations("postgresql")]


@pytest.mark.postgres
async def test_the_postgresql_schema_has_the_same_tables_and_columns(tmp_path, pg_url):
    async with Database(tmp_path / "bot.sqlite3") as lite:
        tables = [r[0] for r in await lite.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")]
        want = {
            t: [r["name"] for r in await lite.fetch_all(f"SELECT name FROM pragma_table_info('{t}') ORDER BY cid")]
            for t in tables
            if t != "sqlite_sequence"
        }
    async with Database(pg_url) as pg:
        rows = await pg.fetch_all(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
               ORDER BY table_name, ordinal_position"""
        )
        got: dict[str, list[str]] = {}
        for row in rows:
            got.setdefault(row["table_name"], []).append(row["column_name"])
        assert got == want
        assert await pg.schema_version() == migrations()[-1][0]


@pytest.mark.postgres
async def test_postgresql_migrates_once_even_when_processes_open_it_together(pg_url):
    dbs = [Database(pg_url, pool_size=2) for _ in range(4)]
    await asyncio.gather(*(db.open() for db in dbs))
    try:
        applied = await dbs[0].fetch_all("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in applied] == [n for n, _, _ in migrations("postgresql")]
    finally:
        await asyncio.gather(*(db.close() for db in dbs))
    async with Database(pg_url) as again:
        assert await again.schema_version() == migrations()[-1][0]


async def test_write_results_rowcounts_and_rollback(database_url):
    async with Database(database_url) as db:
        await db.execute("INSERT INTO role_limits (guild_id, role_id, credit_limit) VALUES (?, ?, ?)", (1, 2, 3))
        assert await db.execute("UPDATE role_limits SET credit_limit = 4 WHERE guild_id = ?", (1,)) == 1
        assert await db.execute("UPDATE role_limits SET credit_limit = 4 WHERE guild_id = ?", (9,)) == 0
        big = 1_234_567_890_123_456_789  # Discord ids need 64 bits
        await db.execute("INSERT INTO role_limits (guild_id, role_id, credit_limit) VALUES (?, ?, ?)", (big, big, 1))
        assert await db.fetch_value("SELECT role_id FROM role_limits WHERE guild_id = ?", (big,)) == big

        async def delete_then_fail() -> None:
            async with db.transaction() as conn:
                await conn.execute("DELETE FROM role_limits")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await delete_then_fail()
        assert await db.fetch_value("SELECT COUNT(*) FROM role_limits") == 2


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_postgresql_its_tests_fail_in_ci_and_skip_elsewhere(monkeypatch, ci, outcome):
    from tests.postgres_server import unavailable

    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no server binaries"):
        unavailable("no server binaries")
