"""Midjourney-style inline flags (``--ar 16:9 --seed 42``): the flag table and the grammar that takes them out of a
prompt. Pure: no I/O. ``parse_prompt`` splits flags from the prompt text; ``bot/prompting/options.py`` checks the
values against one model.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.catalogue import ModelEntry
from bot.errors import InvalidInput
from bot.i18n import N_, Msg, msg


@dataclass(frozen=True)
class Flag:
    name: str
    field: str | None  # the GenerationRequest field it sets; None for --model
    value: str  # text, ratio, int, float, choice, size, duration or switch
    needs: str = ""  # what a value looks like, for "--ar needs a ratio like 16:9"
    aliases: tuple[str, ...] = ()
    caps: str = ""  # the Capabilities attribute holding its range or its choices


FLAGS: tuple[Flag, ...] = (
    Flag("model", None, "text", N_("a model key like uni-1")),
    Flag("ar", "aspect_ratio", "ratio", N_("a ratio like 16:9"), ("aspect",), "aspect_ratios"),
    Flag("seed", "seed", "int", N_("a whole number like 42"), caps="seed_range"),
    Flag("style", "style", "choice", N_("a style like manga"), caps="styles"),
    Flag("format", "output_format", "choice", N_("a file format like png"), caps="output_formats"),
    Flag("size", "size", "size", N_("a size like 1024x768"), caps="size_range"),
    Flag("steps", "steps", "int", N_("a whole number like 28"), caps="steps_range"),
    Flag("guidance", "guidance", "float", N_("a number like 3.5"), caps="guidance_range"),
    Flag("quality", "quality", "int", N_("a whole number like 90"), caps="quality_range"),
    Flag("duration", "duration_s", "duration", N_("a length like 10s"), caps="durations_s"),
    Flag("res", "resolution", "choice", N_("a resolution like 1080p"), ("resolution",), "resolutions"),
    Flag("loop", "loop", "switch"),
    Flag("enhance", "enhance_prompt", "switch"),
    Flag("lora", "lora_scale", "float", N_("a number like 0.8"), caps="lora_scale_range"),
    Flag("mp", "megapixels", "choice", N_("a number of megapixels like 1"), ("megapixels",), "megapixels"),
    Flag("strength", "prompt_strength", "float", N_("a number like 0.8"), caps="prompt_strength_range"),
    Flag("web", "web_search", "switch"),
)
FLAG_BY_NAME: dict[str, Flag] = {name: flag for flag in FLAGS for name in (flag.name, *flag.aliases)}

# A flag starts at a word boundary with "--", or with the em or en dash a phone makes of "--".
_FLAG_RE = re.compile(r"(?<!\S)(?P<dash>--|[—–])(?P<name>[A-Za-z][A-Za-z0-9_-]*)")
_GAP_RE = re.compile(r"[^\S\n]+")
_WORD_RE = re.compile(r"\S+")
# Ratios and sizes may be written with spaces inside: "--ar 16 : 9".
_PAIR_RE = re.compile(r"\d+(?:\.\d+)?[^\S\n]*[:/x×*][^\S\n]*\d+(?:\.\d+)?(?!\S)", re.IGNORECASE)
SWITCH_WORDS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}


@dataclass(frozen=True)
class ParsedPrompt:
    prompt: str
    flags: dict[str, str | bool]


def _all_flags() -> str:
    return ", ".join(f"--{flag.name}" for flag in FLAGS)


class UnknownFlag(InvalidInput):
    """A ``--name`` that is no flag at all. ``hint`` (maybe empty) suggests the closest flag; a command that knows
    the model can list that model's flags instead of every flag."""

    def __init__(self, name: str, hint: str) -> None:
        super().__init__(
            msg("`--{name}` is not a flag.{hint} The flags are: {flags}.", name=name, hint=hint, flags=_all_flags())
        )
        self.name = name
        self.hint = hint


