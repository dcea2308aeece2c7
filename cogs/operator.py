"""/operator: the bot's operators (``OPERATOR_USER_IDS``) only, wherever it is used; a server's Administrator is
refused like anyone else. ``status`` per provider, ``pause provider [reason]``, ``resume provider``."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.app import Bot
from bot.i18n import N_, tr
from bot.moderator_access import ModeratorOnly
from bot.render.operator import OPERATORS_ONLY, paused_text, resumed_text, status_embed
from bot.render.replies import defer_ephemeral


class Operator(app_commands.Group, name="operator", description="The bot's operators: providers, pauses, spending"):
    def __init__(self, bot: Bot) -> None:
        super().__init__()
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[Bot]) -> bool:  # type: ignore[override]
        await defer_ephemeral(interaction)
        if interaction.user.id not in self.bot.settings.operator_user_ids:
            raise ModeratorOnly(OPERATORS_ONLY)
        return True

    async def _provider(self, interaction: discord.Interaction[Bot], provider: str) -> str | None:
        if provider in self.bot.settings.providers():
            return provider
        names = ", ".join(f"`{name}`" for name in self.bot.settings.providers())
        text = tr(
            interaction.locale,
            "There is no provider `{provider}`. Providers: {providers}.",
            provider=provider,
            providers=names,
        )
        await interaction.edit_original_response(content=text)
        return None

    @app_commands.command(name="status", description="Each provider: paused or not, queue, failures, spending")
    async def status(self, interaction: discord.Interaction[Bot]) -> None:
        status = await self.bot.services.ops.status()
        await interaction.edit_original_response(embed=status_embed(status, interaction.locale))

    @app_commands.command(name="pause", description="Stop sending jobs to a provider; they wait in line")
    @app_commands.describe(provider="The provider", reason="Why (shown in /operator status)")
    async def pause(self, interaction: discord.Interaction[Bot], provider: str, reason: str = "") -> None:
        name = await self._provider(interaction, provider)
        if name is None:
            return
        new = await self.bot.services.ops.pause(
            name, code="manual", reason=reason or N_("paused by an operator"), paused_by=f"<@{interaction.user.id}>"
        )
        await interaction.edit_original_response(content=paused_text(name, new, interaction.locale))

    @app_commands.command(name="resume", description="Send a paused provider's waiting jobs again")
    @app_commands.describe(provider="The provider")
    async def resume(self, interaction: discord.Interaction[Bot], provider: str) -> None:
        name = await self._provider(interaction, provider)
        if name is None:
            return
        was_paused = await self.bot.services.ops.resume(name)
        await interaction.edit_original_response(content=resumed_text(name, was_paused, interaction.locale))

    @pause.autocomplete("provider")
    @resume.autocomplete("provider")
    async def _providers(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=name, value=name)
            for name in self.bot.settings.providers()
            if current.lower() in name.lower()
        ][:25]


async def setup(bot: Bot) -> None:
    bot.tree.add_command(Operator(bot))
