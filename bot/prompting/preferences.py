"""Personal defaults (``/prefer``) checked when set and applied to a command. Pure: no I/O.

Precedence for every option: slash option > inline flag in the prompt > preference > server default. Within the
preferences, the ``aspect_ratio`` option wins over an ``--ar`` in the suffix. A preference that does not fit the
command (a model that does not make this kind of job, a flag the chosen model does not take) is skipped with a
note, never refused: it is not what the member typed this time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.catalogue import Catalogue, ModelEntry
from bot.errors import InvalidInput
from bot.i18n import Msg, msg
from bot.prompting.flags import FLAG_BY_NAME, parse_prompt
from bot.prompting.models import KIND_WORDS
from bot.prompting.options import resolve_options
from bot.storage.preferences import Preferences
from providers.base import Kind

SUFFIX_MAX = 500
NONE_WORDS = frozenset({"none", "off", "-"})  # "/prefer set suffix:none" removes that one preference


@dataclass(frozen=True, slots=True)
class Applied:
    """A command's prompt and inline flags once the preferences are in; ``notes`` say what was skipped."""

    prompt: str
    flags: dict[str, str | bool]
    notes: tuple[Msg, ...] = ()


def _suffix_parts(suffix: str | None) -> tuple[str, dict[str, str | bool]]:
    if not suffix:
        return "", {}
    parsed = parse_prompt(suffix)
    return parsed.prompt, {name: value for name, value in parsed.flags.items() if name != "model"}


def preference_flags(preferences: Preferences) -> tuple[str, dict[str, str | bool]]:
    """The suffix's words, and the preferred flags: the suffix's, with the ``aspect_ratio`` option over its --ar."""
    try:
        words, flags = _suffix_parts(preferences.suffix)
    except InvalidInput:  # valid when set; the flag table may have changed since
        words, flags = "", {}
    if preferences.aspect_ratio:
        flags["ar"] = preferences.aspect_ratio
    return words, flags


def _given(flags: Mapping[str, Any], slash: Mapping[str, Any]) -> set[str]:
    names = {FLAG_BY_NAME[n.lower()].name for n in flags if n.lower() in FLAG_BY_NAME}
    return names | {FLAG_BY_NAME[n.lower()].name for n, v in slash.items() if v is not None and n in FLAG_BY_NAME}


def _shown(name: str, value: str | bool) -> str:
    return f"--{name}" if value is True else f"--{name}={value}" if value is False else f"--{name} {value}"


def apply_preferences(
    preferences: Preferences,
    entry: ModelEntry,
    kind: Kind,
    *,
    prompt: str,
    flags: Mapping[str, str | bool],
    slash: Mapping[str, Any],
    prompt_limit: int,
    banned_word: Any = None,
) -> Applied:
    """``prompt`` and ``flags`` (the member's own, already parsed) with the preferences that fit ``entry`` for
    ``kind`` added under them. ``banned_word(text)`` (the server's rule) keeps a suffix with a banned word out."""
    words, preferred = preference_flags(preferences)
    notes: list[Msg] = []
    given = _given(flags, slash)
    kept: dict[str, str | bool] = {}
    for name, value in preferred.items():
        if name in given or (name == "ar" and "size" in given) or (name == "size" and "ar" in given):
            continue  # what the member gave this time wins (--size would override a ratio they gave)
        try:
            resolve_options(entry, kind, {name: value}, {})
        except InvalidInput:
            notes.append(
                msg(
                    "Your preference {flag} was skipped: `{model}` does not take it.",
                    flag=_shown(name, value),
                    model=entry.key,
                )
            )
            continue
        kept[name] = value
    text = prompt
    if words:
        joined = f"{prompt} {words}"
        if banned_word is not None and banned_word(words) is not None:
            notes.append(msg("Your suffix was skipped: it has a word this server does not allow."))
        elif len(joined) > prompt_limit:
            notes.append(
                msg("Your suffix was skipped: with it the prompt is over {limit} characters.", limit=prompt_limit)
            )
        else:
            text = joined
    return Applied(prompt=text, flags={**kept, **flags}, notes=tuple(notes))


def model_note(preferences: Preferences, entry: ModelEntry, kind: Kind, asked: str | None) -> Msg | None:
    """Why the preferred model was not used for this job, when it was not (and nothing else was asked for)."""
    wanted = preferences.model_key
    if not wanted or asked or entry.key == wanted:
        return None
    return msg(
        "Your preferred model `{model}` was skipped: it does not make {kind} here.", model=wanted, kind=KIND_WORDS[kind]
    )


# ---------------------------------------------------------------------------------------------- checks when set
def clean_text(value: str | None) -> str | None:
    """An option of /prefer set: None when not given, "" when given as "none" (remove it), else the text."""
    if value is None:
        return None
    value = " ".join(value.split())
    return "" if value.lower() in NONE_WORDS else value


def _kind_of(entry: ModelEntry) -> Kind:
    return next(kind for kind in Kind if entry.does(kind))


def _check_flag(catalogue: Catalogue, preferred: ModelEntry | None, name: str, value: str | bool) -> None:
    """Valid for the preferred model when it takes the flag, else for at least one model that does; the message
    is the one a prompt gets."""
    field = FLAG_BY_NAME[name].field
    takers = [e for e in catalogue if field in e.capabilities.fields]
    candidates = [preferred] if preferred is not None and preferred in takers else takers
    if not candidates:
        raise InvalidInput(msg("`--{flag}` does not work with any model here. Remove it from the suffix.", flag=name))
    errors: list[InvalidInput] = []
    for entry in candidates:
        try:
            resolve_options(entry, _kind_of(entry), {name: value}, {})
            return
        except InvalidInput as exc:
            errors.append(exc)
    raise errors[0]


def check_preferences(catalogue: Catalogue, preferences: Preferences) -> Preferences:
    """The preferences as they will be stored, or the refusal of the first that cannot work."""
    preferred = None
    if preferences.model_key:
        key = preferences.model_key.lower()
        preferred = catalogue.get(key)
        if preferred is None:
            names = ", ".join(e.key for e in catalogue) or msg("none")
            raise InvalidInput(
                msg("There is no model `{model}`. Choose one of: {models}.", model=preferences.model_key, models=names)
            )
        preferences = dataclasses.replace(preferences, model_key=preferred.key)
    if preferences.suffix:
        if len(preferences.suffix) > SUFFIX_MAX:
            raise InvalidInput(
                msg(
                    "The suffix is {length} characters long; at most {limit}.",
                    length=len(preferences.suffix),
                    limit=SUFFIX_MAX,
                )
            )
        parsed = parse_prompt(preferences.suffix)
        if "model" in parsed.flags:
            raise InvalidInput(msg("Choose the model with the `model` option, not --model in the suffix."))
        for name, value in parsed.flags.items():
            _check_flag(catalogue, preferred, name, value)
    if preferences.aspect_ratio:
        _check_flag(catalogue, preferred, "ar", preferences.aspect_ratio)
    return preferences


def merged(old: Preferences, **given: Any) -> Preferences:
    """``old`` with the options given to /prefer set: None keeps a preference, "" removes it."""
    changes: dict[str, Any] = {
        name: (value or None) if isinstance(value, str) else value for name, value in given.items() if value is not None
    }
    return dataclasses.replace(old, **changes)
