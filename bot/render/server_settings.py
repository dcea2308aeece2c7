"""Pure text of ``/server-settings``: every setting of a server in one embed, and the words for each value."""

from __future__ import annotations

from collections.abc import Iterable

import discord

from bot.catalogue import Catalogue
from bot.render.job import EMBED_COLOUR, credits_text, duration_text
from bot.server_settings.config import ServerConfig
from bot.settings import Settings

NSFW_WORDS = {
    "block": "block: results flagged NSFW are never shown",
    "spoiler": "spoiler: results flagged NSFW are shown behind a spoiler",
    "age_restricted": "age-restricted: results flagged NSFW are shown only in age-restricted channels",
}


def nsfw_text(policy: str | None, settings: Settings) -> str:
    if policy is None:
        return f"the bot's default ({NSFW_WORDS[settings.default_nsfw_policy]})"
    return NSFW_WORDS.get(policy, policy)


def channels_text(channel_ids: Iterable[int]) -> str:
    ids = sorted(channel_ids)
    return ", ".join(f"<#{c}>" for c in ids) if ids else "every channel"


def roles_text(role_ids: Iterable[int]) -> str:
    ids = sorted(role_ids)
    return ", ".join(f"<@&{r}>" for r in ids) if ids else "none (Manage Server only)"


def models_text(enabled: frozenset[str] | None, catalogue: Catalogue) -> str:
    if enabled is None:
        return "all: " + (", ".join(f"`{m.key}`" for m in catalogue) or "none configured")
    keys = sorted(enabled)
    return ", ".join(f"`{k}`" for k in keys) if keys else "none"


def default_model_text(key: str | None) -> str:
    return f"`{key}`" if key else "the bot's default for each kind"


def banned_words_text(words: Iterable[str], limit: int = 1024) -> str:
    words = list(words)
    if not words:
        return "none"
    out = ""
    for index, word in enumerate(words):
        item = f"`{word.replace('`', 'ˋ')}`"
        addition = item if not out else f", {item}"
        if len(out) + len(addition) > limit - 20:
            return f"{out} … and {len(words) - index} more"
        out += addition
    return out


def settings_embed(config: ServerConfig, *, catalogue: Catalogue, settings: Settings) -> discord.Embed:
    embed = discord.Embed(title="Settings of this server", colour=EMBED_COLOUR)
    embed.add_field(name="Default model", value=default_model_text(config.default_model), inline=True)
    daily = (
        credits_text(config.default_limit)
        if config.default_limit is not None
        else f"the bot's default ({credits_text(settings.daily_credits)})"
    )
    embed.add_field(name="Daily credits per member", value=daily, inline=True)
    embed.add_field(
        name="Completion ping",
        value=(
            f"on: members are mentioned when a job that took over "
            f"{duration_text(settings.completion_ping_after_s)} is done"
            if config.completion_ping
            else "off"
        ),
        inline=True,
    )
    embed.add_field(name="Enabled models", value=models_text(config.enabled_models, catalogue)[:1024], inline=False)
    embed.add_field(name="NSFW results", value=nsfw_text(config.nsfw_policy, settings), inline=False)
    embed.add_field(name="Generation allowed in", value=channels_text(config.allowed_channels)[:1024], inline=False)
    embed.add_field(name="Moderator roles", value=roles_text(config.moderator_roles)[:1024], inline=False)
    count = len(config.banned_words)
    embed.add_field(
        name="Banned words",
        value=f"{count} (see `/server-settings banned-words list`)" if count else "none",
        inline=False,
    )
    embed.set_footer(text="Role limits and member limits: /quota-admin. Every change is in /quota-admin audit.")
    return embed
