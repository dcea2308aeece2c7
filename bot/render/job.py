"""Pure rendering of a job into what its Discord message shows: content, embeds, files and buttons.

No I/O: everything the message depends on comes in through ``JobRecord`` and ``RenderContext``. ``Rendered.key``
identifies what a person sees, so delivery edits only when it changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import discord

from bot.storage.jobs import JobRecord, OutputRecord

ButtonStyle = Literal["primary", "secondary", "success", "danger"]
NsfwMode = Literal["show", "spoiler", "withhold"]

CUSTOM_ID_PREFIX = "gen"
ACTIONS = ("reroll", "edit", "animate", "details", "delete", "cancel", "refresh")
PROMPT_PREVIEW_CHARS = 900
EMBED_COLOUR = discord.Colour(0x7C5CFF)
FAIL_COLOUR = discord.Colour(0xE5484D)
KIND_NOUNS = {"image": "image", "image_edit": "edit", "video": "video"}


def custom_id(action: str, job_id: int) -> str:
    """``gen:<action>:<job id>``; the cogs' persistent buttons match this template."""
    assert action in ACTIONS
    return f"{CUSTOM_ID_PREFIX}:{action}:{job_id}"


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    custom_id: str
    label: str
    style: ButtonStyle = "secondary"
    emoji: str | None = None


@dataclass(frozen=True, slots=True)
class FileSpec:
    path: Path
    filename: str
    spoiler: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    content: str
    embeds: tuple[discord.Embed, ...] = ()
    files: tuple[FileSpec, ...] = ()
    rows: tuple[tuple[ButtonSpec, ...], ...] = ()
    final: bool = False
    key: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class RenderContext:
    now: float
    media_root: Path
    position: int | None = None  # place in the bot's own queue, 1-based
    typical_duration_s: float | None = None
    upload_limit: int = 10 * 1024 * 1024
    nsfw_mode: NsfwMode = "show"
    actions: frozenset[str] = frozenset(ACTIONS)  # the result buttons that can work here
    model_title: str | None = None
    # Outputs (by ``idx``) whose files are no longer on disk; the caller looks (render does no I/O). A job whose
    # ``outputs_purged_at`` is set has none of its files, whatever this says.
    missing_outputs: frozenset[int] = frozenset()
    retention_days: float | None = None  # how long results are kept, to say so when they are gone
    takes_seed: bool = True  # the model takes a seed: show it (or "random"); else no Seed line at all
    waiting_reason: str | None = None  # why a queued job cannot start now (its service is paused)


def prompt_preview(prompt: str, limit: int = PROMPT_PREVIEW_CHARS) -> str:
    """The prompt as inert text: no mentions, no markdown, no links that embed, at most ``limit`` characters once
    escaped (escaping adds a character per ``_`` or ``*``, and danbooru-style prompts are full of them)."""
    text = discord.utils.escape_markdown(discord.utils.escape_mentions(" ".join(prompt.split())))
    if len(text) > limit:
        text = text[: limit - 1]
        if (len(text) - len(text.rstrip("\\"))) % 2:  # do not leave half of an escape at the end
            text = text[:-1]
        text += "…"
    return _LINK.sub(r"<\1>", text)


_LINK = re.compile(r"(?<!<)(https?://[^\s<>…]+)")  # <url> links are not unfurled into embeds


def timestamp(ts: float, style: str = "R") -> str:
    return f"<t:{math.floor(ts)}:{style}>"


def duration_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def credits_text(n: int) -> str:
    return f"{n} credit{'' if n == 1 else 's'}"


def credits_were(n: int, what: str) -> str:
    """ "1 credit was refunded", "3 credits were refunded"."""
    return f"{credits_text(n)} {'was' if n == 1 else 'were'} {what}"


def credits_stay_spent(n: int) -> str:
    return f"{credits_text(n)} {'stays' if n == 1 else 'stay'} spent"


def queue_place(position: int) -> int:
    """The place in line a message shows: exact up to 10, then rounded up to tens, then to fifties, so that a
    long queue moving forward does not edit every waiting message at every step."""
    if position <= 10:
        return position
    if position <= 100:
        return math.ceil(position / 10) * 10
    return math.ceil(position / 50) * 50


def _headline(job: JobRecord) -> str:
    return f"**{prompt_preview(job.prompt)}** · `{job.model_key}` · <@{job.user_id}>"


def _job_tag(job: JobRecord) -> str:
    """The job's number and what it costs: the facts of the command's answer, on every state of its message."""
    return f"Job #{job.id} · {credits_text(job.cost)}." if job.cost else f"Job #{job.id}."


def _progress_line(job: JobRecord, ctx: RenderContext) -> str:
    noun = KIND_NOUNS.get(job.kind, "job")
    if job.status == "queued":
        shown = queue_place(ctx.position) if ctx.position else None
        place = "" if shown is None else f" (position {shown})" if shown <= 10 else f" (about {shown} in line)"
        line = f"⏳ Waiting to start{place}. {_job_tag(job)}"
        return f"{line}\n⏸️ {ctx.waiting_reason}" if ctx.waiting_reason else line
    if job.status == "submitting":
        return f"📨 Sending to the {noun} service. {_job_tag(job)}"
    started = job.submitted_at or job.created_at
    line = f"🎨 Making your {noun}, started {timestamp(started)}"
    if ctx.typical_duration_s:
        eta = started + ctx.typical_duration_s
        line += f", usually ready {timestamp(eta)}" if eta > ctx.now else ", should be ready any moment"
    return f"{line}. {_job_tag(job)}"


