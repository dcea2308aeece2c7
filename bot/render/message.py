"""A rendered job as discord.py message arguments, and the words that open a result sent to DMs."""

from __future__ import annotations

from typing import Any

import discord

from bot.i18n import tr
from bot.render.job import Rendered
from bot.storage.jobs import JobRecord


def dm_intro(job: JobRecord, locale: object = "en") -> str:
    """The first line of a result sent to the requester's DMs: which job, and where it was asked for (a channel
    mention shows as a link to it and pings nobody)."""
    where = tr(locale, " (from {channel})", channel=f"<#{job.channel_id}>") if job.guild_id and job.channel_id else ""
    if job.status == "succeeded":
        return tr(locale, "Here is the result of your job #{job_id}{where}:", job_id=job.id, where=where)
    if job.status == "cancelled":
        return tr(locale, "Your job #{job_id}{where} was cancelled:", job_id=job.id, where=where)
    return tr(locale, "Your job #{job_id}{where} did not work out:", job_id=job.id, where=where)


def message_kwargs(rendered: Rendered) -> dict[str, Any]:
    files = [
        discord.File(spec.path, filename=spec.filename, spoiler=spec.spoiler, description=spec.description)
        for spec in rendered.files
    ]
    view = discord.ui.View(timeout=None)
    for row_index, row in enumerate(rendered.rows):
        for button in row:
            view.add_item(
                discord.ui.Button(
                    custom_id=button.custom_id,
                    label=button.label,
                    emoji=button.emoji,
                    row=row_index,
                    style=getattr(discord.ButtonStyle, button.style),
                )
            )
    # The cogs' persistent DynamicItems handle the clicks; a stopped view is sent but not kept in memory.
    view.stop()
    return {"content": rendered.content, "embeds": list(rendered.embeds), "attachments": files, "view": view}
