"""What ``/quota`` (and ``/quota-admin view``) shows, rendered from a ``QuotaReport`` (``bot/credits/report.py``
gathers it): the pure ``quota_embed`` and ``ledger_text``."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.credits.report import ActiveJob, QuotaReport
from bot.credits.types import LedgerEntry, LimitSource, QuotaStatus
from bot.render.job import EMBED_COLOUR, credits_text, queue_place, timestamp

MAX_JOB_LINES = 10
WALLET_HERE = {
    "server": "Jobs you start here use this server's credits.",
    "personal": (
        "Jobs you start here use your personal wallet: your own credits in DMs and in servers where the bot "
        "itself is not installed. Credit packs add to it."
    ),
}
BANNED_COLOUR = discord.Colour(0xE5484D)


def limit_source_text(source: LimitSource, *, own: bool) -> str:
    whose = "your" if own else "their"
    return {
        "member": f"{whose} own limit, set by a moderator",
        "role": f"from {whose} roles (the highest role limit applies)",
        "server": "this server's default",
        "default": "the bot's default",
        "personal": "the personal wallet's daily limit",
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
    whom = subject or f"user {status.user_id}"
    if status.guild_id:
        scope = "in this server"
        title = f"Your credits {scope}" if own else f"Credits of {whom} {scope}"
    else:
        scope = "with the personal wallet"
        title = "Your personal wallet" if own else f"Personal wallet of {whom}"
    embed = discord.Embed(title=title[:256], colour=BANNED_COLOUR if status.banned else EMBED_COLOUR)
    if own:
        embed.description = WALLET_HERE["server" if status.guild_id else "personal"]
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
    if report.personal is not None:
        embed.add_field(name="Personal wallet", value=personal_wallet_text(report.personal), inline=False)
    if report.purchases:
        embed.add_field(name="Credit packs", value=ledger_text(report.purchases), inline=False)
    lines = [_job_line(active, report.here_guild_id) for active in report.active[:MAX_JOB_LINES]]
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


def personal_wallet_text(status: QuotaStatus) -> str:
    """The personal wallet in one line, under a server's credits."""
    bonus = f" + {credits_text(status.bonus)} bonus" if status.bonus else ""
    return (
        f"{credits_text(status.left)} left today ({status.used} of {status.limit} used){bonus}: "
        "used in DMs and in servers where the bot itself is not installed"
    )


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