def _unknown(name: str) -> UnknownFlag:
    close = difflib.get_close_matches(name.lower(), list(FLAG_BY_NAME), n=1)
    hint = msg(" Did you mean --{flag}?", flag=FLAG_BY_NAME[close[0]].name) if close else ""
    return UnknownFlag(name, hint)


def missing_value(flag: Flag) -> InvalidInput:
    if flag.value == "switch":
        return InvalidInput(
            msg("--{flag} is a switch: write just --{flag} (or --{flag}=no to turn it off).", flag=flag.name)
        )
    return InvalidInput(msg("--{flag} needs {needs}.", flag=flag.name, needs=Msg(flag.needs)))


def _flag_at(line: str, pos: int) -> tuple[re.Match[str], Flag | None] | None:
    """The flag starting at or after ``pos``, with its table entry (None for an unknown ``--name``)."""
    while (match := _FLAG_RE.search(line, pos)) is not None:
        flag = FLAG_BY_NAME.get(match["name"].lower())
        if flag is not None or match["dash"] == "--":
            return match, flag
        pos = match.end()  # an em or en dash before an unknown word is punctuation, not a flag
    return None


def _is_flag(word: str) -> bool:
    found = _flag_at(word, 0)
    return found is not None and found[0].start() == 0


def _value_after(line: str, flag: Flag, end: int) -> tuple[str | bool, int]:
    """The value of ``flag`` whose name ends at ``end``, and where that value ends."""
    if line.startswith("=", end):
        word = _WORD_RE.match(line, end + 1)
        text, stop = (word[0], word.end()) if word else ("", end + 1)
        if flag.value == "switch":
            if text.lower() not in SWITCH_WORDS:
                raise missing_value(flag)
            return SWITCH_WORDS[text.lower()], stop
        if not text:
            raise missing_value(flag)
        return text, stop
    if flag.value == "switch":
        return True, end
    gap = _GAP_RE.match(line, end)
    if gap is None:
        raise missing_value(flag)
    word = (_PAIR_RE.match(line, gap.end()) if flag.value in ("ratio", "size") else None) or _WORD_RE.match(
        line, gap.end()
    )
    if word is None or _is_flag(word[0]):
        raise missing_value(flag)
    return word[0], word.end()


def _parse_line(line: str, flags: dict[str, str | bool]) -> str | None:
    """The line with its flags taken out and its spacing tidied; None when it held only flags."""
    kept: list[str] = []
    pos = 0
    while (found := _flag_at(line, pos)) is not None:
        match, flag = found
        if flag is None:
            raise _unknown(match["name"])
        value, stop = _value_after(line, flag, match.end())
        flags[flag.name] = value
        kept.append(line[pos : match.start()])
        pos = stop
    if not kept:
        return " ".join(line.split())
    text = " ".join(("".join(kept) + line[pos:]).split())
    return text or None


def parse_prompt(text: str) -> ParsedPrompt:
    """Split inline flags from the prompt. Raises ``InvalidInput`` for an unknown flag or a missing value."""
    flags: dict[str, str | bool] = {}
    lines = [line for line in (_parse_line(raw, flags) for raw in text.split("\n")) if line is not None]
    return ParsedPrompt(prompt="\n".join(lines).strip(), flags=flags)


def flags_for(entry: ModelEntry) -> list[str]:
    """The flags ``entry`` takes, "--model" first, then in table order."""
    fields = entry.capabilities.fields
    return [f"--{flag.name}" for flag in FLAGS if flag.field is None or flag.field in fields]


def model_from(flags: Mapping[str, str | bool], slash_model: str | None) -> str | None:
    """The model key asked for, lower-case; the slash option wins over ``--model``."""
    for value in (slash_model, flags.get("model")):
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


_MODEL_FLAG_RE = re.compile(r"(?<!\S)(?:--|[—–])model(?:=|[^\S\n]+)(\S+)", re.IGNORECASE)


def model_in(text: str) -> str | None:
    """The value of a ``--model`` flag in a prompt that could not be parsed as a whole."""
    match = _MODEL_FLAG_RE.search(text)
    return match[1] if match else None
