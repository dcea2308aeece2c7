"""What each succeeded job showed of its run time (``job_run_times``), for the learned poll schedule
(``bot/jobs/run_time_stats.py``): the seconds after acceptance at which it was last seen running (0 when it was
found done at the first look) and at which it was found done."""

from __future__ import annotations

from collections import defaultdict

from bot.storage.database import Connection, Database


class RunTimeRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(
        self, conn: Connection, job_id: int, model_key: str, *, seen_running_s: float, done_s: float, now: float
    ) -> None:
        await conn.execute(
            """INSERT INTO job_run_times (job_id, model_key, seen_running_s, done_s, recorded_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING""",
            (job_id, model_key, max(0.0, seen_running_s), done_s, now),
        )

    async def recent(self, *, since: float, per_model: int) -> dict[str, list[tuple[float, float]]]:
        """Model key → (seen running, found done) of its jobs recorded since ``since``, newest first, at most
        ``per_model`` each."""
        rows = await self._db.fetch_all(
            """SELECT model_key, seen_running_s, done_s FROM (
                   SELECT model_key, seen_running_s, done_s,
                          ROW_NUMBER() OVER (PARTITION BY model_key ORDER BY recorded_at DESC) AS n
                   FROM job_run_times WHERE recorded_at >= ?) recent
               WHERE n <= ?""",
            (since, per_model),
        )
        seen: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for row in rows:
            seen[str(row[0])].append((float(row[1]), float(row[2])))
        return dict(seen)
