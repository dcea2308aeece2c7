"""The HTTP server: /healthz names what is wrong (503) and recovers (200); /metrics has every documented metric and
they move when a job runs."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.ops.metrics import DOCUMENTED, discord_route
from tests.e2e.harness import bot_running, delivered, e2e_settings, eventually, latest_job_id


@pytest.fixture
def settings(tmp_path, fake_discord, fakes):
    return e2e_settings(tmp_path, fake_discord, fakes, http_port=0)


def port_of(bot) -> int:
    return bot.services.ops.http_port


async def get(bot, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port_of(bot)}{path}") as response,
    ):
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(found, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, have), value in found.items()
        if sample == name and all((k, v) in have for k, v in labels.items())
    )


async def test_healthz_is_200_when_connected_and_503_naming_the_database_or_a_stalled_engine(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        status, body = await eventually(lambda: _ok(bot))
        assert '"status": "ok"' in body

        database = bot.services.database
        await database.close()
        status, body = await get(bot, "/healthz")
        assert status == 503
        assert "database" in body
        await database.open()
        assert (await get(bot, "/healthz"))[0] == 200

        engine = bot.services.engine.steps
        engine.heartbeat_at = engine.heartbeat_at - 10_000  # as if the sweep loop had not turned for hours
        status, body = await get(bot, "/healthz")
        assert status == 503
        assert "engine: stalled" in body
        engine.heartbeat_at = engine.clock()
        assert (await get(bot, "/healthz"))[0] == 200


async def _ok(bot):
    status, body = await get(bot, "/healthz")
    return (status, body) if status == 200 else None


async def test_healthz_is_503_before_the_gateway_connects(tmp_path, fake_discord, fakes):
    from bot.runtime import open_services

    settings = e2e_settings(tmp_path, fake_discord, fakes, http_port=0)
    async with open_services(settings) as services:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{services.ops.http_port}/healthz") as response,
        ):
            body = await response.json()
        assert response.status == 503
        assert "gateway: not connected to Discord" in body["problems"]
        assert "engine: not started" in body["problems"]


async def test_every_documented_metric_is_served_and_moves_when_a_job_runs(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        status, before_text = await get(bot, "/metrics")
        assert status == 200
        before = samples(before_text)
        names = {name for name, _ in before}
        for metric in DOCUMENTED:
            family = metric.removesuffix("_total")
            assert any(name == metric or name.startswith(f"{family}_") for name in names) or (
                f"# TYPE {family}" in before_text
            ), metric
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a lighthouse"}))
        job = await delivered(bot, await latest_job_id(bot))
        assert job.status == "succeeded"
        _, after_text = await get(bot, "/metrics")
        after = samples(after_text)

    model, provider = job.model_key, job.provider
    assert total(after, "genbot_jobs_total", model=model, status="succeeded") == 1
    assert total(after, "genbot_job_duration_seconds_count", model=model) == 1
    assert total(after, "genbot_credits_spent_total", model=model) == job.cost
    assert total(after, "genbot_upstream_requests_total", provider=provider, operation="submit", outcome="ok") == 1
    assert total(after, "genbot_upstream_requests_total", provider=provider) > total(
        before, "genbot_upstream_requests_total", provider=provider
    )
    assert total(after, "genbot_discord_requests_total") > total(before, "genbot_discord_requests_total")
    assert total(after, "genbot_discord_requests_total", route="POST /interactions/{id}/{token}/callback") >= 1
    assert ("genbot_jobs_queued", (("provider", provider),)) in after
    assert ("genbot_jobs_in_flight", (("provider", provider),)) in after
    assert ("genbot_event_loop_lag_seconds", ()) in after


def test_discord_routes_are_generalised_without_tokens():
    assert discord_route("PATCH", "/api/v10/webhooks/123456789/aW50ZXJhY3Rpb24xx_secret/messages/@original") == (
        "PATCH /webhooks/{id}/{token}/messages/@original"
    )
    assert discord_route("GET", "/api/v10/channels/1234567890/messages/9876543210") == (
        "GET /channels/{id}/messages/{id}"
    )
