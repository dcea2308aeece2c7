"""What finished jobs say about how long each model runs: the seconds from the service accepting a job to the
poll (or callback) that found it done, for the learned poll schedule (``bot/jobs/run_time_stats.py``)."""

from __future__ import annotations

from collections import defaultdict

from bot.storage.database import Database


class RunTimeRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def recent(self, *, since: float, per_model: int) -> dict[str, list[float]]:
        """Model key → run times of its jobs that succeeded since ``since``, newest first, at most ``per_model``.

        The end is the earlier of the job's finish and its last poll's due time (``next_poll_at``): what was seen,
        without the download that followed. It can be late by up to one poll interval, never early."""
        rows = await self._db.fetch_all(
            """SELECT model_key, run_s FROM (
                   SELECT model_key,
                          CASE WHEN next_poll_at IS NOT NULL AND next_poll_at < finished_at
                               THEN next_poll_at ELSE finished_at END - submitted_at AS run_s,
                          ROW_NUMBER() OVER (PARTITION BY model_key ORDER BY finished_at DESC) AS n
                   FROM jobs
                   WHERE status = 'succeeded' AND finished_at >= ? AND submitted_at IS NOT NULL) recent
               WHERE n <= ? AND run_s > 0""",
            (since, per_model),
        )
        times: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            times[str(row[0])].append(float(row[1]))
        return dict(times)
