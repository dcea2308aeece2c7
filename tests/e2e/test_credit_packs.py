"""Credit packs end to end through the real discord.py client: a purchase (ENTITLEMENT_CREATE) adds bonus credits
to the buyer's personal wallet and is consumed; a restart at each point of the settlement credits it exactly once;
an out-of-credits refusal offers Discord's premium purchase buttons when packs are configured."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.app import Bot
from bot.credits import purchases as purchases_module
from bot.credits.packs import CreditPacks
from bot.credits.purchases import Purchases
from tests.e2e.commands_support import ack_text, charges, run
from tests.e2e.harness import bot_running, e2e_settings, eventually
from tests.e2e.moderation_support import command

USER = 1_200_000_000_000_000_100
CONSUME = r"/applications/\d+/entitlements/\d+/consume"


@pytest.fixture
def sku(fake_discord) -> int:
    return fake_discord.add_sku("500 credits")


@pytest.fixture
def pack_settings(tmp_path, fake_discord, fakes, sku):
    return e2e_settings(tmp_path, fake_discord, fakes, credit_packs={sku: 500}, personal_daily_limit=2)


async def purchases(bot) -> list[tuple[int, int, int]]:
    rows = await bot.services.database.fetch_all(
        "SELECT entitlement_id, user_id, bonus_delta FROM credit_ledger WHERE kind = 'purchase' ORDER BY id"
    )
    return [(int(r["entitlement_id"]), int(r["user_id"]), int(r["bonus_delta"])) for r in rows]


async def personal_bonus(bot) -> int:
    return (await bot.services.quota.status(0, USER, ())).bonus


async def test_a_purchase_adds_credits_to_the_personal_wallet_and_is_consumed(fake_discord, pack_settings, sku):
    async with bot_running(pack_settings, fake_discord) as bot:
        entitlement = await fake_discord.purchase(USER, sku)
        entitlement_id = int(entitlement["id"])
        await eventually(lambda: fake_discord.monetization.consumed(entitlement_id))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500
        assert (await bot.services.quota.status(1_200_000_000_000_000_200, USER, ())).bonus == 0
        _, quota = await command(fake_discord, "quota", guild_id=None)
    assert fake_discord.monetization.consume_calls == [entitlement_id]
    assert "500 credits (used after today's, never reset)" in quota
    assert "Credit packs" in quota
    assert "+500 bonus" in quota


async def test_an_unknown_sku_is_logged_and_left_alone(fake_discord, pack_settings, caplog):
    other = fake_discord.add_sku("a durable thing")
    caplog.set_level(logging.WARNING, "bot.credits.purchases")
    async with bot_running(pack_settings, fake_discord) as bot:
        entitlement = await fake_discord.purchase(USER, other)
        await eventually(lambda: "is not a credit pack in CREDIT_PACKS" in caplog.text)
        assert await purchases(bot) == []
    assert not fake_discord.monetization.consumed(int(entitlement["id"]))
    assert fake_discord.monetization.consume_calls == []


async def test_a_purchase_made_while_the_bot_was_down_is_settled_at_start(fake_discord, pack_settings, sku):
    entitlement_id = int(fake_discord.entitle(USER, sku)["id"])  # no process connected: no event reaches the bot
    async with bot_running(pack_settings, fake_discord) as bot:
        await eventually(lambda: fake_discord.monetization.consumed(entitlement_id))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500
    listed = fake_discord.requests_to("GET", r"/applications/\d+/entitlements")
    assert listed
    assert listed[0].query.get("exclude_ended") == "1"
    assert listed[0].query.get("sku_ids") == str(sku)


async def test_a_new_session_looks_for_purchases_missed_while_disconnected(fake_discord, pack_settings, sku):
    async with bot_running(pack_settings, fake_discord) as bot:
        listed = r"/applications/\d+/entitlements"
        await eventually(lambda: fake_discord.requests_to("GET", listed) and not bot._sweeps)  # the start's sweep ended
        entitlement_id = int(fake_discord.entitle(USER, sku)["id"])  # its event was lost with the old session
        await fake_discord.invalidate_session(resumable=False)  # discord.py identifies again: a new READY
        await eventually(lambda: fake_discord.monetization.consumed(entitlement_id))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500
    assert len(fake_discord.requests_to("GET", listed)) == 2


async def test_a_new_session_while_a_sweep_runs_looks_again_once_it_ends(fake_discord, pack_settings, sku, monkeypatch):
    sweep, request_sweep = Purchases.sweep, Bot._sweep_purchases
    gate = asyncio.Event()
    swept: list[int] = []
    requested: list[bool] = []

    async def slow_sweep(self, client):
        consumed = await sweep(self, client)
        swept.append(consumed)
        if len(swept) == 1:  # listed already, still at work (e.g. settling, or paging through past purchases)
            await gate.wait()
        return consumed

    def sweep_requested(self):
        requested.append(True)
        request_sweep(self)

    monkeypatch.setattr(Purchases, "sweep", slow_sweep)
    monkeypatch.setattr(Bot, "_sweep_purchases", sweep_requested)
    async with bot_running(pack_settings, fake_discord) as bot:
        await eventually(lambda: swept)  # the start's sweep has listed (nothing) and is still running
        entitlement_id = int(fake_discord.entitle(USER, sku)["id"])  # its event was lost with the old session
        before = len(requested)
        await fake_discord.invalidate_session(resumable=False)  # a new READY while that sweep runs
        await eventually(lambda: len(requested) > before)
        gate.set()
        await eventually(lambda: fake_discord.monetization.consumed(entitlement_id))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500


async def test_a_crash_before_the_ledger_row_settles_it_once_on_the_next_start(
    fake_discord, pack_settings, sku, monkeypatch
):
    crashed: list[int] = []
    settle = CreditPacks.settle

    async def dies_before_writing(self, *, entitlement_id: int, user_id: int, sku_id: int):
        crashed.append(entitlement_id)
        raise ConnectionError("the process died here")

    monkeypatch.setattr(CreditPacks, "settle", dies_before_writing)
    async with bot_running(pack_settings, fake_discord) as bot:
        entitlement_id = int((await fake_discord.purchase(USER, sku))["id"])
        await eventually(lambda: crashed)
        assert await purchases(bot) == []
    assert not fake_discord.monetization.consumed(entitlement_id)

    monkeypatch.setattr(CreditPacks, "settle", settle)
    async with bot_running(pack_settings, fake_discord) as bot:
        await eventually(lambda: fake_discord.monetization.consumed(entitlement_id))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500
    assert fake_discord.monetization.consume_calls == [entitlement_id]


async def test_a_crash_between_the_ledger_row_and_consume_consumes_it_without_crediting_twice(
    fake_discord, pack_settings, sku, monkeypatch
):
    monkeypatch.setattr(purchases_module, "CONSUME_RETRY_S", ())  # no retry before the "crash" (the bot stops)
    fake_discord.fail_next("POST", CONSUME, status=503)  # the consume never reaches Discord
    async with bot_running(pack_settings, fake_discord) as bot:
        entitlement_id = int((await fake_discord.purchase(USER, sku))["id"])
        await fake_discord.wait_for(lambda r: r.method == "POST" and r.path.endswith("/consume"))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
    assert not fake_discord.monetization.consumed(entitlement_id)

    async with bot_running(pack_settings, fake_discord) as bot:
        await eventually(lambda: fake_discord.monetization.consumed(entitlement_id))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500
        # a redelivered event (Discord still saying unconsumed) settles nothing more
        stale = {**fake_discord.monetization.entitlements[entitlement_id], "consumed": False}
        await fake_discord.dispatch_event("ENTITLEMENT_CREATE", stale)
        await eventually(lambda: len(fake_discord.monetization.consume_calls) == 2)
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500
    assert fake_discord.monetization.consume_calls == [entitlement_id, entitlement_id]


async def test_a_failed_consume_is_retried_while_the_bot_runs(fake_discord, pack_settings, sku, monkeypatch):
    monkeypatch.setattr(purchases_module, "CONSUME_RETRY_S", (0.05, 0.05))
    fake_discord.fail_next("POST", CONSUME, status=503, times=2)
    async with bot_running(pack_settings, fake_discord) as bot:
        entitlement_id = int((await fake_discord.purchase(USER, sku))["id"])
        await eventually(lambda: fake_discord.monetization.consumed(entitlement_id))
        assert await purchases(bot) == [(entitlement_id, USER, 500)]
        assert await personal_bonus(bot) == 500
    tries = [r.status for r in fake_discord.requests if r.method == "POST" and r.path.endswith("/consume")]
    assert tries == [503, 503, 204]


def premium_buttons(request) -> list[dict]:
    rows = (request.json or {}).get("components") or []
    return [c for row in rows for c in row.get("components", []) if c.get("style") == 6]


async def refusal(fake_discord, bot, **context) -> tuple[str, list[dict]]:
    before = await charges(bot)
    record = await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat"}, **context))
    text = await ack_text(fake_discord, record, contains="Not enough credits")
    request = [r for r in fake_discord.requests_for(record.token) if "Not enough credits" in str(r.json)][-1]
    assert await charges(bot) == before
    return text, premium_buttons(request)


async def test_an_out_of_credits_refusal_offers_the_packs(tmp_path, fake_discord, fakes, sku):
    settings = e2e_settings(tmp_path, fake_discord, fakes, credit_packs={sku: 500}, personal_daily_limit=0)
    async with bot_running(settings, fake_discord) as bot:
        text, buttons = await refusal(fake_discord, bot, guild_id=None)
    assert "in your personal wallet" in text
    assert "credit pack" in text
    assert [(b["sku_id"], b.get("label"), b.get("custom_id")) for b in buttons] == [(str(sku), None, None)]
    assert not fake_discord.violations


async def test_no_purchase_button_without_packs_or_for_a_server_wallet(tmp_path, fake_discord, fakes, sku):
    settings = e2e_settings(tmp_path, fake_discord, fakes, personal_daily_limit=0)
    async with bot_running(settings, fake_discord) as bot:
        text, buttons = await refusal(fake_discord, bot, guild_id=None)
    assert buttons == []
    assert "credit pack" not in text

    settings = e2e_settings(tmp_path, fake_discord, fakes, credit_packs={sku: 500}, daily_credits=0)
    async with bot_running(settings, fake_discord) as bot:
        text, buttons = await refusal(fake_discord, bot)  # the server's wallet: a pack would not help here
    assert buttons == []
    assert "credit pack" not in text


async def test_configured_packs_that_are_not_consumable_skus_are_logged_at_start(
    tmp_path, fake_discord, fakes, sku, caplog
):
    subscription = fake_discord.add_sku("monthly", sku_type=5)
    missing = 4242
    packs = {sku: 500, subscription: 100, missing: 10}
    settings = e2e_settings(tmp_path, fake_discord, fakes, credit_packs=packs)
    caplog.set_level(logging.WARNING, "bot.credits.purchases")
    async with bot_running(settings, fake_discord):
        await eventually(lambda: fake_discord.requests_to("GET", r"/applications/\d+/entitlements"))
    assert f"SKU {missing} is not a SKU of this application" in caplog.text
    assert f"SKU {subscription} (monthly) is not a consumable SKU" in caplog.text
    assert f"SKU {sku} " not in caplog.text


async def test_a_reroll_refused_for_credits_offers_the_packs_too(tmp_path, fake_discord, fakes, sku):
    settings = e2e_settings(tmp_path, fake_discord, fakes, credit_packs={sku: 500}, personal_daily_limit=1)
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(fake_discord, bot, "imagine", {"prompt": "a cat"}, guild_id=None)
        before = await charges(bot)
        click = fake_discord.button_click(f"gen:reroll:{job.id}", job.message_id, guild_id=None)
        record = await fake_discord.dispatch(click)
        refusal = await fake_discord.wait_for(
            lambda r: r.interaction_token == record.token and "Not enough credits" in str(r.json)
        )
        assert await charges(bot) == before
    assert [b["sku_id"] for b in premium_buttons(refusal)] == [str(sku)]