def _running_rows(job: JobRecord) -> tuple[tuple[ButtonSpec, ...], ...]:
    return (
        (
            ButtonSpec(custom_id("cancel", job.id), "Cancel", "danger", "✖️"),
            ButtonSpec(custom_id("refresh", job.id), "Refresh", "secondary", "🔄"),
        ),
    )


def _result_rows(job: JobRecord, ctx: RenderContext, *, succeeded: bool) -> tuple[tuple[ButtonSpec, ...], ...]:
    row: list[ButtonSpec] = [
        ButtonSpec(custom_id("reroll", job.id), "Reroll" if succeeded else "Try again", "primary", "🎲")
    ]
    has_image = succeeded and any(not o.is_video and _stored(job, o, ctx) for o in job.outputs)
    if has_image and "edit" in ctx.actions:
        row.append(ButtonSpec(custom_id("edit", job.id), "Edit", "secondary", "✏️"))
    if has_image and "animate" in ctx.actions:
        row.append(ButtonSpec(custom_id("animate", job.id), "Animate", "secondary", "🎬"))
    row.append(ButtonSpec(custom_id("details", job.id), "Details", "secondary", "ℹ️"))
    row.append(ButtonSpec(custom_id("delete", job.id), "Delete", "danger", "🗑️"))
    return (tuple(b for b in row if b.custom_id.split(":")[1] in ctx.actions),)


def _stored(job: JobRecord, output: OutputRecord, ctx: RenderContext) -> bool:
    """The output's file is still kept, so it can be attached (or edited, animated)."""
    return job.outputs_purged_at is None and output.idx not in ctx.missing_outputs


def _gone_line(ctx: RenderContext, *, some: bool) -> str:
    kept = f"results are kept for {ctx.retention_days:g} days" if ctx.retention_days else "results are kept for a while"
    what = "Some files of the result are" if some else "The result is"
    return f"🗑️ {what} no longer stored ({kept})."


def _filename(job: JobRecord, output: OutputRecord) -> str:
    return f"job{job.id}_{output.idx}{Path(output.path).suffix}"


def _params_fields(job: JobRecord, output: OutputRecord | None, *, takes_seed: bool = True) -> list[tuple[str, str]]:
    params = job.params
    fields = [("Model", f"`{job.model_key}`")]
    seed = params.get("seed")
    if takes_seed or seed is not None:
        fields.append(("Seed", f"`{seed}`" if seed is not None and seed != -1 else "random"))
    if output is not None and output.width and output.height:
        fields.append(("Size", f"{output.width}×{output.height}"))
    elif params.get("aspect_ratio"):
        fields.append(("Aspect ratio", str(params["aspect_ratio"])))
    for key, label in (("style", "Style"), ("duration_s", "Duration"), ("resolution", "Resolution")):
        if params.get(key) is not None:
            value = f"{params[key]}s" if key == "duration_s" else str(params[key])
            fields.append((label, value))
    if job.finished_at:
        fields.append(("Time taken", duration_text(job.finished_at - job.created_at)))
    return fields


def _link_line(output: OutputRecord, ctx: RenderContext, why: str) -> str:
    noun = "video" if output.is_video else "image"
    if not output.source_url:
        return f"The {noun} is too large to attach here ({why}) and the service gave no link to it."
    expiry = (
        f"; the link expires {timestamp(output.url_expires_at)}" if output.url_expires_at else "; the link may expire"
    )
    if output.url_expires_at and output.url_expires_at <= ctx.now:
        return f"The {noun} is too large to attach here ({why}) and its download link has expired."
    return f"[Download the {noun}]({output.source_url}) ({why}{expiry})."


