"""Midjourney-style inline flags (``--ar 16:9 --seed 42``) and slash options, turned into provider options.

Pure: no I/O. ``parse_prompt`` splits flags from the prompt text; ``resolve_options`` checks them against one model's
capabilities (refusing what it cannot take, clamping numbers into range) and yields ``GenerationRequest`` fields.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from bot.catalogue import ModelEntry
from bot.errors import InvalidInput
from providers.base import Kind


@dataclass(frozen=True)
class Flag:
    name: str
    field: str | None  # the GenerationRequest field it sets; None for --model
    value: str  # text, ratio, int, float, choice, size, duration or switch
    needs: str = ""  # what a value looks like, for "--ar needs a ratio like 16:9"
    aliases: tuple[str, ...] = ()
    caps: str = ""  # the Capabilities attribute holding its range or its choices


FLAGS: tuple[Flag, ...] = (
    Flag("model", None, "text", "a model key like uni-1"),
    Flag("ar", "aspect_ratio", "ratio", "a ratio like 16:9", ("aspect",), "aspect_ratios"),
    Flag("seed", "seed", "int", "a whole number like 42", caps="seed_range"),
    Flag("style", "style", "choice", "a style like manga", caps="styles"),
    Flag("format", "output_format", "choice", "a file format like png", caps="output_formats"),
    Flag("size", "size", "size", "a size like 1024x768", caps="size_range"),
    Flag("steps", "steps", "int", "a whole number like 28", caps="steps_range"),
    Flag("guidance", "guidance", "float", "a number like 3.5", caps="guidance_range"),
    Flag("quality", "quality", "int", "a whole number like 90", caps="quality_range"),
    Flag("duration", "duration_s", "duration", "a length like 10s", caps="durations_s"),
    Flag("res", "resolution", "choice", "a resolution like 1080p", ("resolution",), "resolutions"),
    Flag("loop", "loop", "switch"),
    Flag("enhance", "enhance_prompt", "switch"),
    Flag("lora", "lora_scale", "float", "a number like 0.8", caps="lora_scale_range"),
    Flag("mp", "megapixels", "choice", "a number of megapixels like 1", ("megapixels",), "megapixels"),
    Flag("strength", "prompt_strength", "float", "a number like 0.8", caps="prompt_strength_range"),
    Flag("web", "web_search", "switch"),
)
_BY_NAME: dict[str, Flag] = {name: flag for flag in FLAGS for name in (flag.name, *flag.aliases)}

# A flag starts at a word boundary with "--", or with the em or en dash a phone makes of "--".
_FLAG_RE = re.compile(r"(?<!\S)(?P<dash>--|[—–])(?P<name>[A-Za-z][A-Za-z0-9_-]*)")
_GAP_RE = re.compile(r"[^\S\n]+")
_WORD_RE = re.compile(r"\S+")
# Ratios and sizes may be written with spaces inside: "--ar 16 : 9".
_PAIR_RE = re.compile(r"\d+(?:\.\d+)?[^\S\n]*[:/x×*][^\S\n]*\d+(?:\.\d+)?(?!\S)", re.IGNORECASE)
_SWITCH_WORDS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}

_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_RATIO_RE = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*[:/x×]\s*(\d{1,9}(?:\.\d{1,6})?)", re.IGNORECASE)
_SIZE_RE = re.compile(r"(\d{1,9})\s*[x×*]\s*(\d{1,9})", re.IGNORECASE)
_DURATION_RE = re.compile(r"(\d{1,6}(?:\.\d+)?)\s*(?:s|secs?|seconds?)?", re.IGNORECASE)
_MAX_DIGITS = 20  # longer numbers are clamped as if they were ±10**20 (int() refuses very long strings)
_KIND_NOUNS = {Kind.IMAGE: "images", Kind.IMAGE_EDIT: "image edits", Kind.VIDEO: "videos"}


@dataclass(frozen=True)
class ParsedPrompt:
    prompt: str
    flags: dict[str, str | bool]


@dataclass(frozen=True)
class Resolved:
    options: dict[str, Any]
    size: tuple[int, int] | None
    notes: tuple[str, ...]


def _all_flags() -> str:
    return ", ".join(f"--{flag.name}" for flag in FLAGS)


class UnknownFlag(InvalidInput):
    """A ``--name`` that is no flag at all. ``hint`` (maybe empty) suggests the closest flag; a command that knows
    the model can list that model's flags instead of every flag."""

    def __init__(self, name: str, hint: str) -> None:
        super().__init__(f"`--{name}` is not a flag.{hint} The flags are: {_all_flags()}.")
        self.name = name
        self.hint = hint


