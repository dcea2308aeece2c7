"""Autocomplete for the commands that make something: the models offered here, and the chosen model's ratios."""

from __future__ import annotations

import discord

from bot.app import Bot
from bot.catalogue import ModelEntry
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import plural, render
from providers.base import Kind


async def model_choices(
    bot: Bot, interaction: discord.Interaction, kind: Kind, current: str
) -> list[discord.app_commands.Choice[str]]:
    """Autocomplete: the models enabled and allowed here that do this kind, matching what was typed (≤ 25)."""
    needle = current.lower().strip()

    def cost(m: ModelEntry) -> str:
        return render(plural(m.cost, "{count} credit", "{count} credits"), interaction.locale)

    choices = [
        discord.app_commands.Choice(name=f"{m.key}: {m.title} ({cost(m)})"[:100], value=m.key)
        for m in await bot.services.specs.models_offered(interaction.guild_id, kind)
        if needle in m.key or needle in m.title.lower()
    ]
    return choices[:25]


async def ratio_choices(
    bot: Bot, interaction: discord.Interaction, kind: Kind, current: str
) -> list[discord.app_commands.Choice[str]]:
    """Autocomplete: the aspect ratios of the model chosen so far (or the default one), matching what was typed."""
    asked = getattr(interaction.namespace, "model", None)
    try:
        entry = await bot.services.specs.choose_model(interaction.guild_id, kind, asked or None)
    except (InvalidInput, NotAllowed):
        return []
    needle = current.strip()
    ratios = [r for r in entry.capabilities.aspect_ratios if r.startswith(needle) or needle in r]
    return [discord.app_commands.Choice(name=r, value=r) for r in ratios][:25]
