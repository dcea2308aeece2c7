"""End-to-end harness: the production wiring (``open_services`` + ``Bot``) against the fake Discord and the four
fake provider servers, with a real SQLite file, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import Bot
from bot.runtime import open_services
from bot.settings import Settings
from bot.storage.jobs import JobRecord
from tests.fakes.discord import FakeDiscord, InteractionRecord, running_bot
from tests.fakes.providers._server import FakeProviderServer, Timing
from tests.fakes.providers.luma_agents import FakeLumaAgents
from tests.fakes.providers.luma_reseller import FakeLumaReseller
from tests.fakes.providers.lumozai import FakeLumozai
from tests.fakes.providers.wavespeed import FakeWaveSpeed

FAST = Timing(queued_s=0.0, processing_s=0.05)


@dataclass
class ProviderFakes:
    wavespeed: FakeWaveSpeed
    luma_agents: FakeLumaAgents
    luma_reseller: FakeLumaReseller
    lumozai: FakeLumozai

    def all(self) -> list[FakeProviderServer]:
        return [self.wavespeed, self.luma_agents, self.luma_reseller, self.lumozai]

    def settings_blocks(self, **per_provider: dict[str, Any]) -> dict[str, dict[str, Any]]:
        blocks = {}
        for name, fake in vars(self).items():
            blocks[name] = {
                "api_key": fake.api_key,
                "base_url": fake.base_url,
                "first_poll_s": 0.02,
                "poll_interval_s": 0.02,
                "max_poll_interval_s": 0.2,
                "submit_timeout_s": 5,
                "poll_timeout_s": 5,
                "requests_per_minute": 60_000,
                **per_provider.get(name, {}),
            }
        return blocks


@contextlib.asynccontextmanager
async def provider_fakes() -> AsyncIterator[ProviderFakes]:
    async with FakeWaveSpeed() as ws, FakeLumaAgents() as la, FakeLumaReseller() as lr, FakeLumozai() as lz:
        fakes = ProviderFakes(ws, la, lr, lz)
        for fake in fakes.all():
            fake.timing = Timing(FAST.queued_s, FAST.processing_s)
        yield fakes


def e2e_settings(
    tmp_path: Path,
    discord: FakeDiscord,
    fakes: ProviderFakes,
    *,
    providers: dict[str, dict[str, Any]] | None = None,
    settings_class: type[Settings] = Settings,
    **overrides: Any,
) -> Settings:
    values: dict[str, Any] = {
        "discord_token": discord.token,
        "discord_api_base_url": discord.api_base,
        "database_path": tmp_path / "bot.sqlite3",
        "output_dir": tmp_path / "outputs",
        "allow_loopback_fetch": True,
        "attachment_hosts": "127.0.0.1",  # the fake Discord's CDN
        "edit_min_interval_s": 0.05,
        "queue_edit_interval_s": 0.5,
        "completion_ping_after_s": 3600,
        "poll_workers": 8,
        **fakes.settings_blocks(**(providers or {})),
        **overrides,
    }
    return settings_class(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def bot_running(settings: Settings, discord: FakeDiscord) -> AsyncIterator[Bot]:
    """The bot as ``python -m bot`` builds it, connected to the fake; closed (and its services) on exit."""
    async with open_services(settings) as services:
        bot = Bot(services)
        async with running_bot(bot, discord):
            yield bot


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Wait until ``check()`` (sync or async) returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def job_when(bot: Bot, job_id: int, predicate: Callable[[JobRecord], bool], timeout: float = 10.0) -> JobRecord:
    async def check() -> JobRecord | None:
        job = await bot.services.job_records.get(job_id)
        return job if job is not None and predicate(job) else None

    return await eventually(check, timeout=timeout)


async def delivered(bot: Bot, job_id: int, timeout: float = 10.0) -> JobRecord:
    return await job_when(bot, job_id, lambda job: job.delivered_at is not None, timeout)


async def latest_job_id(bot: Bot, user_id: int | None = None) -> int:
    query = "SELECT MAX(id) FROM jobs" + (" WHERE user_id = ?" if user_id else "")

    async def check() -> int | None:
        return await bot.services.database.fetch_value(query, (user_id,) if user_id else ())

    return int(await eventually(check))


def calls(discord: FakeDiscord, record: InteractionRecord) -> list[str]:
    """Method and path of every request made with an interaction's token, in order, with ids generalised."""
    return [f"{r.method} {generalise(r.path)}" for r in discord.requests_for(record.token)]


def generalise(path: str) -> str:
    parts = []
    for part in path.split("/"):
        parts.append("{id}" if part.isdigit() else ("{token}" if len(part) > 40 else part))
    return "/".join(parts)