def _unknown(name: str) -> UnknownFlag:
    close = difflib.get_close_matches(name.lower(), list(_BY_NAME), n=1)
    hint = f" Did you mean --{_BY_NAME[close[0]].name}?" if close else ""
    return UnknownFlag(name, hint)


def _missing(flag: Flag) -> InvalidInput:
    if flag.value == "switch":
        return InvalidInput(
            f"--{flag.name} is a switch: write just --{flag.name} (or --{flag.name}=no to turn it off)."
        )
    return InvalidInput(f"--{flag.name} needs {flag.needs}.")


def _flag_at(line: str, pos: int) -> tuple[re.Match[str], Flag | None] | None:
    """The flag starting at or after ``pos``, with its table entry (None for an unknown ``--name``)."""
    while (match := _FLAG_RE.search(line, pos)) is not None:
        flag = _BY_NAME.get(match["name"].lower())
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
            if text.lower() not in _SWITCH_WORDS:
                raise _missing(flag)
            return _SWITCH_WORDS[text.lower()], stop
        if not text:
            raise _missing(flag)
        return text, stop
    if flag.value == "switch":
        return True, end
    gap = _GAP_RE.match(line, end)
    if gap is None:
        raise _missing(flag)
    word = (_PAIR_RE.match(line, gap.end()) if flag.value in ("ratio", "size") else None) or _WORD_RE.match(
        line, gap.end()
    )
    if word is None or _is_flag(word[0]):
        raise _missing(flag)
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


# Value conversion: one function per kind of value, each (flag, entry, raw value, notes) → option value.
Convert = Callable[[Flag, ModelEntry, Any, list[str]], Any]


def _shown(raw: object) -> str:
    text = " ".join(str(raw).split())
    return text if len(text) <= 24 else text[:23] + "…"


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bad(flag: Flag, raw: object) -> InvalidInput:
    return InvalidInput(f"--{flag.name} needs {flag.needs}; “{_shown(raw)}” is not one.")


def _to_number(flag: Flag, raw: object) -> int | float:
    whole = flag.value == "int"
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and not whole and math.isfinite(raw):
        return raw
    text = raw.strip() if isinstance(raw, str) else ""
    if not (_INT_RE if whole else _FLOAT_RE).fullmatch(text):
        raise _bad(flag, raw)
    if not whole:
        value = float(text)
        if not math.isfinite(value):
            raise _bad(flag, raw)
        return value
    if len(text.lstrip("+-").lstrip("0")) > _MAX_DIGITS:
        return (-1 if text.startswith("-") else 1) * 10**_MAX_DIGITS
    return int(text)


def _number(flag: Flag, entry: ModelEntry, raw: Any, notes: list[str]) -> int | float:
    value = _to_number(flag, raw)
    bounds = getattr(entry.capabilities, flag.caps)
    if bounds is not None:
        low, high = bounds
        clamped = min(max(value, low), high)
        if clamped != value:
            side = "more" if value > high else "less"
            notes.append(f"--{flag.name} {_shown(raw)} is {side} than {entry.key} allows; used {_num(clamped)}.")
            value = clamped
    return int(value) if flag.value == "int" else float(value)


def _same_choice(given: str, offered: str) -> bool:
    offered, bare = offered.lower(), given.removeprefix(".")
    if offered in (given, bare, f"{given}p") or {bare, offered} == {"jpg", "jpeg"}:
        return True
    try:
        return float(given) == float(offered)
    except ValueError:
        return False


def _choice(flag: Flag, entry: ModelEntry, raw: Any, notes: list[str]) -> str:
    offered: tuple[str, ...] = getattr(entry.capabilities, flag.caps)
    given = str(raw).strip().lower()
    if not offered:
        return given
    for value in offered:
        if _same_choice(given, value):
            return value
    raise InvalidInput(f"`{entry.key}` has no --{flag.name} “{_shown(raw)}”; it takes: {', '.join(offered)}.")


def _fraction(text: str) -> Fraction | None:
    match = _RATIO_RE.fullmatch(text.strip())
    if match is None or not float(match[1]) or not float(match[2]):
        return None
    return Fraction(match[1]) / Fraction(match[2])


