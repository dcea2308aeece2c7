"""/quota end to end: credits used and left in this scope, bonus, the reset time, where the limit comes from, bans,
and the member's queued and running jobs with their place in line."""

from __future__ import annotations

import re

from tests.e2e.harness import bot_running, e2e_settings, eventually, job_when
from tests.e2e.moderation_support import command, imagine
from tests.fakes.providers._server import Timing

GUILD = 1_200_000_000_000_000_200
USER = 1_200_000_000_000_000_100


async def test_quota_of_a_new_member_shows_the_bot_default_and_the_reset_time(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        _, text = await command(fake_discord, "quota")
        status = await bot.services.quota.status(GUILD, USER, ())
    assert "Your credits in this server" in text
    assert "25 credits left" in text
    assert "0 of 25 used" in text
    assert "25 credits: the bot's default" in text
    resets = int(status.resets_at)
    assert f"<t:{resets}:R>" in text
    assert f"<t:{resets}:f>" in text
    assert "None queued or running." in text
    assert "banned" not in text


async def test_quota_counts_a_job_and_bonus_credits(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        job = await imagine(fake_discord, bot, "a cat")
        await bot.services.quota.grant(GUILD, USER, 5, actor_id=1, reason="contest")
        _, text = await command(fake_discord, "quota")
    assert job.status == "succeeded"
    assert "24 credits left" in text
    assert "1 of 25 used" in text
    assert "5 credits (used after today's, never reset)" in text


async def test_quota_says_where_the_limit_comes_from(fake_discord, settings):
    role = int(fake_discord.add_role(GUILD, "artists")["id"])
    async with bot_running(settings, fake_discord) as bot:
        quota = bot.services.quota
        await quota.set_server_default(GUILD, 10, actor_id=1)
        _, server = await command(fake_discord, "quota")
        await quota.set_role_limit(GUILD, role, 40, actor_id=1)
        _, by_role = await command(fake_discord, "quota", roles=[role])
        _, without_role = await command(fake_discord, "quota")
        await quota.set_member_limit(GUILD, USER, 3, actor_id=1)
        _, own = await command(fake_discord, "quota", roles=[role])
    assert "10 credits: this server's default" in server
    assert "40 credits: from your roles" in by_role
    assert "10 credits: this server's default" in without_role
    assert "3 credits: your own limit, set by a moderator" in own


async def test_quota_in_dms_is_its_own_scope(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        await imagine(fake_discord, bot, "a cat")  # spends in the server
        _, text = await command(fake_discord, "quota", guild_id=None)
    assert "Your personal wallet" in text
    assert "25 credits left" in text


async def test_quota_of_a_banned_member_says_so(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        await bot.services.quota.ban(GUILD, USER, actor_id=1, reason="spamming <@&1> *loud*")
        _, text = await command(fake_discord, "quota")
    assert "You are banned from generating in this server. Reason: spamming <@&1> \\*loud\\*" in text


async def test_quota_lists_running_and_queued_jobs_with_their_place_in_line(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, providers={"wavespeed": {"max_concurrency": 1}})
    fakes.wavespeed.timing = Timing(queued_s=0, processing_s=3.0)
    async with bot_running(settings, fake_discord) as bot:
        for prompt in ("first", "second"):
            await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": prompt}))

        async def two_jobs() -> list[int] | None:
            rows = await bot.services.database.fetch_all("SELECT id FROM jobs ORDER BY id")
            return [row["id"] for row in rows] if len(rows) == 2 else None

        first, second = await eventually(two_jobs)
        await job_when(bot, first, lambda j: j.status == "running")
        await job_when(bot, second, lambda j: j.status == "queued")
        _, text = await command(fake_discord, "quota")
    assert re.search(rf"`#{first}` `neta-lumina` running since <t:\d+:R>", text), text
    assert f"`#{second}` `neta-lumina` waiting to start (position 1)" in text
    assert "Your jobs now (2 of at most 3 at a time)" in text
