"""What /prefer shows: the member's own defaults, and the words of its answers. Pure."""

from __future__ import annotations

import discord

from bot.render.job import EMBED_COLOUR, prompt_preview
from bot.storage.preferences import Preferences

ORDER_LINE = (
    "A slash option wins over an inline flag, which wins over your preference, which wins over the server's default."
)


def preferences_embed(preferences: Preferences, *, title: str = "Your preferences") -> discord.Embed:
    """Every preference, "not set" for the ones that are not; the same everywhere (they are per user)."""
    embed = discord.Embed(title=title, colour=EMBED_COLOUR)
    if preferences.empty:
        embed.description = (
            "You have no preferences: every command starts from this server's defaults. "
            "`/prefer set` chooses your own model, aspect ratio, privacy and a suffix for /imagine, /edit and /video."
        )
        return embed
    embed.description = f"Used by /imagine, /edit and /video everywhere. {ORDER_LINE}"
    private = {None: "not set", True: "yes: only you see your results", False: "no: results are public"}
    embed.add_field(name="Model", value=f"`{preferences.model_key}`" if preferences.model_key else "not set")
    embed.add_field(name="Aspect ratio", value=preferences.aspect_ratio or "not set")
    embed.add_field(name="Private", value=private[preferences.private])
    suffix = f"`{prompt_preview(preferences.suffix, 900)}`" if preferences.suffix else "not set"
    embed.add_field(name="Suffix (added to every prompt)", value=suffix, inline=False)
    embed.set_footer(text="A preference a command or model cannot use is skipped, and the receipt says so.")
    return embed


def cleared_text(had_any: bool) -> str:
    if had_any:
        return "Your preferences are cleared: commands start from this server's defaults again."
    return "You had no preferences to clear."
