"""Many concurrent reservations against one database (a SQLite file or a PostgreSQL URL), in this process or in a
spawned one."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from bot.credits.service import QuotaService
from bot.errors import QuotaExceeded
from bot.server_settings.service import ServerSettingsService
from bot.storage.database import Database, is_postgres
from tests.fakes.clock import ManualClock
from tests.quota.helpers import T0, Jobs, make_settings

GUILD, USER = 1, 100


def race_settings(limit: int) -> Any:
    return make_settings(daily_credits=limit, max_running_jobs_per_user=10_000)


async def reserve_many(database: Database, count: int, *, limit: int) -> Counter[str]:
    clock = ManualClock(T0)
    jobs = Jobs(
        database,
        QuotaService(database, race_settings(limit), ServerSettingsService(database, clock=clock), clock=clock),
        clock,
    )

    async def one() -> str:
        try:
            await jobs.start(guild_id=GUILD, user_id=USER, cost=1)
        except QuotaExceeded:
            return "refused"
        except Exception as exc:
            return f"error: {type(exc).__name__}: {exc}"
        return "reserved"

    return Counter(await asyncio.gather(*(one() for _ in range(count))))


def process_main(path: str, count: int, limit: int, barrier: Any, results: Any) -> None:
    """Entry point of a spawned process: open its own Database, wait for the others, then race."""

    async def run() -> Counter[str]:
        async with Database(path if is_postgres(path) else Path(path), pool_size=20) as database:
            await asyncio.to_thread(barrier.wait, 30)
            return await reserve_many(database, count, limit=limit)

    try:
        results.put(dict(asyncio.run(run())))
    except BaseException as exc:
        results.put({f"crash: {type(exc).__name__}: {exc}": 1})


PACK_SKU, PACK_CREDITS = 9001, 50


def settle_main(path: str, entitlement_ids: list[int], barrier: Any, results: Any) -> None:
    """Entry point of a spawned process: settle every entitlement of ``entitlement_ids`` (all processes get the
    same list) and report how many this process credited."""
    from bot.credits.packs import CreditPacks

    async def run() -> int:
        async with Database(path if is_postgres(path) else Path(path), pool_size=20) as database:
            packs = CreditPacks(database, {PACK_SKU: PACK_CREDITS})
            await asyncio.to_thread(barrier.wait, 30)
            settled = await asyncio.gather(
                *(packs.settle(entitlement_id=e, user_id=USER, sku_id=PACK_SKU) for e in entitlement_ids)
            )
            return sum(s.credited for s in settled)

    try:
        results.put(asyncio.run(run()))
    except BaseException as exc:
        results.put(f"crash: {type(exc).__name__}: {exc}")
