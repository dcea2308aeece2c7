"""The /help embed: pure, from the command list, the models enabled here and the credit settings."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.catalogue import ModelEntry
from bot.i18n import N_, plural, render, tr
from bot.settings import Settings
from providers.base import Kind

_KIND_WORDS = {Kind.IMAGE: N_("images"), Kind.IMAGE_EDIT: N_("image edits"), Kind.VIDEO: N_("videos")}
EMBED_COLOUR = discord.Colour(0x7C5CFF)


def help_embed(
    *,
    commands: Sequence[tuple[str, str]],
    models: Sequence[ModelEntry],
    settings: Settings,
    in_server: bool,
    locale: object = "en",
) -> discord.Embed:
    embed = discord.Embed(
        title=tr(locale, "AI images and videos, right here"),
        description=tr(
            locale,
            "Type a command, describe what you want, and I post the result here with buttons to "
            "reroll, edit or animate it. Midjourney-style flags work in prompts too, e.g. "
            "`a lighthouse at dusk --ar 16:9 --seed 42`.",
        ),
        colour=EMBED_COLOUR,
    )
    if commands:
        lines = [f"`/{name}` {render(description, locale)}" for name, description in commands]
        embed.add_field(name=tr(locale, "Commands"), value="\n".join(lines)[:1024], inline=False)
    if models:
        lines = [
            f"`{m.key}` **{m.title}**: {render(m.blurb, locale)} "
            f"({', '.join(render(_KIND_WORDS[k], locale) for k in sorted(m.kinds))}; "
            f"{render(plural(m.cost, '{count} credit', '{count} credits'), locale)})"
            for m in models
        ]
        embed.add_field(name=tr(locale, "Models enabled here"), value="\n".join(lines)[:1024], inline=False)
    else:
        none_yet = tr(locale, "None yet.")
        if in_server:
            none_yet += " " + tr(locale, "A moderator can enable models with `/server-settings`.")
        embed.add_field(name=tr(locale, "Models enabled here"), value=none_yet, inline=False)
    if in_server:
        scope = tr(
            locale,
            "in each server that installed the bot (in DMs and in servers where only you installed the app, your "
            "personal wallet pays)",
        )
    else:
        scope = tr(
            locale,
            "in your personal wallet, here and in every DM or server where only you installed the app (servers "
            "that installed the bot count separately)",
        )
    if in_server:
        bonus = tr(locale, "Bonus credits (from moderators)")
    elif settings.credit_packs:
        bonus = tr(locale, "Bonus credits (from credit packs)")
    else:
        bonus = tr(locale, "Bonus credits")
    embed.add_field(
        name=tr(locale, "Credits"),
        value=tr(
            locale,
            "Each job costs its model's credits, counted {scope} and reset every day at "
            "{hour}:00 UTC. {bonus} are used after your daily "
            "credits and never expire. A job that fails is refunded. `/quota` shows what you have left.",
            scope=scope,
            hour=f"{settings.quota_reset_hour_utc:02d}",
            bonus=bonus,
        ),
        inline=False,
    )
    return embed
