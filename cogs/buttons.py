"""Registers the persistent job buttons and the Edit and Extend modals' submission handlers, so clicks and
submissions work on every message the bot ever sent, across restarts."""

from __future__ import annotations

from bot.app import Bot
from cogs._views import JobButton, on_edit_modal_submit, on_extend_modal_submit


async def setup(bot: Bot) -> None:
    bot.add_dynamic_items(JobButton)
    bot.add_listener(on_edit_modal_submit, "on_interaction")
    bot.add_listener(on_extend_modal_submit, "on_interaction")


async def teardown(bot: Bot) -> None:
    bot.remove_dynamic_items(JobButton)
    bot.remove_listener(on_edit_modal_submit, "on_interaction")
    bot.remove_listener(on_extend_modal_submit, "on_interaction")
