"""Who may use a server's moderator commands (``/quota-admin``, ``/server-settings``) and see other members' jobs:
Manage Server (or Administrator), a moderator role set for the server, or an operator listed in the settings.

Discord's ``default_member_permissions`` only hides commands (a server admin can show them to anyone), so every
moderator interaction is checked here again, on the bot's side.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.errors import NotAllowed
from bot.i18n import msg
from bot.jobs.requester import Requester
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings

MODERATORS_ONLY = msg(
    "Only moderators can use this: members with the Manage Server permission, a moderator role of this server "
    "(see `/server-settings moderator-roles`), or an operator of the bot."
)
SERVER_ONLY = msg("This command only works in a server.")


class ModeratorOnly(app_commands.CheckFailure, NotAllowed):
    """A refused moderator check. An ``AppCommandError`` (so the command tree's error handler answers it, which it
    does only for those when raised from a check) that carries a ``user_message`` like every ``BotError``."""


async def is_moderator(
    interaction: discord.Interaction, server_settings: ServerSettingsService, settings: Settings
) -> bool:
    """True for an operator anywhere, and in a server for Manage Server, Administrator or a moderator role."""
    requester = Requester.from_interaction(interaction)
    return requester.is_moderator(await server_settings.get(requester.guild_id), settings)


async def require_moderator(
    interaction: discord.Interaction, server_settings: ServerSettingsService, settings: Settings
) -> None:
    """Raise ``ModeratorOnly`` unless the user may moderate the interaction's server."""
    if not interaction.guild_id:
        raise ModeratorOnly(SERVER_ONLY)
    if not await is_moderator(interaction, server_settings, settings):
        raise ModeratorOnly(MODERATORS_ONLY)
