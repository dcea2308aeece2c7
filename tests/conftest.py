from __future__ import annotations

import aiohttp
import pytest

pytest_plugins = ["tests.fakes.discord.fixtures", "tests.postgres_server"]


@pytest.fixture
async def http_session():
    """A plain aiohttp session, as the bot shares one between its adapters."""
    async with aiohttp.ClientSession() as session:
        yield session
