"""Push instead of polls (WEBHOOK_PUBLIC_URL), end to end: the real client against the fake Discord, the real
adapters against the fake providers, which POST their callbacks to the bot's own HTTP server.

A valid callback delivers the result with no poll after the submit; a forged signature, a wrong per-job secret,
a stale or replayed delivery and an unknown job are refused, logged and change nothing; a callback committed
while the engine was down is delivered once after the restart; a lost callback is covered by the safety poll."""

from __future__ import annotations

import logging
import re
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.commands_support import run
from tests.e2e.harness import ProviderFakes, bot_running, delivered, e2e_settings, eventually, job_when
from tests.fakes.providers._server import Timing
from tests.fakes.providers.callbacks import WAVESPEED_SECRET, wavespeed_headers

WAVESPEED_RESULT = r"/api/v3/predictions/.+"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_settings(tmp_path, fake_discord, fakes: ProviderFakes, *, safety_cap_s: float = 30.0, **overrides):
    """Callbacks on, with polls capped at ``safety_cap_s`` (the safety net comes at the latest then)."""
    port = free_port()
    cap = {"max_poll_interval_s": safety_cap_s}
    return e2e_settings(
        tmp_path,
        fake_discord,
        fakes,
        http_port=port,
        webhook_public_url=f"http://127.0.0.1:{port}",
        providers={
            "wavespeed": {"webhook_secret": WAVESPEED_SECRET, **cap},
            "luma_reseller": cap,
            "lumozai": cap,
            "luma_agents": cap,
        },
        **overrides,
    )


def callback_url(fake, job_remote_id: str) -> str:
    return fake.callbacks.urls[job_remote_id]


async def ledger(bot, job_id: int) -> list[str]:
    rows = await bot.services.database.fetch_all(
        "SELECT kind FROM credit_ledger WHERE job_id = ? ORDER BY id", (job_id,)
    )
    return [row["kind"] for row in rows]


@pytest.mark.parametrize(
    ("command", "options", "fake_name", "polls"),
    [
        ("imagine", {"prompt": "a lighthouse", "model": "neta-lumina"}, "wavespeed", WAVESPEED_RESULT),
        ("video", {"prompt": "waves"}, "luma_reseller", r"/luma/generations/.+"),
        ("imagine", {"prompt": "a lighthouse", "model": "kawaii-3d"}, "lumozai", r"/api/v4/check"),
    ],
)
async def test_a_valid_callback_delivers_the_result_with_no_poll(
    tmp_path, fake_discord, fakes, command, options, fake_name, polls
):
    fake = getattr(fakes, fake_name)
    fake.timing = Timing(queued_s=0.0, processing_s=0.2)
    if fake_name == "lumozai":
        fake.slow_after_s = 0.01  # the run answers with a request_id only: the result comes by callback
    settings = webhook_settings(tmp_path, fake_discord, fakes)
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(fake_discord, bot, command, options)
        charges = await ledger(bot, job.id)
        stored = await bot.services.database.fetch_value(
            "SELECT secret_hash FROM job_callbacks WHERE job_id = ?", (job.id,)
        )
        exposition = bot.services.ops.metrics.exposition().decode()
        run_time = await bot.services.database.fetch_one(
            "SELECT seen_running_s, done_s FROM job_run_times WHERE job_id = ?", (job.id,)
        )

    assert job.status == "succeeded", job.error_message
    assert charges == ["reserve", "commit"]
    assert fake.requests_to("GET", polls) + fake.requests_to("POST", polls) == []  # not one poll
    assert run_time["done_s"] - run_time["seen_running_s"] < 0.1  # a callback tells the run time to the moment
    assert f'genbot_detection_latency_seconds_count{{provider="{fake_name}"}} 1.0' in exposition  # seen by callback
    [delivery] = fake.callbacks.deliveries
    assert delivery.status == 200
    path = urlsplit(delivery.url).path
    assert re.fullmatch(rf"/callbacks/{fake_name}/{job.id}/[\w-]{{40,}}", path)
    secret = path.rsplit("/", 1)[1]
    assert stored != secret
    assert secret not in str(stored)  # only the hash is kept
    if fake_name == "wavespeed":
        [submit] = fake.requests_to("POST", "/api/v3/wavespeed-ai/neta-lumina")
        assert submit.query["webhook"] == delivery.url
        assert delivery.headers["webhook-signature"].startswith("v3,")


