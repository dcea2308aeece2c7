"""Operations end to end: a provider that rejects the key is paused (one alert, however many jobs), its jobs wait
with nothing lost and run on resume; a daily budget cap refuses new jobs before anything is charged; /operator is
for OPERATOR_USER_IDS only (a server Administrator is refused)."""

from __future__ import annotations

import pytest

from tests.e2e.harness import bot_running, delivered, e2e_settings, eventually, job_when, latest_job_id
from tests.e2e.moderation_support import command, reply, text_of
from tests.fakes.discord import ADMINISTRATOR, DEFAULT_MEMBER_PERMISSIONS
from tests.fakes.discord.server import DEFAULT_CHANNEL_ID

OPERATOR = 1_200_000_000_000_000_900
ADMIN = 1_200_000_000_000_000_901


@pytest.fixture
def settings(tmp_path, fake_discord, fakes):
    return e2e_settings(tmp_path, fake_discord, fakes, operator_user_ids=str(OPERATOR))


async def ledger_kinds(bot, job_id: int) -> list[str]:
    rows = await bot.services.database.fetch_all(
        "SELECT kind FROM credit_ledger WHERE job_id = ? ORDER BY id", (job_id,)
    )
    return [row["kind"] for row in rows]


async def imagine(fake_discord, bot, model: str, prompt: str = "a red fox"):
    return await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": prompt, "model": model}))


async def test_a_revoked_key_pauses_the_provider_alerts_once_and_resume_runs_the_waiting_jobs(
    tmp_path, fake_discord, fakes
):
    settings = e2e_settings(
        tmp_path, fake_discord, fakes, operator_user_ids=str(OPERATOR), operator_alert_channel_id=DEFAULT_CHANNEL_ID
    )
    real_key = fakes.wavespeed.api_key
    fakes.wavespeed.api_key = "revoked"  # the fake now answers 401 to the bot's key
    async with bot_running(settings, fake_discord) as bot:
        ops = bot.services.ops
        await imagine(fake_discord, bot, "neta-lumina")
        first = await latest_job_id(bot)
        await eventually(lambda: ops.is_paused("wavespeed"))
        await imagine(fake_discord, bot, "neta-lumina", "a blue fox")
        second = await eventually(lambda: _newer(bot, first))
        for job_id in (first, second):
            job = await job_when(bot, job_id, lambda j: j.status == "queued")
            assert await ledger_kinds(bot, job_id) == ["reserve"]  # credits still reserved, nothing lost
            await eventually(lambda j=job: "paused" in fake_discord.messages[j.message_id]["content"])
        assert len(ops.alerts.sent) == 1
        assert "wavespeed is paused" in ops.alerts.sent[0]
        posted = await eventually(lambda: _alerts_in(fake_discord, DEFAULT_CHANNEL_ID) or None)
        assert len(posted) == 1  # the alert reached the operators' channel, once
        assert "wavespeed is paused" in posted[0]["content"]
        assert len(fakes.wavespeed.requests_to("POST", "/api/v3/wavespeed-ai/neta-lumina")) == 1

        _, status = await command(fake_discord, "operator", subcommand="status", user_id=OPERATOR)
        assert "paused" in status
        assert "refused the bot's API key" in status

        fakes.wavespeed.api_key = real_key
        _, answer = await command(
            fake_discord, "operator", {"provider": "wavespeed"}, subcommand="resume", user_id=OPERATOR
        )
        assert "resumed" in answer
        for job_id in (first, second):
            job = await delivered(bot, job_id)
            assert job.status == "succeeded"
            assert await ledger_kinds(bot, job_id) == ["reserve", "commit"]
            assert "paused" not in fake_discord.messages[job.message_id]["content"]
        assert len(ops.alerts.sent) == 1
        assert len(_alerts_in(fake_discord, DEFAULT_CHANNEL_ID)) == 1
        assert not ops.is_paused("wavespeed")


