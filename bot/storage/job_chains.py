"""Reading video chains: the jobs that extend a job (``origin = 'extend'``, ``parent_job_id``). Read only: the
jobs table is written by ``jobs.py``."""

from __future__ import annotations

from bot.storage.database import Database

CHAIN_LIMIT = 25  # more than a message can list usefully


class JobChains:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def extensions_of(self, job_id: int, *, viewer_id: int) -> tuple[int, ...]:
        """The ids of the jobs that extend ``job_id``, oldest first, leaving out other members' private ones."""
        rows = await self._db.fetch_all(
            """SELECT id FROM jobs WHERE parent_job_id = ? AND origin = 'extend' AND (ephemeral = 0 OR user_id = ?)
               ORDER BY id LIMIT ?""",
            (job_id, viewer_id, CHAIN_LIMIT),
        )
        return tuple(int(row["id"]) for row in rows)
