"""Pure rendering of a job into what its Discord message shows: content, embeds, files and buttons. No I/O:
everything comes in through ``JobRecord`` and ``RenderContext``; ``Rendered.key`` identifies what a person sees,
so delivery edits only when it changes."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import discord

from bot.i18n import N_, Msg, msg, plural, render, tr
from bot.storage.jobs import JobRecord, OutputRecord

ButtonStyle = Literal["primary", "secondary", "success", "danger"]
NsfwMode = Literal["show", "spoiler", "withhold"]

CUSTOM_ID_PREFIX = "gen"
ACTIONS = ("reroll", "edit", "animate", "extend", "details", "delete", "cancel", "refresh")
PROMPT_PREVIEW_CHARS = 900
EMBED_COLOUR = discord.Colour(0x7C5CFF)
FAIL_COLOUR = discord.Colour(0xE5484D)
KIND_NOUNS = {"image": N_("image"), "image_edit": N_("edit"), "video": N_("video")}


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
    actions: frozenset[str] = frozenset(ACTIONS)  # the result buttons that can work here and for this job
    model_title: str | None = None
    # Outputs (by ``idx``) whose files are no longer on disk; the caller looks (render does no I/O). A job whose
    # ``outputs_purged_at`` is set has none of its files, whatever this says.
    missing_outputs: frozenset[int] = frozenset()
    retention_days: float | None = None  # how long results are kept, to say so when they are gone
    takes_seed: bool = True  # the model takes a seed: show it (or "random"); else no Seed line at all
    waiting_reason: str | None = None  # why a queued job cannot start now (its service is paused)
    locale: str = "en"  # the language of whoever reads the message: see bot.i18n and job_locale


def job_locale(job: JobRecord, *, in_dm: bool = False) -> str:
    """The locale a job's message is rendered in: the server's for a public message in a server, the requester's
    for a private job or in DMs (jobs from before languages were stored: English)."""
    if job.guild_id and not job.ephemeral and not in_dm:
        return job.guild_locale or "en-US"
    return job.user_locale or "en-US"


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


def credits_text(n: int) -> Msg:
    return plural(n, "{count} credit", "{count} credits")


def credits_refunded(n: int) -> Msg:
    """ "1 credit was refunded", "3 credits were refunded"."""
    return plural(n, "{count} credit was refunded", "{count} credits were refunded")


def credits_stay_spent(n: int) -> Msg:
    return plural(n, "{count} credit stays spent", "{count} credits stay spent")


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


def _job_tag(job: JobRecord, lang: object) -> str:
    """The job's number and what it costs: the facts of the command's answer, on every state of its message."""
    if job.cost:
        return tr(lang, "Job #{job_id} · {credits}.", job_id=job.id, credits=credits_text(job.cost))
    return tr(lang, "Job #{job_id}.", job_id=job.id)


def _progress_line(job: JobRecord, ctx: RenderContext) -> str:
    lang = ctx.locale
    noun = Msg(KIND_NOUNS.get(job.kind, N_("job")))
    if job.status == "queued":
        shown = queue_place(ctx.position) if ctx.position else None
        if shown is None:
            line = tr(lang, "⏳ Waiting to start. {tag}", tag=_job_tag(job, lang))
        elif shown <= 10:
            line = tr(lang, "⏳ Waiting to start (position {place}). {tag}", place=shown, tag=_job_tag(job, lang))
        else:
            line = tr(lang, "⏳ Waiting to start (about {place} in line). {tag}", place=shown, tag=_job_tag(job, lang))
        return f"{line}\n⏸️ {render(ctx.waiting_reason, lang)}" if ctx.waiting_reason else line
    if job.status == "submitting":
        return tr(lang, "📨 Sending to the {kind} service. {tag}", kind=noun, tag=_job_tag(job, lang))
    started = job.submitted_at or job.created_at
    if not ctx.typical_duration_s:
        return tr(
            lang,
            "🎨 Making your {kind}, started {started}. {tag}",
            kind=noun,
            started=timestamp(started),
            tag=_job_tag(job, lang),
        )
    eta = started + ctx.typical_duration_s
    if eta > ctx.now:
        return tr(
            lang,
            "🎨 Making your {kind}, started {started}, usually ready {eta}. {tag}",
            kind=noun,
            started=timestamp(started),
            eta=timestamp(eta),
            tag=_job_tag(job, lang),
        )
    return tr(
        lang,
        "🎨 Making your {kind}, started {started}, should be ready any moment. {tag}",
        kind=noun,
        started=timestamp(started),
        tag=_job_tag(job, lang),
    )


def _running_rows(job: JobRecord, ctx: RenderContext) -> tuple[tuple[ButtonSpec, ...], ...]:
    return (
        (
            ButtonSpec(custom_id("cancel", job.id), tr(ctx.locale, "Cancel"), "danger", "✖️"),
            ButtonSpec(custom_id("refresh", job.id), tr(ctx.locale, "Refresh"), "secondary", "🔄"),
        ),
    )


def _result_rows(job: JobRecord, ctx: RenderContext, *, succeeded: bool) -> tuple[tuple[ButtonSpec, ...], ...]:
    lang = ctx.locale
    row: list[ButtonSpec] = [
        ButtonSpec(
            custom_id("reroll", job.id), tr(lang, "Reroll") if succeeded else tr(lang, "Try again"), "primary", "🎲"
        )
    ]
    has_image = succeeded and any(not o.is_video and _stored(job, o, ctx) for o in job.outputs)
    if has_image and "edit" in ctx.actions:
        row.append(ButtonSpec(custom_id("edit", job.id), tr(lang, "Edit"), "secondary", "✏️"))
    if has_image and "animate" in ctx.actions:
        row.append(ButtonSpec(custom_id("animate", job.id), tr(lang, "Animate"), "secondary", "🎬"))
    if succeeded and job.remote_id and any(o.is_video for o in job.outputs):  # ctx.actions: the model extends
        row.append(ButtonSpec(custom_id("extend", job.id), tr(lang, "Extend"), "secondary", "⏩"))
    row.append(ButtonSpec(custom_id("details", job.id), tr(lang, "Details"), "secondary", "ℹ️"))
    row.append(ButtonSpec(custom_id("delete", job.id), tr(lang, "Delete"), "danger", "🗑️"))
    return (tuple(b for b in row if b.custom_id.split(":")[1] in ctx.actions),)


def _stored(job: JobRecord, output: OutputRecord, ctx: RenderContext) -> bool:
    """The output's file is still kept, so it can be attached (or edited, animated)."""
    return job.outputs_purged_at is None and output.idx not in ctx.missing_outputs


