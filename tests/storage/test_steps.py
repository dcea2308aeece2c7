"""The steps repository on both stores: leases, the fence, the submit capacity, and claims that several
processes (here: several pools on one database) make at once, each step to exactly one of them."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.storage.database import Database
from bot.storage.steps import OWN_LEASE_GRACE, LeaseLost, StepRepository
from tests.quota.helpers import T0, insert_job

LEASE = 30.0


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


async def add_steps(db: Database, count: int, *, lane: str = "poll", kind: str = "poll", status: str = "running"):
    steps = StepRepository(db)
    async with db.transaction() as conn:
        for n in range(count):
            job_id = await insert_job(conn, user_id=100 + n, guild_id=1, status=status)
            await steps.put(conn, job_id, kind, lane, due_at=T0 + n * 0.001, now=T0)


async def test_a_claimed_step_is_fenced_and_comes_back_when_its_lease_expires(db):
    steps = StepRepository(db)
    await add_steps(db, 3)
    first = await steps.claim("poll", owner="a", now=T0 + 1, lease_s=LEASE, limit=2)
    assert len(first) == 2
    assert await steps.claim("poll", owner="b", now=T0 + 1, lease_s=LEASE, limit=5) != []  # only the third
    assert await steps.claim("poll", owner="b", now=T0 + 2, lease_s=LEASE, limit=5) == []
    taken = await steps.claim("poll", owner="b", now=T0 + 1 + LEASE, lease_s=LEASE, limit=5)
    assert {lease.step_id for lease in first} <= {lease.step_id for lease in taken}
    old = first[0]
    with pytest.raises(LeaseLost):
        async with db.transaction() as conn:
            await steps.hold(conn, old)
    assert await steps.complete_one(old) is False
    new = next(lease for lease in taken if lease.step_id == old.step_id)
    assert new.fence == old.fence + 1
    assert await steps.release_one(new, due_at=T0 + 100, attempts=1) is True
    assert await steps.next_due("poll") is not None
    assert await steps.renew("b", [lease.step_id for lease in taken], now=T0 + 2 + LEASE, lease_s=LEASE) >= 1
    assert await steps.release_all("b") >= 1
    assert await steps.count() == 3


async def test_a_lease_renewed_late_stays_with_its_live_process(db):
    """An overloaded process renews late: its lease ran out, but nobody took the step, so the renewal still holds
    it; its own claims leave such a step to its running handler for OWN_LEASE_GRACE leases (another process may
    take it over at once, and the process itself once the grace is over: a handler that died)."""
    steps = StepRepository(db)
    await add_steps(db, 2)
    held = await steps.claim("poll", owner="a", now=T0 + 1, lease_s=LEASE, limit=2)
    late = T0 + 1 + LEASE + 5
    assert await steps.claim("poll", owner="a", now=late, lease_s=LEASE, limit=5) == []
    assert await steps.renew("a", [held[0].step_id], now=late, lease_s=LEASE) == 1  # ran out, still its own
    async with db.transaction() as conn:
        await steps.hold(conn, held[0])  # the fence did not move: its handler's writes still count
    other = await steps.claim("poll", owner="b", now=late, lease_s=LEASE, limit=5)
    assert [lease.step_id for lease in other] == [held[1].step_id]  # not renewed: another process takes it
    renewed_until = late + LEASE
    grace_over = renewed_until + OWN_LEASE_GRACE * LEASE  # its handler died: the process takes the step up again
    before = await steps.claim("poll", owner="a", now=grace_over - 1, lease_s=LEASE, limit=5)
    assert held[0].step_id not in {lease.step_id for lease in before}
    after = await steps.claim("poll", owner="a", now=grace_over, lease_s=LEASE, limit=5)
    assert [lease.step_id for lease in after] == [held[0].step_id]


async def test_a_submit_lane_claims_no_more_than_the_providers_free_slots(db):
    steps = StepRepository(db)
    await add_steps(db, 5, lane="submit:wavespeed", kind="submit", status="queued")
    claimed = await steps.claim(
        "submit:wavespeed", owner="a", now=T0 + 1, lease_s=LEASE, limit=10, capacity=("wavespeed", 2)
    )
    assert len(claimed) == 2
    for lease in claimed:
        async with db.transaction() as conn:
            await steps.complete(conn, lease)  # submitting now, until they finish
    again = await steps.claim(
        "submit:wavespeed", owner="b", now=T0 + 1, lease_s=LEASE, limit=10, capacity=("wavespeed", 2)
    )
    assert again == []
    statuses = Counter(r[0] for r in await db.fetch_all("SELECT status FROM jobs"))
    assert statuses == Counter(queued=3, submitting=2)


@pytest.mark.postgres
async def test_many_pools_claiming_at_once_take_each_step_exactly_once(pg_url):
    async with Database(pg_url) as db:
        await add_steps(db, 300)
    pools = [await Database(pg_url, pool_size=4).open() for _ in range(4)]
    try:

        async def worker(db: Database, name: str) -> list[int]:
            steps, got = StepRepository(db), []
            while True:
                leases = await steps.claim("poll", owner=name, now=T0 + 1, lease_s=LEASE, limit=7)
                if not leases:
                    return got
                got += [lease.step_id for lease in leases]

        results = await asyncio.gather(*(worker(db, f"p{i}-{j}") for i, db in enumerate(pools) for j in range(3)))
    finally:
        for db in pools:
            await db.close()
    every = [step for result in results for step in result]
    assert len(every) == 300
    assert len(set(every)) == 300
    assert sum(1 for result in results if result) > 1  # they really shared the work


@pytest.mark.postgres
async def test_submit_capacity_holds_across_processes_claiming_at_once(pg_url):
    async with Database(pg_url) as db:
        await add_steps(db, 40, lane="submit:wavespeed", kind="submit", status="queued")
    pools = [await Database(pg_url, pool_size=3).open() for _ in range(4)]
    try:

        async def claim(db: Database, name: str) -> int:
            leases = await StepRepository(db).claim(
                "submit:wavespeed", owner=name, now=T0 + 1, lease_s=LEASE, limit=5, capacity=("wavespeed", 6)
            )
            return len(leases)

        counts = await asyncio.gather(*(claim(db, f"p{i}-{j}") for i, db in enumerate(pools) for j in range(3)))
        assert sum(counts) == 6
        assert await pools[0].fetch_value("SELECT COUNT(*) FROM jobs WHERE status = 'submitting'") == 6
    finally:
        for db in pools:
            await db.close()


async def test_a_send_asked_for_while_the_step_is_held_is_kept_when_the_holder_finishes(db):
    """A final result (or a Refresh) wanted while a progress edit is on its way: the holder's completion hands the
    step back, due when it was asked for, instead of deleting the request with it."""
    steps = StepRepository(db)
    await add_steps(db, 1, lane="discord", kind="message")
    (lease,) = await steps.claim("discord", owner="a", now=T0 + 1, lease_s=LEASE, limit=1)
    async with db.transaction() as conn:
        await steps.want(conn, lease.job_id, "message", "discord", due_at=T0 + 2, now=T0 + 2, priority=1)
    assert await steps.complete_one(lease) is True
    (again,) = await steps.claim("discord", owner="a", now=T0 + 2, lease_s=LEASE, limit=1)
    assert again.job_id == lease.job_id

    async with db.transaction() as conn:  # a holder that hands back for later keeps a sooner request too
        await steps.want(conn, again.job_id, "message", "discord", due_at=T0 + 3, now=T0 + 3, priority=1)
    assert await steps.release_one(again, due_at=T0 + 60) is True
    assert await steps.next_due("discord") == T0 + 3

    (last,) = await steps.claim("discord", owner="a", now=T0 + 3, lease_s=LEASE, limit=1)
    assert await steps.complete_one(last) is True  # nothing asked for meanwhile: done
    assert await steps.count() == 0
