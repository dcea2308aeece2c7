"""Discord's documented limits, checked on what the bot sends (discord.md §1.5, §2).

Every check returns ``Problem``s; the server turns them into ``violations`` and, when ``rejects`` is set,
answers 400 with code 50035 like Discord. ``rejects=False`` marks things Discord accepts but that are
mistakes for this bot (pings from echoed text, embed images that will not render).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EPHEMERAL = 1 << 6
IS_COMPONENTS_V2 = 1 << 15

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
FILES_MAX = 10
ACTION_ROWS_MAX = 5
ROW_BUTTONS_MAX = 5
V2_COMPONENTS_MAX = 40
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
SELECT_OPTIONS_MAX = 25
CHOICES_MAX = 25
MODAL_TITLE_MAX = 45
MODAL_ROWS_MAX = 5
COMMAND_OPTIONS_MAX = 25
COMMAND_TOTAL_MAX = 8000
GLOBAL_CHAT_INPUT_MAX = 100
USER_OR_MESSAGE_COMMANDS_MAX = 15

EMBED_LIMITS: dict[str, int] = {"title": 256, "description": 4096}
SELECT_TYPES = {3, 5, 6, 7, 8}
RENDERABLE_EMBED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MENTION_LIKE = re.compile(r"@everyone|@here|<@")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request body. ``where`` is a dotted path into the body ("" = the body)."""

    where: str
    message: str
    source: str = "limit"
    rejects: bool = True

    def describe(self) -> str:
        location = f"{self.where}: " if self.where else ""
        return f"{self.source}: {location}{self.message}"


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _too_long(value: Any, limit: int, where: str, minimum: int = 0) -> list[Problem]:
    if not isinstance(value, str):
        return []
    if len(value) > limit:
        return [Problem(where, f"must be {limit} or fewer in length (got {len(value)})")]
    if len(value) < minimum:
        return [Problem(where, f"must be {minimum} or more in length (got {len(value)})")]
    return []


def _too_many(items: Any, limit: int, where: str, what: str) -> list[Problem]:
    if isinstance(items, list) and len(items) > limit:
        return [Problem(where, f"at most {limit} {what} allowed (got {len(items)})")]
    return []


# ----------------------------------------------------------------------------------------------------- messages
def check_message(body: Mapping[str, Any], *, file_count: int = 0, prefix: str = "") -> list[Problem]:
    """Content, embeds, attachments/files and components of a message create/edit body."""
    problems = _too_long(body.get("content"), CONTENT_MAX, _join(prefix, "content"))
    embeds = body.get("embeds")
    if isinstance(embeds, list):
        problems += _too_many(embeds, EMBEDS_MAX, _join(prefix, "embeds"), "embeds")
        problems += check_embeds(embeds, prefix=_join(prefix, "embeds"))
    problems += _too_many(body.get("attachments"), FILES_MAX, _join(prefix, "attachments"), "attachments")
    if file_count > FILES_MAX:
        problems.append(Problem(_join(prefix, "files"), f"at most {FILES_MAX} files allowed (got {file_count})"))
    components = body.get("components")
    flags = body.get("flags") or 0
    if isinstance(components, list):
        v2 = isinstance(flags, int) and bool(flags & IS_COMPONENTS_V2)
        problems += check_components(components, v2=v2, prefix=_join(prefix, "components"))
        if v2 and (body.get("content") or body.get("embeds")):
            problems.append(Problem(prefix, "content and embeds cannot be used with the IS_COMPONENTS_V2 flag"))
    return problems


def check_embeds(embeds: Sequence[Any], *, prefix: str = "embeds") -> list[Problem]:
    """Per-embed field limits and the 6000-character total across all embeds of a message."""
    problems: list[Problem] = []
    total = 0
    for index, embed in enumerate(embeds):
        if not isinstance(embed, Mapping):
            continue
        where = _join(prefix, index)
        for key, limit in EMBED_LIMITS.items():
            problems += _too_long(embed.get(key), limit, _join(where, key))
        footer, author = embed.get("footer") or {}, embed.get("author") or {}
        problems += _too_long(footer.get("text"), 2048, _join(where, "footer.text"))
        problems += _too_long(author.get("name"), 256, _join(where, "author.name"))
        fields = embed.get("fields") or []
        problems += _too_many(fields, 25, _join(where, "fields"), "fields")
        for f_index, field in enumerate(fields):
            f_where = _join(_join(where, "fields"), f_index)
            problems += _too_long(field.get("name"), 256, _join(f_where, "name"), minimum=1)
            problems += _too_long(field.get("value"), 1024, _join(f_where, "value"), minimum=1)
            total += len(field.get("name") or "") + len(field.get("value") or "")
        total += sum(len(embed.get(key) or "") for key in EMBED_LIMITS)
        total += len(footer.get("text") or "") + len(author.get("name") or "")
    if total > EMBED_TOTAL_MAX:
        problems.append(Problem(prefix, f"embed text totals {total} characters; the limit is {EMBED_TOTAL_MAX}"))
    return problems