def _gone_line(ctx: RenderContext, *, some: bool) -> str:
    lang = ctx.locale
    if ctx.retention_days:
        kept = tr(lang, "results are kept for {days} days", days=f"{ctx.retention_days:g}")
    else:
        kept = tr(lang, "results are kept for a while")
    if some:
        return tr(lang, "🗑️ Some files of the result are no longer stored ({kept}).", kept=kept)
    return tr(lang, "🗑️ The result is no longer stored ({kept}).", kept=kept)


def _filename(job: JobRecord, output: OutputRecord) -> str:
    return f"job{job.id}_{output.idx}{Path(output.path).suffix}"


def _params_fields(
    job: JobRecord, output: OutputRecord | None, *, takes_seed: bool = True, lang: str = "en"
) -> list[tuple[str, str]]:
    params = job.params
    fields = [(tr(lang, "Model"), f"`{job.model_key}`")]
    seed = params.get("seed")
    if takes_seed or seed is not None:
        fields.append((tr(lang, "Seed"), f"`{seed}`" if seed is not None and seed != -1 else tr(lang, "random")))
    if output is not None and output.width and output.height:
        fields.append((tr(lang, "Size"), f"{output.width}×{output.height}"))
    elif params.get("aspect_ratio"):
        fields.append((tr(lang, "Aspect ratio"), str(params["aspect_ratio"])))
    for key, label in (("style", N_("Style")), ("duration_s", N_("Duration")), ("resolution", N_("Resolution"))):
        if params.get(key) is not None:
            value = f"{params[key]}s" if key == "duration_s" else str(params[key])
            fields.append((render(label, lang), value))
    if job.finished_at:
        fields.append((tr(lang, "Time taken"), duration_text(job.finished_at - job.created_at)))
    return fields