def _succeeded(job: JobRecord, ctx: RenderContext) -> Rendered:
    lines = [_headline(job)]
    files: list[FileSpec] = []
    if ctx.nsfw_mode == "withhold" and any(o.nsfw for o in job.outputs):
        lines.append(
            "🔞 The result was flagged as NSFW, which is not shown in this channel. "
            "Use `/job show` in an age-restricted channel to see it."
        )
    gone = 0
    for output in job.outputs:
        if ctx.nsfw_mode == "withhold" and output.nsfw:
            continue
        if output.size_bytes <= ctx.upload_limit and not _stored(job, output, ctx):
            gone += 1
        elif output.size_bytes <= ctx.upload_limit:
            files.append(
                FileSpec(
                    path=ctx.media_root / output.path,
                    filename=_filename(job, output),
                    spoiler=output.nsfw and ctx.nsfw_mode == "spoiler",
                    description=f"Generated from job #{job.id}",
                )
            )
        else:
            limit_mb = ctx.upload_limit / 1024 / 1024
            lines.append(_link_line(output, ctx, f"{output.size_bytes / 1024 / 1024:.1f} MB, over {limit_mb:.0f} MB"))
    if gone:
        lines.append(_gone_line(ctx, some=gone < len(job.outputs)))
    first = job.outputs[0] if job.outputs else None
    embed = discord.Embed(colour=EMBED_COLOUR)
    for name, value in _params_fields(job, first, takes_seed=ctx.takes_seed):
        embed.add_field(name=name, value=value, inline=True)
    embed.set_footer(text=f"Job #{job.id} · {credits_text(job.cost)}")
    image_file = next((f for f in files if not f.spoiler and not f.filename.endswith((".mp4", ".mov", ".webm"))), None)
    if image_file is not None:
        embed.set_image(url=f"attachment://{image_file.filename}")
    return Rendered(
        content="\n".join(lines),
        embeds=(embed,),
        files=tuple(files),
        rows=_result_rows(job, ctx, succeeded=True),
        final=True,
    )


def _failed(job: JobRecord, ctx: RenderContext) -> Rendered:
    message = job.error_message or "The job failed."
    refund = f" Your {credits_were(job.cost, 'refunded')}." if job.cost else ""
    content = f"{_headline(job)}\n❌ {message}{refund}"
    return Rendered(content=content, rows=_result_rows(job, ctx, succeeded=False), final=True)


def _cancelled(job: JobRecord, ctx: RenderContext) -> Rendered:
    if job.submitted_at is None:
        detail = f"It never started, so your {credits_were(job.cost, 'refunded')}." if job.cost else ""
    else:
        detail = (
            f"It had already started at the service, which cannot stop it, so its {credits_stay_spent(job.cost)}."
            if job.cost
            else ""
        )
    return Rendered(content=f"{_headline(job)}\n🚫 Cancelled. {detail}".rstrip(), final=True)


def render_job(job: JobRecord, ctx: RenderContext) -> Rendered:
    if job.status == "succeeded":
        rendered = _succeeded(job, ctx)
    elif job.status == "failed":
        rendered = _failed(job, ctx)
    elif job.status == "cancelled":
        rendered = _cancelled(job, ctx)
    else:
        rendered = Rendered(content=f"{_headline(job)}\n{_progress_line(job, ctx)}", rows=_running_rows(job))
    return Rendered(
        content=rendered.content[:2000],
        embeds=rendered.embeds,
        files=rendered.files[:10],
        rows=rendered.rows,
        final=rendered.final,
        key=_key(rendered),
    )


def _key(rendered: Rendered) -> str:
    visible = {
        "content": rendered.content,
        "embeds": [e.to_dict() for e in rendered.embeds],
        "files": [(str(f.path), f.filename, f.spoiler) for f in rendered.files],
        "rows": [[(b.custom_id, b.label, b.style) for b in row] for row in rendered.rows],
    }
    return hashlib.sha256(json.dumps(visible, sort_keys=True, default=str).encode()).hexdigest()[:16]


def details_embed(job: JobRecord, *, model_title: str | None = None) -> discord.Embed:
    """Every parameter of a job, for the Details button and ``/job show``."""
    embed = discord.Embed(
        title=f"Job #{job.id}",
        description=prompt_preview(job.prompt, 3500),
        colour=FAIL_COLOUR if job.status == "failed" else EMBED_COLOUR,
    )
    embed.add_field(name="Status", value=job.status, inline=True)
    embed.add_field(
        name="Model", value=f"`{job.model_key}`" + (f" ({model_title})" if model_title else ""), inline=True
    )
    embed.add_field(name="Cost", value=credits_text(job.cost), inline=True)
    shown = {k: v for k, v in sorted(job.params.items()) if v not in (None, [], "") and not k.startswith("_")}
    inputs = {k: v for k, v in shown.items() if k in INPUT_PARAMS}
    for key, value in shown.items():
        if key in INPUT_PARAMS:
            continue
        name = "Upstream model" if key == "model" else key.replace("_", " ").capitalize()  # not a second "Model"
        embed.add_field(name=name, value=f"`{value}`"[:1024], inline=True)
    for key, value in inputs.items():
        count = len(value) if isinstance(value, list) else 1
        embed.add_field(name=key.replace("_", " ").capitalize(), value=f"{count} image(s)", inline=True)
    embed.add_field(name="Created", value=timestamp(job.created_at, "f"), inline=True)
    if job.finished_at:
        embed.add_field(name="Time taken", value=duration_text(job.finished_at - job.created_at), inline=True)
    if job.error_message:
        embed.add_field(name="Why it failed", value=job.error_message[:1024], inline=False)
    if job.parent_job_id:
        embed.add_field(name="From", value=f"{job.origin} of job #{job.parent_job_id}", inline=True)
    if job.delivery_error:
        embed.add_field(name="Could not be delivered", value=job.delivery_error[:1024], inline=False)
    embed.set_footer(text=f"Requested by user {job.user_id}")
    return embed


INPUT_PARAMS = frozenset({"reference_images", "source_image", "start_frame", "end_frame"})
