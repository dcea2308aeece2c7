"""Shared by the quota tests (and the worker processes of the concurrency test): settings, jobs rows, reads."""

from __future__ import annotations

from typing import Any

from bot.credits.service import QuotaService
from bot.credits.types import Reservation
from bot.settings import Settings
from bot.storage.database import Connection, Database, fetch_one
from tests.fakes.clock import ManualClock

T0 = 1_795_255_200.0  # 2026-11-21 10:00:00 UTC


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"daily_credits": 10, "quota_reset_hour_utc": 0, "max_running_jobs_per_user": 3}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def insert_job(
    conn: Connection,
    *,
    user_id: int,
    guild_id: int,
    cost: int = 1,
    status: str = "queued",
    now: float = T0,
) -> int:
    row = await fetch_one(
        conn,
        """INSERT INTO jobs (user_id, guild_id, model_key, provider, kind, prompt, status, cost, created_at)
           VALUES (?, ?, 'neta-lumina', 'wavespeed', 'image', 'a cat', ?, ?, ?) RETURNING id""",
        (user_id, guild_id, status, cost, now),
    )
    return int(row["id"])


class Jobs:
    """Starts jobs the way the job engine does: the jobs row, then the reservation, in one transaction."""

    def __init__(self, db: Database, service: QuotaService, clock: ManualClock) -> None:
        self.db, self.service, self.clock = db, service, clock

    async def start(
        self, *, guild_id: int = 1, user_id: int = 100, cost: int = 1, role_ids: tuple[int, ...] = ()
    ) -> Reservation:
        async with self.db.transaction() as conn:
            job_id = await insert_job(conn, user_id=user_id, guild_id=guild_id, cost=cost, now=self.clock())
            return await self.service.reserve(
                conn, job_id=job_id, guild_id=guild_id, user_id=user_id, role_ids=role_ids, cost=cost, now=self.clock()
            )

    async def finish(self, job_id: int, *, ok: bool = True) -> bool:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET status = ? WHERE id = ?", ("succeeded" if ok else "failed", job_id))
            if ok:
                return await self.service.commit(conn, job_id=job_id, now=self.clock())
            return await self.service.refund(conn, job_id=job_id, now=self.clock())


async def used(db: Database, guild_id: int, user_id: int, period: str) -> int:
    value = await db.fetch_value(
        "SELECT used FROM credit_usage WHERE guild_id = ? AND user_id = ? AND period = ?", (guild_id, user_id, period)
    )
    return int(value or 0)


async def bonus(db: Database, guild_id: int, user_id: int) -> int:
    value = await db.fetch_value(
        "SELECT balance FROM credit_bonus WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
    )
    return int(value or 0)


async def ledger_kinds(db: Database, job_id: int) -> list[str]:
    rows = await db.fetch_all("SELECT kind FROM credit_ledger WHERE job_id = ? ORDER BY id", (job_id,))
    return [row[0] for row in rows]
