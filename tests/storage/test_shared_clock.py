"""The shared clock: each process reads time as its own clock plus its offset from the database server's, so
leases and due times written by processes on different machines compare on one clock."""

from __future__ import annotations

import ast
import asyncio
import logging
import time
from pathlib import Path

import pytest

from bot import clock as clock_module
from bot.clock import SharedClock, shared_clock
from bot.jobs.engine import StepEngine
from bot.storage.database import Database
from bot.storage.server_time import server_time

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


async def test_the_database_servers_time_is_read_in_unix_seconds(db):
    before = time.time()
    theirs = await server_time(db)
    after = time.time()
    assert before - 1 <= theirs <= after + 1  # the test's server runs on this machine


async def test_a_process_whose_clock_is_off_reads_the_database_servers_time(db, monkeypatch, caplog):
    async def server_ahead(database: Database) -> float:
        return await server_time(database) + 120.0

    monkeypatch.setattr(clock_module, "server_time", server_ahead)
    caplog.set_level(logging.WARNING, "bot.clock")
    shared = SharedClock()
    offset = await shared.sync(db)
    assert 119 < offset < 121
    assert 119 < shared() - time.time() < 121
    assert "clock is 120.0s behind the database server's" in caplog.text


async def test_a_failed_resync_keeps_the_last_offset(db, monkeypatch):
    shared = SharedClock()
    shared.offset = 7.0
    calls = 0

    async def unreachable(database: Database) -> float:
        nonlocal calls
        calls += 1
        raise ConnectionError("the database is away")

    monkeypatch.setattr(clock_module, "server_time", unreachable)
    task = asyncio.create_task(shared.keep_in_sync(db, every_s=0.01))
    while calls < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert shared.offset == 7.0


def test_every_component_defaults_to_the_shared_clock():
    """A component left on ``time.time`` would write lease and due times another machine misreads."""
    assert StepEngine.clock is shared_clock
    found = []
    for path in sorted((ROOT / "bot").rglob("*.py")) + sorted((ROOT / "cogs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_time_time = isinstance(node, ast.Attribute) and node.attr == "time" and isinstance(node.value, ast.Name)
            if is_time_time and node.value.id == "time" and path.name not in ("clock.py", "fetch.py"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
