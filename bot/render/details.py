"""The Details embed of a job (the Details button and ``/job show``): every parameter, in the reader's language."""

from __future__ import annotations

import discord

from bot.i18n import N_, render, tr
from bot.render.job import EMBED_COLOUR, FAIL_COLOUR, credits_text, duration_text, prompt_preview, timestamp
from bot.storage.jobs import JobRecord


def details_embed(
    job: JobRecord, *, model_title: str | None = None, extended_by: tuple[int, ...] = (), locale: object = "en"
) -> discord.Embed:
    """Every parameter of a job, for the Details button and ``/job show`` (with the jobs that extend it)."""
    embed = discord.Embed(
        title=tr(locale, "Job #{job_id}", job_id=job.id),
        description=prompt_preview(job.prompt, 3500),
        colour=FAIL_COLOUR if job.status == "failed" else EMBED_COLOUR,
    )
    embed.add_field(name=tr(locale, "Status"), value=render(job.status, locale), inline=True)
    embed.add_field(
        name=tr(locale, "Model"), value=f"`{job.model_key}`" + (f" ({model_title})" if model_title else ""), inline=True
    )
    embed.add_field(name=tr(locale, "Cost"), value=render(credits_text(job.cost), locale), inline=True)
    shown = {
        k: v
        for k, v in sorted(job.params.items())
        if v not in (None, [], "") and not k.startswith("_") and k not in HIDDEN_PARAMS
    }
    inputs = {k: v for k, v in shown.items() if k in INPUT_PARAMS}
    for key, value in shown.items():
        if key in INPUT_PARAMS:
            continue
        name = N_("Upstream model") if key == "model" else key.replace("_", " ").capitalize()  # not a second "Model"
        embed.add_field(name=render(name, locale), value=f"`{value}`"[:1024], inline=True)
    for key, value in inputs.items():
        count = len(value) if isinstance(value, list) else 1
        embed.add_field(
            name=render(key.replace("_", " ").capitalize(), locale),
            value=tr(locale, "{count} image(s)", count=count),
            inline=True,
        )
    embed.add_field(name=tr(locale, "Created"), value=timestamp(job.created_at, "f"), inline=True)
    if job.finished_at:
        embed.add_field(
            name=tr(locale, "Time taken"), value=duration_text(job.finished_at - job.created_at), inline=True
        )
    if job.error_message:
        embed.add_field(name=tr(locale, "Why it failed"), value=render(job.error_message, locale)[:1024], inline=False)
    if job.parent_job_id and job.origin == "extend":
        embed.add_field(
            name=tr(locale, "Extends"), value=tr(locale, "job #{job_id}", job_id=job.parent_job_id), inline=True
        )
    elif job.parent_job_id:
        embed.add_field(
            name=tr(locale, "From"),
            value=tr(locale, "{origin} of job #{job_id}", origin=render(job.origin, locale), job_id=job.parent_job_id),
            inline=True,
        )
    if extended_by:
        chain = ", ".join(tr(locale, "job #{job_id}", job_id=n) for n in extended_by)
        embed.add_field(name=tr(locale, "Extended by"), value=chain[:1024], inline=True)
    if job.delivery_error:
        embed.add_field(name=tr(locale, "Could not be delivered"), value=job.delivery_error[:1024], inline=False)
    embed.set_footer(text=tr(locale, "Requested by user {user_id}", user_id=job.user_id))
    return embed


INPUT_PARAMS = frozenset({"reference_images", "source_image", "start_frame", "end_frame"})
HIDDEN_PARAMS = frozenset({"extend_of"})  # the upstream id; "Extends job #N" says it for people
# Words shown as they are stored (a job's status and origin, its parameters' labels): ``render`` translates them.
SHOWN_AS_STORED = (
    *(N_("queued"), N_("submitting"), N_("running"), N_("succeeded"), N_("failed"), N_("cancelled")),
    *(N_("command"), N_("reroll"), N_("edit"), N_("animate"), N_("extend")),
    *(N_("Aspect ratio"), N_("Output format"), N_("Steps"), N_("Guidance"), N_("Quality"), N_("Duration s")),
    *(N_("Loop"), N_("Enhance prompt"), N_("Lora scale"), N_("Megapixels"), N_("Prompt strength")),
    *(N_("Web search"), N_("Size"), N_("Seed"), N_("Style"), N_("Resolution")),
    *(N_("Reference images"), N_("Source image"), N_("Start frame"), N_("End frame")),
)
