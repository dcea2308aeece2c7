"""What ``/quota`` (and ``/quota-admin view``) shows, rendered from a ``QuotaReport`` (``bot/credits/report.py``
gathers it): the pure ``quota_embed`` and ``ledger_text``."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.credits.report import ActiveJob, QuotaReport
from bot.credits.types import LedgerEntry, LimitSource, QuotaStatus
from bot.i18n import N_, render, tr
from bot.render.job import EMBED_COLOUR, credits_text, queue_place, timestamp

MAX_JOB_LINES = 10
WALLET_HERE = {
    "server": N_("Jobs you start here use this server's credits."),
    "personal": N_(
        "Jobs you start here use your personal wallet: your own credits in DMs and in servers where the bot "
        "itself is not installed. Credit packs add to it."
    ),
}
BANNED_COLOUR = discord.Colour(0xE5484D)
# Rendered as stored:
LEDGER_KINDS = (N_("reserve"), N_("commit"), N_("refund"), N_("grant"), N_("revoke"), N_("reset"), N_("purchase"))


_LIMIT_SOURCES = {
    ("member", True): N_("your own limit, set by a moderator"),
    ("member", False): N_("their own limit, set by a moderator"),
    ("role", True): N_("from your roles (the highest role limit applies)"),
    ("role", False): N_("from their roles (the highest role limit applies)"),
    ("server", True): N_("this server's default"),
    ("server", False): N_("this server's default"),
    ("default", True): N_("the bot's default"),
    ("default", False): N_("the bot's default"),
    ("personal", True): N_("the personal wallet's daily limit"),
    ("personal", False): N_("the personal wallet's daily limit"),
}


def limit_source_text(source: LimitSource, *, own: bool, locale: object = "en") -> str:
    return render(_LIMIT_SOURCES[source, own], locale)


def _job_line(active: ActiveJob, here_guild_id: int, locale: object = "en") -> str:
    job = active.job
    if job.status == "queued":
        state = tr(locale, "waiting to start")
        if active.position is not None:
            shown = queue_place(active.position)
            if shown <= 10:
                state += tr(locale, " (position {place})", place=shown)
            else:
                state += tr(locale, " (about {place} in line)", place=shown)
    elif job.status == "submitting":
        state = tr(locale, "being sent")
    else:
        state = tr(locale, "running since {started}", started=timestamp(job.submitted_at or job.created_at))
    where = ""
    if job.guild_id != here_guild_id:
        where = tr(locale, " · in DMs") if not job.guild_id else tr(locale, " · in another server")
    return f"`#{job.id}` `{job.model_key}` {state}{where}"


def quota_embed(report: QuotaReport, *, own: bool, subject: str | None = None, locale: object = "en") -> discord.Embed:
    """``own``: the member is looking at their own credits; else a moderator looks at ``subject``'s."""
    status = report.status
    who = subject or tr(locale, "user {user_id}", user_id=status.user_id)
    if status.guild_id:
        scope = tr(locale, "in this server")
        if own:
            title = tr(locale, "Your credits {scope}", scope=scope)
        else:
            title = tr(locale, "Credits of {member} {scope}", member=who, scope=scope)
    else:
        scope = tr(locale, "with the personal wallet")
        title = tr(locale, "Your personal wallet") if own else tr(locale, "Personal wallet of {member}", member=who)
    embed = discord.Embed(title=title[:256], colour=BANNED_COLOUR if status.banned else EMBED_COLOUR)
    if own:
        embed.description = render(WALLET_HERE["server" if status.guild_id else "personal"], locale)
    if status.banned:
        reason = discord.utils.escape_markdown(status.ban_reason) if status.ban_reason else ""
        why = " " + tr(locale, "Reason: {reason}", reason=reason) if reason else ""
        if own:
            banned = tr(locale, "🚫 You are banned from generating {scope}.", scope=scope)
        else:
            banned = tr(locale, "🚫 This member is banned from generating {scope}.", scope=scope)
        embed.description = f"{banned}{why}"[:4096]
    embed.add_field(
        name=tr(locale, "Today"),
        value=tr(
            locale,
            "**{credits} left** ({used} of {limit} used)",
            credits=credits_text(status.left),
            used=status.used,
            limit=status.limit,
        ),
        inline=True,
    )
    bonus = render(credits_text(status.bonus), locale)
    embed.add_field(
        name=tr(locale, "Bonus"),
        value=bonus + (tr(locale, " (used after today's, never reset)") if status.bonus else ""),
        inline=True,
    )
    embed.add_field(
        name=tr(locale, "Resets"),
        value=f"{timestamp(status.resets_at, 'R')} ({timestamp(status.resets_at, 'f')})",
        inline=True,
    )
    embed.add_field(
        name=tr(locale, "Daily limit"),
        value=f"{render(credits_text(status.limit), locale)}: "
        f"{limit_source_text(status.limit_source, own=own, locale=locale)}",
        inline=False,
    )
    if report.personal is not None:
        embed.add_field(
            name=tr(locale, "Personal wallet"), value=personal_wallet_text(report.personal, locale), inline=False
        )
    if report.purchases:
        embed.add_field(
            name=tr(locale, "Credit packs"), value=ledger_text(report.purchases, locale=locale), inline=False
        )
    lines = [_job_line(active, report.here_guild_id, locale) for active in report.active[:MAX_JOB_LINES]]
    if len(report.active) > MAX_JOB_LINES:
        lines.append(tr(locale, "… and {count} more", count=len(report.active) - MAX_JOB_LINES))
    if not lines:
        lines = [tr(locale, "None queued or running.")]
    counts = {"count": len(report.active), "max": report.max_running}
    embed.add_field(
        name=tr(locale, "Your jobs now ({count} of at most {max} at a time)", **counts)
        if own
        else tr(locale, "Their jobs now ({count} of at most {max} at a time)", **counts),
        value="\n".join(lines)[:1024],
        inline=False,
    )
    embed.set_footer(text=tr(locale, "Each job costs its model's credits; a job that fails is refunded."))
    return embed


