"""The quota rules: which limit applies (the member's own, else their roles' highest, else the server's default,
else the operator's), bans, the running-jobs cap, where a cost's credits come from (period first, then bonus),
and the messages that refuse. Reads only."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from bot import i18n
from bot.clock import shared_clock
from bot.credits.periods import Periods
from bot.credits.types import MAX_CREDITS, MAX_REASON_LENGTH, LimitSource, QuotaStatus
from bot.credits.wallets import is_personal
from bot.errors import InvalidInput, NotAllowed, OutOfCredits, QuotaExceeded
from bot.i18n import Msg, msg
from bot.settings import Settings
from bot.storage.credits import CreditRepository
from bot.storage.database import Connection, Database
from bot.storage.jobs import JobRepository
from bot.storage.limits import LimitRepository
from bot.storage.server_settings import ServerSettingsRepository


@dataclass(frozen=True, slots=True)
class MemberRules:
    limit: int
    source: LimitSource
    banned: bool
    ban_reason: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a cost's credits would come from, as read now, and the refusal should the guarded writes say no."""

    period: str
    used: int
    bonus: int
    from_period: int
    from_bonus: int
    refusal: QuotaExceeded


def check_credits(credits: int | None, *, allow_negative: bool = False) -> None:
    if credits is None:
        return
    low = -MAX_CREDITS if allow_negative else 0
    if not low <= credits <= MAX_CREDITS:
        raise InvalidInput(msg("Credits must be between {low} and {high}.", low=f"{low:,}", high=f"{MAX_CREDITS:,}"))


def clean_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(msg("Keep the reason under {limit} characters.", limit=MAX_REASON_LENGTH))
    return reason


def ban_message(guild_id: int, reason: str | None) -> Msg:
    if guild_id:
        message = msg("You can't generate here: a moderator has banned you from using the bot in this server.")
    else:
        message = msg(
            "You can't generate here: a moderator has banned you from using the bot with your personal wallet."
        )
    return msg("{message} Reason: {reason}", message=message, reason=reason) if reason else message


class CreditRules:
    def __init__(
        self, database: Database, settings: Settings, periods: Periods, *, clock: Callable[[], float] = shared_clock
    ) -> None:
        self._settings = settings
        self._periods = periods
        self._clock = clock
        self._credits = CreditRepository(database)
        self._limits = LimitRepository(database)
        self._servers = ServerSettingsRepository(database)
        self._jobs = JobRepository(database)

    async def member_rules(
        self, guild_id: int, user_id: int, role_ids: Collection[int], *, conn: Connection | None = None
    ) -> MemberRules:
        member = await self._limits.member(guild_id, user_id, conn=conn)
        banned, ban_reason = member.banned, member.ban_reason
        if member.credit_limit is not None:
            return MemberRules(member.credit_limit, "member", banned, ban_reason)
        if is_personal(guild_id):  # no server, no roles: the personal wallet's own limit
            return MemberRules(self._settings.personal_daily_limit, "personal", banned, ban_reason)
        role_limit = await self._limits.highest_role_limit(guild_id, role_ids, conn=conn)
        if role_limit is not None:
            return MemberRules(role_limit, "role", banned, ban_reason)
        server_default = await self._servers.default_limit(guild_id, conn=conn)
        if server_default is not None:
            return MemberRules(server_default, "server", banned, ban_reason)
        return MemberRules(self._settings.daily_credits, "default", banned, ban_reason)

    async def plan(
        self,
        rules: MemberRules,
        *,
        guild_id: int,
        user_id: int,
        cost: int,
        now: float,
        except_job_id: int | None = None,
        conn: Connection | None = None,
    ) -> Plan:
        """Where ``cost`` credits would come from now, or the refusal (ban, running-jobs cap, credits)."""
        if rules.banned:
            raise NotAllowed(ban_message(guild_id, rules.ban_reason))
        active = await self._jobs.count_active_for_user(user_id, except_job_id=except_job_id, conn=conn)
        cap = self._settings.max_running_jobs_per_user
        if active >= cap:
            raise QuotaExceeded(
                msg(
                    "You already have {jobs} queued or running, and the limit is {cap} at a time. "
                    "Wait for one to finish (or cancel one), then try again.",
                    jobs=i18n.plural(active, "{count} job", "{count} jobs"),
                    cap=cap,
                )
            )
        period = self._periods.period_at(now)
        used, bonus = await self._credits.used_and_bonus(guild_id, user_id, period, conn=conn)
        left = max(0, rules.limit - used)
        from_period = min(cost, left)
        from_bonus = cost - from_period
        refusal = self._out_of_credits(guild_id, cost=cost, left=left, bonus=bonus, now=now)
        if from_bonus > bonus:
            raise refusal
        return Plan(period, used, bonus, from_period, from_bonus, refusal)

    def _out_of_credits(self, guild_id: int, *, cost: int, left: int, bonus: int, now: float) -> OutOfCredits:
        resets = int(self._periods.next_reset(now))
        personal = is_personal(guild_id)
        credits = i18n.plural(left, "{count} credit", "{count} credits")
        if bonus:
            bonus_credits = i18n.plural(bonus, "{count} bonus credit", "{count} bonus credits")
            if personal:
                have = msg(
                    "You have {credits} left today and {bonus} in your personal wallet",
                    credits=credits,
                    bonus=bonus_credits,
                )
            else:
                have = msg("You have {credits} left today and {bonus}", credits=credits, bonus=bonus_credits)
        elif personal:
            have = msg("You have {credits} left today in your personal wallet", credits=credits)
        else:
            have = msg("You have {credits} left today", credits=credits)
        message = msg(
            "Not enough credits: this costs {cost}. {have}. Your credits reset {resets}.",
            cost=i18n.plural(cost, "{count} credit", "{count} credits"),
            have=have,
            resets=f"<t:{resets}:R>",
        )
        if personal and self._settings.credit_packs:
            message = msg("{message} A credit pack adds bonus credits at once.", message=message)
        return OutOfCredits(message, personal=personal)

    async def check(self, guild_id: int, user_id: int, role_ids: Collection[int], cost: int) -> None:
        """Refuse now what a reservation would refuse (ban, running-jobs cap, not enough credits), writing nothing.

        A pre-check, so a job that cannot start is refused before its inputs are downloaded and stored; the
        reservation still decides, in its transaction (something may change in between).
        """
        if cost < 0:
            raise ValueError(f"cost must be >= 0, got {cost}")
        rules = await self.member_rules(guild_id, user_id, role_ids)
        await self.plan(rules, guild_id=guild_id, user_id=user_id, cost=cost, now=self._clock())

    async def status(self, guild_id: int, user_id: int, role_ids: Collection[int]) -> QuotaStatus:
        now = self._clock()
        rules = await self.member_rules(guild_id, user_id, role_ids)
        period = self._periods.period_at(now)
        used = await self._credits.used(guild_id, user_id, period)
        return QuotaStatus(
            guild_id=guild_id,
            user_id=user_id,
            limit=rules.limit,
            limit_source=rules.source,
            used=used,
            left=max(0, rules.limit - used),
            bonus=await self._credits.bonus(guild_id, user_id),
            period=period,
            resets_at=self._periods.next_reset(now),
            banned=rules.banned,
            ban_reason=rules.ban_reason,
            active_jobs=await self._jobs.count_active_for_user(user_id),
        )
