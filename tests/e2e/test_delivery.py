"""Delivery end to end: expired tokens, private jobs, DMs, completion pings, the Refresh button."""

from __future__ import annotations

import asyncio

from tests.e2e.harness import bot_running, delivered, e2e_settings, job_when, latest_job_id
from tests.fakes.providers._server import Timing


async def test_token_expiring_mid_job_continues_through_channel_edit(fake_discord, fakes, settings):
    fakes.wavespeed.timing = Timing(queued_s=0, processing_s=0.6)
    async with bot_running(settings, fake_discord) as bot:
        record = await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat"}))
        job_id = await latest_job_id(bot)
        await job_when(bot, job_id, lambda job: job.message_id is not None and job.status == "running")
        fake_discord.expire_token(record.token)
        job = await delivered(bot, job_id)
    assert job.status == "succeeded"
    assert job.delivery_path == "channel"
    final = fake_discord.requests_to("PATCH", rf"/channels/{job.channel_id}/messages/{job.message_id}")[-1]
    assert final.auth == "bot"
    assert len(final.files) == 1
    assert final.json["allowed_mentions"] == {"parse": []}
    refused = [r for r in fake_discord.requests_for(record.token) if r.status == 401]
    assert len(refused) == 1  # tried once, then never again
    fake_discord.violations.clear()  # the refused webhook call is recorded as one


async def test_private_job_is_the_ephemeral_reply(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        record = await fake_discord.dispatch(
            fake_discord.slash_command("imagine", {"prompt": "a secret garden", "private": True})
        )
        job = await delivered(bot, await latest_job_id(bot))
    assert job.ephemeral
    assert job.delivery_path == "token"
    requests = fake_discord.requests_for(record.token)
    assert requests[0].json == {"type": 5, "data": {"flags": 64}}
    assert not [
        r
        for r in requests
        if r.method == "POST" and r.path.startswith("/webhooks") and not (r.json or {}).get("flags", 0) & 64
    ]  # no public follow-up
    assert requests[-1].path.endswith("/messages/@original")
    assert requests[-1].files


async def test_private_job_outliving_its_token_goes_to_dms(fake_discord, fakes, settings):
    fakes.wavespeed.timing = Timing(queued_s=0, processing_s=0.6)
    async with bot_running(settings, fake_discord) as bot:
        record = await fake_discord.dispatch(
            fake_discord.slash_command("imagine", {"prompt": "a secret garden", "private": True})
        )
        job_id = await latest_job_id(bot)
        await job_when(bot, job_id, lambda job: job.status == "running")
        fake_discord.expire_token(record.token)
        job = await delivered(bot, job_id)
        assert job.delivery_path == "dm"
        assert fake_discord.requests_to("POST", r"/users/@me/channels")
        dm = fake_discord.requests_to("POST", r"/channels/\d+/messages")[-1]
        dm_message = int(dm.response["id"])

        # Delete on the DM copy deletes that copy; the job's own message is still there and still the job's.
        click = await fake_discord.dispatch(
            fake_discord.button_click(f"gen:delete:{job_id}", dm_message, guild_id=None)
        )
        callback = await fake_discord.wait_for(lambda r: r.interaction_token == click.token)
        assert callback.json == {"type": 6}
        await fake_discord.wait_for(lambda r: r.interaction_token == click.token and r.method == "DELETE")
        after = await bot.services.job_records.get(job_id)
    assert dm.files
    assert dm.json["content"].startswith(f"Here is the result of your job #{job_id} (from <#{job.channel_id}>):\n")
    assert dm_message not in fake_discord.messages
    assert job.message_id in fake_discord.messages
    assert after is not None
    assert after.message_deleted_at is None
    fake_discord.violations.clear()


async def test_commands_work_in_dms_with_the_bot(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat"}, guild_id=None))
        job = await delivered(bot, await latest_job_id(bot))
    assert job.guild_id == 0
    assert job.status == "succeeded"
    assert job.delivery_path == "token"


async def test_long_jobs_ping_their_requester_only(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, completion_ping_after_s=0.2)
    fakes.wavespeed.timing = Timing(queued_s=0, processing_s=0.4)
    async with bot_running(settings, fake_discord) as bot:
        record = await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat @everyone"}))
        job = await delivered(bot, await latest_job_id(bot))
        await job_when(bot, job.id, lambda j: j.ping_sent_at is not None)
        await asyncio.sleep(0.1)
    posts = [r for r in fake_discord.requests_for(record.token) if r.method == "POST" and r.path.startswith("/web")]
    [ping] = posts  # no receipt: the job's message is the answer
    edits = [r for r in fake_discord.requests_for(record.token) if r.method == "PATCH"]
    assert all(edit.json["allowed_mentions"] == {"parse": []} for edit in edits)
    assert ping.json["content"].startswith(f"<@{job.user_id}> your result is ready: https://discord.com/channels/")
    assert ping.json["allowed_mentions"]["parse"] == []
    assert ping.json["allowed_mentions"]["users"] == [job.user_id]
    final_message = fake_discord.messages[job.message_id]
    assert "@everyone" not in final_message["content"].replace("@\u200beveryone", "")


async def test_refresh_button_shows_current_state_and_renews_the_token(fake_discord, fakes, settings):
    fakes.luma_agents.timing = Timing(queued_s=0, processing_s=1.0)
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat", "model": "uni-1"}))
        job_id = await latest_job_id(bot)
        job = await job_when(bot, job_id, lambda j: j.status == "running" and j.message_id is not None)
        click = await fake_discord.dispatch(fake_discord.button_click(f"gen:refresh:{job_id}", job.message_id))
        callback = await fake_discord.wait_for(lambda r: r.interaction_token == click.token)
        assert callback.json == {"type": 6}  # acknowledged within the 3 seconds, before any I/O
        edit = await fake_discord.wait_for(
            lambda r: r.interaction_token == click.token and r.method == "PATCH" and r.path.endswith("/@original")
        )
        assert "Making your image" in edit.json["content"]
        assert fake_discord.messages[job.message_id]["content"] == edit.json["content"]  # the message clicked on
        renewed = await job_when(bot, job_id, lambda j: j.interaction_token == click.token)
        assert renewed.token_edits_original
        final = await delivered(bot, job_id)
    assert final.delivery_path == "token"
    assert fake_discord.requests_for(click.token)[-1].files
