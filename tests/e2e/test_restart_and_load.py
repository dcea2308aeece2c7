"""Durability and load: a restart with jobs in flight, and 200 jobs at once."""

from __future__ import annotations

import re
import time

from tests.e2e.harness import bot_running, delivered, e2e_settings, eventually
from tests.fakes.providers._server import Timing


async def ledger_by_job(bot) -> dict[int, list[str]]:
    rows = await bot.services.database.fetch_all("SELECT job_id, kind FROM credit_ledger ORDER BY id")
    by_job: dict[int, list[str]] = {}
    for row in rows:
        by_job.setdefault(row["job_id"], []).append(row["kind"])
    return by_job


def final_edits(fake_discord, message_id: int) -> list:
    """Edits of a message that carried the result file, whichever route they took."""
    pattern = re.compile(rf"/(webhooks/\d+/[^/]+|channels/\d+)/messages/{message_id}$")

    def is_that_message(request) -> bool:
        if pattern.search(request.path):
            return True
        if request.path.endswith("/messages/@original") and request.interaction_token:
            return fake_discord.interaction(request.interaction_token).original_message_id == message_id
        return False

    return [r for r in fake_discord.requests if r.method == "PATCH" and r.files and is_that_message(r)]


async def test_restart_with_jobs_in_flight_delivers_each_once_and_charges_once(tmp_path, fake_discord, fakes):
    fakes.luma_agents.timing = Timing(queued_s=0, processing_s=0.8)
    settings = e2e_settings(
        tmp_path,
        fake_discord,
        fakes,
        max_running_jobs_per_user=20,
        providers={"luma_agents": {"max_concurrency": 2}},
    )
    async with bot_running(settings, fake_discord) as bot:
        for n in range(5):
            await fake_discord.dispatch(
                fake_discord.slash_command("imagine", {"prompt": f"cat number {n}", "model": "uni-1"})
            )

        async def in_flight():
            rows = await bot.services.database.fetch_all("SELECT status, message_id FROM jobs")
            statuses = sorted(row["status"] for row in rows)
            posted = all(row["message_id"] for row in rows)
            return len(rows) == 5 and posted and statuses == ["queued"] * 3 + ["running"] * 2

        await eventually(in_flight)
    # The bot is stopped: two jobs are running upstream, three wait in the bot's own queue.

    async with bot_running(settings, fake_discord) as bot:
        jobs = [await delivered(bot, job_id) for job_id in range(1, 6)]
        ledger = await ledger_by_job(bot)

    assert [job.status for job in jobs] == ["succeeded"] * 5
    assert all(ledger[job.id] == ["reserve", "commit"] for job in jobs)
    assert len(fakes.luma_agents.requests_to("POST", "/v1/generations")) == 5  # nothing submitted twice
    for job in jobs:
        assert len(final_edits(fake_discord, job.message_id)) == 1


async def test_a_job_caught_mid_submit_by_a_crash_is_failed_and_refunded_not_resent(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes)
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat"}))
        job = await delivered(bot, 1)
        # What a crash between the submit's intent (written just before the call) and the provider's answer
        # leaves behind:
        await bot.services.database.execute(
            "UPDATE jobs SET status = 'submitting', submit_sent_at = created_at, finished_at = NULL,"
            " delivered_at = NULL WHERE id = 1"
        )
        await bot.services.database.execute("DELETE FROM credit_ledger WHERE job_id = 1 AND kind = 'commit'")
    submits_before = len(fakes.wavespeed.requests_to("POST", "/api/v3/wavespeed-ai/neta-lumina"))

    async with bot_running(settings, fake_discord) as bot:
        job = await delivered(bot, 1)
        ledger = await ledger_by_job(bot)
    assert job.status == "failed"
    assert job.error_code == "interrupted_submit"
    assert "It was not sent again" in job.error_message
    assert ledger[1] == ["reserve", "refund"]
    assert len(fakes.wavespeed.requests_to("POST", "/api/v3/wavespeed-ai/neta-lumina")) == submits_before


async def test_200_jobs_at_once_are_all_delivered_once_within_provider_limits(tmp_path, fake_discord, fakes):
    concurrency = 4
    fakes.wavespeed.timing = Timing(queued_s=0, processing_s=0.05)
    settings = e2e_settings(
        tmp_path,
        fake_discord,
        fakes,
        max_running_jobs_per_user=1000,
        daily_credits=1000,
        edit_min_interval_s=0.2,
        providers={"wavespeed": {"max_concurrency": concurrency, "requests_per_minute": 30_000}},
    )
    started = time.monotonic()
    async with bot_running(settings, fake_discord) as bot:
        for n in range(200):
            await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": f"cat {n}"}))

        async def all_delivered():
            count = await bot.services.database.fetch_value("SELECT COUNT(*) FROM jobs WHERE delivered_at IS NOT NULL")
            return count == 200

        await eventually(all_delivered, timeout=60)
        rows = await bot.services.database.fetch_all("SELECT id, status, message_id FROM jobs")
        ledger = await ledger_by_job(bot)
    elapsed = time.monotonic() - started

    assert len(rows) == 200
    assert {row["status"] for row in rows} == {"succeeded"}
    assert all(ledger[row["id"]] == ["reserve", "commit"] for row in rows)
    for row in rows:
        assert len(final_edits(fake_discord, row["message_id"])) == 1
    submits = fakes.wavespeed.requests_to("POST", "/api/v3/wavespeed-ai/neta-lumina")
    assert len(submits) == 200
    # Upstream concurrency: at no submission were more than `concurrency` jobs alive at the provider.
    jobs = sorted(fakes.wavespeed.jobs.values(), key=lambda job: job.created_at)
    for job in jobs:
        alive = [other for other in jobs if other.created_at <= job.created_at < other.created_at + 0.05]
        assert len(alive) <= concurrency
    assert elapsed < 60
