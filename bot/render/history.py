"""Pure rendering of a page of a member's jobs (``/history`` and ``/quota-admin history``) and the custom ids of its
persistent Previous/Next buttons: ``hist:<viewer>:<subject>:<page>:<model filter>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import discord

from bot.i18n import plural, render, tr
from bot.render.job import EMBED_COLOUR, ButtonSpec, Rendered, prompt_preview, timestamp
from bot.storage.jobs import JobRecord

PAGE_SIZE = 10
MAX_PAGE = 100_000
PROMPT_CHARS = 100
HISTORY_PREFIX = "hist"
MODEL_FILTER = re.compile(r"[A-Za-z0-9._-]{1,40}")
HISTORY_TEMPLATE = re.compile(
    rf"{HISTORY_PREFIX}:(?P<viewer>[0-9]{{1,20}}):(?P<subject>[0-9]{{1,20}}):(?P<page>[0-9]{{1,6}})"
    rf":(?P<model>[A-Za-z0-9._-]{{0,40}})"
)
STATUS_ICONS = {
    "queued": "⏳",
    "submitting": "📨",
    "running": "🎨",
    "succeeded": "✅",
    "failed": "❌",
    "cancelled": "🚫",
}


@dataclass(frozen=True, slots=True)
class HistoryPage:
    subject_id: int
    guild_id: int  # 0: DMs
    model_key: str | None
    page: int  # 1-based, within 1..pages
    pages: int  # at least 1
    total: int
    jobs: tuple[JobRecord, ...]

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def history_custom_id(viewer_id: int, subject_id: int, page: int, model_key: str | None) -> str:
    """At most 5 + 21 + 21 + 7 + 40 = 94 characters (Discord allows 100)."""
    custom_id = f"{HISTORY_PREFIX}:{viewer_id}:{subject_id}:{page}:{model_key or ''}"
    assert HISTORY_TEMPLATE.fullmatch(custom_id), custom_id
    return custom_id


def job_link(job: JobRecord) -> str | None:
    """A link to the job's message, when it has one people can open (not ephemeral, not deleted)."""
    if job.message_id is None or job.channel_id is None or job.ephemeral or job.message_deleted_at is not None:
        return None
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.message_id}"


def job_entry(job: JobRecord, *, own: bool, locale: object = "en") -> str:
    """Status, model, time, link, and the prompt (hidden from others when the job was private)."""
    icon = STATUS_ICONS.get(job.status, "•")
    parts = [f"**#{job.id}** {icon} {render(job.status, locale)}", f"`{job.model_key}`", timestamp(job.created_at)]
    link = job_link(job)
    if link is not None:
        parts.append(f"[{tr(locale, 'message')}]({link})")
    if job.ephemeral and not own:
        prompt = tr(locale, "*private job: prompt hidden*")
    else:
        prompt = prompt_preview(job.prompt, PROMPT_CHARS) or tr(locale, "*no prompt*")
    return " · ".join(parts) + f"\n{prompt}"


def _title(page: HistoryPage, *, own: bool, locale: object) -> str:
    if own:
        title = tr(locale, "Your jobs in this server") if page.guild_id else tr(locale, "Your jobs in DMs with the bot")
    elif page.guild_id:
        title = tr(locale, "A member's jobs in this server")
    else:
        title = tr(locale, "A member's jobs in DMs with the bot")
    return title + (tr(locale, " with `{model}`", model=page.model_key) if page.model_key else "")


def _nothing(page: HistoryPage, *, own: bool, locale: object) -> str:
    if page.total:
        return (
            tr(locale, "Nothing on this page with that model.")
            if page.model_key
            else tr(locale, "Nothing on this page.")
        )
    text = tr(locale, "No jobs yet with that model.") if page.model_key else tr(locale, "No jobs yet.")
    return text + (" " + tr(locale, "Make one with `/imagine`.") if own else "")


def history_embed(page: HistoryPage, *, own: bool, locale: object = "en") -> discord.Embed:
    embed = discord.Embed(title=_title(page, own=own, locale=locale)[:256], colour=EMBED_COLOUR)
    if page.jobs:
        embed.description = "\n\n".join(job_entry(job, own=own, locale=locale) for job in page.jobs)[:4096]
    else:
        embed.description = _nothing(page, own=own, locale=locale)
    embed.set_footer(
        text=tr(
            locale,
            "Page {page} of {pages} · {jobs} · /job show <id> for one job's details and result",
            page=page.page,
            pages=page.pages,
            jobs=plural(page.total, "{count} job", "{count} jobs"),
        )
    )
    return embed


def history_buttons(page: HistoryPage, viewer_id: int, locale: object = "en") -> tuple[tuple[ButtonSpec, ...], ...]:
    row: list[ButtonSpec] = []
    if page.has_previous:
        row.append(
            ButtonSpec(
                history_custom_id(viewer_id, page.subject_id, page.page - 1, page.model_key),
                tr(locale, "Previous"),
                "secondary",
                "◀️",
            )
        )
    if page.has_next:
        row.append(
            ButtonSpec(
                history_custom_id(viewer_id, page.subject_id, page.page + 1, page.model_key),
                tr(locale, "Next"),
                "secondary",
                "▶️",
            )
        )
    return (tuple(row),) if row else ()


def history_message(page: HistoryPage, *, viewer_id: int, locale: object = "en") -> Rendered:
    """The message: for a moderator looking at a member's jobs, the content names the member."""
    own = viewer_id == page.subject_id
    return Rendered(
        content="" if own else tr(locale, "Jobs of {member}:", member=f"<@{page.subject_id}>"),
        embeds=(history_embed(page, own=own, locale=locale),),
        rows=history_buttons(page, viewer_id, locale),
        final=True,
    )
