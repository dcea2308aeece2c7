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
SOURCES = ("bot", "cogs", "providers")  # providers/: ``providers.messages.msg``, the same marker
# Which positional arguments of each marker are message ids.
MARKERS = {"msg": (0,), "N_": (0,), "tr": (1,), "plural": (1, 2)}


@dataclass(frozen=True)
class Found:
    text: str | None  # None: not a literal
    where: str


@dataclass(frozen=True)
class MsgCall:
    text: str
    params: frozenset[str] | None  # None: passed as **mapping, not checkable
    where: str


def _sources() -> list[Path]:
    """The modules whose messages are collected (``bot/i18n`` and ``providers/messages.py``, which define the
    markers, excepted)."""
    skipped = (ROOT / "bot" / "i18n", ROOT / "providers" / "messages.py")
    paths = [path for top in SOURCES for path in sorted((ROOT / top).rglob("*.py"))]
    return [path for path in paths if not any(path.is_relative_to(skip) for skip in skipped)]


def _called(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def code_messages() -> list[Found]:
    """Every argument of ``msg``, ``tr``, ``N_`` and ``plural`` in ``bot/``, ``cogs/`` and ``providers/``, with
    where it is."""
    found: list[Found] = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for index in MARKERS.get(_called(node), ()):
                if index >= len(node.args):
                    continue
                arg = node.args[index]
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                found.append(Found(arg.value if literal else None, where))  # type: ignore[union-attr]
    return found


def msg_calls() -> list[MsgCall]:
    """Every ``msg("literal", **params)`` call, with the names of the parameters it passes."""
    found: list[MsgCall] = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and _called(node) == "msg" and node.args):
                continue
            arg = node.args[0]
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                continue
            names = [k.arg for k in node.keywords]
            params = None if None in names else frozenset(n for n in names if n is not None)
            found.append(MsgCall(arg.value, params, f"{path.relative_to(ROOT)}:{node.lineno}"))
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
    for top in ("bot", "cogs"):  # providers/: unwrapped_provider_texts
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


# In providers/: where a text for people is given (an error's ``user_message``, a job state's ``failure_message``,
# an adapter's ``_refuse(detail, user_message)``), and the names of the constants and tables that hold such texts.
PROVIDER_SHOWN_KEYWORDS = ("user_message", "failure_message")
PROVIDER_SHOWN_ARGUMENT = {"_refuse": 1}
PROVIDER_TEXT_NAMES = ("MESSAGE", "FAILURE", "NO_OUTPUT")


def unwrapped_provider_texts() -> list[str]:
    """Where an adapter gives people a bare English text (plain or f-string) instead of ``msg(...)``: as
    ``user_message=``/``failure_message=``, as ``_refuse``'s message, or in a ``default_user_message``, a
    ``*_MESSAGE`` constant or a failure table. Only ``msg`` texts reach the catalogues with their parameters."""
    found: list[str] = []
    for path in sorted((ROOT / "providers").rglob("*.py")):
        found += bare_provider_texts_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return found


def bare_provider_texts_in(source: str, where: str) -> list[str]:
    """``unwrapped_provider_texts`` for one module's source: ``where:line`` of each bare text, in line order."""
    found: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            index = PROVIDER_SHOWN_ARGUMENT.get(_called(node))
            shown = [node.args[index]] if index is not None and index < len(node.args) else []
            shown += [k.value for k in node.keywords if k.arg in PROVIDER_SHOWN_KEYWORDS]
            found += [node.lineno for arg in shown if _bare_texts(arg)]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            holds_texts = any(
                name == "default_user_message" or any(part in name.upper() for part in PROVIDER_TEXT_NAMES)
                for name in names
            )
            if holds_texts and node.value is not None and _bare_texts(node.value):
                found.append(node.lineno)
    return [f"{where}:{line}" for line in sorted(found)]


def _bare_texts(node: ast.expr) -> bool:
    """A literal or f-string with words in ``node`` outside any call such as ``msg(...)``: dict values, tuples,
    lists, concatenations and conditionals are looked into; dict keys are codes, not texts."""
    if isinstance(node, ast.Constant | ast.JoinedStr):
        return _has_words(node)
    if isinstance(node, ast.Call):
        return False  # msg(...), or a value computed elsewhere
    if isinstance(node, ast.Dict):
        return any(_bare_texts(value) for value in node.values)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_bare_texts(item) for item in node.elts)
    if isinstance(node, ast.BinOp):
        return _bare_texts(node.left) or _bare_texts(node.right)
    if isinstance(node, ast.IfExp):
        return _bare_texts(node.body) or _bare_texts(node.orelse)
    return False


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
    """Texts ``providers/`` gives for people that are not ``msg(...)`` literals in its code: each error class's
    default message (also a ``msg`` literal, checked here through the classes themselves, a plugin's too) and each
    model's blurb (a plain string, which ``bot.i18n.render`` translates)."""
    texts = {cls.default_user_message.text for cls in provider_error_classes()}
    return texts | {model.blurb for spec in registry.specs() for model in spec.models if model.blurb}


def provider_error_classes() -> set[type[ProviderError]]:
    return _subclasses(ProviderError)


def _subclasses(cls: type[ProviderError]) -> set[type[ProviderError]]:
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
    "MsgCall",
    "Where",
    "code_messages",
    "command_strings",
    "missing_report",
    "msg_calls",
    "placeholders",
    "provider_error_classes",
    "provider_texts",
    "unwrapped_provider_texts",
    "unwrapped_texts",
]
