"""QuotaService.check: the read-only pre-check the job engine runs before it downloads and stores inputs. It refuses
what reserve would refuse, with the same errors, and writes nothing. And the running-jobs count uses its index."""

from __future__ import annotations

import pytest

from bot.errors import NotAllowed, OutOfCredits, QuotaExceeded
from bot.storage.jobs import ACTIVE_JOBS_SQL
from tests.quota.helpers import Jobs, insert_job

MOD = 900
G, U = 1, 100


async def snapshot(db) -> tuple[int, ...]:
    """Row counts of every table check could write to, and the credit balances."""
    counts = [
        int(await db.fetch_value(f"SELECT COUNT(*) FROM {table}"))
        for table in ("jobs", "credit_usage", "credit_bonus", "credit_ledger", "audit_log")
    ]
    used = await db.fetch_value("SELECT COALESCE(SUM(used), 0) FROM credit_usage")
    balance = await db.fetch_value("SELECT COALESCE(SUM(balance), 0) FROM credit_bonus")
    return (*counts, int(used), int(balance))


async def refusal_of_reserve(jobs: Jobs, cost: int) -> Exception:
    try:
        await jobs.start(cost=cost)
    except (NotAllowed, QuotaExceeded) as exc:
        return exc
    raise AssertionError("reserve did not refuse")


async def test_check_passes_what_reserve_would_take_and_writes_nothing(make_service, db, clock):
    service = make_service(daily_credits=3)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 2, actor_id=MOD)
    before = await snapshot(db)
    await service.check(G, U, (), 5)  # 3 period credits + 2 bonus
    await service.check(G, U, (), 0)
    assert await snapshot(db) == before
    await jobs.start(cost=5)  # reserve agrees


@pytest.mark.parametrize("cost", [5, 9])
async def test_check_refuses_not_enough_credits_like_reserve(make_service, db, clock, cost):
    service = make_service(daily_credits=3)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 2, actor_id=MOD)
    await jobs.start(cost=1)
    before = await snapshot(db)
    with pytest.raises(QuotaExceeded) as refused:
        await service.check(G, U, (), cost)
    assert await snapshot(db) == before
    reserve_refusal = await refusal_of_reserve(jobs, cost)
    assert type(reserve_refusal) is OutOfCredits
    assert refused.value.user_message == reserve_refusal.user_message


async def test_check_refuses_a_banned_member_like_reserve(service, db, jobs):
    await service.ban(G, U, actor_id=MOD, reason="spam")
    before = await snapshot(db)
    with pytest.raises(NotAllowed) as refused:
        await service.check(G, U, (), 1)
    assert await snapshot(db) == before
    assert "Reason: spam" in refused.value.user_message
    assert refused.value.user_message == (await refusal_of_reserve(jobs, 1)).user_message
    await service.check(G + 1, U, (), 1)  # a ban is per server


async def test_check_refuses_at_the_running_jobs_cap_like_reserve(make_service, db, clock):
    service = make_service(max_running_jobs_per_user=2)
    jobs = Jobs(db, service, clock)
    await jobs.start(cost=1)
    async with db.transaction() as conn:
        await insert_job(conn, user_id=U, guild_id=G + 1, status="running")  # any scope counts
        await insert_job(conn, user_id=U, guild_id=G, status="succeeded")  # finished jobs do not
    before = await snapshot(db)
    with pytest.raises(QuotaExceeded) as refused:
        await service.check(G, U, (), 0)
    assert await snapshot(db) == before
    assert "limit is 2 at a time" in refused.value.user_message
    assert refused.value.user_message == (await refusal_of_reserve(jobs, 0)).user_message


async def test_check_uses_the_members_roles_for_the_limit(service, db):
    await service.set_role_limit(G, 7, 20, actor_id=MOD)
    with pytest.raises(QuotaExceeded):
        await service.check(G, U, (), 15)
    await service.check(G, U, (7,), 15)


async def test_check_rejects_a_negative_cost(service):
    with pytest.raises(ValueError, match="cost"):
        await service.check(G, U, (), -1)


async def test_counting_a_members_active_jobs_uses_the_partial_index(db):
    if db.dialect != "sqlite":
        pytest.skip("SQLite's query planner")
    plan = await db.fetch_all(f"EXPLAIN QUERY PLAN {ACTIVE_JOBS_SQL}", (U, None, None))
    details = " ".join(row["detail"] for row in plan)
    assert "USING INDEX jobs_active_by_user" in details or "USING COVERING INDEX jobs_active_by_user" in details
