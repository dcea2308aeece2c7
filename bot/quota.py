"""Credits: the quota rules (limit resolution, bonus credits, bans, the running-jobs cap), the credit ledger that
records every change, and the moderator actions on them (each audited in the transaction of its change).

Balances live in ``credit_usage`` (credits used per period) and ``credit_bonus`` (bonus balance, never reset);
``credit_ledger`` holds one row per change, so per user and scope the sum of ``period_delta`` for a period equals
that period's ``used`` and the sum of ``bonus_delta`` equals the bonus balance. The unique indexes on the ledger
make each job's reserve, and its one commit or refund, happen at most once.

Every write that spends credits is a guarded single statement (``… WHERE used + :n <= :limit RETURNING …``) run
inside one write transaction, so the rules hold on SQLite (``BEGIN IMMEDIATE``) and on a database that runs
transactions concurrently. Times are Unix seconds passed in by the caller or read from the injected clock.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import aiosqlite

from bot.errors import InvalidInput, NotAllowed, QuotaExceeded
from bot.settings import Settings
from bot.storage.audit import AuditEntry, write_audit
from bot.storage.database import Database, Params, fetch_one, placeholders

log = logging.getLogger(__name__)

DAY_S = 86_400
MAX_CREDITS = 1_000_000_000
MAX_REASON_LENGTH = 500
# The statuses are written out, not bound: SQLite uses the partial index ``jobs_active_by_user`` only when the query's
# WHERE visibly implies the index's, and this count runs inside the write lock of every reservation.
ACTIVE_JOBS_SQL = """SELECT COUNT(*) FROM jobs
    WHERE user_id = ? AND status IN ('queued', 'submitting', 'running') AND (? IS NULL OR id <> ?)"""

LimitSource = Literal["member", "role", "server", "default"]
LedgerKind = Literal["reserve", "commit", "refund", "grant", "revoke", "reset"]
_Fetch = Callable[[str, Params], Awaitable[sqlite3.Row | None]]


@dataclass(frozen=True, slots=True)
class Reservation:
    job_id: int
    guild_id: int
    user_id: int
    period: str
    from_period: int
    from_bonus: int
    limit: int
    used_after: int
    bonus_after: int

    @property
    def cost(self) -> int:
        return self.from_period + self.from_bonus


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    guild_id: int
    user_id: int
    limit: int
    limit_source: LimitSource
    used: int
    left: int
    bonus: int
    period: str
    resets_at: float
    banned: bool
    ban_reason: str | None
    active_jobs: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    guild_id: int
    user_id: int
    job_id: int | None
    kind: LedgerKind
    period: str | None
    period_delta: int
    bonus_delta: int
    actor_id: int | None
    reason: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class _Rules:
    limit: int
    source: LimitSource
    banned: bool
    ban_reason: str | None


@dataclass(frozen=True, slots=True)
class _Plan:
    period: str
    used: int
    bonus: int
    from_period: int
    from_bonus: int
    refusal: QuotaExceeded


def _reader(conn: aiosqlite.Connection) -> _Fetch:
    async def fetch(sql: str, params: Params = ()) -> sqlite3.Row | None:
        return await fetch_one(conn, sql, params)

    return fetch


async def _audit(
    conn: aiosqlite.Connection,
    now: float,
    action: str,
    guild_id: int,
    actor_id: int,
    reason: str | None,
    before: object,
    after: object,
    *,
    user_id: int | None = None,
    role_id: int | None = None,
) -> None:
    """The audit row of a moderator action, in the transaction of the change."""
    entry = AuditEntry(
        guild_id=guild_id,
        actor_id=actor_id,
        action=action,
        target_user_id=user_id,
        target_role_id=role_id,
        before=before,
        after=after,
        reason=reason,
    )
    await write_audit(conn, entry, now=now)


def _check_credits(credits: int | None, *, allow_negative: bool = False) -> None:
    if credits is None:
        return
    low = -MAX_CREDITS if allow_negative else 0
    if not low <= credits <= MAX_CREDITS:
        raise InvalidInput(f"Credits must be between {low:,} and {MAX_CREDITS:,}.")


def _clean_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    return reason


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class QuotaService:
    def __init__(self, database: Database, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._settings = settings
        self._clock = clock
        self._reset_offset = settings.quota_reset_hour_utc * 3600

    # --- periods -------------------------------------------------------------------------------------------

    def _period_start(self, ts: float) -> float:
        return math.floor((ts - self._reset_offset) / DAY_S) * DAY_S + self._reset_offset

    def period_at(self, ts: float) -> str:
        """The period containing ``ts``: the UTC date of ``ts`` shifted back by the reset hour."""
        return datetime.fromtimestamp(self._period_start(ts) - self._reset_offset, tz=UTC).date().isoformat()

    def next_reset(self, ts: float) -> float:
        """The first reset instant strictly after ``ts``."""
        return self._period_start(ts) + DAY_S

    # --- rules ---------------------------------------------------------------------------------------------

    async def _rules(self, fetch: _Fetch, guild_id: int, user_id: int, role_ids: Collection[int]) -> _Rules:
        member = await fetch(
            "SELECT credit_limit, banned, ban_reason FROM member_quota WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        banned = bool(member["banned"]) if member is not None else False
        ban_reason = member["ban_reason"] if member is not None else None
        if member is not None and member["credit_limit"] is not None:
            return _Rules(int(member["credit_limit"]), "member", banned, ban_reason)
        roles = sorted(set(role_ids))
        if roles:
            row = await fetch(
                f"SELECT MAX(credit_limit) FROM role_limits WHERE guild_id = ? AND role_id IN ({placeholders(roles)})",
                (guild_id, *roles),
            )
            if row is not None and row[0] is not None:
                return _Rules(int(row[0]), "role", banned, ban_reason)
        row = await fetch("SELECT default_limit FROM guild_settings WHERE guild_id = ?", (guild_id,))
        if row is not None and row[0] is not None:
            return _Rules(int(row[0]), "server", banned, ban_reason)
        return _Rules(self._settings.daily_credits, "default", banned, ban_reason)

    @staticmethod
    async def _used(fetch: _Fetch, guild_id: int, user_id: int, period: str) -> int:
        row = await fetch(
            "SELECT used FROM credit_usage WHERE guild_id = ? AND user_id = ? AND period = ?",
            (guild_id, user_id, period),
        )
        return int(row[0]) if row is not None else 0

    @staticmethod
    async def _bonus(fetch: _Fetch, guild_id: int, user_id: int) -> int:
        row = await fetch("SELECT balance FROM credit_bonus WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
        return int(row[0]) if row is not None else 0

    @staticmethod
    async def _active_jobs(fetch: _Fetch, user_id: int, *, except_job_id: int | None = None) -> int:
        row = await fetch(ACTIVE_JOBS_SQL, (user_id, except_job_id, except_job_id))
        return int(row[0]) if row is not None else 0

    @staticmethod
    async def _insert_ledger(
        conn: aiosqlite.Connection,
        *,
        guild_id: int,
        user_id: int,
        kind: LedgerKind,
        now: float,
        job_id: int | None = None,
        period: str | None = None,
        period_delta: int = 0,
        bonus_delta: int = 0,
        actor_id: int | None = None,
        reason: str | None = None,
    ) -> bool:
        """Append a ledger row; False when the job already has this kind of row (or is already settled)."""
        cursor = await conn.execute(
            """INSERT INTO credit_ledger (guild_id, user_id, job_id, kind, period, period_delta, bonus_delta,
                                          actor_id, reason, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT DO NOTHING""",
            (guild_id, user_id, job_id, kind, period, period_delta, bonus_delta, actor_id, reason, now),
        )
        return cursor.rowcount == 1

    @staticmethod
    async def _reserve_row(conn: aiosqlite.Connection, job_id: int) -> sqlite3.Row | None:
        return await fetch_one(
            conn,
            """SELECT id, guild_id, user_id, period, period_delta, bonus_delta FROM credit_ledger
               WHERE job_id = ? AND kind = 'reserve'""",
            (job_id,),
        )

    async def _plan(
        self,
        fetch: _Fetch,
        rules: _Rules,
        *,
        guild_id: int,
        user_id: int,
        cost: int,
        now: float,
        except_job_id: int | None = None,
    ) -> _Plan:
        """Where ``cost`` credits would come from now, or the refusal (ban, running-jobs cap, credits). Reads only."""
        if rules.banned:
            raise NotAllowed(self._ban_message(guild_id, rules.ban_reason))
        active = await self._active_jobs(fetch, user_id, except_job_id=except_job_id)
        cap = self._settings.max_running_jobs_per_user
        if active >= cap:
            raise QuotaExceeded(
                f"You already have {_plural(active, 'job')} queued or running, and the limit is {cap} at a time. "
                "Wait for one to finish (or cancel one), then try again."
            )
        period = self.period_at(now)
        used = await self._used(fetch, guild_id, user_id, period)
        bonus = await self._bonus(fetch, guild_id, user_id)
        left = max(0, rules.limit - used)
        from_period = min(cost, left)
        from_bonus = cost - from_period
        refusal = QuotaExceeded(self._credits_message(cost=cost, left=left, bonus=bonus, now=now))
        if from_bonus > bonus:
            raise refusal
        return _Plan(period, used, bonus, from_period, from_bonus, refusal)

    # --- the job engine's side: check before it starts work, then reserve/commit/refund inside its transaction ---

    async def check(self, guild_id: int, user_id: int, role_ids: Collection[int], cost: int) -> None:
        """Refuse now what ``reserve`` would refuse (ban, running-jobs cap, not enough credits), writing nothing.

        A pre-check, so a job that cannot start is refused before its inputs are downloaded and stored; ``reserve``
        still decides, in its transaction (something may change in between).
        """
        if cost < 0:
            raise ValueError(f"cost must be >= 0, got {cost}")
        fetch: _Fetch = self._db.fetch_one
        rules = await self._rules(fetch, guild_id, user_id, role_ids)
        await self._plan(fetch, rules, guild_id=guild_id, user_id=user_id, cost=cost, now=self._clock())

    async def reserve(
        self,
        conn: aiosqlite.Connection,
        *,
        job_id: int,
        guild_id: int,
        user_id: int,
        role_ids: Collection[int],
        cost: int,
        now: float,
    ) -> Reservation:
        """Take ``cost`` credits for ``job_id`` (period credits first, then bonus) or refuse.

        Call it in the transaction that inserted the job, and let a refusal roll that transaction back. A job
        that already has a reservation gets it back without a second charge.
        """
        if cost < 0:
            raise ValueError(f"cost must be >= 0, got {cost}")
        fetch = _reader(conn)
        rules = await self._rules(fetch, guild_id, user_id, role_ids)
        existing = await self._reserve_row(conn, job_id)
        if existing is not None:
            return Reservation(
                job_id=job_id,
                guild_id=existing["guild_id"],
                user_id=existing["user_id"],
                period=existing["period"],
                from_period=existing["period_delta"],
                from_bonus=-existing["bonus_delta"],
                limit=rules.limit,
                used_after=await self._used(fetch, existing["guild_id"], existing["user_id"], existing["period"]),
                bonus_after=await self._bonus(fetch, existing["guild_id"], existing["user_id"]),
            )
        plan = await self._plan(
            fetch, rules, guild_id=guild_id, user_id=user_id, cost=cost, now=now, except_job_id=job_id
        )
        period, from_period, from_bonus, refusal = plan.period, plan.from_period, plan.from_bonus, plan.refusal
        used_after, bonus_after = plan.used, plan.bonus
        if from_period:
            row = await fetch(
                """INSERT INTO credit_usage (guild_id, user_id, period, used) VALUES (?, ?, ?, ?)
                   ON CONFLICT (guild_id, user_id, period) DO UPDATE SET used = credit_usage.used + excluded.used
                   WHERE credit_usage.used + excluded.used <= ?
                   RETURNING used""",
                (guild_id, user_id, period, from_period, rules.limit),
            )
            if row is None:
                raise refusal
            used_after = int(row[0])
        if from_bonus:
            row = await fetch(
                """UPDATE credit_bonus SET balance = balance - ?
                   WHERE guild_id = ? AND user_id = ? AND balance >= ?
                   RETURNING balance""",
                (from_bonus, guild_id, user_id, from_bonus),
            )
            if row is None:
                raise refusal
            bonus_after = int(row[0])
        if not await self._insert_ledger(
            conn,
            guild_id=guild_id,
            user_id=user_id,
            kind="reserve",
            now=now,
            job_id=job_id,
            period=period,
            period_delta=from_period,
            bonus_delta=-from_bonus,
        ):
            raise RuntimeError(f"job {job_id} was reserved concurrently")
        return Reservation(
            job_id=job_id,
            guild_id=guild_id,
            user_id=user_id,
            period=period,
            from_period=from_period,
            from_bonus=from_bonus,
            limit=rules.limit,
            used_after=used_after,
            bonus_after=bonus_after,
        )

    async def commit(self, conn: aiosqlite.Connection, *, job_id: int, now: float) -> bool:
        """Settle the job's reservation as spent. False if it was already committed or refunded (or never reserved)."""
        reserve = await self._reserve_row(conn, job_id)
        if reserve is None:
            log.warning("commit of job %s, which has no credit reservation", job_id)
            return False
        return await self._insert_ledger(
            conn,
            guild_id=reserve["guild_id"],
            user_id=reserve["user_id"],
            kind="commit",
            now=now,
            job_id=job_id,
            period=reserve["period"],
        )

    async def refund(self, conn: aiosqlite.Connection, *, job_id: int, now: float) -> bool:
        """Give the job's reserved credits back: the period part to the period it came from, the bonus part to the
        bonus balance. False if already settled.

        A moderator reset of that period after the reservation already forgave its period part (used went to 0),
        so only the bonus part comes back then: giving the period part back too would hand it out twice."""
        reserve = await self._reserve_row(conn, job_id)
        if reserve is None:
            log.warning("refund of job %s, which has no credit reservation", job_id)
            return False
        guild_id, user_id, period = reserve["guild_id"], reserve["user_id"], reserve["period"]
        settled = await fetch_one(
            conn, "SELECT 1 FROM credit_ledger WHERE job_id = ? AND kind IN ('commit', 'refund')", (job_id,)
        )
        if settled is not None:
            return False
        forgiven = await fetch_one(
            conn,
            """SELECT 1 FROM credit_ledger
               WHERE guild_id = ? AND user_id = ? AND id > ? AND kind = 'reset' AND period = ? LIMIT 1""",
            (guild_id, user_id, reserve["id"], period),
        )
        used = await self._used(_reader(conn), guild_id, user_id, period)
        period_back = 0 if forgiven is not None else min(int(reserve["period_delta"]), used)
        bonus_back = -int(reserve["bonus_delta"])
        if not await self._insert_ledger(
            conn,
            guild_id=guild_id,
            user_id=user_id,
            kind="refund",
            now=now,
            job_id=job_id,
            period=period,
            period_delta=-period_back,
            bonus_delta=bonus_back,
        ):
            return False
        if period_back:
            await conn.execute(
                """UPDATE credit_usage SET used = used - ?
                   WHERE guild_id = ? AND user_id = ? AND period = ? AND used >= ?""",
                (period_back, guild_id, user_id, period, period_back),
            )
        if bonus_back:
            await conn.execute(
                """INSERT INTO credit_bonus (guild_id, user_id, balance) VALUES (?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE SET balance = credit_bonus.balance + excluded.balance""",
                (guild_id, user_id, bonus_back),
            )
        return True

    def _ban_message(self, guild_id: int, reason: str | None) -> str:
        where = "in this server" if guild_id else "in direct messages"
        message = f"You can't generate here: a moderator has banned you from using the bot {where}."
        return f"{message} Reason: {reason}" if reason else message

    def _credits_message(self, *, cost: int, left: int, bonus: int, now: float) -> str:
        resets = int(self.next_reset(now))
        have = f"You have {_plural(left, 'credit')} left today"
        if bonus:
            have += f" and {_plural(bonus, 'bonus credit')}"
        return f"Not enough credits: this costs {_plural(cost, 'credit')}. {have}. Your credits reset <t:{resets}:R>."

    # --- reads ---------------------------------------------------------------------------------------------

    async def status(self, guild_id: int, user_id: int, role_ids: Collection[int]) -> QuotaStatus:
        now = self._clock()
        fetch: _Fetch = self._db.fetch_one
        rules = await self._rules(fetch, guild_id, user_id, role_ids)
        period = self.period_at(now)
        used = await self._used(fetch, guild_id, user_id, period)
        return QuotaStatus(
            guild_id=guild_id,
            user_id=user_id,
            limit=rules.limit,
            limit_source=rules.source,
            used=used,
            left=max(0, rules.limit - used),
            bonus=await self._bonus(fetch, guild_id, user_id),
            period=period,
            resets_at=self.next_reset(now),
            banned=rules.banned,
            ban_reason=rules.ban_reason,
            active_jobs=await self._active_jobs(fetch, user_id),
        )

    async def ledger(self, guild_id: int, user_id: int, *, limit: int = 20) -> list[LedgerEntry]:
        """The member's credit changes in this scope, newest first."""
        rows = await self._db.fetch_all(
            """SELECT id, guild_id, user_id, job_id, kind, period, period_delta, bonus_delta, actor_id, reason,
                      created_at
               FROM credit_ledger WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?""",
            (guild_id, user_id, limit),
        )
        return [LedgerEntry(**dict(row)) for row in rows]

    # --- moderator actions (each its own transaction, audited inside it) -----------------------------------

    async def set_member_limit(
        self, guild_id: int, user_id: int, credits: int | None, *, actor_id: int, reason: str | None = None
    ) -> tuple[int | None, int | None]:
        """The member's own limit (None removes it); returns (before, after)."""
        _check_credits(credits)
        reason = _clean_reason(reason)
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await fetch_one(
                conn, "SELECT credit_limit FROM member_quota WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            before = row[0] if row is not None else None
            await conn.execute(
                """INSERT INTO member_quota (guild_id, user_id, credit_limit, updated_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE SET
                       credit_limit = excluded.credit_limit, updated_at = excluded.updated_at""",
                (guild_id, user_id, credits, now),
            )
            await _audit(
                conn,
                now,
                "set-limit",
                guild_id,
                actor_id,
                reason,
                {"credit_limit": before},
                {"credit_limit": credits},
                user_id=user_id,
            )
        return before, credits

    async def grant(
        self, guild_id: int, user_id: int, credits: int, *, actor_id: int, reason: str | None = None
    ) -> int:
        """Add bonus credits (negative: take them away, never below 0); returns the new bonus balance."""
        if credits == 0:
            raise InvalidInput("Give a number of credits other than 0 (negative takes bonus credits away).")
        _check_credits(credits, allow_negative=True)
        reason = _clean_reason(reason)
        now = self._clock()
        async with self._db.transaction() as conn:
            before = await self._bonus(_reader(conn), guild_id, user_id)
            if credits > 0:
                row = await fetch_one(
                    conn,
                    """INSERT INTO credit_bonus (guild_id, user_id, balance) VALUES (?, ?, ?)
                       ON CONFLICT (guild_id, user_id) DO UPDATE SET balance = credit_bonus.balance + excluded.balance
                       RETURNING balance""",
                    (guild_id, user_id, credits),
                )
            else:
                row = await fetch_one(
                    conn,
                    """UPDATE credit_bonus SET balance = balance + ?
                       WHERE guild_id = ? AND user_id = ? AND balance + ? >= 0
                       RETURNING balance""",
                    (credits, guild_id, user_id, credits),
                )
            if row is None:
                raise InvalidInput(
                    f"Can't take away {_plural(-credits, 'bonus credit')}: "
                    f"this member has only {_plural(before, 'bonus credit')}."
                )
            after = int(row[0])
            kind: LedgerKind = "grant" if credits > 0 else "revoke"
            await self._insert_ledger(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                kind=kind,
                now=now,
                bonus_delta=credits,
                actor_id=actor_id,
                reason=reason,
            )
            await _audit(
                conn, now, kind, guild_id, actor_id, reason, {"bonus": before}, {"bonus": after}, user_id=user_id
            )
        return after

    async def reset(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> None:
        """Set the credits used in the current period back to 0. Bonus credits are untouched."""
        reason = _clean_reason(reason)
        now = self._clock()
        period = self.period_at(now)
        async with self._db.transaction() as conn:
            used = await self._used(_reader(conn), guild_id, user_id, period)
            if used:
                await conn.execute(
                    "UPDATE credit_usage SET used = 0 WHERE guild_id = ? AND user_id = ? AND period = ?",
                    (guild_id, user_id, period),
                )
            await self._insert_ledger(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                kind="reset",
                now=now,
                period=period,
                period_delta=-used,
                actor_id=actor_id,
                reason=reason,
            )
            await _audit(
                conn,
                now,
                "reset",
                guild_id,
                actor_id,
                reason,
                {"period": period, "used": used},
                {"period": period, "used": 0},
                user_id=user_id,
            )

    async def ban(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> bool:
        """Refuse the member's generations in this scope; True if they were not banned before."""
        reason = _clean_reason(reason)
        now = self._clock()
        async with self._db.transaction() as conn:
            before = await self._ban_state(conn, guild_id, user_id)
            await conn.execute(
                """INSERT INTO member_quota (guild_id, user_id, banned, ban_reason, updated_at) VALUES (?, ?, 1, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE SET
                       banned = 1, ban_reason = excluded.ban_reason, updated_at = excluded.updated_at""",
                (guild_id, user_id, reason, now),
            )
            await _audit(
                conn,
                now,
                "ban",
                guild_id,
                actor_id,
                reason,
                before,
                {"banned": True, "ban_reason": reason},
                user_id=user_id,
            )
        return not before["banned"]

    async def unban(self, guild_id: int, user_id: int, *, actor_id: int, reason: str | None = None) -> bool:
        """Lift a ban; True if the member was banned."""
        reason = _clean_reason(reason)
        now = self._clock()
        async with self._db.transaction() as conn:
            before = await self._ban_state(conn, guild_id, user_id)
            await conn.execute(
                """UPDATE member_quota SET banned = 0, ban_reason = NULL, updated_at = ?
                   WHERE guild_id = ? AND user_id = ?""",
                (now, guild_id, user_id),
            )
            await _audit(
                conn,
                now,
                "unban",
                guild_id,
                actor_id,
                reason,
                before,
                {"banned": False, "ban_reason": None},
                user_id=user_id,
            )
        return bool(before["banned"])

    @staticmethod
    async def _ban_state(conn: aiosqlite.Connection, guild_id: int, user_id: int) -> dict[str, object]:
        row = await fetch_one(
            conn, "SELECT banned, ban_reason FROM member_quota WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        if row is None:
            return {"banned": False, "ban_reason": None}
        return {"banned": bool(row["banned"]), "ban_reason": row["ban_reason"]}

    async def set_role_limit(
        self, guild_id: int, role_id: int, credits: int | None, *, actor_id: int, reason: str | None = None
    ) -> tuple[int | None, int | None]:
        """The limit for members with this role (the highest of their roles wins); None removes it."""
        _check_credits(credits)
        reason = _clean_reason(reason)
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await fetch_one(
                conn, "SELECT credit_limit FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id)
            )
            before = row[0] if row is not None else None
            if credits is None:
                await conn.execute("DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
            else:
                await conn.execute(
                    """INSERT INTO role_limits (guild_id, role_id, credit_limit) VALUES (?, ?, ?)
                       ON CONFLICT (guild_id, role_id) DO UPDATE SET credit_limit = excluded.credit_limit""",
                    (guild_id, role_id, credits),
                )
            await _audit(
                conn,
                now,
                "role-limit",
                guild_id,
                actor_id,
                reason,
                {"credit_limit": before},
                {"credit_limit": credits},
                role_id=role_id,
            )
        return before, credits

    async def set_server_default(
        self, guild_id: int, credits: int | None, *, actor_id: int, reason: str | None = None
    ) -> tuple[int | None, int | None]:
        """The server's default limit (None: the operator's global default)."""
        _check_credits(credits)
        reason = _clean_reason(reason)
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await fetch_one(conn, "SELECT default_limit FROM guild_settings WHERE guild_id = ?", (guild_id,))
            before = row[0] if row is not None else None
            await conn.execute(
                """INSERT INTO guild_settings (guild_id, default_limit, updated_at) VALUES (?, ?, ?)
                   ON CONFLICT (guild_id) DO UPDATE SET
                       default_limit = excluded.default_limit, updated_at = excluded.updated_at""",
                (guild_id, credits, now),
            )
            await _audit(
                conn,
                now,
                "server-default",
                guild_id,
                actor_id,
                reason,
                {"default_limit": before},
                {"default_limit": credits},
            )
        return before, credits
