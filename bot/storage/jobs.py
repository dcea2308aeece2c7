"""The jobs repository: every SQL statement about jobs and their outputs. Returns frozen records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.storage.database import Connection, Database, fetch_one
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
    WHERE user_id = ? AND status IN ('queued', 'submitting', 'running') AND (CAST(? AS BIGINT) IS NULL OR id <> ?)"""

# Every ``"path"`` value, at any depth of the JSON, that names a stored input file: the one query whose SQL differs.
_INPUT_PATHS_SQL = {
    "sqlite": """SELECT DISTINCT ref.value FROM jobs, json_tree(jobs.params) AS ref
        WHERE jobs.status IN ('queued', 'submitting', 'running')
          AND ref.key = 'path' AND ref.type = 'text' AND ref.value LIKE 'inputs/%'""",
    "postgresql": """SELECT DISTINCT ref #>> '{}' FROM jobs,
            jsonb_path_query(jobs.params::jsonb, 'strict $.**.path') AS ref
        WHERE jobs.status IN ('queued', 'submitting', 'running')
          AND jsonb_typeof(ref) = 'string' AND ref #>> '{}' LIKE 'inputs/%'""",
}


class JobRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    # ------------------------------------------------------------------ reads
    async def get(self, job_id: int) -> JobRecord | None:
        return await self.get_in(None, job_id)

    async def get_in(self, conn: Connection | None, job_id: int) -> JobRecord | None:
        """Read inside an open write transaction (or from the read connection when None). Outputs are written
        only with a job's success (``add_outputs``, in its transaction): other jobs take one read."""
        row = await self._db.fetch_one_in(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return None
        if row["status"] != "succeeded":
            return row_to_job(row, [])
        outputs = await self._db.fetch_all_in(
            conn, "SELECT * FROM job_outputs WHERE job_id = ? ORDER BY idx", (job_id,)
        )
        return row_to_job(row, [row_to_output(o) for o in outputs])

    async def active(self) -> list[JobRecord]:
        rows = await self._db.fetch_all(
            "SELECT * FROM jobs WHERE status IN ('queued', 'submitting', 'running') ORDER BY id"
        )
        return [row_to_job(row) for row in rows]

    async def history(
        self, user_id: int, guild_id: int | None, *, model_key: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """A user's jobs, newest first, in one scope (or every scope when guild_id is None), and the total count."""
        where = (
            "user_id = ? AND (CAST(? AS BIGINT) IS NULL OR guild_id = ?) AND (CAST(? AS TEXT) IS NULL OR model_key = ?)"
        )
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
        rows = await self._db.fetch_all(_INPUT_PATHS_SQL[self._db.dialect])
        return {str(row[0]) for row in rows}

    # ------------------------------------------------------------------ writes
    async def insert(self, conn: Connection, job: NewJob) -> JobRecord:
        """Write a new job; returns it as written (one statement)."""
        row = await fetch_one(
            conn,
            """INSERT INTO jobs (user_id, guild_id, channel_id, model_key, provider, kind, prompt, params, status,
                   cost, origin, parent_job_id, created_at, deadline_at, application_id, interaction_token,
                   token_expires_at, token_edits_original, ephemeral, interaction_context, guild_installed,
                   channel_nsfw, attachment_size_limit, message_id, user_locale, guild_locale)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               RETURNING *""",
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
                job.message_id,
                job.user_locale,
                job.guild_locale,
            ),
        )
        assert row is not None
        return row_to_job(row)

    async def finish(
        self,
        conn: Connection,
        job_id: int,
        *,
        status: str,
        now: float,
        error_code: str | None = None,
        error_message: str | None = None,
        upstream_status: str | None = None,
        from_statuses: Sequence[str] = ACTIVE_STATUSES,
    ) -> JobRecord | None:
        """Move an active job (in one of ``from_statuses``) to a terminal status, once: the job as it ended (without
        outputs), or None if it was not active."""
        assert status in TERMINAL_STATUSES
        assert set(from_statuses) <= set(ACTIVE_STATUSES)
        marks = ", ".join("?" for _ in from_statuses)
        row = await fetch_one(
            conn,
            f"""UPDATE jobs SET status = ?, finished_at = ?, error_code = ?, error_message = ?, next_poll_at = NULL,
                   upstream_status = COALESCE(?, upstream_status), upstream_result = NULL, version = version + 1
               WHERE id = ? AND status IN ({marks}) RETURNING *""",
            (status, now, error_code, error_message, upstream_status, job_id, *from_statuses),
        )
        return None if row is None else row_to_job(row)

    # ------------------------------------------------------------------ the engine's writes (fenced by the caller)
    async def mark_submit_sent(self, conn: Connection, job_id: int, now: float) -> bool:
        """The intent, written just before the upstream call: after a crash, a submit that may have reached the
        service is never sent again."""
        cursor = await conn.execute(
            "UPDATE jobs SET submit_sent_at = ? WHERE id = ? AND status = 'submitting'", (now, job_id)
        )
        return cursor.rowcount == 1

    async def back_in_line(self, conn: Connection, job_id: int) -> bool:
        """Refused before acceptance (a 429): queued again, as if never sent."""
        cursor = await conn.execute(
            """UPDATE jobs SET status = 'queued', submit_sent_at = NULL, version = version + 1
               WHERE id = ? AND status = 'submitting'""",
            (job_id,),
        )
        return cursor.rowcount == 1

    async def start_running(
        self,
        conn: Connection,
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
        cursor = await conn.execute(
            """UPDATE jobs SET status = 'running', remote_id = ?, upstream_request_id = ?, upstream_status = ?,
                   submitted_at = ?, next_poll_at = ?, deadline_at = ?, version = version + 1
               WHERE id = ? AND status = 'submitting'""",
            (remote_id, request_id, upstream_status, submitted_at, next_poll_at, deadline_at, job_id),
        )
        return cursor.rowcount == 1

    async def note_poll(
        self,
        conn: Connection,
        job_id: int,
        *,
        upstream_status: str | None,
        next_poll_at: float,
        poll_errors: int,
        request_id: str | None = None,
        visible: bool = False,
        seen_running_at: float | None = None,
    ) -> None:
        await conn.execute(
            """UPDATE jobs SET upstream_status = COALESCE(?, upstream_status), next_poll_at = ?, poll_errors = ?,
                   upstream_request_id = COALESCE(upstream_request_id, ?), version = version + ?,
                   seen_running_at = COALESCE(?, seen_running_at)
               WHERE id = ? AND status = 'running'""",
            (upstream_status, next_poll_at, poll_errors, request_id, int(visible), seen_running_at, job_id),
        )

    async def keep_result(self, conn: Connection, job_id: int, result: str, upstream_status: str | None) -> None:
        """The finished upstream state (JSON), kept until its outputs are downloaded."""
        await conn.execute(
            """UPDATE jobs SET upstream_result = ?, upstream_status = COALESCE(?, upstream_status)
               WHERE id = ? AND status = 'running'""",
            (result, upstream_status, job_id),
        )

    async def touch(self, conn: Connection, job_id: int) -> None:
        """The message must be sent again even if what it shows did not change (e.g. a Refresh click with a
        fresh token): a new version, and no shown content to compare with."""
        await conn.execute("UPDATE jobs SET version = version + 1, shown_key = NULL WHERE id = ?", (job_id,))

    async def message_shown(
        self,
        conn: Connection,
        job_id: int,
        *,
        version: int,
        now: float,
        path: str | None,
        message_id: int | None,
        final: bool,
        key: str | None = None,
        place: int | None = None,
        sent: bool = True,
    ) -> int | None:
        """Discord confirmed the job's message at ``version`` (``final``: the finished job's result); ``sent`` is
        false when nothing had to be sent (it already showed this). The shown content (``key``) is kept only if the
        job is still at that version (else the next send must not be skipped). Returns the job's version now."""
        row = await fetch_one(
            conn,
            """UPDATE jobs SET shown_version = ?, message_sent_at = CASE WHEN ? <> 0 THEN ? ELSE message_sent_at END,
                   delivery_path = COALESCE(?, delivery_path), message_id = COALESCE(?, message_id),
                   shown_key = CASE WHEN version = ? THEN COALESCE(?, shown_key) END, shown_place = ?,
                   delivered_at = CASE WHEN ? <> 0 THEN COALESCE(delivered_at, ?) ELSE delivered_at END
               WHERE id = ? RETURNING version""",
            (version, int(sent), now, path, message_id, version, key, place, int(final), now, job_id),
        )
        return None if row is None else int(row[0])

    async def claim_ping(self, conn: Connection, job_id: int, now: float) -> bool:
        """The completion ping is about to be sent: at most once (a lost ping is harmless, a double one is not)."""
        cursor = await conn.execute(
            "UPDATE jobs SET ping_sent_at = ? WHERE id = ? AND ping_sent_at IS NULL", (now, job_id)
        )
        return cursor.rowcount == 1

    async def line(self, provider: str) -> list[tuple[int, int, int | None, float | None]]:
        """The provider's queued jobs in order: (job id, place in line, the place its message last showed, when its
        message was last sent)."""
        rows = await self._db.fetch_all(
            "SELECT id, shown_place, message_sent_at FROM jobs WHERE provider = ? AND status = 'queued' ORDER BY id",
            (provider,),
        )
        return [
            (int(r[0]), place, None if r[1] is None else int(r[1]), None if r[2] is None else float(r[2]))
            for place, r in enumerate(rows, start=1)
        ]

    async def queue_deadlines(self, now: float) -> tuple[list[JobRecord], float | None]:
        """Queued jobs whose deadline passed, and the next deadline of one still waiting."""
        rows = await self._db.fetch_all(
            "SELECT * FROM jobs WHERE status = 'queued' AND deadline_at <= ? ORDER BY id", (now,)
        )
        nxt = await self._db.fetch_value(
            "SELECT MIN(deadline_at) FROM jobs WHERE status = 'queued' AND deadline_at > ?", (now,)
        )
        return [row_to_job(row) for row in rows], None if nxt is None else float(nxt)

    async def undeliverable(self, conn: Connection, job_id: int, *, reason: str, now: float) -> None:
        """No path can show the result (the channel is gone, access or DMs closed): visible in /job show."""
        await conn.execute(
            """UPDATE jobs SET delivery_error = ?, delivery_path = 'undeliverable',
                   delivered_at = COALESCE(delivered_at, ?) WHERE id = ?""",
            (reason, now, job_id),
        )

    async def queue_position(self, job_id: int, provider: str) -> int:
        """1 + the queued jobs of the same provider that were made before this one."""
        value = await self._db.fetch_value(
            "SELECT COUNT(*) FROM jobs WHERE provider = ? AND status = 'queued' AND id < ?", (provider, job_id)
        )
        return int(value or 0) + 1

    async def add_outputs(self, conn: Connection, outputs: Sequence[OutputRecord]) -> None:
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

    async def set_token_in(
        self,
        conn: Connection,
        job_id: int,
        *,
        application_id: int,
        token: str,
        expires_at: float,
        edits_original: bool,
    ) -> None:
        await conn.execute(
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

    async def mark_message_deleted(self, job_id: int, now: float) -> None:
        await self._db.execute(
            "UPDATE jobs SET message_deleted_at = ?, delivered_at = COALESCE(delivered_at, ?) WHERE id = ?",
            (now, now, job_id),
        )

    async def unmark_message_deleted(self, job_id: int, stamp: float) -> None:
        sql = "UPDATE jobs SET message_deleted_at = NULL WHERE id = ? AND message_deleted_at = ?"
        await self._db.execute(sql, (job_id, stamp))

    async def mark_purged(self, job_id: int, now: float) -> None:
        await self._db.execute("UPDATE jobs SET outputs_purged_at = ? WHERE id = ?", (now, job_id))

    # ------------------------------------------------------------------ reads for /quota, /history, /job show
    async def count_active_for_user(
        self, user_id: int, *, except_job_id: int | None = None, conn: Connection | None = None
    ) -> int:
        """How many of the user's jobs are queued or running, in every scope (leaving out ``except_job_id``). In a
        transaction on PostgreSQL the user's reservations take turns (counted, then inserted: a cap all processes)."""
        if conn is not None and self._db.dialect == "postgresql":
            await conn.execute("SELECT pg_advisory_xact_lock(?)", (user_id,))
        row = await self._db.fetch_one_in(conn, ACTIVE_JOBS_SQL, (user_id, except_job_id, except_job_id))
        return int(row[0]) if row is not None else 0

    async def active_for_user(self, user_id: int, guild_id: int | None = None) -> list[JobRecord]:
        """A user's queued and running jobs, oldest first, in one scope (or every scope when guild_id is None)."""
        rows = await self._db.fetch_all(
            """SELECT * FROM jobs
               WHERE user_id = ? AND status IN ('queued', 'submitting', 'running')
                 AND (CAST(? AS BIGINT) IS NULL OR guild_id = ?)
               ORDER BY id""",
            (user_id, guild_id, guild_id),
        )
        return [row_to_job(row) for row in rows]


# The records are imported from here as well as from bot.storage.job_records.
__all__ = ["ACTIVE_STATUSES", "TERMINAL_STATUSES", "JobRecord", "NewJob", "OutputRecord"]
