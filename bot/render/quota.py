"""What ``/quota`` (and ``/quota-admin view``) shows, rendered from a ``QuotaReport`` (``bot/credits/report.py``
gathers it): the pure ``quota_embed`` and ``ledger_text``."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.credits.report import ActiveJob, QuotaReport
from bot.credits.types import LedgerEntry, LimitSource
from bot.render.job import EMBED_COLOUR, credits_text, queue_place, timestamp

MAX_JOB_LINES = 10
BANNED_COLOUR = discord.Colour(0xE5484D)


def limit_source_text(source: LimitSource, *, own: bool) -> str:
    whose = "your" if own else "their"
    return {
        "member": f"{whose} own limit, set by a moderator",
        "role": f"from {whose} roles (the highest role limit applies)",
        "server": "this server's default",
        "default": "the bot's default",
    }[source]


def _job_line(active: ActiveJob, here_guild_id: int) -> str:
    job = active.job
    if job.status == "queued":
        state = "waiting to start"
        if active.position is not None:
            shown = queue_place(active.position)
            state += f" (position {shown})" if shown <= 10 else f" (about {shown} in line)"
    elif job.status == "submitting":
        state = "being sent"
    else:
        state = f"running since {timestamp(job.submitted_at or job.created_at)}"
    where = ""
    if job.guild_id != here_guild_id:
        where = " · in DMs" if not job.guild_id else " · in another server"
    return f"`#{job.id}` `{job.model_key}` {state}{where}"


def quota_embed(report: QuotaReport, *, own: bool, subject: str | None = None) -> discord.Embed:
    """``own``: the member is looking at their own credits; else a moderator looks at ``subject``'s."""
    status = report.status
    scope = "in this server" if status.guild_id else "in DMs with the bot"
    title = f"Your credits {scope}" if own else f"Credits of {subject or f'user {status.user_id}'} {scope}"
    embed = discord.Embed(title=title[:256], colour=BANNED_COLOUR if status.banned else EMBED_COLOUR)
    if status.banned:
        why = f" Reason: {discord.utils.escape_markdown(status.ban_reason)}" if status.ban_reason else ""
        who = "You are" if own else "This member is"
        embed.description = f"🚫 {who} banned from generating {scope}.{why}"[:4096]
    embed.add_field(
        name="Today",
        value=f"**{credits_text(status.left)} left** ({status.used} of {status.limit} used)",
        inline=True,
    )
    embed.add_field(
        name="Bonus",
        value=f"{credits_text(status.bonus)}" + (" (used after today's, never reset)" if status.bonus else ""),
        inline=True,
    )
    embed.add_field(
        name="Resets",
        value=f"{timestamp(status.resets_at, 'R')} ({timestamp(status.resets_at, 'f')})",
        inline=True,
    )
    embed.add_field(
        name="Daily limit",
        value=f"{credits_text(status.limit)}: {limit_source_text(status.limit_source, own=own)}",
        inline=False,
    )
    lines = [_job_line(active, status.guild_id) for active in report.active[:MAX_JOB_LINES]]
    if len(report.active) > MAX_JOB_LINES:
        lines.append(f"… and {len(report.active) - MAX_JOB_LINES} more")
    if not lines:
        lines = ["None queued or running."]
    whose = "Your" if own else "Their"
    embed.add_field(
        name=f"{whose} jobs now ({len(report.active)} of at most {report.max_running} at a time)",
        value="\n".join(lines)[:1024],
        inline=False,
    )
    embed.set_footer(text="Each job costs its model's credits; a job that fails is refunded.")
    return embed


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else f"−{-n}" if n < 0 else "0"


def ledger_line(entry: LedgerEntry) -> str:
    parts = [timestamp(entry.created_at), f"**{entry.kind}**"]
    if entry.period_delta:
        parts.append(f"{_signed(entry.period_delta)} used")
    if entry.bonus_delta:
        parts.append(f"{_signed(entry.bonus_delta)} bonus")
    if entry.job_id is not None:
        parts.append(f"job #{entry.job_id}")
    if entry.actor_id is not None:
        parts.append(f"by <@{entry.actor_id}>")
    line = " · ".join(parts)
    if entry.reason:
        line += f": {discord.utils.escape_markdown(entry.reason[:120])}"
    return line


def ledger_text(entries: Sequence[LedgerEntry], limit: int = 1024) -> str:
    """Newest first, as many whole lines as fit in ``limit`` characters."""
    if not entries:
        return "No credit changes yet."
    out: list[str] = []
    size = 0
    for entry in entries:
        line = ledger_line(entry)
        if size + len(line) + 1 > limit:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)
