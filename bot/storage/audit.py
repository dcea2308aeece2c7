"""The moderator audit trail. Rows are written inside the transaction of the change they record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.storage.database import Database


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


async def write_audit(conn: aiosqlite.Connection, entry: AuditEntry, *, now: float) -> None:
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
           WHERE guild_id = ? AND (? IS NULL OR target_user_id = ?) AND (? IS NULL OR id < ?)
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
