"""/history and /job show end to end: pages of my jobs in this scope with persistent Previous/Next buttons that
only I can use (also after a restart), and one job's details and result posted again under this place's rules."""

from __future__ import annotations

import time

from tests.e2e.harness import bot_running, e2e_settings
from tests.e2e.moderation_support import (
    MODERATOR_PERMISSIONS,
    command,
    custom_ids,
    imagine,
    reply,
    seed_jobs,
    text_of,
)
from tests.fakes.providers._server import Outcome

GUILD = 1_200_000_000_000_000_200
CHANNEL = 1_200_000_000_000_000_300
USER = 1_200_000_000_000_000_100
OTHER = 1_200_000_000_000_000_777


async def test_history_lists_my_jobs_newest_first_with_links(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        ids = await seed_jobs(
            bot, 3, user_id=USER, guild_id=GUILD, channel_id=CHANNEL, prompt="job {n} *bold* @everyone"
        )
        await seed_jobs(bot, 1, user_id=OTHER, guild_id=GUILD, channel_id=CHANNEL, prompt="someone else's")
        await seed_jobs(bot, 1, user_id=USER, guild_id=0, channel_id=None, prompt="from my DMs")
        record, text = await command(fake_discord, "history")
    body = (await reply(fake_discord, record)).json
    assert "Your jobs in this server" in text
    assert text.index(f"**#{ids[2]}**") < text.index(f"**#{ids[1]}**") < text.index(f"**#{ids[0]}**")
    assert "✅ succeeded" in text
    assert "`neta-lumina`" in text
    assert "job 0 \\*bold\\* @\u200beveryone" in text  # escaped: no markdown, no mention
    message_id = 1_300_000_000_000_000_000 + ids[0]
    assert f"[message](https://discord.com/channels/{GUILD}/{CHANNEL}/{message_id})" in text
    assert "someone else's" not in text
    assert "from my DMs" not in text
    assert "Page 1 of 1 · 3 jobs" in text
    assert custom_ids(body) == []  # one page: no buttons


async def test_history_pages_with_buttons_that_survive_a_restart(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        ids = await seed_jobs(bot, 12, user_id=USER, guild_id=GUILD, channel_id=CHANNEL)
        record, first_page = await command(fake_discord, "history")
        body = (await reply(fake_discord, record)).json
    assert f"**#{ids[11]}**" in first_page
    assert f"**#{ids[2]}**" in first_page
    assert f"**#{ids[1]}**" not in first_page
    assert "Page 1 of 2 · 12 jobs" in first_page
    assert custom_ids(body) == [f"hist:{USER}:{USER}:2:"]
    message_id = record.original_message_id

    async with bot_running(settings, fake_discord):  # a new process: only the custom id is left
        click = await fake_discord.dispatch(fake_discord.button_click(f"hist:{USER}:{USER}:2:", message_id))
        edit = await reply(fake_discord, click)
    assert fake_discord.requests_for(click.token)[0].json == {"type": 6}
    second_page = text_of(edit.json)
    assert f"**#{ids[1]}**" in second_page
    assert f"**#{ids[0]}**" in second_page
    assert f"**#{ids[2]}**" not in second_page
    assert "Page 2 of 2" in second_page
    assert custom_ids(edit.json) == [f"hist:{USER}:{USER}:1:"]
    assert fake_discord.messages[message_id]["embeds"][0]["footer"]["text"].startswith("Page 2 of 2")


async def test_someone_else_cannot_page_my_history(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        await seed_jobs(bot, 11, user_id=USER, guild_id=GUILD, channel_id=CHANNEL)
        record, _ = await command(fake_discord, "history")
        message_id = record.original_message_id
        before = fake_discord.messages[message_id]["embeds"]
        click = await fake_discord.dispatch(
            fake_discord.button_click(f"hist:{USER}:{USER}:2:", message_id, user_id=OTHER)
        )
        refusal = await fake_discord.wait_for(lambda r: r.interaction_token == click.token)
    assert refusal.json["type"] == 4
    assert refusal.json["data"]["flags"] == 64
    assert "Only the person who opened this list can page through it" in refusal.json["data"]["content"]
    assert fake_discord.messages[message_id]["embeds"] == before


async def test_history_filters_by_model_and_keeps_the_filter_when_paging(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        await seed_jobs(bot, 11, user_id=USER, guild_id=GUILD, channel_id=CHANNEL, model_key="uni-1")
        await seed_jobs(bot, 2, user_id=USER, guild_id=GUILD, channel_id=CHANNEL, model_key="kawaii-3d")
        choices = await fake_discord.dispatch(fake_discord.autocomplete("history", {"model": "uni"}, "model"))
        answer = await fake_discord.wait_for(lambda r: r.interaction_token == choices.token)
        record, text = await command(fake_discord, "history", {"model": "uni-1"})
        body = (await reply(fake_discord, record)).json
    assert [c["value"] for c in answer.json["data"]["choices"]] == ["uni-1", "uni-1-max"]
    assert "with `uni-1`" in text
    assert "kawaii-3d" not in text
    assert "11 jobs" in text
    assert custom_ids(body) == [f"hist:{USER}:{USER}:2:uni-1"]


async def test_history_in_dms_lists_dm_jobs_with_me_links(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        dm = fake_discord.dm_channel(USER).id
        [job_id] = await seed_jobs(bot, 1, user_id=USER, guild_id=0, channel_id=dm, prompt="in DMs")
        await seed_jobs(bot, 1, user_id=USER, guild_id=GUILD, channel_id=CHANNEL, prompt="in the server")
        _, text = await command(fake_discord, "history", guild_id=None)
    assert "Your jobs in DMs with the bot" in text
    assert f"https://discord.com/channels/@me/{dm}/{1_300_000_000_000_000_000 + job_id}" in text
    assert "in the server" not in text


async def test_history_of_nobody_and_a_page_past_the_end(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        _, empty = await command(fake_discord, "history")
        await seed_jobs(bot, 3, user_id=USER, guild_id=GUILD, channel_id=CHANNEL)
        _, past_end = await command(fake_discord, "history", {"page": 9})
        _, bad_model = await command(fake_discord, "history", {"model": "no such model!"})
    assert "No jobs yet. Make one with `/imagine`." in empty
    assert "Page 1 of 1 · 3 jobs" in past_end
    assert "That is not a model name" in bad_model


# ------------------------------------------------------------------------------------------------- /job show


async def test_job_show_posts_the_result_again_with_its_details(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        job = await imagine(fake_discord, bot, "a red fox --seed 7")
        record, text = await command(fake_discord, "job", {"id": job.id}, subcommand="show")
        answer = await reply(fake_discord, record)
    assert f"Job #{job.id}" in text
    assert "a red fox" in text
    assert "Status\nsucceeded" in text
    [attached] = answer.files
    assert attached.filename.startswith(f"job{job.id}_0.")
    assert attached.data == (settings.output_dir / job.outputs[0].path).read_bytes()
    assert answer.json["embeds"][0]["image"]["url"] == f"attachment://{attached.filename}"
    assert answer.json["components"] == []


async def test_job_show_is_for_its_requester_and_their_server_moderators(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        job = await imagine(fake_discord, bot, "a public fox")
        private = await imagine(fake_discord, bot, "a private fox", options={"private": True})
        _, stranger = await command(fake_discord, "job", {"id": job.id}, subcommand="show", user_id=OTHER)
        _, moderator = await command(
            fake_discord,
            "job",
            {"id": job.id},
            subcommand="show",
            user_id=OTHER,
            member_permissions=MODERATOR_PERMISSIONS,
        )
        _, moderator_private = await command(
            fake_discord,
            "job",
            {"id": private.id},
            subcommand="show",
            user_id=OTHER,
            member_permissions=MODERATOR_PERMISSIONS,
        )
        _, moderator_elsewhere = await command(
            fake_discord,
            "job",
            {"id": job.id},
            subcommand="show",
            user_id=OTHER,
            guild_id=1_200_000_000_000_009_000,
            member_permissions=MODERATOR_PERMISSIONS,
        )
        _, owner_private = await command(fake_discord, "job", {"id": private.id}, subcommand="show")
        _, missing = await command(fake_discord, "job", {"id": 999_999}, subcommand="show")
    assert f"There is no job #{job.id} you can see" in stranger
    assert f"Job #{job.id}" in moderator
    assert f"There is no job #{private.id} you can see" in moderator_private
    assert f"There is no job #{job.id} you can see" in moderator_elsewhere
    assert f"Job #{private.id}" in owner_private
    assert "There is no job #999999 you can see" in missing


async def test_job_show_after_the_files_were_purged(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        job = await imagine(fake_discord, bot, "a fox")
        for output in job.outputs:
            (settings.output_dir / output.path).unlink()
        await bot.services.job_records.mark_purged(job.id, time.time())
        record, text = await command(fake_discord, "job", {"id": job.id}, subcommand="show")
        answer = await reply(fake_discord, record)
    assert "The result is no longer stored (results are kept for 7 days)." in text
    assert f"Job #{job.id}" in text
    assert not answer.files
    assert "image" not in answer.json["embeds"][0]


async def test_job_show_respects_the_attachment_limit_of_the_interaction(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        job = await imagine(fake_discord, bot, "a fox")
        record, text = await command(fake_discord, "job", {"id": job.id}, subcommand="show", attachment_size_limit=100)
        answer = await reply(fake_discord, record)
    assert not answer.files
    assert "[Download the image](http://" in text


async def test_job_show_follows_the_nsfw_policy_of_the_place_it_is_shown(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes)  # default policy: age-restricted channels only
    nsfw_channel = fake_discord.add_channel(GUILD, "after-dark", nsfw=True).id
    async with bot_running(settings, fake_discord) as bot:
        fakes.wavespeed.next_outcome(Outcome(nsfw=True))
        job = await imagine(fake_discord, bot, "a fox")
        assert job.outputs[0].nsfw
        record, here = await command(fake_discord, "job", {"id": job.id}, subcommand="show")
        withheld = await reply(fake_discord, record)
        record, there = await command(fake_discord, "job", {"id": job.id}, subcommand="show", channel_id=nsfw_channel)
        shown = await reply(fake_discord, record)
        record, _ = await command(fake_discord, "job", {"id": job.id}, subcommand="show", guild_id=None)
        in_dms = await reply(fake_discord, record)
    assert not withheld.files
    assert "flagged as NSFW" in here
    assert [f.filename.split(".")[0] for f in shown.files] == [f"job{job.id}_0"]
    assert "flagged as NSFW" not in there
    assert [f.filename.split(".")[0] for f in in_dms.files] == [f"SPOILER_job{job.id}_0"]
