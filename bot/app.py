"""The Discord client: loads every cog, turns command errors into ephemeral replies, starts and stops the job
engine with the connection."""

from __future__ import annotations

import logging
import pkgutil

import discord
from discord import app_commands
from discord.ext import commands

import cogs
from bot.render.replies import error_text, send_ephemeral
from bot.runtime import Services

log = logging.getLogger(__name__)


class BotTree(app_commands.CommandTree["Bot"]):
    async def on_error(self, interaction: discord.Interaction[Bot], error: app_commands.AppCommandError) -> None:
        name = interaction.command.qualified_name if interaction.command else "command tree"
        await send_ephemeral(interaction, error_text(error, where=f"/{name} (interaction {interaction.id})"))


def cog_extensions() -> list[str]:
    """Every module in ``cogs/`` except private ``_`` helpers."""
    return sorted(
        f"{cogs.__name__}.{module.name}"
        for module in pkgutil.iter_modules(cogs.__path__)
        if not module.name.startswith("_")
    )


class Bot(commands.AutoShardedBot):
    def __init__(self, services: Services, *, run_engine: bool = True, **options: object) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=BotTree,
            http_trace=services.ops.metrics.discord_trace(),
            **options,  # type: ignore[arg-type]
        )
        self.services = services
        self.settings = services.settings
        self.run_engine = run_engine

    async def setup_hook(self) -> None:
        for extension in cog_extensions():
            await self.load_extension(extension)
        if self.run_engine:
            await self.services.start(self)
        log.info(
            "loaded %d extensions; models enabled: %s",
            len(self.extensions),
            ", ".join(entry.key for entry in self.services.catalogue) or "none",
        )

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("connected as %s (%s) to %d servers", self.user, self.user.id, len(self.guilds))

    async def close(self) -> None:
        """Stop taking work, let the job engine park its state, then close the gateway and the HTTP client."""
        await self.services.stop()
        await super().close()
