"""The credits repository: every statement on ``credit_usage`` (credits used per period), ``credit_bonus`` (bonus
balance, never reset) and ``credit_ledger`` (one row per change).

Writes that spend credits are guarded single statements: no row back means refused. The ledger's unique indexes
make a job's reserve, and its one commit or refund, happen at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.storage.database import Connection, Database

LedgerKind = Literal["reserve", "commit", "refund", "grant", "revoke", "reset", "purchase"]


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
    entitlement_id: int | None = None  # the Discord entitlement a purchase settles


@dataclass(frozen=True, slots=True)
class NewLedgerEntry:
    guild_id: int
    user_id: int
    kind: LedgerKind
    created_at: float
    job_id: int | None = None
    period: str | None = None
    period_delta: int = 0
    bonus_delta: int = 0
    actor_id: int | None = None
    reason: str | None = None
    entitlement_id: int | None = None


@dataclass(frozen=True, slots=True)
class JobReservation:
    """A job's reserve row: where its credits came from."""

    ledger_id: int
    guild_id: int
    user_id: int
    period: str
    from_period: int
    from_bonus: int


class CreditRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    # --- balances ------------------------------------------------------------------------------------------

    async def used(self, guild_id: int, user_id: int, period: str, *, conn: Connection | None = None) -> int:
        row = await self._db.fetch_one_in(
            conn,
            "SELECT used FROM credit_usage WHERE guild_id = ? AND user_id = ? AND period = ?",
            (guild_id, user_id, period),
        )
        return int(row[0]) if row is not None else 0

    async def bonus(self, guild_id: int, user_id: int, *, conn: Connection | None = None) -> int:
        row = await self._db.fetch_one_in(
            conn, "SELECT balance FROM credit_bonus WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return int(row[0]) if row is not None else 0

    async def use(
        self, conn: Connection, guild_id: int, user_id: int, period: str, credits: int, *, limit: int
    ) -> int | None:
        """Add to the period's used credits unless that goes over ``limit``; the new total, or None if refused."""
        row = await self._db.fetch_one_in(
            conn,
            """INSERT INTO credit_usage (guild_id, user_id, period, used) VALUES (?, ?, ?, ?)
               ON CONFLICT (guild_id, user_id, period) DO UPDATE SET used = credit_usage.used + excluded.used
               WHERE credit_usage.used + excluded.used <= ?
               RETURNING used""",
            (guild_id, user_id, period, credits, limit),
        )
        return int(row[0]) if row is not None else None

    async def give_back(self, conn: Connection, guild_id: int, user_id: int, period: str, credits: int) -> None:
        """Take ``credits`` off the period's used credits (never below 0)."""
        await conn.execute(
            """UPDATE credit_usage SET used = used - ?
               WHERE guild_id = ? AND user_id = ? AND period = ? AND used >= ?""",
            (credits, guild_id, user_id, period, credits),
        )

    async def clear_used(self, conn: Connection, guild_id: int, user_id: int, period: str) -> None:
        await conn.execute(
            "UPDATE credit_usage SET used = 0 WHERE guild_id = ? AND user_id = ? AND period = ?",
            (guild_id, user_id, period),
        )

    async def add_bonus(self, conn: Connection, guild_id: int, user_id: int, credits: int) -> int:
        """Add to the bonus balance; the new balance."""
        row = await self._db.fetch_one_in(
            conn,
            """INSERT INTO credit_bonus (guild_id, user_id, balance) VALUES (?, ?, ?)
               ON CONFLICT (guild_id, user_id) DO UPDATE SET balance = credit_bonus.balance + excluded.balance
               RETURNING balance""",
            (guild_id, user_id, credits),
        )
        assert row is not None
        return int(row[0])

    async def spend_bonus(self, conn: Connection, guild_id: int, user_id: int, credits: int) -> int | None:
        """Take from the bonus balance unless it has less; the new balance, or None if refused."""
        row = await self._db.fetch_one_in(
            conn,
            """UPDATE credit_bonus SET balance = balance - ?
               WHERE guild_id = ? AND user_id = ? AND balance >= ?
               RETURNING balance""",
            (credits, guild_id, user_id, credits),
        )
        return int(row[0]) if row is not None else None

    # --- the ledger ----------------------------------------------------------------------------------------

    async def append(self, conn: Connection, entry: NewLedgerEntry) -> bool:
        """Append a ledger row; False when the job already has this kind of row (or is already settled), or the
        entitlement already has its purchase row."""
        cursor = await conn.execute(
            """INSERT INTO credit_ledger (guild_id, user_id, job_id, kind, period, period_delta, bonus_delta,
                                          actor_id, reason, created_at, entitlement_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT DO NOTHING""",
            (
                entry.guild_id,
                entry.user_id,
                entry.job_id,
                entry.kind,
                entry.period,
                entry.period_delta,
                entry.bonus_delta,
                entry.actor_id,
                entry.reason,
                entry.created_at,
                entry.entitlement_id,
            ),
        )
        return cursor.rowcount == 1

    async def append_commit(self, conn: Connection, job_id: int, now: float) -> bool:
        """The job's ``commit`` row, copied from its reservation in one statement; False when it has no
        reservation or is already settled."""
        cursor = await conn.execute(
            """INSERT INTO credit_ledger (guild_id, user_id, job_id, kind, period, period_delta, bonus_delta,
                                          actor_id, reason, created_at)
               SELECT guild_id, user_id, job_id, 'commit', period, 0, 0, NULL, NULL, ? FROM credit_ledger
               WHERE job_id = ? AND kind = 'reserve'
               ON CONFLICT DO NOTHING""",
            (now, job_id),
        )
        return cursor.rowcount == 1

    async def used_and_bonus(
        self, guild_id: int, user_id: int, period: str, *, conn: Connection | None = None
    ) -> tuple[int, int]:
        """``used`` and ``bonus`` in one round trip."""
        row = await self._db.fetch_one_in(
            conn,
            """SELECT (SELECT used FROM credit_usage WHERE guild_id = ? AND user_id = ? AND period = ?),
                      (SELECT balance FROM credit_bonus WHERE guild_id = ? AND user_id = ?)""",
            (guild_id, user_id, period, guild_id, user_id),
        )
        return int(row[0] or 0), int(row[1] or 0)

    async def reservation(self, conn: Connection, job_id: int) -> JobReservation | None:
        row = await self._db.fetch_one_in(
            conn,
            """SELECT id, guild_id, user_id, period, period_delta, bonus_delta FROM credit_ledger
               WHERE job_id = ? AND kind = 'reserve'""",
            (job_id,),
        )
        if row is None:
            return None
        return JobReservation(
            ledger_id=row["id"],
            guild_id=row["guild_id"],
            user_id=row["user_id"],
            period=row["period"],
            from_period=int(row["period_delta"]),
            from_bonus=-int(row["bonus_delta"]),
        )

    async def is_settled(self, conn: Connection, job_id: int) -> bool:
        """The job has its commit or its refund."""
        row = await self._db.fetch_one_in(
            conn, "SELECT 1 FROM credit_ledger WHERE job_id = ? AND kind IN ('commit', 'refund')", (job_id,)
        )
        return row is not None

    async def reset_since(self, conn: Connection, reservation: JobReservation) -> bool:
        """A moderator reset the reservation's period after it was made."""
        row = await self._db.fetch_one_in(
            conn,
            """SELECT 1 FROM credit_ledger
               WHERE guild_id = ? AND user_id = ? AND id > ? AND kind = 'reset' AND period = ? LIMIT 1""",
            (reservation.guild_id, reservation.user_id, reservation.ledger_id, reservation.period),
        )
        return row is not None

    async def ledger(self, guild_id: int, user_id: int, *, limit: int = 20) -> list[LedgerEntry]:
        """The member's credit changes in this scope, newest first."""
        rows = await self._db.fetch_all(
            """SELECT id, guild_id, user_id, job_id, kind, period, period_delta, bonus_delta, actor_id, reason,
                      created_at, entitlement_id
               FROM credit_ledger WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?""",
            (guild_id, user_id, limit),
        )
        return [LedgerEntry(**dict(row)) for row in rows]

    async def purchases(self, user_id: int, *, limit: int = 20) -> list[LedgerEntry]:
        """The user's settled credit packs, newest first."""
        rows = await self._db.fetch_all(
            """SELECT id, guild_id, user_id, job_id, kind, period, period_delta, bonus_delta, actor_id, reason,
                      created_at, entitlement_id
               FROM credit_ledger WHERE user_id = ? AND kind = 'purchase' ORDER BY id DESC LIMIT ?""",
            (user_id, limit),
        )
        return [LedgerEntry(**dict(row)) for row in rows]

    async def purchase(self, entitlement_id: int) -> LedgerEntry | None:
        """The purchase row that settled an entitlement, if any."""
        row = await self._db.fetch_one(
            """SELECT id, guild_id, user_id, job_id, kind, period, period_delta, bonus_delta, actor_id, reason,
                      created_at, entitlement_id
               FROM credit_ledger WHERE entitlement_id = ?""",
            (entitlement_id,),
        )
        return LedgerEntry(**dict(row)) if row is not None else None
