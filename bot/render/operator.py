"""What ``/operator`` shows, rendered from ``Operations.status()``: per provider, enabled or paused and why, the
queue, failures in the last hour and today's spending against its cap; then spending per day and server."""

from __future__ import annotations

import discord

from bot.i18n import msg, plural, render, tr
from bot.ops.service import OperatorStatus, ProviderStatus
from bot.render.job import EMBED_COLOUR, timestamp

OPERATORS_ONLY = msg("Only the bot's operators (`OPERATOR_USER_IDS`) can use `/operator`.")
MAX_SPENDING_LINES = 15


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def _state(row: ProviderStatus, locale: object) -> str:
    if not row.enabled:
        return tr(locale, "⚫ disabled (no API key)")
    if row.pause is not None:
        pause = row.pause
        return tr(
            locale,
            "⏸️ paused {when} by {who}: {reason}",
            when=timestamp(pause.paused_at),
            who=pause.paused_by,
            reason=render(pause.reason, locale),
        )
    return tr(locale, "🟢 enabled")


def _provider_value(row: ProviderStatus, locale: object) -> str:
    cap = tr(locale, " of {cap} cap", cap=usd(row.budget)) if row.budget is not None else tr(locale, " (no cap)")
    reached = ""
    if row.budget is not None and row.spent_today >= row.budget:
        reached = tr(locale, " — **cap reached, new jobs refused**")
    counts = {"queued": row.queued, "in_flight": row.in_flight, "failed": row.failures_last_hour}
    return "\n".join(
        [
            _state(row, locale),
            tr(locale, "{queued} queued · {in_flight} in flight · {failed} failed in the last hour", **counts),
            tr(locale, "Spent today: {spent}", spent=usd(row.spent_today)) + cap + reached,
            *([tr(locale, "Account balance: {balance}", balance=usd(row.balance))] if row.balance is not None else []),
        ]
    )


def status_embed(status: OperatorStatus, locale: object = "en") -> discord.Embed:
    embed = discord.Embed(
        title=tr(locale, "Operator status"),
        colour=EMBED_COLOUR,
        description=tr(locale, "Today (UTC): {day}", day=status.day),
    )
    for row in status.providers:
        embed.add_field(name=row.name, value=_provider_value(row, locale), inline=False)
    lines = [
        f"{r.day} · {r.provider} · "
        + tr(
            locale,
            "server {server}: {usd} ({jobs})",
            server=r.guild_id or "DM",
            usd=usd(r.usd),
            jobs=plural(r.jobs, "{count} job", "{count} jobs"),
        )
        for r in status.spending[:MAX_SPENDING_LINES]
    ]
    if len(status.spending) > MAX_SPENDING_LINES:
        lines.append(tr(locale, "… and {count} more", count=len(status.spending) - MAX_SPENDING_LINES))
    embed.add_field(
        name=tr(locale, "Spending, last 7 days"), value="\n".join(lines) or tr(locale, "Nothing yet."), inline=False
    )
    return embed


def paused_text(provider: str, new: bool, locale: object = "en") -> str:
    if not new:
        return tr(locale, "`{provider}` was already paused.", provider=provider)
    return tr(
        locale,
        "⏸️ `{provider}` is paused: its new and queued jobs wait in line until `/operator resume {provider}`.",
        provider=provider,
    )


def resumed_text(provider: str, was_paused: bool, locale: object = "en") -> str:
    if not was_paused:
        return tr(locale, "`{provider}` was not paused.", provider=provider)
    return tr(locale, "▶️ `{provider}` is resumed: its waiting jobs start now.", provider=provider)
