"""Failure paths end to end: each ends with a clear message in the job's message and exactly one refund."""

from __future__ import annotations

from tests.e2e.harness import bot_running, delivered, e2e_settings, latest_job_id
from tests.fakes.providers._server import Outcome, Timing


async def ledger_kinds(bot, job_id: int) -> list[str]:
    rows = await bot.services.database.fetch_all(
        "SELECT kind FROM credit_ledger WHERE job_id = ? ORDER BY id", (job_id,)
    )
    return [row["kind"] for row in rows]


async def used_credits(bot) -> int:
    return int(await bot.services.database.fetch_value("SELECT COALESCE(SUM(used), 0) FROM credit_usage"))


async def run_failing_job(fake_discord, settings, model: str):
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a red fox", "model": model}))
        job = await delivered(bot, await latest_job_id(bot))
        return job, await ledger_kinds(bot, job.id), await used_credits(bot)


async def test_moderated_by_the_provider(fake_discord, fakes, settings):
    fakes.wavespeed.next_outcome(Outcome(success=False, failure=1200))
    job, ledger, used = await run_failing_job(fake_discord, settings, "neta-lumina")
    assert job.status == "failed"
    assert "content rules" in job.error_message or "content" in job.error_message
    assert ledger == ["reserve", "refund"]
    assert used == 0
    content = fake_discord.messages[job.message_id]["content"]
    assert job.error_message in content
    assert "1 credit was refunded" in content or "refunded" in content


async def test_luma_content_moderated(fake_discord, fakes, settings):
    fakes.luma_agents.fail_next("content_moderated")
    job, ledger, used = await run_failing_job(fake_discord, settings, "uni-1")
    assert job.status == "failed"
    assert job.error_code == "content_moderated"
    assert ledger == ["reserve", "refund"]
    assert used == 0


async def test_provider_refuses_the_request(fake_discord, fakes, settings):
    fakes.luma_agents.script("POST", "/v1/generations", status=400, json={"detail": "Invalid aspect ratio"})
    job, ledger, used = await run_failing_job(fake_discord, settings, "uni-1-max")
    assert job.status == "failed"
    assert "rejected these settings" in job.error_message
    assert "Invalid aspect ratio" not in fake_discord.messages[job.message_id]["content"]
    assert ledger == ["reserve", "refund"]
    assert used == 0


async def test_ambiguous_submit_is_not_resent_and_is_refunded(fake_discord, fakes, settings):
    fakes.wavespeed.script(
        "POST", "/api/v3/wavespeed-ai/neta-lumina", status=502, text="<html>bad gateway</html>", after_handler=True
    )
    job, ledger, used = await run_failing_job(fake_discord, settings, "neta-lumina")
    assert job.status == "failed"
    assert "may still have run" in job.error_message
    assert len(fakes.wavespeed.requests_to("POST", "/api/v3/wavespeed-ai/neta-lumina")) == 1
    assert ledger == ["reserve", "refund"]
    assert used == 0


async def test_job_past_its_deadline_is_failed_and_refunded(tmp_path, fake_discord, fakes):
    fakes.lumozai.timing = Timing(queued_s=0, processing_s=30)
    fakes.lumozai.slow_after_s = 0.05  # answers with a request_id only; the job never finishes in time
    settings = e2e_settings(tmp_path, fake_discord, fakes, image_deadline_s=0.5)
    job, ledger, used = await run_failing_job(fake_discord, settings, "kawaii-3d")
    assert job.status == "failed"
    assert job.error_code == "timeout"
    assert "took too long" in job.error_message
    assert ledger == ["reserve", "refund"]
    assert used == 0


async def test_a_rate_limited_submit_waits_in_line_and_then_runs(fake_discord, fakes, settings):
    fakes.luma_agents.script(
        "POST",
        "/v1/generations",
        status=429,
        json={"detail": "Too many concurrent jobs"},
        headers={"Retry-After": "0.1"},
        times=4,
    )
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat", "model": "uni-1"}))
        job = await delivered(bot, await latest_job_id(bot))
        ledger = await ledger_kinds(bot, job.id)
    assert job.status == "succeeded"
    assert ledger == ["reserve", "commit"]
    assert len(fakes.luma_agents.requests_to("POST", "/v1/generations")) == 5
