"""Pure text of the moderator commands: what changed (before → after) and the audit trail, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.i18n import msg, render, tr
from bot.render.job import EMBED_COLOUR, credits_text, timestamp
from bot.storage.audit import AuditEntry

AUDIT_PAGE_SIZE = 10
AUDIT_MAX_PAGE = 50
VALUE_CHARS = 80


def limit_text(credits: int | None, *, unset: str, locale: object = "en") -> str:
    return unset if credits is None else tr(locale, "{credits} a day", credits=credits_text(credits))


def change_text(what: str, before: str, after: str, locale: object = None) -> str:
    """Rendered in ``locale``; without one, a ``Msg`` rendered later (its parts may be ``Msg`` too)."""
    if before == after:
        text = msg("{what}: unchanged ({after}).", what=what, after=after)
    else:
        text = msg("{what}: {before} → **{after}**.", what=what, before=before, after=after)
    return text if locale is None else render(text, locale)


def value_text(value: Any, locale: object = "en") -> str:
    """An audited value in words: none, on/off, lists joined, long values cut."""
    if value is None or value == []:
        text = tr(locale, "none")
    elif isinstance(value, bool):
        text = tr(locale, "on") if value else tr(locale, "off")
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k} {value_text(v, locale)}" for k, v in sorted(value.items()))
    else:
        text = str(value)
    text = discord.utils.escape_markdown(discord.utils.escape_mentions(text))
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _diff(before: Any, after: Any, locale: object = "en") -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        parts = [
            f"{key.replace('_', ' ')} {value_text(before.get(key), locale)} → {value_text(after.get(key), locale)}"
            for key in keys
        ]
        return "; ".join(parts) or tr(locale, "no change")
    return f"{value_text(before, locale)} → {value_text(after, locale)}"


def audit_line(entry: AuditEntry, locale: object = "en") -> str:
    target = ""
    if entry.target_user_id is not None:
        target = f" <@{entry.target_user_id}>"
    elif entry.target_role_id is not None:
        target = f" <@&{entry.target_role_id}>"
    when = timestamp(entry.created_at, "f")
    line = f"{when} <@{entry.actor_id}> **{entry.action}**{target}: {_diff(entry.before, entry.after, locale)}"
    if entry.reason:
        reason = discord.utils.escape_markdown(entry.reason)
        line += f" (“{reason[:150]}{'…' if len(reason) > 150 else ''}”)"
    return line


def audit_embed(
    entries: Sequence[AuditEntry], *, page: int, has_older: bool, subject: str | None, locale: object = "en"
) -> discord.Embed:
    """One page of the audit trail; ``entries`` are that page's, newest first."""
    if subject:
        title = tr(locale, "Moderator actions in this server about {member}", member=subject)
    else:
        title = tr(locale, "Moderator actions in this server")
    embed = discord.Embed(title=title[:256], colour=EMBED_COLOUR)
    if not entries:
        embed.description = tr(locale, "Nothing on this page.") if page > 1 else tr(locale, "No moderator actions yet.")
    else:
        lines: list[str] = []
        size = 0
        for entry in entries:
            line = audit_line(entry, locale)[:1000]
            if size + len(line) + 2 > 4000:
                break
            lines.append(line)
            size += len(line) + 2
        embed.description = "\n\n".join(lines)
    if has_older:
        footer = tr(locale, "Page {page}. Older entries: page {next}.", page=page, next=page + 1)
        if page >= AUDIT_MAX_PAGE:
            footer = tr(
                locale, "Page {page}, the last one shown here; older entries are kept but not listed.", page=page
            )
    else:
        footer = tr(locale, "Page {page}. No older entries.", page=page)
    embed.set_footer(text=footer)
    return embed
