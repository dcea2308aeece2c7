"""Reading a member's past jobs: a page of ``/history``, and ``/job show`` (the job's details
and its result posted again from the kept output files, under the NSFW policy of the place it is shown in)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import InvalidInput
from bot.i18n import msg
from bot.render.details import details_embed
from bot.render.history import MAX_PAGE, MODEL_FILTER, PAGE_SIZE, HistoryPage
from bot.render.job import Rendered
from bot.storage.jobs import JobRecord, JobRepository

if TYPE_CHECKING:
    from bot.jobs.delivery import Outbox

RENDERABLE_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def clean_model_filter(model: str | None) -> str | None:
    """The ``model`` option of ``/history``: a model key (any, also of models no longer offered) or nothing."""
    if model is None or not model.strip():
        return None
    model = model.strip()
    if not MODEL_FILTER.fullmatch(model):
        raise InvalidInput(msg("That is not a model name. Pick one from the list, or leave the option out."))
    return model


async def history_page(
    jobs: JobRepository, *, subject_id: int, guild_id: int, model_key: str | None, page: int
) -> HistoryPage:
    """Page ``page`` (clamped to the last page) of the subject's jobs in one scope, newest first."""
    page = min(max(page, 1), MAX_PAGE)
    found, total = await jobs.history(
        subject_id, guild_id, model_key=model_key, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page > pages:
        page = pages
        found, total = await jobs.history(
            subject_id, guild_id, model_key=model_key, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    return HistoryPage(
        subject_id=subject_id,
        guild_id=guild_id,
        model_key=model_key,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        total=total,
        jobs=tuple(found),
    )


@dataclass(frozen=True, slots=True)
class Here:
    """Where ``/job show`` answers: the NSFW policy and the upload limit of this place apply, not the job's."""

    guild_id: int  # 0: DMs
    channel_nsfw: bool
    upload_limit: int
    locale: str = "en-US"  # the reader's: /job show answers only them


async def job_show(
    delivery: Outbox, job: JobRecord, here: Here, *, model_title: str | None, extended_by: tuple[int, ...] = ()
) -> Rendered:
    """The job's details embed (with the jobs that extend it), and its result again: the files that are still
    kept, attached when under the upload limit of this place (else a link), spoilered or withheld as this place's
    NSFW policy says. Files no longer kept are not attached; the rendered result says so."""
    shown_here = dataclasses.replace(job, guild_id=here.guild_id, channel_nsfw=here.channel_nsfw)
    rendered = await delivery.render(
        shown_here, upload_limit=here.upload_limit, in_dm=not here.guild_id, locale=here.locale
    )
    files = rendered.files
    embed = details_embed(job, model_title=model_title, extended_by=extended_by, locale=here.locale)
    image = next(
        (f for f in files if not f.spoiler and f.filename.lower().endswith(RENDERABLE_IMAGE_SUFFIXES)),
        None,
    )
    if image is not None:
        embed.set_image(url=f"attachment://{image.filename}")
    content = rendered.content
    if len(content) > 2000:
        content = content[:1999] + "…"
    return Rendered(content=content, embeds=(embed,), files=files, final=True)
