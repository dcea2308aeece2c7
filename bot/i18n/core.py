"""The one lookup: a message id (its English text) and a locale → the text in that language."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from providers.messages import Message

LANGUAGES = ("en", "zh-CN", "ja")
LOCALES_DIR = Path(__file__).with_name("locales")


def _catalogue(lang: str) -> dict[str, dict[str, str]]:
    """``locales/<lang>.json``: ``messages`` (English text → translation) and ``names`` (command names)."""
    data: dict[str, dict[str, str]] = json.loads((LOCALES_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


_LOADED = {lang: _catalogue(lang) for lang in LANGUAGES[1:]}
CATALOGUES: Mapping[str, Mapping[str, str]] = {lang: data["messages"] for lang, data in _LOADED.items()}
NAMES: Mapping[str, Mapping[str, str]] = {lang: data["names"] for lang, data in _LOADED.items()}


def language(locale: object) -> str:
    """``"zh-CN"``, ``"ja"`` or ``"en"`` for a Discord locale (``discord.Locale``, its value, or None)."""
    value = str(getattr(locale, "value", locale) or "")
    if value == "zh-CN":
        return "zh-CN"
    if value == "ja":
        return "ja"
    return "en"


class Msg(Message):
    """A message to render in the reader's language. As a ``str`` it is the English text, so code that only
    needs English (logs, tests, older callers) keeps working. The adapters' texts (``providers.messages.Message``,
    its base) are rendered the same way."""

    def render(self, locale: object) -> str:
        return _render_message(self, language(locale))


def msg(text: str, /, **params: Any) -> Msg:
    """A message rendered later, in the reader's language. ``text`` must be a literal (a test collects them)."""
    return Msg(text, params)


def tr(locale: object, text: str, /, **params: Any) -> str:
    """``text`` (a literal: a test collects them) in the language of ``locale``, with ``params`` filled in."""
    return Msg(text, params).render(locale)


def plural(count: int, one: str, other: str, /, **params: Any) -> Msg:
    """``one`` (a literal) when ``count`` is 1, else ``other`` (a literal); ``count`` is a parameter of both."""
    return Msg(one if count == 1 else other, {"count": count, **params})


def N_(text: str) -> str:
    """Marks a constant message id rendered later with ``render`` (a test collects it)."""
    return text


def render(value: str | None, locale: object) -> str:
    """A ``Msg`` in the language of ``locale``; a plain string translated when the catalogues know it."""
    if value is None:
        return ""
    lang = language(locale)
    if isinstance(value, Message):
        return _render_message(value, lang)
    return CATALOGUES.get(lang, {}).get(value, value) if lang != "en" else value


def _render_message(message: Message, lang: str) -> str:
    if lang == "en":
        return str(message)
    text = CATALOGUES.get(lang, {}).get(message.text, message.text)
    if not message.params:
        return text
    shown = {
        key: (_render_message(value, lang) if isinstance(value, Message) else value)
        for key, value in message.params.items()
    }
    return text.format(**shown)
