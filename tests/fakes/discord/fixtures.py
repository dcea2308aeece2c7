"""Pytest fixtures for the fake Discord. Use them from a test module with
``pytest_plugins = ["tests.fakes.discord.fixtures"]`` (or import them into a conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.discord.runner import pointed_at
from tests.fakes.discord.server import FakeDiscord


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started ``FakeDiscord`` with discord.py pointed at it (restored afterwards).

    Teardown asserts ``fake.violations == []``: a test that provokes violations on purpose clears the list.
    Close your client before this fixture tears down (``running_bot`` does).
    """
    async with FakeDiscord() as fake:
        with pointed_at(fake):
            yield fake
    assert fake.violations == [], "the bot broke Discord's rules:\n" + "\n".join(fake.violations)
