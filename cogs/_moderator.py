"""What the moderator command groups share: every subcommand is acknowledged at once and then checked on the
bot's side (Manage Server, a moderator role of the server, or an operator), because Discord's default
permissions only hide a command and a server admin can show it to anyone."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.app import Bot
from bot.moderator_access import require_moderator
from bot.render.replies import defer_ephemeral


class ModeratorGroup(app_commands.Group):
    def __init__(self, bot: Bot) -> None:
        super().__init__()
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[Bot]) -> bool:  # type: ignore[override]
        await defer_ephemeral(interaction)
        services = self.bot.services
        await require_moderator(interaction, services.server_settings, services.settings)
        return True

    def guild_id(self, interaction: discord.Interaction[Bot]) -> int:
        """The server acted on: always the one the command is used in, never an id from the options."""
        assert interaction.guild_id is not None  # guild-only, and checked by interaction_check
        return interaction.guild_id
