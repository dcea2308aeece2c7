"""Fixtures for the quota tests: a real database (SQLite in tmp_path, then PostgreSQL), a hand-moved clock, jobs
started as the engine starts them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.credits.service import QuotaService
from bot.server_settings.service import ServerSettingsService
from bot.storage.database import Database
from tests.fakes.clock import ManualClock
from tests.quota.helpers import T0, Jobs, make_settings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        yield database


@pytest.fixture
def make_service(db: Database, clock: ManualClock) -> Callable[..., QuotaService]:
    def make(**overrides: Any) -> QuotaService:
        return QuotaService(db, make_settings(**overrides), ServerSettingsService(db, clock=clock), clock=clock)

    return make


@pytest.fixture
def service(make_service: Callable[..., QuotaService]) -> QuotaService:
    return make_service()


@pytest.fixture
def jobs(db: Database, service: QuotaService, clock: ManualClock) -> Jobs:
    return Jobs(db, service, clock)
