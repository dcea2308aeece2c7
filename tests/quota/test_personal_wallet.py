"""The personal wallet (credit scope 0) and credit packs, on both stores: its own daily limit, refunds back to the
wallet that paid, and a pack settled exactly once, also by two processes at once."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from bot.credits.packs import CreditPacks
from bot.credits.wallets import PERSONAL_WALLET, wallet_for
from bot.errors import OutOfCredits
from bot.storage.database import Database
from tests.quota.helpers import bonus, used
from tests.quota.workers import PACK_CREDITS, settle_main

U = 100
SERVER = 1
SKU, OTHER_SKU = 9001, 9002
ENTITLEMENT = 7_000_000_000_000_000_001


def test_the_wallet_follows_the_installation():
    assert wallet_for(SERVER, guild_installed=True) == SERVER
    assert wallet_for(SERVER, guild_installed=False) == PERSONAL_WALLET  # only the user installed the app there
    assert wallet_for(0, guild_installed=True) == PERSONAL_WALLET  # DMs


async def test_the_personal_wallet_has_its_own_daily_limit_and_refunds_go_back_to_it(make_service, db, jobs, clock):
    service = make_service(daily_credits=10, personal_daily_limit=3)
    jobs.service = service
    status = await service.status(PERSONAL_WALLET, U, ())
    assert (status.limit, status.limit_source) == (3, "personal")
    assert (await service.status(SERVER, U, ())).limit == 10

    paid = await jobs.start(guild_id=PERSONAL_WALLET, cost=2)
    await jobs.start(guild_id=SERVER, cost=2)
    period = service.period_at(clock())
    assert await used(db, PERSONAL_WALLET, U, period) == 2
    assert await used(db, SERVER, U, period) == 2
    with pytest.raises(OutOfCredits) as refused:
        await service.check(PERSONAL_WALLET, U, (), 2)
    assert refused.value.personal
    assert "personal wallet" in refused.value.user_message

    assert await jobs.finish(paid.job_id, ok=False)
    assert await used(db, PERSONAL_WALLET, U, period) == 0  # back to the wallet that paid
    assert await used(db, SERVER, U, period) == 2


async def test_a_server_refusal_is_not_a_personal_one(make_service):
    service = make_service(daily_credits=1, credit_packs={SKU: 50})
    with pytest.raises(OutOfCredits) as refused:
        await service.check(SERVER, U, (), 2)
    assert not refused.value.personal
    assert "credit pack" not in refused.value.user_message


async def test_a_pack_adds_bonus_to_the_personal_wallet_once(make_service, db):
    service = make_service(credit_packs={SKU: 50, OTHER_SKU: 200})
    first = await service.packs.settle(entitlement_id=ENTITLEMENT, user_id=U, sku_id=SKU)
    again = await service.packs.settle(entitlement_id=ENTITLEMENT, user_id=U, sku_id=SKU)
    assert (first.credited, again.credited) == (True, False)
    assert await bonus(db, PERSONAL_WALLET, U) == 50
    assert await bonus(db, SERVER, U) == 0
    rows = await service.purchases(U)
    assert [(r.kind, r.bonus_delta, r.entitlement_id, r.guild_id) for r in rows] == [
        ("purchase", 50, ENTITLEMENT, PERSONAL_WALLET)
    ]
    assert await service.packs.settled(ENTITLEMENT)
    # bonus credits are spent after the day's, in the personal wallet
    status = await service.status(PERSONAL_WALLET, U, ())
    assert status.bonus == 50


async def test_two_processes_settling_the_same_entitlement_credit_it_once(database_url, make_service):
    packs = {SKU: 50}
    async with Database(database_url) as one, Database(database_url) as two:
        settlers = [CreditPacks(one, packs), CreditPacks(two, packs)]
        results = await asyncio.gather(
            *[
                settlers[i % 2].settle(entitlement_id=ENTITLEMENT + n // 2, user_id=U, sku_id=SKU)
                for i, n in enumerate(range(20))
            ]
        )
        assert sum(r.credited for r in results) == 10  # ten entitlements, each credited by exactly one call
        assert await bonus(one, PERSONAL_WALLET, U) == 500
        count = await one.fetch_value("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'purchase'")
        assert count == 10


async def test_an_unknown_sku_is_not_settled(make_service):
    service = make_service(credit_packs={SKU: 50})
    assert service.packs.credits_for(OTHER_SKU) is None
    with pytest.raises(ValueError, match="not a credit pack"):
        await service.packs.settle(entitlement_id=ENTITLEMENT, user_id=U, sku_id=OTHER_SKU)
    assert not await service.packs.settled(ENTITLEMENT)


async def test_two_processes_settling_the_same_entitlements_credit_each_once(database_url):
    async with Database(database_url):  # create and migrate once, before the race
        pass
    entitlements = list(range(ENTITLEMENT, ENTITLEMENT + 20))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=settle_main, args=(database_url, entitlements, barrier, results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    try:
        credited = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert sum(credited) == 20, credited  # each entitlement credited by exactly one of the two
    async with Database(database_url) as database:
        assert await bonus(database, PERSONAL_WALLET, U) == 20 * PACK_CREDITS
        rows = await database.fetch_value("SELECT COUNT(DISTINCT entitlement_id) FROM credit_ledger")
        assert rows == await database.fetch_value("SELECT COUNT(*) FROM credit_ledger") == 20
