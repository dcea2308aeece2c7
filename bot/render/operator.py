"""What ``/operator`` shows, rendered from ``Operations.status()``: per provider, enabled or paused and why, the
queue, failures in the last hour and today's spending against its cap; then spending per day and server."""

from __future__ import annotations

import discord

from bot.ops.service import OperatorStatus, ProviderStatus
from bot.render.job import EMBED_COLOUR, timestamp

OPERATORS_ONLY = "Only the bot's operators (`OPERATOR_USER_IDS`) can use `/operator`."
MAX_SPENDING_LINES = 15


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def _state(row: ProviderStatus) -> str:
    if not row.enabled:
        return "⚫ disabled (no API key)"
    if row.pause is not None:
        return f"⏸️ paused {timestamp(row.pause.paused_at)} by {row.pause.paused_by}: {row.pause.reason}"
    return "🟢 enabled"


def _provider_value(row: ProviderStatus) -> str:
    cap = f" of {usd(row.budget)} cap" if row.budget is not None else " (no cap)"
    reached = " — **cap reached, new jobs refused**" if row.budget is not None and row.spent_today >= row.budget else ""
    return "\n".join(
        [
            _state(row),
            f"{row.queued} queued · {row.in_flight} in flight · {row.failures_last_hour} failed in the last hour",
            f"Spent today: {usd(row.spent_today)}{cap}{reached}",
            *([f"Account balance: {usd(row.balance)}"] if row.balance is not None else []),
        ]
    )


def status_embed(status: OperatorStatus) -> discord.Embed:
    embed = discord.Embed(title="Operator status", colour=EMBED_COLOUR, description=f"Today (UTC): {status.day}")
    for row in status.providers:
        embed.add_field(name=row.name, value=_provider_value(row), inline=False)
    lines = [
        f"{r.day} · {r.provider} · server {r.guild_id or 'DM'}: {usd(r.usd)} ({r.jobs} job{'s' if r.jobs != 1 else ''})"
        for r in status.spending[:MAX_SPENDING_LINES]
    ]
    if len(status.spending) > MAX_SPENDING_LINES:
        lines.append(f"… and {len(status.spending) - MAX_SPENDING_LINES} more")
    embed.add_field(name="Spending, last 7 days", value="\n".join(lines) or "Nothing yet.", inline=False)
    return embed


def paused_text(provider: str, new: bool) -> str:
    if not new:
        return f"`{provider}` was already paused."
    return f"⏸️ `{provider}` is paused: its new and queued jobs wait in line until `/operator resume {provider}`."


def resumed_text(provider: str, was_paused: bool) -> str:
    if not was_paused:
        return f"`{provider}` was not paused."
    return f"▶️ `{provider}` is resumed: its waiting jobs start now."
