"""copy-db: a SQLite database made here goes to PostgreSQL and back unchanged, ids continue after the copy, and
a non-empty target is refused. Also ``python -m bot migrate`` and ``copy-db`` from the command line."""

from __future__ import annotations

import asyncio

import pytest

from bot.__main__ import main
from bot.credits.service import QuotaService
from bot.server_settings.config import ServerConfig
from bot.server_settings.service import ServerSettingsService
from bot.storage.callbacks import CallbackRepository
from bot.storage.copy import TABLES, TargetNotEmpty, copy_database
from bot.storage.database import Database, migrations
from bot.storage.job_records import OutputRecord
from bot.storage.jobs import JobRepository
from bot.storage.operations import OperationsRepository
from bot.storage.preferences import PreferenceRepository, Preferences
from bot.storage.run_times import RunTimeRepository
from bot.storage.server_settings import ServerSettingsRepository
from bot.storage.steps import StepRepository
from tests.fakes.clock import ManualClock
from tests.quota.helpers import T0, Jobs, insert_job, make_settings

pytestmark = pytest.mark.postgres


async def fill(db: Database) -> None:
    """A little of everything copy-db moves: jobs, outputs, steps, credits, ledger, limits, settings, audit,
    spending, pauses, preferences and callbacks."""
    clock = ManualClock(T0)
    service = QuotaService(db, make_settings(), ServerSettingsService(db, clock=clock), clock=clock)
    jobs = Jobs(db, service, clock)
    first = await jobs.start(user_id=100, cost=3)
    await jobs.start(user_id=101, guild_id=2, cost=1)
    await jobs.finish(first.job_id, ok=True)
    await service.grant(1, 100, 5, actor_id=900, reason="welcome")
    await service.ban(1, 102, actor_id=900, reason="spam")
    await service.set_role_limit(1, 55, 8, actor_id=900)
    async with db.transaction() as conn:
        await ServerSettingsRepository(db).save(conn, ServerConfig(guild_id=1, banned_words=("x",)), now=T0)
        await JobRepository(db).add_outputs(conn, [OutputRecord(first.job_id, 0, "outputs/1/0.png", "image/png", 9)])
        job = await insert_job(conn, user_id=103, guild_id=1, status="running")
        await StepRepository(db).put(conn, job, "poll", "poll", due_at=T0 + 5, now=T0)
        await CallbackRepository(db).register(conn, job, "wavespeed", "ab" * 32, T0)
        await CallbackRepository(db).first_delivery(conn, "wavespeed", "msg_1", job, T0)
        await RunTimeRepository(db).record(conn, first.job_id, "neta-lumina", seen_running_s=4, done_s=6, now=T0)
        await OperationsRepository(db).record_spending(
            conn, job_id=first.job_id, provider="wavespeed", model_key="neta-lumina", guild_id=1, day="2026-11-21",
            usd=0.01, now=T0,
        )  # fmt: skip
    await OperationsRepository(db).pause("lumozai", code="operator", reason="maintenance", paused_by="900", now=T0)
    await PreferenceRepository(db).save(Preferences(100, "uni-1", "16:9", True, "--style manga"), now=T0)


async def fill_file(path) -> None:
    async with Database(path) as db:
        await fill(db)


async def dump(db: Database) -> dict[str, list[tuple]]:
    return {t: [tuple(r) for r in await db.fetch_all(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in TABLES}


async def test_a_round_trip_through_postgresql_changes_nothing(tmp_path, pg_url):
    async with Database(tmp_path / "a.sqlite3") as lite:
        await fill(lite)
        original = await dump(lite)
        assert all(original.values()), {t: len(rows) for t, rows in original.items()}
        async with Database(pg_url) as pg:
            copied = await copy_database(lite, pg)
            assert copied == {t: len(rows) for t, rows in original.items()}
            assert await dump(pg) == original
            with pytest.raises(TargetNotEmpty, match="jobs"):
                await copy_database(lite, pg)
            async with pg.transaction() as conn:  # ids continue after the copied ones
                new_id = await insert_job(conn, user_id=1, guild_id=1)
            assert new_id == max(row[0] for row in original["jobs"]) + 1
            async with pg.transaction() as conn:
                await conn.execute("DELETE FROM jobs WHERE id = ?", (new_id,))
            async with Database(tmp_path / "b.sqlite3") as back:
                await copy_database(pg, back)
                assert await dump(back) == original


def test_the_command_line_migrates_and_copies(tmp_path, pg_url, monkeypatch, capsys):
    source = tmp_path / "bot.sqlite3"
    monkeypatch.setenv("DATABASE_PATH", str(source))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    assert main(["migrate"]) == 0
    assert f"at migration {migrations()[-1][0]}" in capsys.readouterr().out
    asyncio.run(fill_file(source))
    assert main(["copy-db", "--to", pg_url]) == 0
    assert "jobs" in capsys.readouterr().out
    assert main(["copy-db", "--to", pg_url]) == 1
    assert "not empty" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", pg_url)
    assert main(["migrate"]) == 0
