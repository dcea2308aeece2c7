"""What operators look at: a liveness query, jobs per provider and status, spending per job (``job_spending``) and
paused providers (``provider_pauses``)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage.database import Connection, Database


@dataclass(frozen=True, slots=True)
class SpendingRow:
    day: str
    provider: str
    guild_id: int
    jobs: int
    usd: float


@dataclass(frozen=True, slots=True)
class Pause:
    provider: str
    code: str
    reason: str
    paused_by: str
    paused_at: float


class OperationsRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def ping(self) -> bool:
        return await self._db.fetch_value("SELECT 1") == 1

    async def active_counts(self) -> dict[tuple[str, str], int]:
        """(provider, status) → jobs, for the active statuses only."""
        rows = await self._db.fetch_all(
            "SELECT provider, status, COUNT(*) FROM jobs"
            " WHERE status IN ('queued', 'submitting', 'running') GROUP BY provider, status"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def failures_since(self, since: float) -> dict[str, int]:
        rows = await self._db.fetch_all(
            "SELECT provider, COUNT(*) FROM jobs WHERE status = 'failed' AND finished_at >= ? GROUP BY provider",
            (since,),
        )
        return {row[0]: int(row[1]) for row in rows}

    async def record_spending(
        self,
        conn: Connection,
        *,
        job_id: int,
        provider: str,
        model_key: str,
        guild_id: int,
        day: str,
        usd: float,
        now: float,
    ) -> bool:
        """At most once per job; True when this call recorded it."""
        cursor = await conn.execute(
            "INSERT INTO job_spending (job_id, provider, model_key, guild_id, day, usd, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (job_id, provider, model_key, guild_id, day, usd, now),
        )
        return cursor.rowcount == 1

    async def spent_on(self, day: str) -> dict[str, float]:
        rows = await self._db.fetch_all(
            "SELECT provider, SUM(usd) FROM job_spending WHERE day = ? GROUP BY provider", (day,)
        )
        return {row[0]: float(row[1] or 0.0) for row in rows}

    async def spending(self, since_day: str) -> list[SpendingRow]:
        rows = await self._db.fetch_all(
            "SELECT day, provider, guild_id, COUNT(*), SUM(usd) FROM job_spending WHERE day >= ?"
            " GROUP BY day, provider, guild_id ORDER BY day DESC, provider, guild_id",
            (since_day,),
        )
        return [SpendingRow(row[0], row[1], int(row[2]), int(row[3]), float(row[4] or 0.0)) for row in rows]

    async def pause(self, provider: str, *, code: str, reason: str, paused_by: str, now: float) -> bool:
        """True when the provider was not paused before (a pause already in place is kept as it is)."""
        return (
            await self._db.execute(
                "INSERT INTO provider_pauses (provider, code, reason, paused_by, paused_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (provider, code, reason, paused_by, now),
            )
            == 1
        )

    async def resume(self, provider: str) -> bool:
        return await self._db.execute("DELETE FROM provider_pauses WHERE provider = ?", (provider,)) == 1

    async def pauses(self) -> dict[str, Pause]:
        rows = await self._db.fetch_all(
            "SELECT provider, code, reason, paused_by, paused_at FROM provider_pauses ORDER BY provider"
        )
        return {row[0]: Pause(row[0], row[1], row[2], row[3], float(row[4])) for row in rows}

    async def spent_in(self, conn: Connection, day: str, provider: str) -> float:
        """A provider's spending on ``day``, inside the caller's transaction (which may just have added to it)."""
        rows = list(
            await conn.execute_fetchall(
                "SELECT COALESCE(SUM(usd), 0) FROM job_spending WHERE day = ? AND provider = ?", (day, provider)
            )
        )
        return float(rows[0][0]) if rows else 0.0

    async def extend_queue_deadlines(self, provider: str, by_s: float) -> int:
        """The provider's queued jobs get ``by_s`` more before they time out (the time it was paused)."""
        return await self._db.execute(
            "UPDATE jobs SET deadline_at = deadline_at + ? WHERE provider = ? AND status = 'queued'", (by_s, provider)
        )
