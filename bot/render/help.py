"""The /help embed: pure, from the command list, the models enabled here and the credit settings."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.catalogue import ModelEntry
from bot.settings import Settings
from providers.base import Kind

_KIND_WORDS = {Kind.IMAGE: "images", Kind.IMAGE_EDIT: "image edits", Kind.VIDEO: "videos"}
EMBED_COLOUR = discord.Colour(0x7C5CFF)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def help_embed(
    *, commands: Sequence[tuple[str, str]], models: Sequence[ModelEntry], settings: Settings, in_server: bool
) -> discord.Embed:
    embed = discord.Embed(
        title="AI images and videos, right here",
        description=(
            "Type a command, describe what you want, and I post the result here with buttons to "
            "reroll, edit or animate it. Midjourney-style flags work in prompts too, e.g. "
            "`a lighthouse at dusk --ar 16:9 --seed 42`."
        ),
        colour=EMBED_COLOUR,
    )
    if commands:
        lines = [f"`/{name}` {description}" for name, description in commands]
        embed.add_field(name="Commands", value="\n".join(lines)[:1024], inline=False)
    if models:
        lines = [
            f"`{m.key}` **{m.title}**: {m.blurb} "
            f"({', '.join(_KIND_WORDS[k] for k in sorted(m.kinds))}; {_plural(m.cost, 'credit')})"
            for m in models
        ]
        embed.add_field(name="Models enabled here", value="\n".join(lines)[:1024], inline=False)
    else:
        embed.add_field(
            name="Models enabled here",
            value="None yet. " + ("A moderator can enable models with `/server-settings`." if in_server else ""),
            inline=False,
        )
    scope = (
        "in each server that installed the bot (in DMs and in servers where only you installed the app, your "
        "personal wallet pays)"
        if in_server
        else "in your personal wallet, here and in every DM or server where only you installed the app (servers "
        "that installed the bot count separately)"
    )
    source = "from moderators" if in_server else "from credit packs" if settings.credit_packs else ""
    bonus = f"Bonus credits ({source})" if source else "Bonus credits"
    embed.add_field(
        name="Credits",
        value=(
            f"Each job costs its model's credits, counted {scope} and reset every day at "
            f"{settings.quota_reset_hour_utc:02d}:00 UTC. {bonus} are used after "
            "your daily credits and never expire. A job that fails is refunded. `/quota` shows what you have left."
        ),
        inline=False,
    )
    return embed
