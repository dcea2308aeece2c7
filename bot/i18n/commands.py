"""Command names, descriptions, options and choices in every language, through discord.py's translator: sync
sends them as ``name_localizations`` and ``description_localizations``. Names come from ``names`` in each
catalogue (Discord's rules: lowercase, no spaces, at most 32 characters); descriptions and choice names are
ordinary messages."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n.core import CATALOGUES, NAMES, language

NAME_LOCATIONS = frozenset({Where.command_name, Where.group_name, Where.parameter_name})


class CommandTranslator(app_commands.Translator):
    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        return translate_command_text(string.message, locale, context.location)


def translate_command_text(text: str, locale: object, location: Where) -> str | None:
    """The translation Discord shows for ``locale``, or None (Discord then shows the English text)."""
    lang = language(locale)
    if lang == "en" or str(getattr(locale, "value", locale)) != lang:
        return None
    table = NAMES[lang] if location in NAME_LOCATIONS else CATALOGUES[lang]
    return table.get(text)
