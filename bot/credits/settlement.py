"""A job's credits, settled inside the job engine's transactions: reserve when the job is inserted, then exactly
one of commit (spent) or refund (given back).

Every write that spends credits is a guarded single statement run inside the caller's write transaction, so the
rules hold on SQLite (``BEGIN IMMEDIATE``) and on a database that runs transactions concurrently. Per user and
scope, the ledger's ``period_delta`` for a period sums to that period's used credits, and its ``bonus_delta`` to
the bonus balance.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from bot.credits.rules import CreditRules
from bot.credits.types import Reservation
from bot.storage.credits import CreditRepository, NewLedgerEntry
from bot.storage.database import Connection, Database

log = logging.getLogger(__name__)


class Settlement:
    def __init__(self, database: Database, rules: CreditRules) -> None:
        self._credits = CreditRepository(database)
        self._rules = rules

    async def reserve(
        self,
        conn: Connection,
        *,
        job_id: int,
        guild_id: int,
        user_id: int,
        role_ids: Collection[int],
        cost: int,
        now: float,
        new_job: bool = False,
    ) -> Reservation:
        """Take ``cost`` credits for ``job_id`` (period credits first, then bonus) or refuse.

        Call it in the transaction that inserted the job, and let a refusal roll that transaction back. A job
        that already has a reservation gets it back without a second charge (``new_job``: it was inserted in this
        transaction, so it has none; the ledger's unique row still refuses a second one).
        """
        if cost < 0:
            raise ValueError(f"cost must be >= 0, got {cost}")
        rules = await self._rules.member_rules(guild_id, user_id, role_ids, conn=conn)
        existing = None if new_job else await self._credits.reservation(conn, job_id)
        if existing is not None:
            return Reservation(
                job_id=job_id,
                guild_id=existing.guild_id,
                user_id=existing.user_id,
                period=existing.period,
                from_period=existing.from_period,
                from_bonus=existing.from_bonus,
                limit=rules.limit,
                used_after=await self._credits.used(existing.guild_id, existing.user_id, existing.period, conn=conn),
                bonus_after=await self._credits.bonus(existing.guild_id, existing.user_id, conn=conn),
            )
        plan = await self._rules.plan(
            rules, guild_id=guild_id, user_id=user_id, cost=cost, now=now, except_job_id=job_id, conn=conn
        )
        used_after, bonus_after = plan.used, plan.bonus
        if plan.from_period:
            used = await self._credits.use(conn, guild_id, user_id, plan.period, plan.from_period, limit=rules.limit)
            if used is None:
                raise plan.refusal
            used_after = used
        if plan.from_bonus:
            bonus = await self._credits.spend_bonus(conn, guild_id, user_id, plan.from_bonus)
            if bonus is None:
                raise plan.refusal
            bonus_after = bonus
        entry = NewLedgerEntry(
            guild_id=guild_id,
            user_id=user_id,
            kind="reserve",
            created_at=now,
            job_id=job_id,
            period=plan.period,
            period_delta=plan.from_period,
            bonus_delta=-plan.from_bonus,
        )
        if not await self._credits.append(conn, entry):
            raise RuntimeError(f"job {job_id} was reserved concurrently")
        return Reservation(
            job_id=job_id,
            guild_id=guild_id,
            user_id=user_id,
            period=plan.period,
            from_period=plan.from_period,
            from_bonus=plan.from_bonus,
            limit=rules.limit,
            used_after=used_after,
            bonus_after=bonus_after,
        )

    async def commit(self, conn: Connection, *, job_id: int, now: float) -> bool:
        """Settle the job's reservation as spent. False if it was already committed or refunded (or never reserved)."""
        if await self._credits.append_commit(conn, job_id, now):
            return True
        if await self._credits.reservation(conn, job_id) is None:
            log.warning("commit of job %s, which has no credit reservation", job_id)
        return False

    async def refund(self, conn: Connection, *, job_id: int, now: float) -> bool:
        """Give the job's reserved credits back: the period part to the period it came from, the bonus part to the
        bonus balance. False if already settled.

        A moderator reset of that period after the reservation already forgave its period part (used went to 0),
        so only the bonus part comes back then: giving the period part back too would hand it out twice."""
        reserve = await self._credits.reservation(conn, job_id)
        if reserve is None:
            log.warning("refund of job %s, which has no credit reservation", job_id)
            return False
        if await self._credits.is_settled(conn, job_id):
            return False
        guild_id, user_id, period = reserve.guild_id, reserve.user_id, reserve.period
        forgiven = await self._credits.reset_since(conn, reserve)
        used = await self._credits.used(guild_id, user_id, period, conn=conn)
        period_back = 0 if forgiven else min(reserve.from_period, used)
        bonus_back = reserve.from_bonus
        entry = NewLedgerEntry(
            guild_id=guild_id,
            user_id=user_id,
            kind="refund",
            created_at=now,
            job_id=job_id,
            period=period,
            period_delta=-period_back,
            bonus_delta=bonus_back,
        )
        if not await self._credits.append(conn, entry):
            return False
        if period_back:
            await self._credits.give_back(conn, guild_id, user_id, period, period_back)
        if bonus_back:
            await self._credits.add_bonus(conn, guild_id, user_id, bonus_back)
        return True
