"""/help: what the bot can do, which models are enabled here, and how credits work."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bot
from bot.credits.wallets import PERSONAL_WALLET
from bot.jobs.requester import wallet_of
from bot.render.help import help_embed
from bot.render.replies import defer_ephemeral


class Help(commands.Cog):
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="What this bot can do, the models enabled here, how credits work")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def help(self, interaction: discord.Interaction[Bot]) -> None:
        await defer_ephemeral(interaction)
        services = self.bot.services
        config = await services.server_settings.get(interaction.guild_id)
        embed = help_embed(
            commands=_user_commands(self.bot.tree),
            models=[entry for entry in services.catalogue if config.allows_model(entry.key)],
            settings=services.settings,
            in_server=wallet_of(interaction) != PERSONAL_WALLET,
            locale=interaction.locale,
        )
        await interaction.edit_original_response(embed=embed)


def _user_commands(tree: app_commands.CommandTree[Bot]) -> list[tuple[str, str]]:
    """(name, description) of the commands everyone can see; moderator commands carry default permissions."""
    found = []
    for command in tree.get_commands(type=discord.AppCommandType.chat_input):
        if not isinstance(command, app_commands.Command | app_commands.Group) or command.default_permissions:
            continue
        if isinstance(command, app_commands.Group):
            found += [
                (sub.qualified_name, sub.description)
                for sub in command.walk_commands()
                if isinstance(sub, app_commands.Command)
            ]
        elif command.name != "help":
            found.append((command.qualified_name, command.description))
    return found


async def setup(bot: Bot) -> None:
    await bot.add_cog(Help(bot))
