"""The moderator audit trail (``audit_log``), and ``audited_change``: read the state before, write the change and
the audit row, all in one transaction."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.storage.database import Connection, Database

Before = TypeVar("Before")
After = TypeVar("After")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    guild_id: int
    actor_id: int
    action: str
    target_user_id: int | None = None
    target_role_id: int | None = None
    before: Any = None
    after: Any = None
    reason: str | None = None
    created_at: float = 0.0
    id: int = 0


@dataclass(frozen=True, slots=True)
class AuditAction:
    """Who did what to whom, and why: the audit row of a change, without its before and after."""

    action: str
    guild_id: int
    actor_id: int
    reason: str | None = None
    target_user_id: int | None = None
    target_role_id: int | None = None


async def write_audit(conn: Connection, entry: AuditEntry, *, now: float) -> None:
    await conn.execute(
        """INSERT INTO audit_log (guild_id, actor_id, action, target_user_id, target_role_id, before, after,
                                  reason, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            entry.guild_id,
            entry.actor_id,
            entry.action,
            entry.target_user_id,
            entry.target_role_id,
            json.dumps(entry.before, sort_keys=True),
            json.dumps(entry.after, sort_keys=True),
            entry.reason,
            now,
        ),
    )


async def audited_change(
    database: Database,
    action: AuditAction,
    *,
    now: float,
    read: Callable[[Connection], Awaitable[Before]],
    write: Callable[[Connection, Before], Awaitable[After]],
    describe: Callable[[Before, After], tuple[object, object]] | None = None,
) -> tuple[Before, After]:
    """One audited moderator change, in one write transaction: ``read`` the state before, ``write`` the change
    (given that state; it returns the state after, or raises to refuse and change nothing), then the audit row.

    The audit row records (before, after) as returned, or as ``describe(before, after)`` turns them into JSON
    values. A failure anywhere, the audit row included, rolls back the whole change. Returns (before, after).
    """
    async with database.transaction() as conn:
        before = await read(conn)
        after = await write(conn, before)
        shown_before, shown_after = (before, after) if describe is None else describe(before, after)
        entry = AuditEntry(
            guild_id=action.guild_id,
            actor_id=action.actor_id,
            action=action.action,
            target_user_id=action.target_user_id,
            target_role_id=action.target_role_id,
            before=shown_before,
            after=shown_after,
            reason=action.reason,
        )
        await write_audit(conn, entry, now=now)
    return before, after


async def list_audit(
    database: Database,
    guild_id: int,
    *,
    target_user_id: int | None = None,
    limit: int = 20,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Newest first, for one server, optionally for one member."""
    rows = await database.fetch_all(
        """SELECT * FROM audit_log
           WHERE guild_id = ? AND (CAST(? AS BIGINT) IS NULL OR target_user_id = ?)
             AND (CAST(? AS BIGINT) IS NULL OR id < ?)
           ORDER BY id DESC LIMIT ?""",
        (guild_id, target_user_id, target_user_id, before_id, before_id, limit),
    )
    return [
        AuditEntry(
            id=row["id"],
            guild_id=row["guild_id"],
            actor_id=row["actor_id"],
            action=row["action"],
            target_user_id=row["target_user_id"],
            target_role_id=row["target_role_id"],
            before=json.loads(row["before"]) if row["before"] else None,
            after=json.loads(row["after"]) if row["after"] else None,
            reason=row["reason"],
            created_at=row["created_at"],
        )
        for row in rows
    ]


class AuditLog:
    """Reading the audit trail, for the moderator commands (they reach the database only through services)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def entries(
        self, guild_id: int, *, target_user_id: int | None = None, limit: int = 20, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Newest first, for one server, optionally about one member."""
        return await list_audit(self._db, guild_id, target_user_id=target_user_id, limit=limit, before_id=before_id)
