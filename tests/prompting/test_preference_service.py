"""``PreferenceService.private_before_ack``: the private preference read within Discord's acknowledgement time,
from a short-lived cache or with a bounded wait, and the safe side (private) when the database is too slow."""

from __future__ import annotations

import asyncio

from bot.catalogue import Catalogue
from bot.preferences import CACHE_TTL_S, PreferenceService
from bot.storage.preferences import Preferences
from tests.fakes.clock import ManualClock


class Repository:
    def __init__(self) -> None:
        self.rows: dict[int, Preferences] = {}
        self.reads = 0
        self.stuck = False

    async def get(self, user_id: int) -> Preferences:
        self.reads += 1
        if self.stuck:
            await asyncio.Event().wait()  # never answers
        return self.rows.get(user_id, Preferences(user_id))

    async def save(self, preferences: Preferences, *, now: float) -> None:
        self.rows[preferences.user_id] = preferences

    async def clear(self, user_id: int) -> bool:
        return self.rows.pop(user_id, None) is not None


async def test_the_private_preference_is_cached_briefly_and_set_or_clear_refresh_it():
    repository, clock = Repository(), ManualClock(1000.0)
    service = PreferenceService(repository, Catalogue({}), clock=clock)  # type: ignore[arg-type]
    assert await service.private_before_ack(1) is False
    assert await service.private_before_ack(1) is False
    assert repository.reads == 1
    await service.set(1, private=True)
    assert await service.private_before_ack(1) is True  # this process's own change, at once
    repository.rows[1] = Preferences(1, private=False)  # another process's change...
    assert await service.private_before_ack(1) is True
    clock.advance(CACHE_TTL_S + 1)
    assert await service.private_before_ack(1) is False  # ...reaches this one once the cache runs out
    await service.set(1, private=True)
    await service.clear(1)
    assert await service.private_before_ack(1) is False


async def test_a_database_too_slow_for_the_acknowledgement_makes_the_job_private():
    repository = Repository()
    repository.stuck = True
    service = PreferenceService(repository, Catalogue({}))  # type: ignore[arg-type]
    assert await service.private_before_ack(5) is True
