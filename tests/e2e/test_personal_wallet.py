"""The personal wallet end to end through the real discord.py client: DMs and servers where only the user
installed the app draw on it, servers that installed the bot use their own credits, and /quota says which."""

from __future__ import annotations

from tests.e2e.commands_support import ack_text, run
from tests.e2e.harness import bot_running, delivered, e2e_settings, latest_job_id
from tests.e2e.moderation_support import command
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers._server import Outcome

GUILD = 1_200_000_000_000_000_200
USER = 1_200_000_000_000_000_100


async def _wallets(bot, job_id: int) -> set[int]:
    rows = await bot.services.database.fetch_all("SELECT guild_id FROM credit_ledger WHERE job_id = ?", (job_id,))
    return {int(row["guild_id"]) for row in rows}


def _user_installed_channel(fake: FakeDiscord) -> tuple[int, int]:
    guild = fake.add_guild("Elsewhere", bot_member=False)
    channel = fake.add_channel(guild.id, "art", bot_access=False)
    return guild.id, channel.id


async def test_a_dm_job_draws_on_the_personal_wallet(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, personal_daily_limit=3)  # low after one: a note
    async with bot_running(settings, fake_discord) as bot:
        record, job = await run(fake_discord, bot, "imagine", {"prompt": "a cat"}, guild_id=None)
        receipt = await ack_text(fake_discord, record, contains="✅")
        personal = await bot.services.quota.status(0, USER, ())
        server = await bot.services.quota.status(GUILD, USER, ())
        wallets = await _wallets(bot, job.id)
    assert job.status == "succeeded"
    assert wallets == {0}
    assert (personal.used, personal.limit, personal.limit_source) == (1, 3, "personal")
    assert server.used == 0
    assert "2 credits left in your personal wallet" in receipt


async def test_a_user_installed_app_in_a_server_without_the_bot_draws_on_the_personal_wallet(fake_discord, settings):
    guild_id, channel_id = _user_installed_channel(fake_discord)
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(fake_discord, bot, "imagine", {"prompt": "a cat"}, channel_id=channel_id)
        _, quota = await command(fake_discord, "quota", channel_id=channel_id)
        elsewhere = await bot.services.quota.status(guild_id, USER, ())
        personal = await bot.services.quota.status(0, USER, ())
        wallets = await _wallets(bot, job.id)
    assert job.status == "succeeded"
    assert job.guild_id == guild_id  # the job is in that server; its credits are the user's own
    assert wallets == {0}
    assert (personal.used, elsewhere.used) == (1, 0)
    assert "Your personal wallet" in quota
    assert "Jobs you start here use your personal wallet" in quota


async def test_a_server_that_installed_the_bot_uses_its_own_rules(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        await bot.services.quota.set_server_default(GUILD, 7, actor_id=1)
        _, job = await run(fake_discord, bot, "imagine", {"prompt": "a cat"})
        _, quota = await command(fake_discord, "quota")
        personal = await bot.services.quota.status(0, USER, ())
        wallets = await _wallets(bot, job.id)
    assert wallets == {GUILD}
    assert personal.used == 0
    assert "Your credits in this server" in quota
    assert "6 credits left" in quota
    assert "7 credits: this server's default" in quota
    assert "Jobs you start here use this server's credits" in quota
    assert "Personal wallet" in quota
    assert "25 credits left today (0 of 25 used)" in quota


async def test_the_engine_refunds_a_failed_job_to_the_personal_wallet_that_paid(fake_discord, fakes, settings):
    fakes.wavespeed.next_outcome(Outcome(success=False, failure=1200))
    _, channel_id = _user_installed_channel(fake_discord)
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a fox"}, channel_id=channel_id))
        job = await delivered(bot, await latest_job_id(bot))
        rows = await bot.services.database.fetch_all(
            "SELECT kind, guild_id, period_delta FROM credit_ledger WHERE job_id = ? ORDER BY id", (job.id,)
        )
        personal = await bot.services.quota.status(0, USER, ())
    assert job.status == "failed"
    assert [tuple(row) for row in rows] == [("reserve", 0, 1), ("refund", 0, -1)]
    assert personal.used == 0


async def test_help_says_which_wallet_pays(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, credit_packs={4242: 100})
    _, channel_id = _user_installed_channel(fake_discord)
    async with bot_running(settings, fake_discord):
        _, in_dm = await command(fake_discord, "help", guild_id=None)
        _, elsewhere = await command(fake_discord, "help", channel_id=channel_id)
        _, in_server = await command(fake_discord, "help")
    for personal in (in_dm, elsewhere):
        assert "counted in your personal wallet" in personal
        assert "Bonus credits (from credit packs)" in personal
    assert "counted in each server that installed the bot" in in_server
    assert "Bonus credits (from moderators)" in in_server
