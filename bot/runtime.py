"""Wiring: everything built once, in order, and closed in reverse order. ``python -m bot`` and the end-to-end
tests both go through ``open_services`` and ``Bot``, so the tests run the production wiring."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.catalogue import Catalogue
from bot.settings import Settings
from bot.settings_store import ServerSettingsStore
from bot.storage.database import Database
from providers._http import Timeouts
from providers.base import Provider
from providers.luma_agents import LumaAgentsProvider
from providers.luma_reseller import LumaResellerProvider
from providers.lumozai import LumozaiProvider
from providers.wavespeed import WaveSpeedProvider

if TYPE_CHECKING:
    from bot.app import Bot

log = logging.getLogger(__name__)

HTTP_USER_AGENT = "genbot/0.1 (+https://github.com/; discord bot)"


def build_providers(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Provider]:
    """One adapter per provider that has an API key."""
    providers: dict[str, Provider] = {}
    for name, block in settings.providers().items():
        if not block.enabled:
            continue
        assert block.api_key is not None
        common = {
            "api_key": block.api_key,
            "base_url": block.base_url,
            "timeouts": Timeouts(submit_s=block.submit_timeout_s, fetch_s=block.poll_timeout_s),
        }
        if name == "wavespeed":
            providers[name] = WaveSpeedProvider(session, **common)
        elif name == "luma_agents":
            providers[name] = LumaAgentsProvider(session, **common)
        elif name == "luma_reseller":
            providers[name] = LumaResellerProvider(session, model_name=settings.luma_reseller.model_name, **common)
        elif name == "lumozai":
            providers[name] = LumozaiProvider(session, check_path=settings.lumozai.check_path, **common)
    return providers


@dataclass
class Services:
    """What the bot is built from. The job engine attaches itself in ``start`` and parks in ``stop``."""

    settings: Settings
    session: aiohttp.ClientSession
    database: Database
    providers: dict[str, Provider]
    catalogue: Catalogue
    server_settings: ServerSettingsStore
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, bot: Bot) -> None:
        """Called from the bot's setup hook, once the Discord HTTP client exists."""

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    discord.http.Route.BASE = settings.discord_api_base_url
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=120)
    async with (
        aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": HTTP_USER_AGENT}) as session,
        Database(settings.database_path) as database,
    ):
        providers = build_providers(settings, session)
        yield Services(
            settings=settings,
            session=session,
            database=database,
            providers=providers,
            catalogue=Catalogue.build(settings, providers),
            server_settings=ServerSettingsStore(database),
        )