def _walk_components(components: Sequence[Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every component, nested ones included, with its dotted location."""
    for index, component in enumerate(components):
        if not isinstance(component, Mapping):
            continue
        where = _join(prefix, index)
        yield where, component
        yield from _walk_components(component.get("components") or [], _join(where, "components"))
        for key in ("component", "accessory"):
            child = component.get(key)
            if isinstance(child, Mapping):
                yield _join(where, key), child
                yield from _walk_components(child.get("components") or [], _join(_join(where, key), "components"))


def check_components(components: Sequence[Any], *, v2: bool = False, prefix: str = "components") -> list[Problem]:
    """Action rows, buttons, selects and custom ids (legacy layout, or the 40-component V2 layout)."""
    problems: list[Problem] = []
    if v2:
        count = sum(1 for _ in _walk_components(components, prefix))
        if count > V2_COMPONENTS_MAX:
            problems.append(Problem(prefix, f"at most {V2_COMPONENTS_MAX} components allowed (got {count})"))
    else:
        problems += _too_many(components, ACTION_ROWS_MAX, prefix, "action rows")
        for index, row in enumerate(components):
            problems += _check_row(row, _join(prefix, index))
    seen: set[str] = set()
    for where, component in _walk_components(components, prefix):
        custom_id = component.get("custom_id")
        if custom_id is not None:
            problems += _too_long(custom_id, CUSTOM_ID_MAX, _join(where, "custom_id"), minimum=1)
            if custom_id in seen:
                problems.append(Problem(where, f"custom_id {custom_id!r} is used twice in one message"))
            seen.add(custom_id)
        problems += _check_item(component, where)
    return problems


def _check_row(row: Any, where: str) -> list[Problem]:
    if not isinstance(row, Mapping) or row.get("type") != 1:
        return [Problem(where, "top-level components must be action rows (type 1) without IS_COMPONENTS_V2")]
    children = row.get("components") or []
    if not children:
        return [Problem(where, "an action row needs at least one component")]
    selects = [c for c in children if isinstance(c, Mapping) and c.get("type") in SELECT_TYPES]
    if selects and len(children) > 1:
        return [Problem(where, "a select menu must be alone in its action row")]
    return _too_many(children, ROW_BUTTONS_MAX, _join(where, "components"), "buttons in a row")


def _check_item(component: Mapping[str, Any], where: str) -> list[Problem]:
    kind = component.get("type")
    problems: list[Problem] = []
    if kind == 2:
        problems += _too_long(component.get("label"), BUTTON_LABEL_MAX, _join(where, "label"))
        style = component.get("style")
        if style == 5 and not component.get("url"):
            problems.append(Problem(where, "a link button needs a url"))
        if style not in (5, 6) and not component.get("custom_id"):
            problems.append(Problem(where, "a non-link button needs a custom_id"))
    elif kind in SELECT_TYPES:
        if not component.get("custom_id"):
            problems.append(Problem(where, "a select menu needs a custom_id"))
        problems += _too_long(component.get("placeholder"), 150, _join(where, "placeholder"))
        if kind == 3:
            options = component.get("options") or []
            problems += _too_many(options, SELECT_OPTIONS_MAX, _join(where, "options"), "select options")
            if not options:
                problems.append(Problem(where, "a string select needs at least one option"))
            for index, option in enumerate(options):
                o_where = _join(_join(where, "options"), index)
                problems += _too_long(option.get("label"), 100, _join(o_where, "label"), minimum=1)
                problems += _too_long(option.get("value"), 100, _join(o_where, "value"), minimum=1)
                problems += _too_long(option.get("description"), 100, _join(o_where, "description"))
    return problems


# ----------------------------------------------------------------------------------------------- callbacks
def check_autocomplete(data: Mapping[str, Any], *, prefix: str = "data") -> list[Problem]:
    """An APPLICATION_COMMAND_AUTOCOMPLETE_RESULT: ≤25 choices, names 1–100, string values ≤100."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        return [Problem(prefix, "autocomplete result needs a choices list")]
    return _check_choices(choices, _join(prefix, "choices"))


def _check_choices(choices: Sequence[Any], where: str) -> list[Problem]:
    problems = _too_many(list(choices), CHOICES_MAX, where, "choices")
    for index, choice in enumerate(choices):
        if not isinstance(choice, Mapping):
            continue
        problems += _too_long(choice.get("name"), 100, _join(_join(where, index), "name"), minimum=1)
        problems += _too_long(choice.get("value"), 100, _join(_join(where, index), "value"))
        for locale, text in (choice.get("name_localizations") or {}).items():
            problems += _too_long(text, 100, _join(_join(where, index), f"name_localizations.{locale}"), minimum=1)
    return problems


def check_localizations(item: Mapping[str, Any], where: str, *, chat_input: bool = True) -> list[Problem]:
    """``name_localizations`` follow the rules of names; ``description_localizations`` are 1–100 characters."""
    problems: list[Problem] = []
    for locale, name in (item.get("name_localizations") or {}).items():
        if chat_input:
            problems += check_command_name(name, _join(where, f"name_localizations.{locale}"))
        else:
            problems += _too_long(name, 32, _join(where, f"name_localizations.{locale}"), minimum=1)
    for locale, text in (item.get("description_localizations") or {}).items():
        problems += _too_long(text, 100, _join(where, f"description_localizations.{locale}"), minimum=1)
    return problems


def check_modal(data: Mapping[str, Any], *, prefix: str = "data") -> list[Problem]:
    """A MODAL callback: title 1–45, custom_id 1–100, 1–5 rows, text inputs within their limits."""
    problems = _too_long(data.get("title"), MODAL_TITLE_MAX, _join(prefix, "title"), minimum=1)
    problems += _too_long(data.get("custom_id"), CUSTOM_ID_MAX, _join(prefix, "custom_id"), minimum=1)
    rows = data.get("components") or []
    problems += _too_many(rows, MODAL_ROWS_MAX, _join(prefix, "components"), "modal rows")
    if not rows:
        problems.append(Problem(_join(prefix, "components"), "a modal needs at least one component"))
    for where, component in _walk_components(rows, _join(prefix, "components")):
        if component.get("type") == 4:
            problems += _too_long(component.get("custom_id"), CUSTOM_ID_MAX, _join(where, "custom_id"), minimum=1)
            problems += _too_long(component.get("label"), 45, _join(where, "label"))
            problems += _too_long(component.get("placeholder"), 100, _join(where, "placeholder"))
            problems += _too_long(component.get("value"), 4000, _join(where, "value"))
    return problems


def check_callback(body: Mapping[str, Any], *, file_count: int = 0) -> list[Problem]:
    """An interaction callback body, by callback type (4/7 messages, 8 autocomplete, 9 modal)."""
    kind = body.get("type")
    data = body.get("data") or {}
    if kind in (4, 7):
        return check_message(data, file_count=file_count, prefix="data")
    if kind == 5 and (data.get("flags") or 0) & ~EPHEMERAL:
        return [Problem("data.flags", "only the EPHEMERAL flag may be set on a deferred response")]
    if kind == 8:
        return check_autocomplete(data)
    if kind == 9:
        return check_modal(data)
    if kind not in (5, 6, 10, 12):
        return [Problem("type", f"unsupported callback type {kind!r} over the gateway")]
    return []


# ------------------------------------------------------------------------------------------------ commands
def _is_valid_name_char(char: str) -> bool:
    return char in "-_" or unicodedata.category(char)[0] in "LN"


def check_command_name(name: Any, where: str) -> list[Problem]:
    """``^[-_\\p{L}\\p{N}]{1,32}$`` and lower-case where the character has a lower-case form."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32 or not all(map(_is_valid_name_char, name)):
        return [Problem(where, f"name {name!r} must match ^[-_\\p{{L}}\\p{{N}}]{{1,32}}$")]
    if name != name.lower():
        return [Problem(where, f"name {name!r} must be lower-case")]
    return []


def _localized_length(item: Mapping[str, Any], key: str) -> int:
    values = [item.get(key) or "", *((item.get(f"{key}_localizations") or {}).values())]
    return max(len(v or "") for v in values)


def _command_length(item: Mapping[str, Any]) -> int:
    total = _localized_length(item, "name") + _localized_length(item, "description")
    for choice in item.get("choices") or []:
        total += _localized_length(choice, "name") + len(str(choice.get("value", "")))
    return total + sum(_command_length(option) for option in item.get("options") or [])


def check_options(options: Sequence[Any], where: str) -> list[Problem]:
    """Options of a command or subcommand, recursively."""
    problems = _too_many(list(options), COMMAND_OPTIONS_MAX, where, "options")
    seen_optional = False
    for index, option in enumerate(options):
        o_where = _join(where, index)
        problems += check_command_name(option.get("name"), _join(o_where, "name"))
        problems += _too_long(option.get("description"), 100, _join(o_where, "description"), minimum=1)
        problems += check_localizations(option, o_where)
        choices = option.get("choices")
        if choices:
            problems += _check_choices(choices, _join(o_where, "choices"))
            if option.get("autocomplete"):
                problems.append(Problem(o_where, "autocomplete cannot be combined with choices"))
        if option.get("type") in (1, 2):
            problems += check_options(option.get("options") or [], _join(o_where, "options"))
            continue
        if option.get("required"):
            if seen_optional:
                problems.append(Problem(o_where, f"required option {option.get('name')!r} follows an optional one"))
        else:
            seen_optional = True
    return problems


def check_commands(commands: Sequence[Any], *, global_scope: bool) -> list[Problem]:
    """A bulk-overwrite body: names, descriptions, options, choices, the 8000-char total and count limits."""
    problems: list[Problem] = []
    counts = {1: 0, 2: 0, 3: 0}
    names: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        where = f"[{index}]"
        kind = command.get("type", 1) or 1
        counts[kind] = counts.get(kind, 0) + 1
        name = command.get("name")
        if (kind, name) in names:
            problems.append(Problem(where, f"duplicate command name {name!r}"))
        names.add((kind, name))
        if kind == 1:
            problems += check_command_name(name, _join(where, "name"))
            problems += _too_long(command.get("description"), 100, _join(where, "description"), minimum=1)
            problems += check_options(command.get("options") or [], _join(where, "options"))
            problems += check_localizations(command, where)
        else:
            problems += _too_long(name, 32, _join(where, "name"), minimum=1)
            if command.get("description"):
                problems.append(Problem(_join(where, "description"), "user/message commands take no description"))
        length = _command_length(command)
        if length > COMMAND_TOTAL_MAX:
            problems.append(Problem(where, f"command text totals {length} characters; limit {COMMAND_TOTAL_MAX}"))
        if not global_scope and command.get("integration_types") is not None:
            problems.append(Problem(where, "integration_types only apply to global commands", rejects=False))
    if counts[1] > GLOBAL_CHAT_INPUT_MAX:
        problems.append(Problem("", f"at most {GLOBAL_CHAT_INPUT_MAX} chat-input commands (got {counts[1]})"))
    for kind in (2, 3):
        if counts[kind] > USER_OR_MESSAGE_COMMANDS_MAX:
            problems.append(Problem("", f"at most {USER_OR_MESSAGE_COMMANDS_MAX} type-{kind} commands"))
    return problems


# ------------------------------------------------------------------------------------------------ policies
def check_mention_policy(body: Mapping[str, Any], *, prefix: str = "") -> list[Problem]:
    """Bot-token messages parse every mention by default: echoed text with ``@everyone``/``<@`` would ping."""
    content = body.get("content")
    if not isinstance(content, str) or not MENTION_LIKE.search(content):
        return []
    allowed = body.get("allowed_mentions")
    if isinstance(allowed, Mapping) and allowed.get("parse") == []:
        return []
    return [
        Problem(
            _join(prefix, "allowed_mentions"),
            f'content has mention-like text but allowed_mentions is {allowed!r}, not {{"parse": []}}',
            source="policy",
            rejects=False,
        )
    ]


def check_embed_attachment_refs(
    body: Mapping[str, Any], filenames: Sequence[str], *, prefix: str = ""
) -> list[Problem]:
    """``attachment://name`` in an embed image/thumbnail must name an attachment of a renderable type."""
    problems: list[Problem] = []
    for index, embed in enumerate(body.get("embeds") or []):
        for key in ("image", "thumbnail"):
            url = ((embed or {}).get(key) or {}).get("url") or ""
            if not url.startswith("attachment://"):
                continue
            name = url.removeprefix("attachment://")
            where = _join(_join(_join(prefix, "embeds"), index), f"{key}.url")
            if name not in filenames:
                problems.append(Problem(where, f"{url} names no attachment of this message", rejects=False))
            elif not name.lower().endswith(RENDERABLE_EMBED_EXTENSIONS):
                problems.append(Problem(where, f"{url} will not render (only jpg/png/webp/gif)", rejects=False))
    return problems
