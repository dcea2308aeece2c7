"""Pure text of the moderator commands: what changed (before → after) and the audit trail, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.render.job import EMBED_COLOUR, credits_text, timestamp
from bot.storage.audit import AuditEntry

AUDIT_PAGE_SIZE = 10
AUDIT_MAX_PAGE = 50
VALUE_CHARS = 80


def limit_text(credits: int | None, *, unset: str) -> str:
    return unset if credits is None else f"{credits_text(credits)} a day"


def change_text(what: str, before: str, after: str) -> str:
    if before == after:
        return f"{what}: unchanged ({after})."
    return f"{what}: {before} → **{after}**."


def value_text(value: Any) -> str:
    """An audited value in words: none, on/off, lists joined, long values cut."""
    if value is None or value == []:
        text = "none"
    elif isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k} {value_text(v)}" for k, v in sorted(value.items()))
    else:
        text = str(value)
    text = discord.utils.escape_markdown(discord.utils.escape_mentions(text))
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _diff(before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        parts = [
            f"{key.replace('_', ' ')} {value_text(before.get(key))} → {value_text(after.get(key))}" for key in keys
        ]
        return "; ".join(parts) or "no change"
    return f"{value_text(before)} → {value_text(after)}"


def audit_line(entry: AuditEntry) -> str:
    target = ""
    if entry.target_user_id is not None:
        target = f" <@{entry.target_user_id}>"
    elif entry.target_role_id is not None:
        target = f" <@&{entry.target_role_id}>"
    when = timestamp(entry.created_at, "f")
    line = f"{when} <@{entry.actor_id}> **{entry.action}**{target}: {_diff(entry.before, entry.after)}"
    if entry.reason:
        reason = discord.utils.escape_markdown(entry.reason)
        line += f" (“{reason[:150]}{'…' if len(reason) > 150 else ''}”)"
    return line


def audit_embed(entries: Sequence[AuditEntry], *, page: int, has_older: bool, subject: str | None) -> discord.Embed:
    """One page of the audit trail; ``entries`` are that page's, newest first."""
    title = "Moderator actions in this server" + (f" about {subject}" if subject else "")
    embed = discord.Embed(title=title[:256], colour=EMBED_COLOUR)
    if not entries:
        embed.description = "Nothing on this page." if page > 1 else "No moderator actions yet."
    else:
        lines: list[str] = []
        size = 0
        for entry in entries:
            line = audit_line(entry)[:1000]
            if size + len(line) + 2 > 4000:
                break
            lines.append(line)
            size += len(line) + 2
        embed.description = "\n\n".join(lines)
    if has_older:
        footer = f"Page {page}. Older entries: page {page + 1}."
        if page >= AUDIT_MAX_PAGE:
            footer = f"Page {page}, the last one shown here; older entries are kept but not listed."
    else:
        footer = f"Page {page}. No older entries."
    embed.set_footer(text=footer)
    return embed