def _ratio(flag: Flag, entry: ModelEntry, raw: Any, notes: list[str]) -> str:
    fraction = _fraction(str(raw))
    if fraction is None:
        raise _bad(flag, raw)
    offered = entry.capabilities.aspect_ratios
    for ratio in offered:  # answer in the model's own spelling: 42:18 is its "21:9", not "7:3"
        if _fraction(ratio) == fraction:
            return ratio
    reduced = f"{fraction.numerator}:{fraction.denominator}"
    if offered:
        raise InvalidInput(
            f"--{flag.name} {reduced} is not available with `{entry.key}`. `{entry.key}` can do: {', '.join(offered)}."
        )
    return reduced


def _size(flag: Flag, entry: ModelEntry, raw: Any, notes: list[str]) -> tuple[int, int]:
    if isinstance(raw, tuple | list) and len(raw) == 2:
        raw = f"{raw[0]}x{raw[1]}"
    match = _SIZE_RE.fullmatch(str(raw).strip())
    if match is None or not int(match[1]) or not int(match[2]):
        raise _bad(flag, raw)
    width, height = int(match[1]), int(match[2])
    bounds = entry.capabilities.size_range
    if bounds is not None:
        low, high = bounds
        clamped = min(max(width, low), high), min(max(height, low), high)
        if clamped != (width, height):
            notes.append(
                f"--size {width}x{height} is outside what {entry.key} allows ({low}–{high} a side); "
                f"used {clamped[0]}x{clamped[1]}."
            )
            width, height = clamped
    return width, height


def _duration(flag: Flag, entry: ModelEntry, raw: Any, notes: list[str]) -> int:
    text = str(raw).strip() if not isinstance(raw, bool) else ""
    match = _DURATION_RE.fullmatch(text)
    if match is None or not float(match[1]):
        raise _bad(flag, raw)
    seconds = float(match[1])
    offered = entry.capabilities.durations_s
    if not offered:
        return max(1, round(seconds))
    nearest = min(offered, key=lambda allowed: abs(allowed - seconds))
    if nearest != seconds:
        takes = " or ".join(f"{value}s" for value in offered)
        notes.append(f"--duration {_shown(raw)} is not offered by {entry.key}; used {nearest}s (it takes {takes}).")
    return nearest


def _switch(flag: Flag, entry: ModelEntry, raw: Any, notes: list[str]) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _SWITCH_WORDS:
        return _SWITCH_WORDS[raw.strip().lower()]
    raise _missing(flag)


_CONVERT: dict[str, Convert] = {
    "int": _number,
    "float": _number,
    "choice": _choice,
    "ratio": _ratio,
    "size": _size,
    "duration": _duration,
    "switch": _switch,
}


def _merged(flags: Mapping[str, str | bool], slash: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source in (flags, {name: value for name, value in slash.items() if value is not None}):
        for name, value in source.items():
            flag = _BY_NAME.get(name.lower())
            if flag is None:
                raise ValueError(f"not a flag name: {name!r}")  # a programming error, not the user's
            merged[flag.name] = value
    return merged


def resolve_options(
    entry: ModelEntry, kind: Kind, flags: Mapping[str, str | bool], slash: Mapping[str, Any]
) -> Resolved:
    """Check inline flags and slash options (the slash option wins) against ``entry``; clamp numbers into range.

    Raises ``InvalidInput`` for a flag the model does not take, a malformed value or a choice it does not offer.
    """
    if not entry.does(kind):
        raise InvalidInput(f"`{entry.key}` does not make {_KIND_NOUNS[kind]}. Pick another model with --model.")
    given = _merged(flags, slash)
    fields = entry.capabilities.fields
    options: dict[str, Any] = {}
    notes: list[str] = []
    for flag in FLAGS:
        if flag.name not in given or flag.field is None:
            continue
        if flag.field not in fields:
            takes = ", ".join(flags_for(entry)[1:]) or "no flags besides --model"
            raise InvalidInput(f"`--{flag.name}` does not work with `{entry.key}`. {entry.key} takes: {takes}")
        options[flag.field] = _CONVERT[flag.value](flag, entry, given[flag.name], notes)
    size: tuple[int, int] | None = options.pop("size", None)
    if size is not None and "aspect_ratio" in options:
        ratio = options.pop("aspect_ratio")
        notes.append(f"--ar {ratio} was ignored: --size {size[0]}x{size[1]} sets the exact size.")
    return Resolved(options=options, size=size, notes=tuple(notes))
