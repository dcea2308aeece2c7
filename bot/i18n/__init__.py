"""Three languages: English (the source text), Simplified Chinese (``zh-CN``) and Japanese (``ja``).

A message's id is its English text (gettext style). ``msg(text, **params)`` makes a ``Msg`` to render later, in
the locale of whoever reads it (errors raised deep in ``bot/``); ``tr(locale, text, **params)`` renders at once.
``render(value, locale)`` renders a ``Msg`` or a plain string (a plain string known to the catalogues, such as
a failure text stored with a job, is translated too). ``N_(text)`` marks a constant that is rendered later;
``plural(count, one, other)`` picks the English form by count.
The adapters in ``providers/`` (which cannot import ``bot``) make their texts with ``providers.messages.msg``: a
``Message``, the base class of ``Msg``, which ``render`` renders the same way.
The catalogues are ``locales/zh-CN.json`` and ``locales/ja.json`` (``messages``: English text → translation, the
same ``{placeholders}``; ``names``: command, group and option names); ``commands.py`` is the command translator.
"""

from bot.i18n.core import LANGUAGES, N_, Msg, language, msg, plural, render, tr

__all__ = ["LANGUAGES", "N_", "Msg", "language", "msg", "plural", "render", "tr"]
