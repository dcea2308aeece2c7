"""The jobs repository: every SQL statement about jobs and their outputs. Returns frozen records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiosqlite

from bot.storage.database import Database, fetch_all, fetch_one
from bot.storage.job_records import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    JobRecord,
    NewJob,
    OutputRecord,
    row_to_job,
    row_to_output,
)

# The statuses are written out, not bound: SQLite uses the partial index ``jobs_active_by_user`` only when the query's
# WHERE visibly implies the index's, and this count runs inside the write lock of every reservation.
ACTIVE_JOBS_SQL = """SELECT COUNT(*) FROM jobs
    WHERE user_id = ? AND status IN ('queued', 'submitting', 'running') AND (? IS NULL OR id <> ?)"""


class JobRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    # ------------------------------------------------------------------ reads
    async def get(self, job_id: int) -> JobRecord | None:
        row = await self._db.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return None
        outputs = await self._db.fetch_all("SELECT * FROM job_outputs WHERE job_id = ? ORDER BY idx", (job_id,))
        return row_to_job(row, [row_to_output(o) for o in outputs])

    async def get_in(self, conn: aiosqlite.Connection, job_id: int) -> JobRecord | None:
        """Read inside an open write transaction."""
        row = await fetch_one(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return None
        outputs = await fetch_all(conn, "SELECT * FROM job_outputs WHERE job_id = ? ORDER BY idx", (job_id,))
        return row_to_job(row, [row_to_output(o) for o in outputs])

    async def active(self) -> list[JobRecord]:
        rows = await self._db.fetch_all(
            "SELECT * FROM jobs WHERE status IN ('queued', 'submitting', 'running') ORDER BY id"
        )
        return [row_to_job(row) for row in rows]

    async def undelivered(self) -> list[JobRecord]:
        """Finished jobs whose final message has not been delivered yet (e.g. the bot stopped in between)."""
        rows = await self._db.fetch_all(
            """SELECT id FROM jobs WHERE delivered_at IS NULL AND finished_at IS NOT NULL
               AND message_deleted_at IS NULL ORDER BY id"""
        )
        jobs = [await self.get(row["id"]) for row in rows]
        return [job for job in jobs if job is not None]

    async def history(
        self, user_id: int, guild_id: int | None, *, model_key: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """A user's jobs, newest first, in one scope (or every scope when guild_id is None), and the total count."""
        where = "user_id = ? AND (? IS NULL OR guild_id = ?) AND (? IS NULL OR model_key = ?)"
        args: tuple[Any, ...] = (user_id, guild_id, guild_id, model_key, model_key)
        total = await self._db.fetch_value(f"SELECT COUNT(*) FROM jobs WHERE {where}", args)
        rows = await self._db.fetch_all(
            f"SELECT * FROM jobs WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset)
        )
        return [row_to_job(row) for row in rows], int(total)

    async def purgeable(self, finished_before: float, limit: int = 200) -> list[JobRecord]:
        rows = await self._db.fetch_all(
            """SELECT * FROM jobs WHERE finished_at < ? AND outputs_purged_at IS NULL
               AND EXISTS (SELECT 1 FROM job_outputs WHERE job_id = jobs.id) ORDER BY finished_at LIMIT ?""",
            (finished_before, limit),
        )
        return [row_to_job(row) for row in rows]

    async def input_paths_in_use(self) -> set[str]:
        """The stored input files (``inputs/…`` paths in ``params``) that queued, submitting or running jobs need."""
        rows = await self._db.fetch_all(
            """SELECT DISTINCT ref.value FROM jobs, json_tree(jobs.params) AS ref
               WHERE jobs.status IN ('queued', 'submitting', 'running')
                 AND ref.key = 'path' AND ref.type = 'text' AND ref.value LIKE 'inputs/%'"""
        )
        return {str(row[0]) for row in rows}

    # ------------------------------------------------------------------ writes
    async def insert(self, conn: aiosqlite.Connection, job: NewJob) -> int:
        cursor = await conn.execute(
            """INSERT INTO jobs (user_id, guild_id, channel_id, model_key, provider, kind, prompt, params, status,
                   cost, origin, parent_job_id, created_at, deadline_at, application_id, interaction_token,
                   token_expires_at, token_edits_original, ephemeral, interaction_context, guild_installed,
                   channel_nsfw, attachment_size_limit)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                job.user_id,
                job.guild_id,
                job.channel_id,
                job.model_key,
                job.provider,
                job.kind,
                job.prompt,
                json.dumps(job.params, sort_keys=True),
                job.cost,
                job.origin,
                job.parent_job_id,
                job.created_at,
                job.deadline_at,
                job.application_id,
                job.interaction_token,
                job.token_expires_at,
                int(job.token_edits_original),
                int(job.ephemeral),
                job.interaction_context,
                int(job.guild_installed),
                int(job.channel_nsfw),
                job.attachment_size_limit,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def claim_for_submit(self, job_id: int) -> bool:
        """queued → submitting. False when the job left the queue meanwhile (cancelled)."""
        changed = await self._db.execute(
            "UPDATE jobs SET status = 'submitting' WHERE id = ? AND status = 'queued'", (job_id,)
        )
        return changed == 1

    async def requeue(self, job_id: int) -> bool:
        changed = await self._db.execute(
            "UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'submitting'", (job_id,)
        )
        return changed == 1

    async def mark_running(
        self,
        job_id: int,
        *,
        remote_id: str,
        request_id: str | None,
        upstream_status: str | None,
        submitted_at: float,
        next_poll_at: float,
        deadline_at: float,
    ) -> bool:
        """submitting → running. ``deadline_at`` now bounds the run (it bounded the wait in line until now)."""
        changed = await self._db.execute(
            """UPDATE jobs SET status = 'running', remote_id = ?, upstream_request_id = ?, upstream_status = ?,
                   submitted_at = ?, next_poll_at = ?, deadline_at = ?
               WHERE id = ? AND status = 'submitting'""",
            (remote_id, request_id, upstream_status, submitted_at, next_poll_at, deadline_at, job_id),
        )
        return changed == 1

    async def record_poll(
        self,
        job_id: int,
        *,
        upstream_status: str | None,
        next_poll_at: float,
        poll_errors: int,
        request_id: str | None = None,
    ) -> None:
        await self._db.execute(
            """UPDATE jobs SET upstream_status = COALESCE(?, upstream_status), next_poll_at = ?, poll_errors = ?,
                   upstream_request_id = COALESCE(upstream_request_id, ?)
               WHERE id = ? AND status = 'running'""",
            (upstream_status, next_poll_at, poll_errors, request_id, job_id),
        )

    async def finish(
        self,
        conn: aiosqlite.Connection,
        job_id: int,
        *,
        status: str,
        now: float,
        error_code: str | None = None,
        error_message: str | None = None,
        upstream_status: str | None = None,
    ) -> bool:
        """Move an active job to a terminal status, once. False if it was already finished."""
        assert status in TERMINAL_STATUSES
        cursor = await conn.execute(
            """UPDATE jobs SET status = ?, finished_at = ?, error_code = ?, error_message = ?, next_poll_at = NULL,
                   upstream_status = COALESCE(?, upstream_status)
               WHERE id = ? AND status IN ('queued', 'submitting', 'running')""",
            (status, now, error_code, error_message, upstream_status, job_id),
        )
        return cursor.rowcount == 1

    async def add_outputs(self, conn: aiosqlite.Connection, outputs: Sequence[OutputRecord]) -> None:
        await conn.executemany(
            """INSERT INTO job_outputs (job_id, idx, path, media_type, size_bytes, width, height, nsfw, source_url,
                   url_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    o.job_id,
                    o.idx,
                    o.path,
                    o.media_type,
                    o.size_bytes,
                    o.width,
                    o.height,
                    int(o.nsfw),
                    o.source_url,
                    o.url_expires_at,
                )
                for o in outputs
            ],
        )

    async def set_output_url(self, job_id: int, idx: int, *, url: str, expires_at: float | None) -> None:
        """A fresh download link for a stored output (the provider's old one expired)."""
        await self._db.execute(
            "UPDATE job_outputs SET source_url = ?, url_expires_at = ? WHERE job_id = ? AND idx = ?",
            (url, expires_at, job_id, idx),
        )

    async def set_message(self, job_id: int, message_id: int) -> None:
        await self._db.execute("UPDATE jobs SET message_id = ? WHERE id = ?", (message_id, job_id))

    async def set_token(
        self, job_id: int, *, application_id: int, token: str, expires_at: float, edits_original: bool
    ) -> None:
        """A fresh interaction token that can edit the job's message (e.g. from a Refresh click)."""
        await self._db.execute(
            """UPDATE jobs SET application_id = ?, interaction_token = ?, token_expires_at = ?,
                   token_edits_original = ? WHERE id = ?""",
            (application_id, token, expires_at, int(edits_original), job_id),
        )

    async def expire_token(self, job_id: int) -> None:
        """Discord refused the token (expired or revoked): stop trying it."""
        await self._db.execute("UPDATE jobs SET token_expires_at = 0 WHERE id = ?", (job_id,))

    async def clear_expired_tokens(self, now: float) -> int:
        """Forget the interaction tokens that have expired (each is a credential until then); returns how many."""
        return await self._db.execute(
            """UPDATE jobs SET interaction_token = NULL
               WHERE interaction_token IS NOT NULL AND COALESCE(token_expires_at, 0) <= ?""",
            (now,),
        )

    async def mark_delivered(self, job_id: int, *, path: str, now: float) -> bool:
        changed = await self._db.execute(
            "UPDATE jobs SET delivered_at = ?, delivery_path = ? WHERE id = ? AND delivered_at IS NULL",
            (now, path, job_id),
        )
        return changed == 1

    async def set_delivery_path(self, job_id: int, path: str) -> None:
        await self._db.execute("UPDATE jobs SET delivery_path = ? WHERE id = ?", (path, job_id))

    async def mark_ping_sent(self, job_id: int, now: float) -> bool:
        changed = await self._db.execute(
            "UPDATE jobs SET ping_sent_at = ? WHERE id = ? AND ping_sent_at IS NULL", (now, job_id)
        )
        return changed == 1

    async def mark_message_deleted(self, job_id: int, now: float) -> None:
        await self._db.execute(
            "UPDATE jobs SET message_deleted_at = ?, delivered_at = COALESCE(delivered_at, ?) WHERE id = ?",
            (now, now, job_id),
        )

    async def mark_purged(self, job_id: int, now: float) -> None:
        await self._db.execute("UPDATE jobs SET outputs_purged_at = ? WHERE id = ?", (now, job_id))

    # ------------------------------------------------------------------ reads for /quota, /history, /job show
    async def count_active_for_user(
        self, user_id: int, *, except_job_id: int | None = None, conn: aiosqlite.Connection | None = None
    ) -> int:
        """How many of the user's jobs are queued or running, in every scope (leaving out ``except_job_id``)."""
        row = await self._db.fetch_one_in(conn, ACTIVE_JOBS_SQL, (user_id, except_job_id, except_job_id))
        return int(row[0]) if row is not None else 0

    async def active_for_user(self, user_id: int, guild_id: int | None = None) -> list[JobRecord]:
        """A user's queued and running jobs, oldest first, in one scope (or every scope when guild_id is None)."""
        rows = await self._db.fetch_all(
            """SELECT * FROM jobs
               WHERE user_id = ? AND status IN ('queued', 'submitting', 'running') AND (? IS NULL OR guild_id = ?)
               ORDER BY id""",
            (user_id, guild_id, guild_id),
        )
        return [row_to_job(row) for row in rows]


__all__ = [
    "ACTIVE_JOBS_SQL",
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "JobRecord",
    "JobRepository",
    "NewJob",
    "OutputRecord",
]
