"""Commit and refund: each job is settled exactly once, and a refund goes back where the credits came from."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import QuotaExceeded
from tests.quota.helpers import Jobs, bonus, insert_job, ledger_kinds, used

MOD = 900
G, U = 1, 100
TODAY = "2026-11-21"


async def ledger_count(db) -> int:
    return int(await db.fetch_value("SELECT COUNT(*) FROM credit_ledger"))


@pytest.mark.parametrize("first_ok", [True, False])
@pytest.mark.parametrize("second_ok", [True, False])
async def test_a_job_is_settled_exactly_once(service, db, jobs, first_ok, second_ok):
    reservation = await jobs.start(cost=3)
    assert await jobs.finish(reservation.job_id, ok=first_ok) is True
    rows, spent = await ledger_count(db), await used(db, G, U, TODAY)
    assert await jobs.finish(reservation.job_id, ok=second_ok) is False
    assert await ledger_count(db) == rows
    assert await used(db, G, U, TODAY) == spent == (3 if first_ok else 0)
    assert await ledger_kinds(db, reservation.job_id) == ["reserve", "commit" if first_ok else "refund"]


async def test_commit_changes_no_balance(service, db, jobs):
    reservation = await jobs.start(cost=2)
    await jobs.finish(reservation.job_id)
    [commit, reserve] = await service.ledger(G, U)
    assert (commit.kind, commit.period, commit.period_delta, commit.bonus_delta) == ("commit", TODAY, 0, 0)
    assert (reserve.kind, reserve.period_delta, reserve.job_id) == ("reserve", 2, reservation.job_id)
    assert await used(db, G, U, TODAY) == 2


async def test_refund_returns_period_and_bonus_parts(make_service, db, clock):
    service = make_service(daily_credits=2)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 3, actor_id=MOD)
    reservation = await jobs.start(cost=4)
    assert (reservation.from_period, reservation.from_bonus) == (2, 2)
    assert await jobs.finish(reservation.job_id, ok=False)
    assert await used(db, G, U, TODAY) == 0
    assert await bonus(db, G, U) == 3
    [refund, *_] = await service.ledger(G, U)
    assert (refund.kind, refund.period_delta, refund.bonus_delta) == ("refund", -2, 2)


async def test_settling_a_job_without_reservation_returns_false(service, db, clock):
    async with db.transaction() as conn:
        job_id = await insert_job(conn, user_id=U, guild_id=G)
        assert await service.commit(conn, job_id=job_id, now=clock()) is False
        assert await service.refund(conn, job_id=job_id, now=clock()) is False
    assert await ledger_count(db) == 0


async def test_concurrent_settlements_settle_once(service, db, jobs):
    reservation = await jobs.start(cost=2)
    results = await asyncio.gather(*(jobs.finish(reservation.job_id, ok=i % 2 == 0) for i in range(20)))
    assert results.count(True) == 1
    assert len(await ledger_kinds(db, reservation.job_id)) == 2


async def test_refund_after_the_period_rolled_over_returns_credits_to_the_old_period(make_service, db, clock):
    service = make_service(daily_credits=5, quota_reset_hour_utc=6)
    jobs = Jobs(db, service, clock)
    clock.now = 1_795_240_740.0  # 2026-11-21 05:59:00 UTC: still the period of 2026-11-20
    old = await jobs.start(cost=3)
    assert old.period == "2026-11-20"
    clock.advance(120)
    new = await jobs.start(cost=1)
    assert new.period == "2026-11-21"
    assert await jobs.finish(old.job_id, ok=False)
    assert await used(db, G, U, "2026-11-20") == 0
    assert await used(db, G, U, "2026-11-21") == 1
    [refund, *_] = await service.ledger(G, U)
    assert (refund.period, refund.period_delta) == ("2026-11-20", -3)
    assert (await service.status(G, U, ())).left == 4


async def test_refunds_after_a_moderator_reset_return_only_what_the_reset_did_not(make_service, db, clock):
    service = make_service(daily_credits=5)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 2, actor_id=MOD)
    first = await jobs.start(cost=3)
    second = await jobs.start(cost=4)  # 2 period + 2 bonus
    await service.reset(G, U, actor_id=MOD)
    third = await jobs.start(cost=1)
    assert await jobs.finish(first.job_id, ok=False)  # the reset forgave its 3: the third job's 1 stays charged
    assert await used(db, G, U, TODAY) == 1
    assert await jobs.finish(second.job_id, ok=False)
    assert await used(db, G, U, TODAY) == 1
    assert await bonus(db, G, U) == 2  # the bonus part is always returned
    assert await jobs.finish(third.job_id, ok=False) is True
    assert await used(db, G, U, TODAY) == 0
    deltas = await db.fetch_all(
        "SELECT kind, period_delta, bonus_delta FROM credit_ledger WHERE kind IN ('reset', 'refund') ORDER BY id"
    )
    assert [tuple(r) for r in deltas] == [("reset", -5, 0), ("refund", 0, 0), ("refund", 0, 2), ("refund", -1, 0)]
    period_sum = await db.fetch_value("SELECT SUM(period_delta) FROM credit_ledger WHERE period = ?", (TODAY,))
    bonus_sum = await db.fetch_value("SELECT SUM(bonus_delta) FROM credit_ledger")
    assert (period_sum, bonus_sum) == (0, 2)


async def test_a_refund_after_a_reset_does_not_give_the_period_credits_back_twice(make_service, db, clock):
    service = make_service(daily_credits=10)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 2, actor_id=MOD)
    a = await jobs.start(cost=3)
    await service.reset(G, U, actor_id=MOD)  # used 3 → 0: A's 3 credits are already forgiven
    b = await jobs.start(cost=12)
    assert (b.from_period, b.from_bonus) == (10, 2)
    assert await jobs.finish(a.job_id, ok=False)
    assert await used(db, G, U, TODAY) == 10  # B's charge stands: 10 spent after the reset, not 7
    [refund, *_] = await service.ledger(G, U)
    assert (refund.kind, refund.job_id, refund.period_delta, refund.bonus_delta) == ("refund", a.job_id, 0, 0)
    with pytest.raises(QuotaExceeded):
        await jobs.start(cost=1)
    assert await jobs.finish(b.job_id, ok=False)  # B was reserved after the reset: it gets everything back
    assert (await used(db, G, U, TODAY), await bonus(db, G, U)) == (0, 2)
    sums = await db.fetch_one(
        "SELECT SUM(period_delta), SUM(bonus_delta) FROM credit_ledger WHERE guild_id = ? AND user_id = ?", (G, U)
    )
    assert tuple(sums) == (0, 2)  # the ledger still adds up to the balances


async def test_a_refund_after_a_reset_still_returns_the_bonus_part(make_service, db, clock):
    service = make_service(daily_credits=2)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 3, actor_id=MOD)
    a = await jobs.start(cost=4)
    assert (a.from_period, a.from_bonus) == (2, 2)
    await service.reset(G, U, actor_id=MOD)
    assert await jobs.finish(a.job_id, ok=False)
    assert (await used(db, G, U, TODAY), await bonus(db, G, U)) == (0, 3)
    [refund, *_] = await service.ledger(G, U)
    assert (refund.period_delta, refund.bonus_delta) == (0, 2)


async def test_a_reset_of_another_period_or_member_does_not_stop_a_refund(make_service, db, clock):
    service = make_service(daily_credits=5)
    jobs = Jobs(db, service, clock)
    a = await jobs.start(cost=3)
    await jobs.start(user_id=U + 1, cost=2)
    await service.reset(G, U + 1, actor_id=MOD)  # another member
    await service.reset(G + 1, U, actor_id=MOD)  # another server
    assert await jobs.finish(a.job_id, ok=False)
    assert await used(db, G, U, TODAY) == 0
