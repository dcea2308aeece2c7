"""/prefer show, /prefer set and /prefer clear: a member's own defaults for /imagine, /edit and /video, the same
in every server and in DMs. Every answer is visible only to the member."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.app import Bot
from bot.render.preferences import cleared_text, preferences_embed
from bot.render.replies import defer_ephemeral

SUFFIX_MAX = 500


class Prefer(app_commands.Group):
    def __init__(self, bot: Bot) -> None:
        super().__init__(
            name="prefer",
            description="Your own defaults for /imagine, /edit and /video",
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
        )
        self.bot = bot

    @app_commands.command(name="show", description="Your preferences")
    async def show(self, interaction: discord.Interaction[Bot]) -> None:
        await defer_ephemeral(interaction)
        preferences = await self.bot.services.preferences.get(interaction.user.id)
        await interaction.edit_original_response(embed=preferences_embed(preferences, interaction.locale))

    @app_commands.command(name="set", description="Choose your own defaults (the options you leave out stay)")
    @app_commands.describe(
        model='The model your commands use unless you pick one ("none" removes it)',
        aspect_ratio='The shape your images and videos get unless you give one, e.g. 16:9 ("none" removes it)',
        private="Whether only you see your results unless you say otherwise",
        suffix='Added to every prompt; inline flags work, e.g. "soft light --style manga" ("none" removes it)',
    )
    async def set(
        self,
        interaction: discord.Interaction[Bot],
        model: app_commands.Range[str, 1, 64] | None = None,
        aspect_ratio: app_commands.Range[str, 1, 32] | None = None,
        private: bool | None = None,
        suffix: app_commands.Range[str, 1, SUFFIX_MAX] | None = None,
    ) -> None:
        await defer_ephemeral(interaction)
        preferences = await self.bot.services.preferences.set(
            interaction.user.id, model=model, aspect_ratio=aspect_ratio, private=private, suffix=suffix
        )
        embed = preferences_embed(preferences, interaction.locale, saved=True)
        await interaction.edit_original_response(embed=embed)

    @app_commands.command(name="clear", description="Forget all your preferences")
    async def clear(self, interaction: discord.Interaction[Bot]) -> None:
        await defer_ephemeral(interaction)
        had_any = await self.bot.services.preferences.clear(interaction.user.id)
        await interaction.edit_original_response(content=cleared_text(had_any, interaction.locale))

    @set.autocomplete("model")
    async def _model(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        needle = current.lower().strip()
        return [
            app_commands.Choice(name=f"{m.key}: {m.title}"[:100], value=m.key)
            for m in self.bot.services.catalogue
            if needle in m.key or needle in m.title.lower()
        ][:25]

    @set.autocomplete("aspect_ratio")
    async def _ratio(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        chosen = self.bot.services.catalogue.get(str(getattr(interaction.namespace, "model", "") or "").lower())
        entries = [chosen] if chosen is not None else list(self.bot.services.catalogue)
        ratios = dict.fromkeys(r for e in entries for r in e.capabilities.aspect_ratios)
        return [app_commands.Choice(name=r, value=r) for r in ratios if current.strip() in r][:25]


async def setup(bot: Bot) -> None:
    bot.tree.add_command(Prefer(bot))


async def teardown(bot: Bot) -> None:
    bot.tree.remove_command("prefer")