async def test_forged_replayed_stale_and_unknown_callbacks_are_refused_logged_and_change_nothing(
    tmp_path, fake_discord, fakes, caplog
):
    fake = fakes.wavespeed
    fake.callbacks.lost = True  # nothing arrives by itself: this test sends each callback
    settings = webhook_settings(tmp_path, fake_discord, fakes)
    caplog.set_level(logging.INFO)
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat", "model": "neta-lumina"}))
        job = await job_when(bot, 1, lambda j: j.status == "running" and j.remote_id is not None)
        upstream = fake.jobs[job.remote_id]
        await eventually(lambda: upstream.phase(fake.clock()) == "completed")
        url = callback_url(fake, job.remote_id)
        base, secret = url.rsplit("/", 1)
        body = fake.callbacks.body(upstream)

        refused = {
            "forged signature": await fake.callbacks.deliver(
                upstream, headers=wavespeed_headers(body, secret="whsec_not-the-secret")
            ),
            "body changed after signing": await fake.callbacks.deliver(
                upstream, body=body.replace(b'"completed"', b'"failed"'), headers=wavespeed_headers(body)
            ),
            "stale timestamp": await fake.callbacks.deliver(
                upstream, headers=wavespeed_headers(body, timestamp=time.time() - 600)
            ),
            "unsigned": await fake.callbacks.deliver(upstream, headers={"Content-Type": "application/json"}),
            "wrong per-job secret": await fake.callbacks.deliver(upstream, f"{base}/{'x' * len(secret)}"),
            "unknown job": await fake.callbacks.deliver(upstream, url.replace(f"/{job.id}/", "/999999/")),
            "unknown provider": await fake.callbacks.deliver(upstream, url.replace("/wavespeed/", "/nobody/")),
        }
        after_refusals = await bot.services.job_records.get(job.id)
        steps = await bot.services.database.fetch_all("SELECT kind FROM job_steps WHERE job_id = ?", (job.id,))

        valid = await fake.callbacks.deliver(upstream)
        done = await delivered(bot, job.id)
        replayed = await fake.callbacks.deliver(upstream, body=valid.body, headers=valid.headers)
        late = await fake.callbacks.deliver(upstream)  # a fresh delivery for a job that has finished
        charges = await ledger(bot, job.id)
        exposition = bot.services.ops.metrics.exposition().decode()

    assert {name: d.status for name, d in refused.items()} == {
        "forged signature": 401,
        "body changed after signing": 401,
        "stale timestamp": 401,
        "unsigned": 401,
        "wrong per-job secret": 403,
        "unknown job": 404,
        "unknown provider": 404,
    }
    assert after_refusals is not None
    assert (after_refusals.status, after_refusals.upstream_result) == ("running", None)
    assert [row["kind"] for row in steps] == ["poll"]  # nothing to download: nothing was taken
    assert valid.status == 200
    assert replayed.status == 409
    assert late.status == 409
    assert done.status == "succeeded"
    assert charges == ["reserve", "commit"]
    assert fake.requests_to("GET", WAVESPEED_RESULT) == []
    assert 'genbot_callbacks_total{provider="wavespeed",status="401"} 4.0' in exposition
    assert 'genbot_callbacks_total{provider="wavespeed",status="200"} 1.0' in exposition
    assert 'genbot_callbacks_total{provider="unknown",status="404"} 1.0' in exposition
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("callback refused")]
    assert len(refusals) == len(refused) + 2
    logged = caplog.text
    assert secret not in logged
    assert WAVESPEED_SECRET.removeprefix("whsec_") not in logged


async def test_a_callback_committed_while_the_engine_is_down_is_delivered_once_after_the_restart(
    tmp_path, fake_discord, fakes
):
    fake = fakes.wavespeed
    fake.callbacks.lost = True
    settings = webhook_settings(tmp_path, fake_discord, fakes)
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat", "model": "neta-lumina"}))
        job = await job_when(bot, 1, lambda j: j.status == "running" and j.remote_id is not None)
        upstream = fake.jobs[job.remote_id]
        await eventually(lambda: upstream.phase(fake.clock()) == "completed")
        await bot.services.engine.steps.crash()  # the process dies right after answering the callback
        answered = await fake.callbacks.deliver(upstream)
        kept = await bot.services.job_records.get(job.id)
    assert answered.status == 200
    assert kept is not None
    assert kept.status == "running"
    assert kept.upstream_result is not None  # committed before the 2xx

    async with bot_running(settings, fake_discord) as bot:
        done = await delivered(bot, job.id)
        charges = await ledger(bot, job.id)
        again = await fake.callbacks.deliver(upstream)
    assert done.status == "succeeded"
    assert charges == ["reserve", "commit"]
    assert again.status == 409
    finals = [r for r in fake_discord.requests if r.method == "PATCH" and r.files]
    assert len(finals) == 1  # delivered once
    assert fake.requests_to("GET", WAVESPEED_RESULT) == []


async def test_a_lost_callback_is_covered_by_the_safety_poll(tmp_path, fake_discord, fakes):
    fakes.wavespeed.callbacks.lost = True
    settings = webhook_settings(tmp_path, fake_discord, fakes, safety_cap_s=0.5)
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(fake_discord, bot, "imagine", {"prompt": "a cat", "model": "neta-lumina"})
    assert job.status == "succeeded"
    assert len(fakes.wavespeed.requests_to("GET", WAVESPEED_RESULT)) == 1
    assert fakes.wavespeed.callbacks.deliveries == []
