"""What /prefer shows: the member's own defaults, and the words of its answers, in the member's language. Pure."""

from __future__ import annotations

import discord

from bot.i18n import tr
from bot.render.job import EMBED_COLOUR, prompt_preview
from bot.storage.preferences import Preferences


def preferences_embed(preferences: Preferences, locale: object, *, saved: bool = False) -> discord.Embed:
    """Every preference, "not set" for the ones that are not; the same everywhere (they are per user)."""
    title = tr(locale, "Your preferences are saved") if saved else tr(locale, "Your preferences")
    embed = discord.Embed(title=title, colour=EMBED_COLOUR)
    if preferences.empty:
        embed.description = tr(
            locale,
            "You have no preferences: every command starts from this server's defaults. "
            "`/prefer set` chooses your own model, aspect ratio, privacy and a suffix for /imagine, /edit and /video.",
        )
        return embed
    embed.description = tr(
        locale,
        "Used by /imagine, /edit and /video everywhere. A slash option wins over an inline flag, which wins over "
        "your preference, which wins over the server's default.",
    )
    not_set = tr(locale, "not set")
    private = {
        None: not_set,
        True: tr(locale, "yes: only you see your results"),
        False: tr(locale, "no: results are public"),
    }
    model = f"`{preferences.model_key}`" if preferences.model_key else not_set
    embed.add_field(name=tr(locale, "Model"), value=model)
    embed.add_field(name=tr(locale, "Aspect ratio"), value=preferences.aspect_ratio or not_set)
    embed.add_field(name=tr(locale, "Private"), value=private[preferences.private])
    suffix = f"`{prompt_preview(preferences.suffix, 900)}`" if preferences.suffix else not_set
    embed.add_field(name=tr(locale, "Suffix (added to every prompt)"), value=suffix, inline=False)
    embed.set_footer(text=tr(locale, "A preference a command or model cannot use is skipped, and the receipt says so."))
    return embed


def cleared_text(had_any: bool, locale: object) -> str:
    if had_any:
        return tr(locale, "Your preferences are cleared: commands start from this server's defaults again.")
    return tr(locale, "You had no preferences to clear.")
