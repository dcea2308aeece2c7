"""The limits repository: every statement on ``member_quota`` (a member's own limit and ban, per server) and
``role_limits`` (the limit of members with a role)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.storage.database import Connection, Database, placeholders


@dataclass(frozen=True, slots=True)
class MemberQuota:
    credit_limit: int | None = None
    banned: bool = False
    ban_reason: str | None = None


NO_MEMBER_QUOTA = MemberQuota()


class LimitRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def member(self, guild_id: int, user_id: int, *, conn: Connection | None = None) -> MemberQuota:
        """The member's own limit and ban (no row: no limit of their own, not banned)."""
        row = await self._db.fetch_one_in(
            conn,
            "SELECT credit_limit, banned, ban_reason FROM member_quota WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        if row is None:
            return NO_MEMBER_QUOTA
        limit = row["credit_limit"]
        return MemberQuota(
            credit_limit=int(limit) if limit is not None else None,
            banned=bool(row["banned"]),
            ban_reason=row["ban_reason"],
        )

    async def set_member_limit(
        self, conn: Connection, guild_id: int, user_id: int, credits: int | None, *, now: float
    ) -> None:
        await conn.execute(
            """INSERT INTO member_quota (guild_id, user_id, credit_limit, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (guild_id, user_id) DO UPDATE SET
                   credit_limit = excluded.credit_limit, updated_at = excluded.updated_at""",
            (guild_id, user_id, credits, now),
        )

    async def ban(self, conn: Connection, guild_id: int, user_id: int, reason: str | None, *, now: float) -> None:
        await conn.execute(
            """INSERT INTO member_quota (guild_id, user_id, banned, ban_reason, updated_at) VALUES (?, ?, 1, ?, ?)
               ON CONFLICT (guild_id, user_id) DO UPDATE SET
                   banned = 1, ban_reason = excluded.ban_reason, updated_at = excluded.updated_at""",
            (guild_id, user_id, reason, now),
        )

    async def unban(self, conn: Connection, guild_id: int, user_id: int, *, now: float) -> None:
        await conn.execute(
            """UPDATE member_quota SET banned = 0, ban_reason = NULL, updated_at = ?
               WHERE guild_id = ? AND user_id = ?""",
            (now, guild_id, user_id),
        )

    async def highest_role_limit(
        self, guild_id: int, role_ids: Collection[int], *, conn: Connection | None = None
    ) -> int | None:
        """The highest limit among these roles, None when none of them has one."""
        roles = sorted(set(role_ids))
        if not roles:
            return None
        row = await self._db.fetch_one_in(
            conn,
            f"SELECT MAX(credit_limit) FROM role_limits WHERE guild_id = ? AND role_id IN ({placeholders(roles)})",
            (guild_id, *roles),
        )
        return int(row[0]) if row is not None and row[0] is not None else None

    async def role_limit(self, guild_id: int, role_id: int, *, conn: Connection | None = None) -> int | None:
        row = await self._db.fetch_one_in(
            conn, "SELECT credit_limit FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id)
        )
        return int(row[0]) if row is not None else None

    async def set_role_limit(self, conn: Connection, guild_id: int, role_id: int, credits: int | None) -> None:
        """The role's limit; None removes it."""
        if credits is None:
            await conn.execute("DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
            return
        await conn.execute(
            """INSERT INTO role_limits (guild_id, role_id, credit_limit) VALUES (?, ?, ?)
               ON CONFLICT (guild_id, role_id) DO UPDATE SET credit_limit = excluded.credit_limit""",
            (guild_id, role_id, credits),
        )