def _alerts_in(fake_discord, channel_id: int) -> list[dict]:
    return [
        m
        for m in fake_discord.messages.values()
        if int(m["channel_id"]) == channel_id and str(m.get("content", "")).startswith("🚨")
    ]


async def _newer(bot, job_id: int) -> int | None:
    latest = await latest_job_id(bot)
    return latest if latest > job_id else None


async def test_no_balance_pauses_the_provider_and_the_job_waits(fake_discord, fakes, settings):
    fakes.luma_agents.script("POST", "/v1/generations", status=402, json={"detail": "Insufficient balance"})
    async with bot_running(settings, fake_discord) as bot:
        await imagine(fake_discord, bot, "uni-1-max")
        job_id = await latest_job_id(bot)
        await eventually(lambda: bot.services.ops.is_paused("luma_agents"))
        job = await job_when(bot, job_id, lambda j: j.status == "queued")
        assert await ledger_kinds(bot, job.id) == ["reserve"]
        await eventually(lambda: "run out of funds" in fake_discord.messages[job.message_id]["content"])
        await bot.services.ops.resume("luma_agents")
        job = await delivered(bot, job_id)
        assert job.status == "succeeded"


async def test_a_budget_cap_refuses_new_jobs_without_charging_and_alerts_once(tmp_path, fake_discord, fakes):
    settings = e2e_settings(
        tmp_path, fake_discord, fakes, operator_user_ids=str(OPERATOR), budget_usd_per_day={"wavespeed": 0.01}
    )
    async with bot_running(settings, fake_discord) as bot:
        await imagine(fake_discord, bot, "neta-lumina")
        first = await delivered(bot, await latest_job_id(bot))
        assert first.status == "succeeded"
        assert (await bot.services.ops.repo.spent_on(_today()))["wavespeed"] == pytest.approx(0.01)
        ledger_before = await bot.services.database.fetch_value("SELECT COUNT(*) FROM credit_ledger")
        for _ in range(2):
            record = await imagine(fake_discord, bot, "neta-lumina")
            refusal = text_of((await reply(fake_discord, record)).json or {})
            assert "spending limit" in refusal
            assert "Nothing was charged" in refusal
        assert await latest_job_id(bot) == first.id  # no job was made
        assert await bot.services.database.fetch_value("SELECT COUNT(*) FROM credit_ledger") == ledger_before
        await eventually(lambda: len(bot.services.ops.alerts.sent) == 1)
        assert "daily budget" in bot.services.ops.alerts.sent[0]
        # Another provider is not capped.
        await imagine(fake_discord, bot, "uni-1")
        other = await delivered(bot, await eventually(lambda: _newer(bot, first.id)))
        assert other.status == "succeeded"
        _, status = await command(fake_discord, "operator", subcommand="status", user_id=OPERATOR)
        assert "cap reached" in status
        assert "$0.01" in status
        assert "Account balance: $12.34" in status  # WaveSpeed's balance endpoint (the fake's default)
        assert len(bot.services.ops.alerts.sent) == 1


def _today() -> str:
    import time

    from bot.ops.service import utc_day

    return utc_day(time.time())


async def test_operator_refuses_a_non_operator_even_with_administrator(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        for sub, options in (
            ("status", {}),
            ("pause", {"provider": "wavespeed"}),
            ("resume", {"provider": "wavespeed"}),
        ):
            _, answer = await command(
                fake_discord,
                "operator",
                options,
                subcommand=sub,
                user_id=ADMIN,
                member_permissions=DEFAULT_MEMBER_PERMISSIONS | ADMINISTRATOR,
            )
            assert "Only the bot's operators" in answer
        assert not bot.services.ops.is_paused("wavespeed")
        _, answer = await command(
            fake_discord, "operator", {"provider": "wavespeed", "reason": "maintenance"}, subcommand="pause",
            user_id=OPERATOR,
        )  # fmt: skip
        assert "is paused" in answer
        assert bot.services.ops.paused["wavespeed"].reason == "maintenance"