def personal_wallet_text(status: QuotaStatus, locale: object = "en") -> str:
    """The personal wallet in one line, under a server's credits."""
    bonus = tr(locale, " + {credits} bonus", credits=credits_text(status.bonus)) if status.bonus else ""
    return tr(
        locale,
        "{credits} left today ({used} of {limit} used){bonus}: used in DMs and in servers where the bot itself is "
        "not installed",
        credits=credits_text(status.left),
        used=status.used,
        limit=status.limit,
        bonus=bonus,
    )


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else f"−{-n}" if n < 0 else "0"


def ledger_line(entry: LedgerEntry, locale: object = "en") -> str:
    parts = [timestamp(entry.created_at), f"**{render(entry.kind, locale)}**"]
    if entry.period_delta:
        parts.append(tr(locale, "{delta} used", delta=_signed(entry.period_delta)))
    if entry.bonus_delta:
        parts.append(tr(locale, "{delta} bonus", delta=_signed(entry.bonus_delta)))
    if entry.job_id is not None:
        parts.append(tr(locale, "job #{job_id}", job_id=entry.job_id))
    if entry.actor_id is not None:
        parts.append(tr(locale, "by {actor}", actor=f"<@{entry.actor_id}>"))
    line = " · ".join(parts)
    if entry.reason:
        line += f": {discord.utils.escape_markdown(entry.reason[:120])}"
    return line


def ledger_text(entries: Sequence[LedgerEntry], limit: int = 1024, locale: object = "en") -> str:
    """Newest first, as many whole lines as fit in ``limit`` characters."""
    if not entries:
        return tr(locale, "No credit changes yet.")
    out: list[str] = []
    size = 0
    for entry in entries:
        line = ledger_line(entry, locale)
        if size + len(line) + 1 > limit:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)
