"""Registers the persistent job buttons, so clicks work on every message the bot ever sent, across restarts."""

from __future__ import annotations

from bot.app import Bot
from cogs._views import JobButton


async def setup(bot: Bot) -> None:
    bot.add_dynamic_items(JobButton)


async def teardown(bot: Bot) -> None:
    bot.remove_dynamic_items(JobButton)
