"""The moderators' actions on credits, limits and bans: each its own transaction, audited inside it
(``audited_change``): the state before, the change, the audit row."""

from __future__ import annotations

from collections.abc import Callable

from bot import i18n
from bot.clock import shared_clock
from bot.credits.periods import Periods
from bot.credits.rules import check_credits, clean_reason
from bot.errors import InvalidInput
from bot.i18n import msg
from bot.server_settings.service import ServerSettingsService
from bot.storage.audit import AuditAction, audited_change
from bot.storage.credits import CreditRepository, LedgerKind, NewLedgerEntry
from bot.storage.database import Connection, Database
from bot.storage.limits import LimitRepository

BanState = dict[str, object]


def _as_limit(before: int | None, after: int | None) -> tuple[object, object]:
    return {"credit_limit": before}, {"credit_limit": after}


class CreditModeration:
    def __init__(
        self,
        database: Database,
        periods: Periods,
        server_settings: ServerSettingsService,
        *,
        clock: Callable[[], float] = shared_clock,
    ) -> None:
        self._db = database
        self._periods = periods
        self._server_settings = server_settings
        self._clock = clock
        self._credits = CreditRepository(database)
        self._limits = LimitRepository(database)

    async def set_member_limit(
        self, guild_id: int, user_id: int, credits: int | None, *, actor_id: int, reason: str | None = None
    ) -> tuple[int | None, int | None]:
        """The member's own limit (None removes it); returns (before, after)."""
        check_credits(credits)
        reason = clean_reason(reason)
        now = self._clock()

        async def read(conn: Connection) -> int | None:
            return (await self._limits.member(guild_id, user_id, conn=conn)).credit_limit

        async def write(conn: Connection, before: int | None) -> int | None:
            await self._limits.set_member_limit(conn, guild_id, user_id, credits, now=now)
            return credits

        action = AuditAction("set-limit", guild_id, actor_id, reason, target_user_id=user_id)
        return await audited_change(self._db, action, now=now, read=read, write=write, describe=_as_limit)

    async def grant(
        self, guild_id: int, user_id: int, credits: int, *, actor_id: int, reason: str | None = None
    ) -> int:
        """Add bonus credits (negative: take them away, never below 0); returns the new bonus balance."""
        if credits == 0:
            raise InvalidInput(msg("Give a number of credits other than 0 (negative takes bonus credits away)."))
        check_credits(credits, allow_negative=True)
        reason = clean_reason(reason)
        now = self._clock()
        kind: LedgerKind = "grant" if credits > 0 else "revoke"

        async def read(conn: Connection) -> int:
            return await self._credits.bonus(guild_id, user_id, conn=conn)

        async def write(conn: Connection, before: int) -> int:
            if credits > 0:
                after: int | None = await self._credits.add_bonus(conn, guild_id, user_id, credits)
            else:
                after = await self._credits.spend_bonus(conn, guild_id, user_id, -credits)
            if after is None:
                raise InvalidInput(
                    msg(
                        "Can't take away {asked}: this member has only {bonus}.",
                        asked=i18n.plural(-credits, "{count} bonus credit", "{count} bonus credits"),
                        bonus=i18n.plural(before, "{count} bonus credit", "{count} bonus credits"),
                    )
                )
            entry = NewLedgerEntry(
                guild_id=guild_id,
                user_id=user_id,
                kind=kind,
                created_at=now,
                bonus_delta=credits,
                actor_id=actor_id,
                reason=reason,
            )
            await self._credits.append(conn, entry)
            return after

        _, after = await audited_change(
            self._db,
            AuditAction(kind, guild_id, actor_id, reason, target_user_id=user_id),
            now=now,
            read=read,
            write=write,
            describe=lambda old, new: ({"bonus": old}, {"bonus": new}),
        )
        return after

    async def reset(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> None:
        """Set the credits used in the current period back to 0. Bonus credits are untouched."""
        reason = clean_reason(reason)
        now = self._clock()
        period = self._periods.period_at(now)

        async def read(conn: Connection) -> int:
            return await self._credits.used(guild_id, user_id, period, conn=conn)

        async def write(conn: Connection, used: int) -> int:
            if used:
                await self._credits.clear_used(conn, guild_id, user_id, period)
            entry = NewLedgerEntry(
                guild_id=guild_id,
                user_id=user_id,
                kind="reset",
                created_at=now,
                period=period,
                period_delta=-used,
                actor_id=actor_id,
                reason=reason,
            )
            await self._credits.append(conn, entry)
            return 0

        await audited_change(
            self._db,
            AuditAction("reset", guild_id, actor_id, reason, target_user_id=user_id),
            now=now,
            read=read,
            write=write,
            describe=lambda old, new: ({"period": period, "used": old}, {"period": period, "used": new}),
        )

    async def _ban_state(self, conn: Connection, guild_id: int, user_id: int) -> BanState:
        member = await self._limits.member(guild_id, user_id, conn=conn)
        return {"banned": member.banned, "ban_reason": member.ban_reason}

    async def ban(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> bool:
        """Refuse the member's generations in this scope; True if they were not banned before."""
        reason = clean_reason(reason)
        now = self._clock()

        async def write(conn: Connection, before: BanState) -> BanState:
            await self._limits.ban(conn, guild_id, user_id, reason, now=now)
            return {"banned": True, "ban_reason": reason}

        before, _ = await audited_change(
            self._db,
            AuditAction("ban", guild_id, actor_id, reason, target_user_id=user_id),
            now=now,
            read=lambda conn: self._ban_state(conn, guild_id, user_id),
            write=write,
        )
        return not before["banned"]

    async def unban(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> bool:
        """Lift a ban; True if the member was banned."""
        reason = clean_reason(reason)
        now = self._clock()

        async def write(conn: Connection, before: BanState) -> BanState:
            await self._limits.unban(conn, guild_id, user_id, now=now)
            return {"banned": False, "ban_reason": None}

        before, _ = await audited_change(
            self._db,
            AuditAction("unban", guild_id, actor_id, reason, target_user_id=user_id),
            now=now,
            read=lambda conn: self._ban_state(conn, guild_id, user_id),
            write=write,
        )
        return bool(before["banned"])

    async def set_role_limit(
        self, guild_id: int, role_id: int, credits: int | None, *, actor_id: int, reason: str | None = None
    ) -> tuple[int | None, int | None]:
        """The limit for members with this role (the highest of their roles wins); None removes it."""
        check_credits(credits)
        reason = clean_reason(reason)
        now = self._clock()

        async def read(conn: Connection) -> int | None:
            return await self._limits.role_limit(guild_id, role_id, conn=conn)

        async def write(conn: Connection, before: int | None) -> int | None:
            await self._limits.set_role_limit(conn, guild_id, role_id, credits)
            return credits

        action = AuditAction("role-limit", guild_id, actor_id, reason, target_role_id=role_id)
        return await audited_change(self._db, action, now=now, read=read, write=write, describe=_as_limit)

    async def set_server_default(
        self, guild_id: int, credits: int | None, *, actor_id: int, reason: str | None = None
    ) -> tuple[int | None, int | None]:
        """The server's default limit (None: the operator's global default). The server settings own that row."""
        check_credits(credits)
        reason = clean_reason(reason)
        return await self._server_settings.set_default_limit(guild_id, credits, actor_id=actor_id, reason=reason)
