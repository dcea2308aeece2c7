"""The fault matrix: one job through the real stack (discord.py against the fake Discord, the fake providers, real
SQLite) with one fault injected on the provider or the Discord side. Every case must end in a state the user can
see — the job's message (or a DM) shows the result or a plain failure — with the credits settled exactly once:
one reserve, then exactly one commit (success) or refund (failure), and the usage balance agreeing with it. No
message may ping anyone, although the prompt tries to.

Each case records what it observed (``tests.reliability.record``) before asserting, so RELIABILITY.md counts jobs
lost, double charges and pings from the run itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.app import Bot
from tests.e2e.harness import ProviderFakes, bot_running, e2e_settings, eventually, latest_job_id
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.server import DEFAULT_CHANNEL_ID
from tests.fakes.providers._server import Outcome, Timing
from tests.reliability import record

WS_SUBMIT = "/api/v3/wavespeed-ai/neta-lumina"
WS_POLL = r"/api/v3/predictions/[^/]+(/result)?"
LUMA_SUBMIT = "/v1/generations"
LUMA_POLL = r"/v1/generations/[^/]+"
RESELLER_SUBMIT = "/luma/generations"
RESELLER_POLL = r"/luma/generations/[^/]+"
TOKEN_EDIT = r"/webhooks/\d+/[^/]+/messages/@original"
TOKEN_ANY = r"/webhooks/\d+/[^/]+(/messages/.+)?"
CHANNEL_EDIT = r"/channels/\d+/messages/\d+"
OTHER_USER_ID = 222_222_222_222_222_222
ROLE_ID = 333_333_333_333_333_333
BAIT = f" @everyone @here <@{OTHER_USER_ID}> <@&{ROLE_ID}>"

Inject = Callable[[FakeDiscord, ProviderFakes], None]
During = Callable[[FakeDiscord, Bot, int], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Inject
    model: str = "neta-lumina"
    command: str = "imagine"
    settings: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    during: During | None = None  # once the job is running (e.g. the interaction token dies)
    statuses: tuple[str, ...] = ("succeeded", "failed")  # acceptable end states
    slow_provider: str | None = None  # keep this provider's job running long enough for ``during``


def nothing(discord: FakeDiscord, fakes: ProviderFakes) -> None:
    return None


async def expire_token(discord: FakeDiscord, bot: Bot, job_id: int) -> None:
    job = await bot.services.job_records.get(job_id)
    assert job is not None
    assert job.interaction_token
    discord.expire_token(job.interaction_token)


def provider(name: str, method: str, path: str, **script: Any) -> Inject:
    def inject(discord: FakeDiscord, fakes: ProviderFakes) -> None:
        getattr(fakes, name).script(method, path, **script)

    return inject


def discord_fault(method: str, path: str, **rule: Any) -> Inject:
    def inject(discord: FakeDiscord, fakes: ProviderFakes) -> None:
        discord.fail_next(method, path, **rule)

    return inject


def both(*injects: Inject) -> Inject:
    def inject(discord: FakeDiscord, fakes: ProviderFakes) -> None:
        for one in injects:
            one(discord, fakes)

    return inject


def outcome(name: str, result: Outcome) -> Inject:
    def inject(discord: FakeDiscord, fakes: ProviderFakes) -> None:
        getattr(fakes, name).next_outcome(result)

    return inject


def expiring_outputs(name: str) -> Inject:
    def inject(discord: FakeDiscord, fakes: ProviderFakes) -> None:
        fake = getattr(fakes, name)
        fake.media_ttl_s = 0.0
        for attribute in ("url_ttl_s", "download_ttl_s"):  # the fakes whose output URLs carry their own TTL
            if hasattr(fake, attribute):
                setattr(fake, attribute, 0.0)

    return inject


def never_finishes(name: str) -> Inject:
    def inject(discord: FakeDiscord, fakes: ProviderFakes) -> None:
        getattr(fakes, name).timing = Timing(queued_s=0, processing_s=3600)

    return inject


HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"
SHORT_TIMEOUTS = {"wavespeed": {"submit_timeout_s": 0.3, "poll_timeout_s": 0.3}}

FAULTS = [
    # ---------------------------------------------------------------- provider side
    Fault(
        "provider-429-retry-after",
        provider(
            "luma_agents",
            "POST",
            LUMA_SUBMIT,
            status=429,
            json={"detail": "busy"},
            headers={"Retry-After": "0.1"},
            times=2,
        ),
        model="uni-1",
    ),
    Fault(
        "provider-429-no-retry-after",
        lambda discord, fakes: fakes.wavespeed.rate_limit(times=2, retry_after=None) and None,
    ),
    Fault("provider-429-on-poll", provider("wavespeed", "GET", WS_POLL, status=429, json={"code": 429}, times=2)),
    Fault("provider-500-on-submit", provider("wavespeed", "POST", WS_SUBMIT, status=500, json={"message": "boom"})),
    Fault("provider-503-on-submit", provider("luma_agents", "POST", LUMA_SUBMIT, status=503, text=HTML), model="uni-1"),
    Fault("provider-502-on-poll", provider("wavespeed", "GET", WS_POLL, status=502, text=HTML, times=3)),
    Fault(
        "provider-500-on-poll-luma",
        provider("luma_agents", "GET", LUMA_POLL, status=500, json={}, times=3),
        model="uni-1",
    ),
    Fault(
        "provider-submit-timeout",
        provider("wavespeed", "POST", WS_SUBMIT, delay_s=1.0, after_handler=True, json={}),
        providers=SHORT_TIMEOUTS,
    ),
    Fault(
        "provider-poll-timeout",
        provider("wavespeed", "GET", WS_POLL, delay_s=1.0, json={}, times=2),
        providers=SHORT_TIMEOUTS,
    ),
    Fault(
        "provider-malformed-json-submit",
        provider("wavespeed", "POST", WS_SUBMIT, text='{"code": 200, "data": {', content_type="application/json"),
    ),
    Fault(
        "provider-wrong-shape-submit",
        provider("luma_agents", "POST", LUMA_SUBMIT, status=200, json={"unexpected": [1, 2, 3]}),
        model="uni-1",
    ),
    Fault("provider-html-200-on-submit", provider("wavespeed", "POST", WS_SUBMIT, text=HTML)),
    Fault("provider-html-200-on-poll", provider("wavespeed", "GET", WS_POLL, text=HTML, times=2)),
    Fault(
        "provider-malformed-json-poll",
        provider("luma_agents", "GET", LUMA_POLL, text="{not json", content_type="application/json", times=2),
        model="uni-1",
    ),
    Fault("provider-reset-on-submit", provider("wavespeed", "POST", WS_SUBMIT, drop=True)),
    Fault(
        "provider-reset-after-accept",
        provider("luma_agents", "POST", LUMA_SUBMIT, drop=True, after_handler=True),
        model="uni-1",
    ),
    Fault("provider-reset-on-poll", provider("wavespeed", "GET", WS_POLL, drop=True, times=2)),
    Fault("provider-job-never-finishes", never_finishes("wavespeed"), settings={"image_deadline_s": 0.6}),
    Fault(
        "video-job-never-finishes",
        never_finishes("luma_reseller"),
        model="luma-video",
        command="video",
        settings={"video_deadline_s": 0.6},
    ),
    Fault("provider-job-fails", outcome("wavespeed", Outcome(success=False, failure=5000, message="Internal"))),
    # Expired output URLs are retried (a fresh poll usually hands out fresh ones) until the job's deadline.
    Fault(
        "outputs-expire-before-download",
        expiring_outputs("luma_agents"),
        model="uni-1",
        settings={"image_deadline_s": 1.0},
        statuses=("failed",),
    ),
    Fault(
        "wavespeed-outputs-expire-before-download",
        expiring_outputs("wavespeed"),
        settings={"image_deadline_s": 1.0},
        statuses=("failed",),
    ),
    Fault(
        "video-outputs-expire-before-download",
        expiring_outputs("luma_reseller"),
        model="luma-video",
        command="video",
        settings={"video_deadline_s": 1.0},
        statuses=("failed",),
    ),
    Fault(
        "video-502-on-poll",
        provider("luma_reseller", "GET", RESELLER_POLL, status=502, text=HTML, times=2),
        model="luma-video",
        command="video",
    ),
    # ---------------------------------------------------------------- Discord side
    Fault("discord-429-on-token-edit", discord_fault("PATCH", TOKEN_EDIT, status=429, retry_after=0.2, times=2)),
    Fault(
        "discord-429-on-callback",
        discord_fault("POST", r"/interactions/\d+/[^/]+/callback", status=429, retry_after=0.2),
    ),
    Fault("discord-500-on-token-edit", discord_fault("PATCH", TOKEN_EDIT, status=500, json={"message": "x"})),
    Fault(
        "discord-502-on-channel-edit",
        discord_fault("PATCH", CHANNEL_EDIT, status=502, json={"message": "x"}, times=2),
        during=expire_token,
        slow_provider="wavespeed",
    ),
    Fault("discord-401-50027-on-token", discord_fault("PATCH", TOKEN_EDIT, status=401, code=50027, times=100)),
    Fault(
        "discord-403-50001-on-channel",
        discord_fault("PATCH", CHANNEL_EDIT, status=403, code=50001, times=100),
        during=expire_token,
        slow_provider="wavespeed",
    ),
    Fault(
        "discord-403-50001-channel-post-and-edit",
        both(
            discord_fault("PATCH", CHANNEL_EDIT, status=403, code=50001, times=100),
            discord_fault("POST", rf"/channels/{DEFAULT_CHANNEL_ID}/messages", status=403, code=50001, times=100),
        ),
        during=expire_token,
        slow_provider="wavespeed",
    ),
    Fault(
        "discord-404-10008-unknown-message",
        both(
            discord_fault("PATCH", TOKEN_EDIT, status=404, code=10008, times=100),
            discord_fault("PATCH", CHANNEL_EDIT, status=404, code=10008, times=100),
        ),
        slow_provider="wavespeed",
        during=lambda d, b, j: asyncio.sleep(0),
    ),
    Fault(
        "discord-404-10003-unknown-channel",
        both(
            discord_fault("PATCH", CHANNEL_EDIT, status=404, code=10003, times=100),
            discord_fault("POST", rf"/channels/{DEFAULT_CHANNEL_ID}/messages", status=404, code=10003, times=100),
        ),
        during=expire_token,
        slow_provider="wavespeed",
    ),
]


# --------------------------------------------------------------------------------------------- observations
async def ledger_rows(bot: Bot, job_id: int) -> list[dict[str, Any]]:
    rows = await bot.services.database.fetch_all(
        "SELECT kind, period_delta, bonus_delta FROM credit_ledger WHERE job_id = ? ORDER BY id", (job_id,)
    )
    return [dict(row) for row in rows]


async def used_by(bot: Bot, user_id: int) -> int:
    value = await bot.services.database.fetch_value(
        "SELECT COALESCE(SUM(used), 0) FROM credit_usage WHERE user_id = ?", (user_id,)
    )
    return int(value)


def pings(discord: FakeDiscord) -> list[str]:
    """Every message Discord was asked to make or edit that would notify someone."""
    found = []
    for request in discord.requests:
        body = request.response if isinstance(request.response, dict) else None
        if body is None or "content" not in body:
            continue
        if body.get("mention_everyone") or body.get("mention_roles") or body.get("mentions"):
            found.append(f"{request.method} {request.path}: {body.get('content', '')[:80]!r}")
    return found


def visible_state(discord: FakeDiscord, job: Any) -> str | None:
    """What the user sees of the finished job, or None if nothing shows its end."""
    if job.delivery_path == "dm":
        dms = [
            m
            for m in discord.messages.values()
            if f"#{job.id}" in (m.get("content") or "")
            and discord.state.channels.get(int(m["channel_id"])) is not None
            and discord.state.channels[int(m["channel_id"])].guild_id is None
        ]
        candidates = dms
    else:
        message = discord.messages.get(job.message_id) if job.message_id else None
        candidates = [message] if message else []
    for message in candidates:
        if job.status == "succeeded" and (message.get("attachments") or "http" in (message.get("content") or "")):
            return "result"
        if job.status == "failed" and job.error_message and job.error_message in (message.get("content") or ""):
            return "failure"
    return None


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_fault(tmp_path, fake_discord, fakes, fault: Fault):
    fake_discord.state.add_user("bob", user_id=OTHER_USER_ID)
    if fault.slow_provider:
        getattr(fakes, fault.slow_provider).timing = Timing(queued_s=0, processing_s=0.8)
    settings = e2e_settings(tmp_path, fake_discord, fakes, providers=fault.providers, **fault.settings)
    fault.inject(fake_discord, fakes)
    options: dict[str, Any] = {"prompt": "a red fox" + BAIT}
    if fault.command == "imagine":
        options["model"] = fault.model
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(fake_discord.slash_command(fault.command, options))
        job_id = await latest_job_id(bot)
        if fault.during is not None:
            await eventually(lambda: _running(bot, job_id))
            await fault.during(fake_discord, bot, job_id)
        lost = False
        try:
            job = await eventually(lambda: _finished(bot, job_id), timeout=20)
        except AssertionError:
            lost = True
            job = await bot.services.job_records.get(job_id)
        await asyncio.sleep(0.1)  # a second settlement, if any, would land now
        rows = await ledger_rows(bot, job_id)
        used = await used_by(bot, job.user_id)
    kinds = [row["kind"] for row in rows]
    settled = [kind for kind in kinds if kind in ("commit", "refund")]
    expected_used = job.cost if job.status == "succeeded" else 0
    double_charge = len(settled) > 1 or kinds.count("reserve") > 1 or (not lost and used != expected_used)
    shown = None if lost else visible_state(fake_discord, job)
    found_pings = pings(fake_discord)
    record(
        "fault",
        case=fault.name,
        layer="discord" if fault.name.startswith("discord") else "provider",
        status=job.status,
        delivery=job.delivery_path,
        shown=shown,
        ledger=kinds,
        job_lost=int(lost or shown is None),
        double_charge=int(double_charge),
        pings=len(found_pings),
    )
    assert not lost, f"job #{job_id} never finished: {job}"
    assert job.status in fault.statuses, (job.status, job.error_message)
    assert shown is not None, f"nothing shows how job #{job_id} ended ({job.status}, {job.delivery_path})"
    assert kinds in (["reserve", "commit"], ["reserve", "refund"]), kinds
    assert settled == (["commit"] if job.status == "succeeded" else ["refund"]), kinds
    assert used == expected_used, (used, expected_used, kinds)
    assert found_pings == []
    fake_discord.violations.clear()  # refusals the fault made Discord answer are recorded as violations


async def _running(bot: Bot, job_id: int) -> bool:
    job = await bot.services.job_records.get(job_id)
    return job is not None and job.status == "running" and job.message_id is not None


async def _finished(bot: Bot, job_id: int) -> Any:
    job = await bot.services.job_records.get(job_id)
    if job is None or job.status in ("queued", "running", "submitting") or job.delivered_at is None:
        return None
    return job


def test_the_checks_can_fail():
    """The bait would ping if sent with Discord's default allowed mentions, and ``pings`` would see it; a job whose
    message never showed its end is not counted as visible."""
    from types import SimpleNamespace

    from tests.fakes.discord.messages import PARSE_ALL, _mentions
    from tests.fakes.discord.state import FakeState

    state = FakeState(application_id=1, bot_user_id=2, clock=lambda: None)  # type: ignore[arg-type,return-value]
    state.add_user("bob", user_id=OTHER_USER_ID)
    message: dict[str, Any] = {"content": "a red fox" + BAIT}
    _mentions(state, message, None, PARSE_ALL)
    assert message["mention_everyone"]
    assert message["mentions"]
    assert message["mention_roles"]
    request = SimpleNamespace(method="POST", path="/channels/1/messages", response=message)
    assert pings(SimpleNamespace(requests=[request])) != []  # type: ignore[arg-type]
    job = SimpleNamespace(id=1, delivery_path="token", message_id=5, status="failed", error_message="It failed.")
    shown = SimpleNamespace(messages={5: {"content": "Making your image…", "channel_id": "1"}})
    assert visible_state(shown, job) is None  # type: ignore[arg-type]
