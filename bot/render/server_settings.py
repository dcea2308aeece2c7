"""Pure text of ``/server-settings``: every setting of a server in one embed, and the words for each value."""

from __future__ import annotations

from collections.abc import Iterable

import discord

from bot.catalogue import Catalogue
from bot.i18n import N_, Msg, msg, render, tr
from bot.render.job import EMBED_COLOUR, credits_text, duration_text
from bot.server_settings.config import ServerConfig
from bot.settings import Settings

NSFW_WORDS = {
    "block": N_("block: results flagged NSFW are never shown"),
    "spoiler": N_("spoiler: results flagged NSFW are shown behind a spoiler"),
    "age_restricted": N_("age-restricted: results flagged NSFW are shown only in age-restricted channels"),
}
# Each function below returns a ``Msg`` (or plain mentions and keys): rendered in the reader's language by the caller.


def nsfw_text(policy: str | None, settings: Settings) -> str:
    if policy is None:
        return msg("the bot's default ({policy})", policy=Msg(NSFW_WORDS[settings.default_nsfw_policy]))
    return Msg(NSFW_WORDS[policy]) if policy in NSFW_WORDS else policy


def channels_text(channel_ids: Iterable[int]) -> str:
    ids = sorted(channel_ids)
    return ", ".join(f"<#{c}>" for c in ids) if ids else msg("every channel")


def roles_text(role_ids: Iterable[int]) -> str:
    ids = sorted(role_ids)
    return ", ".join(f"<@&{r}>" for r in ids) if ids else msg("none (Manage Server only)")


def models_text(enabled: frozenset[str] | None, catalogue: Catalogue) -> str:
    if enabled is None:
        return msg("all: {models}", models=", ".join(f"`{m.key}`" for m in catalogue) or msg("none configured"))
    keys = sorted(enabled)
    return ", ".join(f"`{k}`" for k in keys) if keys else msg("none")


def default_model_text(key: str | None) -> str:
    return f"`{key}`" if key else msg("the bot's default for each kind")


def banned_words_text(words: Iterable[str], limit: int = 1024) -> str:
    words = list(words)
    if not words:
        return msg("none")
    out = ""
    for index, word in enumerate(words):
        item = f"`{word.replace('`', 'ˋ')}`"
        addition = item if not out else f", {item}"
        if len(out) + len(addition) > limit - 20:
            return msg("{words} … and {count} more", words=out, count=len(words) - index)
        out += addition
    return out


def settings_embed(
    config: ServerConfig, *, catalogue: Catalogue, settings: Settings, locale: object = "en"
) -> discord.Embed:
    def field(name: str, value: str, *, inline: bool) -> None:
        embed.add_field(name=render(name, locale), value=render(value, locale)[:1024], inline=inline)

    embed = discord.Embed(title=tr(locale, "Settings of this server"), colour=EMBED_COLOUR)
    field(N_("Default model"), default_model_text(config.default_model), inline=True)
    daily = (
        credits_text(config.default_limit)
        if config.default_limit is not None
        else msg("the bot's default ({credits})", credits=credits_text(settings.daily_credits))
    )
    field(N_("Daily credits per member"), daily, inline=True)
    ping = (
        msg(
            "on: members are mentioned when a job that took over {duration} is done",
            duration=duration_text(settings.completion_ping_after_s),
        )
        if config.completion_ping
        else msg("off")
    )
    field(N_("Completion ping"), ping, inline=True)
    field(N_("Enabled models"), models_text(config.enabled_models, catalogue), inline=False)
    field(N_("NSFW results"), nsfw_text(config.nsfw_policy, settings), inline=False)
    field(N_("Generation allowed in"), channels_text(config.allowed_channels), inline=False)
    field(N_("Moderator roles"), roles_text(config.moderator_roles), inline=False)
    count = len(config.banned_words)
    words = msg("{count} (see `/server-settings banned-words list`)", count=count) if count else msg("none")
    field(N_("Banned words"), words, inline=False)
    embed.set_footer(
        text=tr(locale, "Role limits and member limits: /quota-admin. Every change is in /quota-admin audit.")
    )
    return embed
