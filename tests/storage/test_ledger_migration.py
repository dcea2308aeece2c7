"""Migration 0006 rebuilds SQLite's credit ledger (a new kind and the entitlement column): rows and ids are kept,
and the ledger's unique rows still hold."""

from __future__ import annotations

import sqlite3

import pytest

from bot.storage.database import Database, migrations


def _database_at(path, version: int) -> None:
    conn = sqlite3.connect(path)
    for number, _, sql in migrations():
        if number <= version:
            conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.close()


async def test_the_ledger_keeps_its_rows_and_uniqueness(tmp_path):
    path = tmp_path / "bot.sqlite3"
    _database_at(path, 3)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO jobs (id, user_id, guild_id, model_key, provider, kind, prompt, status, cost, created_at)"
        " VALUES (5, 100, 1, 'neta-lumina', 'wavespeed', 'image', 'a cat', 'queued', 1, 0)"
    )
    conn.execute(
        "INSERT INTO credit_ledger (id, guild_id, user_id, job_id, kind, period, period_delta, created_at)"
        " VALUES (41, 1, 100, 5, 'reserve', '2026-11-21', 1, 0)"
    )
    conn.commit()
    conn.close()
    async with Database(path) as database:
        rows = await database.fetch_all("SELECT id, job_id, kind, entitlement_id FROM credit_ledger")
        assert [tuple(row) for row in rows] == [(41, 5, "reserve", None)]
        with pytest.raises(sqlite3.IntegrityError):
            async with database.transaction() as tx:
                await tx.execute(
                    "INSERT INTO credit_ledger (guild_id, user_id, job_id, kind, created_at)"
                    " VALUES (1, 100, 5, 'reserve', 0)"
                )
        async with database.transaction() as tx:
            for _ in range(2):
                await tx.execute(
                    "INSERT INTO credit_ledger (guild_id, user_id, kind, bonus_delta, created_at, entitlement_id)"
                    " VALUES (0, 100, 'purchase', 5, 0, 77) ON CONFLICT DO NOTHING"
                )
        assert await database.fetch_value("SELECT COUNT(*) FROM credit_ledger WHERE entitlement_id = 77") == 1