def _link_line(output: OutputRecord, ctx: RenderContext, why: str) -> str:
    lang = ctx.locale
    noun = msg("video") if output.is_video else msg("image")
    if not output.source_url:
        return tr(
            lang,
            "The {kind} is too large to attach here ({why}) and the service gave no link to it.",
            kind=noun,
            why=why,
        )
    if output.url_expires_at and output.url_expires_at <= ctx.now:
        return tr(
            lang,
            "The {kind} is too large to attach here ({why}) and its download link has expired.",
            kind=noun,
            why=why,
        )
    if output.url_expires_at:
        return tr(
            lang,
            "[Download the {kind}]({url}) ({why}; the link expires {expires}).",
            kind=noun,
            url=output.source_url,
            why=why,
            expires=timestamp(output.url_expires_at),
        )
    return tr(
        lang, "[Download the {kind}]({url}) ({why}; the link may expire).", kind=noun, url=output.source_url, why=why
    )


def _succeeded(job: JobRecord, ctx: RenderContext) -> Rendered:
    lines = [_headline(job)]
    files: list[FileSpec] = []
    if ctx.nsfw_mode == "withhold" and any(o.nsfw for o in job.outputs):
        lines.append(
            tr(
                ctx.locale,
                "🔞 The result was flagged as NSFW, which is not shown in this channel. "
                "Use `/job show` in an age-restricted channel to see it.",
            )
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
                    description=tr(ctx.locale, "Generated from job #{job_id}", job_id=job.id),
                )
            )
        else:
            limit_mb = ctx.upload_limit / 1024 / 1024
            why = tr(
                ctx.locale,
                "{size} MB, over {limit} MB",
                size=f"{output.size_bytes / 1024 / 1024:.1f}",
                limit=f"{limit_mb:.0f}",
            )
            lines.append(_link_line(output, ctx, why))
    if gone:
        lines.append(_gone_line(ctx, some=gone < len(job.outputs)))
    first = job.outputs[0] if job.outputs else None
    embed = discord.Embed(colour=EMBED_COLOUR)
    for name, value in _params_fields(job, first, takes_seed=ctx.takes_seed, lang=ctx.locale):
        embed.add_field(name=name, value=value, inline=True)
    embed.set_footer(text=tr(ctx.locale, "Job #{job_id} · {credits}", job_id=job.id, credits=credits_text(job.cost)))
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
    lang = ctx.locale
    message = render(job.error_message, lang) or tr(lang, "The job failed.")
    refund = tr(lang, " Your {credits}.", credits=credits_refunded(job.cost)) if job.cost else ""
    content = f"{_headline(job)}\n❌ {message}{refund}"
    return Rendered(content=content, rows=_result_rows(job, ctx, succeeded=False), final=True)


def _cancelled(job: JobRecord, ctx: RenderContext) -> Rendered:
    lang = ctx.locale
    if not job.cost:
        detail = ""
    elif job.submitted_at is None:
        detail = tr(lang, " It never started, so your {credits}.", credits=credits_refunded(job.cost))
    else:
        detail = tr(
            lang,
            " It had already started at the service, which cannot stop it, so its {credits}.",
            credits=credits_stay_spent(job.cost),
        )
    return Rendered(content=f"{_headline(job)}\n{tr(lang, '🚫 Cancelled.')}{detail}", final=True)


def render_job(job: JobRecord, ctx: RenderContext) -> Rendered:
    if job.status == "succeeded":
        rendered = _succeeded(job, ctx)
    elif job.status == "failed":
        rendered = _failed(job, ctx)
    elif job.status == "cancelled":
        rendered = _cancelled(job, ctx)
    else:
        rendered = Rendered(content=f"{_headline(job)}\n{_progress_line(job, ctx)}", rows=_running_rows(job, ctx))
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
