"""Inline flags and slash options checked against one model's capabilities: ``resolve_options`` refuses what the
model cannot take, clamps numbers into range and yields ``GenerationRequest`` fields. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from bot.catalogue import ModelEntry
from bot.errors import InvalidInput
from bot.i18n import N_, Msg, msg
from bot.prompting.flags import FLAG_BY_NAME, FLAGS, SWITCH_WORDS, Flag, flags_for, missing_value
from providers.base import Kind

_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_RATIO_RE = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*[:/x×]\s*(\d{1,9}(?:\.\d{1,6})?)", re.IGNORECASE)
_SIZE_RE = re.compile(r"(\d{1,9})\s*[x×*]\s*(\d{1,9})", re.IGNORECASE)
_DURATION_RE = re.compile(r"(\d{1,6}(?:\.\d+)?)\s*(?:s|secs?|seconds?)?", re.IGNORECASE)
_MAX_DIGITS = 20  # longer numbers are clamped as if they were ±10**20 (int() refuses very long strings)
_KIND_NOUNS = {Kind.IMAGE: msg("images"), Kind.IMAGE_EDIT: msg("image edits"), Kind.VIDEO: msg("videos")}


@dataclass(frozen=True)
class Resolved:
    options: dict[str, Any]
    size: tuple[int, int] | None
    notes: tuple[str, ...]


# Value conversion: one function per kind of value, each (flag, entry, raw value, notes) → option value.
Convert = Callable[[Flag, ModelEntry, Any, list[str]], Any]


def _shown(raw: object) -> str:
    text = " ".join(str(raw).split())
    return text if len(text) <= 24 else text[:23] + "…"


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bad(flag: Flag, raw: object) -> InvalidInput:
    return InvalidInput(
        msg("--{flag} needs {needs}; “{value}” is not one.", flag=flag.name, needs=Msg(flag.needs), value=_shown(raw))
    )


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
            note = (
                N_("--{flag} {value} is more than {model} allows; used {used}.")
                if value > high
                else N_("--{flag} {value} is less than {model} allows; used {used}.")
            )
            notes.append(
                Msg(note, {"flag": flag.name, "value": _shown(raw), "model": entry.key, "used": _num(clamped)})
            )
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
    raise InvalidInput(
        msg(
            "`{model}` has no --{flag} “{value}”; it takes: {choices}.",
            model=entry.key,
            flag=flag.name,
            value=_shown(raw),
            choices=", ".join(offered),
        )
    )


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
            msg(
                "--{flag} {ratio} is not available with `{model}`. `{model}` can do: {ratios}.",
                flag=flag.name,
                ratio=reduced,
                model=entry.key,
                ratios=", ".join(offered),
            )
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
                msg(
                    "--size {width}x{height} is outside what {model} allows ({low}–{high} a side); used {used}.",
                    width=width,
                    height=height,
                    model=entry.key,
                    low=low,
                    high=high,
                    used=f"{clamped[0]}x{clamped[1]}",
                )
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
        notes.append(
            msg(
                "--duration {value} is not offered by {model}; used {used}s (it takes {durations}).",
                value=_shown(raw),
                model=entry.key,
                used=nearest,
                durations=takes,
            )
        )
    return nearest


def _switch(flag: Flag, entry: ModelEntry, raw: Any, notes: list[str]) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in SWITCH_WORDS:
        return SWITCH_WORDS[raw.strip().lower()]
    raise missing_value(flag)


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
            flag = FLAG_BY_NAME.get(name.lower())
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
        raise InvalidInput(
            msg(
                "`{model}` does not make {kind}. Pick another model with --model.",
                model=entry.key,
                kind=_KIND_NOUNS[kind],
            )
        )
    given = _merged(flags, slash)
    fields = entry.capabilities.fields
    options: dict[str, Any] = {}
    notes: list[str] = []
    for flag in FLAGS:
        if flag.name not in given or flag.field is None:
            continue
        if flag.field not in fields:
            takes = ", ".join(flags_for(entry)[1:]) or msg("no flags besides --model")
            raise InvalidInput(
                msg(
                    "`--{flag}` does not work with `{model}`. {model} takes: {flags}",
                    flag=flag.name,
                    model=entry.key,
                    flags=takes,
                )
            )
        options[flag.field] = _CONVERT[flag.value](flag, entry, given[flag.name], notes)
    size: tuple[int, int] | None = options.pop("size", None)
    if size is not None and "aspect_ratio" in options:
        ratio = options.pop("aspect_ratio")
        notes.append(
            msg(
                "--ar {ratio} was ignored: --size {size} sets the exact size.", ratio=ratio, size=f"{size[0]}x{size[1]}"
            )
        )
    return Resolved(options=options, size=size, notes=tuple(notes))


def random_seed_dropped(entry: ModelEntry, given: Mapping[str, Any]) -> dict[str, Any]:
    """Seed -1 means "pick one at random" for every model: for one whose seeds start at 0, send no seed rather
    than clamp -1 to a fixed 0."""
    seeds = entry.capabilities.seed_range
    if seeds is None or seeds[0] <= -1 or str(given.get("seed")).strip() != "-1":
        return dict(given)
    return {name: value for name, value in given.items() if name != "seed"}
