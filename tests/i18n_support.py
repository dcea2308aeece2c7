"""Finding every message of the bot: the literals passed to ``bot.i18n`` in the code, and the texts of the slash
commands (names, descriptions, options, choices) as discord.py's translator is asked for them."""

from __future__ import annotations

import ast
import itertools
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where
from discord.ext import commands

from bot.app import cog_extensions
from bot.i18n.commands import NAME_LOCATIONS
from providers import registry
from providers.errors import ProviderError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bot", "cogs")
# Which positional arguments of each marker are message ids.
MARKERS = {"msg": (0,), "N_": (0,), "tr": (1,), "plural": (1, 2)}


@dataclass(frozen=True)
class Found:
    text: str | None  # None: not a literal
    where: str


def code_messages() -> list[Found]:
    """Every argument of ``msg``, ``tr``, ``N_`` and ``plural`` in ``bot/`` and ``cogs/`` (``bot/i18n`` itself
    excepted), with where it is."""
    found: list[Found] = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.is_relative_to(ROOT / "bot" / "i18n"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                for index in MARKERS.get(name, ()):
                    if index >= len(node.args):
                        continue
                    arg = node.args[index]
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                    found.append(Found(arg.value if literal else None, where))  # type: ignore[union-attr]
    return found


# Calls whose text argument reaches people: it must come wrapped (msg/tr), not as a bare or f-string literal.
SHOWN_ARGUMENT = {
    **dict.fromkeys(
        ("BotError", "InvalidInput", "NotAllowed", "QuotaExceeded", "NotFound", "FetchError", "ModeratorOnly"), 0
    ),
    "BadImage": 0,
    "send_ephemeral": 1,
    "ButtonSpec": 1,
}
SHOWN_KEYWORDS = ("content", "title", "label", "description", "placeholder", "text")
EMBED_FIELD_KEYWORDS = ("name", "value")  # of add_field
# Their texts are translated another way (slash command texts: the command translator) or are for operators.
NOT_SHOWN_CALLS = frozenset(
    {"command", "Group", "__init__", "describe", "Choice", "add_parser", "add_argument", "Response"}
)  # Response: an HTTP answer to a provider or a probe, not to people


def unwrapped_texts() -> list[str]:
    """Where a literal English text (plain or f-string) goes to people without ``msg``/``tr``: an error's message,
    ``send_ephemeral``'s text, a button's label, or a ``content=``/``title=``/``label=``… keyword with words."""
    found: list[str] = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if name in NOT_SHOWN_CALLS:
                    continue
                shown = [node.args[i] for i in (SHOWN_ARGUMENT.get(name),) if i is not None and i < len(node.args)]
                keywords = SHOWN_KEYWORDS + (EMBED_FIELD_KEYWORDS if name == "add_field" else ())
                shown += [k.value for k in node.keywords if k.arg in keywords]
                for arg in shown:
                    if _has_words(arg):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _has_words(node: ast.expr) -> bool:
    """A literal or f-string with at least two letters in a row outside its placeholders."""
    parts = node.values if isinstance(node, ast.JoinedStr) else [node]
    text = "".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
    return any(a.isalpha() and b.isalpha() for a, b in itertools.pairwise(text))


class _Recorder(app_commands.Translator):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.texts: set[str] = set()

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale, context: Any) -> str | None:
        (self.names if context.location in NAME_LOCATIONS else self.texts).add(string.message)
        return None


async def command_strings() -> tuple[set[str], set[str]]:
    """(names, texts) of every slash command, as the translator is asked for them at sync."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    for extension in cog_extensions():
        await bot.load_extension(extension)
    recorder = _Recorder()
    for command in bot.tree.get_commands():
        await command.get_translated_payload(bot.tree, recorder)
    return recorder.names, recorder.texts - {""}


def provider_texts() -> set[str]:
    """Texts ``providers/`` (which cannot import ``bot``) gives for people: each error class's default message, each
    adapter's ``*_MESSAGE`` constants (the messages its errors carry) and each model's blurb. They reach people as
    plain strings, which ``bot.i18n.render`` translates."""
    texts = {cls.default_user_message for cls in _subclasses(ProviderError)} | _message_constants()
    return texts | {model.blurb for spec in registry.specs() for model in spec.models if model.blurb}


def _message_constants() -> set[str]:
    """Module-level string constants named ``*_MESSAGE`` in ``providers/``."""
    found: set[str] = set()
    for path in sorted((ROOT / "providers").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Constant):
                continue
            named = any(isinstance(t, ast.Name) and t.id.endswith("_MESSAGE") for t in node.targets)
            if named and isinstance(node.value.value, str):
                found.add(node.value.value)
    return found


def _subclasses(cls: type) -> set[type]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def missing_report(lang: str, missing: list[str], *, section: str = "messages") -> str:
    lines = "\n".join(f'    {json.dumps(text, ensure_ascii=False)}: "",' for text in sorted(missing))
    return (
        f'{len(missing)} texts have no {lang} translation; add them to "{section}" in bot/i18n/locales/{lang}.json'
        f" and translate them:\n{lines}"
    )


__all__ = [
    "Found",
    "Where",
    "code_messages",
    "command_strings",
    "missing_report",
    "placeholders",
    "provider_texts",
    "unwrapped_texts",
]
