"""The quota rules: which limit applies, bonus after period credits, bans, the running-jobs cap, periods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.credits.service import QuotaService
from bot.errors import NotAllowed, QuotaExceeded
from bot.server_settings.service import ServerSettingsService
from tests.fakes.clock import ManualClock
from tests.quota.helpers import Jobs, bonus, insert_job, ledger_kinds, make_settings, used

MOD = 900
G, U = 1, 100


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def test_limit_resolution_order(service, db):
    roles = (11, 12, 13)

    async def current():
        status = await service.status(G, U, roles)
        return status.limit, status.limit_source

    assert await current() == (10, "default")  # settings.daily_credits
    await service.set_server_default(G, 20, actor_id=MOD)
    assert await current() == (20, "server")
    await service.set_role_limit(G, 11, 5, actor_id=MOD)
    await service.set_role_limit(G, 12, 40, actor_id=MOD)
    await service.set_role_limit(G, 99, 500, actor_id=MOD)  # a role the member does not have
    assert await current() == (40, "role")  # the highest of the member's roles, even below the server default
    await service.set_role_limit(G, 12, None, actor_id=MOD)
    assert await current() == (5, "role")
    await service.set_member_limit(G, U, 2, actor_id=MOD)
    assert await current() == (2, "member")
    await service.set_member_limit(G, U, 0, actor_id=MOD)
    assert await current() == (0, "member")  # 0 is a limit, not "unset"
    await service.set_member_limit(G, U, None, actor_id=MOD)
    assert await current() == (5, "role")
    assert (await service.status(G, U, ())).limit_source == "server"
    await service.set_server_default(G, None, actor_id=MOD)
    assert (await service.status(G, U, ())).limit == 10
    # a role limit of the same role id in another server does not apply here
    await service.set_role_limit(2, 13, 77, actor_id=MOD)
    assert await current() == (5, "role")


async def test_the_limit_in_force_is_what_reserve_enforces(make_service, db, clock):
    service = make_service(daily_credits=3, max_running_jobs_per_user=100)
    jobs = Jobs(db, service, clock)
    await service.set_role_limit(G, 7, 5, actor_id=MOD)
    for _ in range(5):
        reservation = await jobs.start(role_ids=(7,))
        assert reservation.limit == 5
    with pytest.raises(QuotaExceeded):
        await jobs.start(role_ids=(7,))
    with pytest.raises(QuotaExceeded):
        await jobs.start()  # without the role the default 3 applies and is spent


async def test_bonus_is_spent_after_the_period_credits(make_service, db, clock):
    service = make_service(daily_credits=3, max_running_jobs_per_user=100)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 4, actor_id=MOD)
    first = await jobs.start(cost=2)
    assert (first.from_period, first.from_bonus, first.used_after, first.bonus_after) == (2, 0, 2, 4)
    second = await jobs.start(cost=3)  # 1 period credit left, 2 from bonus
    assert (second.from_period, second.from_bonus, second.used_after, second.bonus_after) == (1, 2, 3, 2)
    third = await jobs.start(cost=2)
    assert (third.from_period, third.from_bonus, third.bonus_after) == (0, 2, 0)
    with pytest.raises(QuotaExceeded):
        await jobs.start(cost=1)
    status = await service.status(G, U, ())
    assert (status.used, status.left, status.bonus) == (3, 0, 0)


async def test_not_enough_credits_says_what_is_left_the_cost_and_when_it_resets(make_service, db, clock):
    service = make_service(daily_credits=3, quota_reset_hour_utc=6)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 1, actor_id=MOD)
    await jobs.start(cost=2)
    with pytest.raises(QuotaExceeded) as refused:
        await jobs.start(cost=10)
    message = refused.value.user_message
    assert "this costs 10 credits" in message
    assert "1 credit left today" in message
    assert "1 bonus credit" in message
    assert f"<t:{int(at('2026-11-22T06:00:00'))}:R>" in message
    # the refusal rolled back the whole transaction: no job row, no charge, no ledger row
    assert await db.fetch_value("SELECT COUNT(*) FROM jobs") == 1
    assert await used(db, G, U, "2026-11-21") == 2
    assert await bonus(db, G, U) == 1
    assert await db.fetch_value("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'reserve'") == 1


async def test_cost_zero_reserves_nothing_but_writes_the_reserve_row(service, db, jobs):
    await service.set_member_limit(G, U, 0, actor_id=MOD)
    reservation = await jobs.start(cost=0)
    assert (reservation.from_period, reservation.from_bonus, reservation.used_after) == (0, 0, 0)
    assert await ledger_kinds(db, reservation.job_id) == ["reserve"]
    with pytest.raises(QuotaExceeded):
        await jobs.start(cost=1)


async def test_banned_members_are_refused_with_the_reason(service, db, jobs):
    await service.ban(G, U, actor_id=MOD, reason="spamming the channel")
    with pytest.raises(NotAllowed) as refused:
        await jobs.start()
    assert "banned" in refused.value.user_message
    assert "Reason: spamming the channel" in refused.value.user_message
    assert await db.fetch_value("SELECT COUNT(*) FROM jobs") == 0
    status = await service.status(G, U, ())
    assert status.banned
    assert status.ban_reason == "spamming the channel"
    await jobs.start(guild_id=2)  # a ban is per server
    await service.ban(G, 101, actor_id=MOD)
    with pytest.raises(NotAllowed) as no_reason:
        await jobs.start(user_id=101)
    assert "Reason" not in no_reason.value.user_message
    assert await service.unban(G, U, actor_id=MOD)
    assert not await service.unban(G, U, actor_id=MOD)
    await jobs.start()


async def test_at_most_n_active_jobs_across_all_scopes(make_service, db, clock):
    service = make_service(max_running_jobs_per_user=3, daily_credits=100)
    jobs = Jobs(db, service, clock)
    first = await jobs.start(guild_id=1)
    await jobs.start(guild_id=2)
    await jobs.start(guild_id=0)
    with pytest.raises(QuotaExceeded) as refused:
        await jobs.start(guild_id=3)
    assert "3 jobs queued or running" in refused.value.user_message
    assert "limit is 3" in refused.value.user_message
    await jobs.start(user_id=101)  # another user is not affected
    assert (await service.status(1, U, ())).active_jobs == 3
    await jobs.finish(first.job_id)
    await jobs.start(guild_id=3)
    async with db.transaction() as conn:  # submitting and running count, finished ones do not
        await conn.execute("UPDATE jobs SET status = 'running' WHERE user_id = ? AND guild_id = 2", (U,))
        await conn.execute("UPDATE jobs SET status = 'submitting' WHERE user_id = ? AND guild_id = 0", (U,))
    with pytest.raises(QuotaExceeded):
        await jobs.start(guild_id=1)


async def test_the_job_being_reserved_is_not_counted(make_service, db, clock):
    service = make_service(max_running_jobs_per_user=1)
    async with db.transaction() as conn:
        job_id = await insert_job(conn, user_id=U, guild_id=G, status="queued")
        await service.reserve(conn, job_id=job_id, guild_id=G, user_id=U, role_ids=(), cost=1, now=clock())


async def test_reserving_the_same_job_twice_charges_once(service, db, clock):
    async with db.transaction() as conn:
        job_id = await insert_job(conn, user_id=U, guild_id=G, cost=2)
        first = await service.reserve(conn, job_id=job_id, guild_id=G, user_id=U, role_ids=(), cost=2, now=clock())
    async with db.transaction() as conn:
        again = await service.reserve(conn, job_id=job_id, guild_id=G, user_id=U, role_ids=(), cost=2, now=clock())
    assert (again.from_period, again.used_after) == (first.from_period, 2)
    assert await used(db, G, U, "2026-11-21") == 2
    assert await ledger_kinds(db, job_id) == ["reserve"]


@pytest.mark.parametrize(
    ("hour", "moment", "period", "resets"),
    [
        (0, "2026-11-21T00:00:00", "2026-11-21", "2026-11-22T00:00:00"),
        (0, "2026-11-21T23:59:59", "2026-11-21", "2026-11-22T00:00:00"),
        (6, "2026-11-21T05:59:59", "2026-11-20", "2026-11-21T06:00:00"),
        (6, "2026-11-21T06:00:00", "2026-11-21", "2026-11-22T06:00:00"),
        (6, "2026-11-22T05:59:59.5", "2026-11-21", "2026-11-22T06:00:00"),
        (23, "2027-01-01T22:00:00", "2026-12-31", "2027-01-01T23:00:00"),
        (23, "2028-02-29T23:00:00", "2028-02-29", "2028-03-01T23:00:00"),
    ],
)
def test_periods_around_the_reset_hour(hour, moment, period, resets, db):
    service = QuotaService(db, make_settings(quota_reset_hour_utc=hour), ServerSettingsService(db))
    assert service.period_at(at(moment)) == period
    assert service.next_reset(at(moment)) == at(resets)


async def test_credits_come_back_at_the_reset_hour(db):
    clock = ManualClock(at("2026-11-21T05:59:00"))
    service = QuotaService(
        db, make_settings(quota_reset_hour_utc=6, daily_credits=2), ServerSettingsService(db, clock=clock), clock=clock
    )
    jobs = Jobs(db, service, clock)
    await jobs.start(cost=2)
    with pytest.raises(QuotaExceeded):
        await jobs.start(cost=1)
    status = await service.status(G, U, ())
    assert (status.period, status.left, status.resets_at) == ("2026-11-20", 0, at("2026-11-21T06:00:00"))
    clock.advance(60)  # 06:00:00 exactly: a new period
    reservation = await jobs.start(cost=1)
    assert (reservation.period, reservation.used_after) == ("2026-11-21", 1)
    assert await used(db, G, U, "2026-11-20") == 2
    status = await service.status(G, U, ())
    assert (status.period, status.used, status.left) == ("2026-11-21", 1, 1)
