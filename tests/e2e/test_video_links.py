"""A video too large to attach is shown as a link that keeps working while the bot keeps the file: when the
provider's presigned URL has expired (or soon will), a fresh one is fetched on demand (Luma relay:
``GET /luma/generations/{id}/download_video_url``). And a video's details show only what its model takes."""

from __future__ import annotations

import re

from tests.e2e.commands_support import run
from tests.e2e.harness import bot_running
from tests.e2e.moderation_support import command
from tests.fakes.media import mp4_bytes

LINK = re.compile(r"\[Download the video\]\((?P<url>[^)]+)\)")


async def test_an_expired_video_link_is_replaced_by_a_fresh_one_on_demand(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(fake_discord, bot, "video", {"prompt": "waves"}, attachment_size_limit=len(mp4_bytes()) - 1)
        assert job.status == "succeeded", job.error_message
        first = LINK.search(fake_discord.messages[job.message_id]["content"])
        assert first is not None
        asked_before = len(fakes.luma_reseller.requests_to("GET", r".*/download_video_url"))
        # An hour later: the presigned URL has died.
        await bot.services.database.execute("UPDATE job_outputs SET url_expires_at = 1 WHERE job_id = ?", (job.id,))
        _, text = await command(
            fake_discord, "job", {"id": job.id}, subcommand="show", attachment_size_limit=len(mp4_bytes()) - 1
        )
        stored = await bot.services.job_records.get(job.id)
    fresh = LINK.search(text)
    assert fresh is not None, text
    assert fresh["url"] != first["url"]
    assert len(fakes.luma_reseller.requests_to("GET", r".*/download_video_url")) == asked_before + 1
    assert stored is not None
    assert stored.outputs[0].source_url == fresh["url"]
    assert stored.outputs[0].url_expires_at is not None
    assert stored.outputs[0].url_expires_at > 1


async def test_a_video_jobs_message_has_no_seed_line(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(fake_discord, bot, "video", {"prompt": "waves"})
    fields = [f["name"] for f in fake_discord.messages[job.message_id]["embeds"][0]["fields"]]
    assert "Seed" not in fields
    assert "Model" in fields
