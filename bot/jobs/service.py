"""Starting and cancelling jobs. The command has already deferred; from here: server rules → inputs → reserve
credits and write the job (one transaction) → post the job's message → hand it to the scheduler."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.catalogue import Catalogue, ModelEntry, default_model_for
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.fetch import Fetcher
from bot.jobs import access
from bot.jobs.delivery import Delivery, message_kwargs
from bot.jobs.inputs import ImageSource, load_image
from bot.jobs.media_store import MediaStore
from bot.jobs.render import credits_stay_spent, credits_text, credits_were, timestamp
from bot.jobs.requester import Requester
from bot.jobs.requests import SCALAR_PARAMS, StoredImage, job_params
from bot.jobs.scheduler import Scheduler
from bot.jobs.transitions import JobTransitions
from bot.quota import QuotaService
from bot.settings import Settings
from bot.settings_store import ServerConfig, ServerSettingsStore
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobRepository, NewJob
from providers.base import Kind

log = logging.getLogger(__name__)

KIND_WORDS = {Kind.IMAGE: "images", Kind.IMAGE_EDIT: "image edits", Kind.VIDEO: "videos"}


def offered_models(catalogue: Catalogue, config: ServerConfig, kind: Kind) -> list[ModelEntry]:
    """The models enabled and allowed here that do this kind, in catalogue order."""
    return [m for m in catalogue.for_kind(kind) if config.allows_model(m.key)]


def pick_model(
    catalogue: Catalogue, config: ServerConfig, kind: Kind, asked: str | None, *, preferred: str | None = None
) -> ModelEntry:
    """The one rule for the model of a job. A model asked for must be enabled and allowed here and do this kind
    (else a refusal that lists the ones that do). Otherwise the first that is allowed here and does the kind of:
    ``preferred`` (e.g. the model of the job being edited), the server's default, the catalogue's default; else
    the first allowed model that does the kind."""
    offered = offered_models(catalogue, config, kind)
    if asked:
        entry = catalogue.get(asked)
        if entry is None or not config.allows_model(asked):
            names = ", ".join(m.key for m in offered) or "none"
            raise InvalidInput(f"There is no model `{asked}` here. Choose one of: {names}.")
        if not entry.does(kind):
            names = ", ".join(m.key for m in offered) or "none"
            raise InvalidInput(f"`{asked}` does not make {KIND_WORDS[kind]}. Choose one of: {names}.")
        return entry
    for key in (preferred, config.default_model, default_model_for(kind)):
        entry = catalogue.get(key) if key else None
        if entry is not None and entry in offered:
            return entry
    if offered:
        return offered[0]
    raise NotAllowed(f"No model for {KIND_WORDS[kind]} is enabled here.")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A validated request from a command or a button, before any I/O."""

    kind: Kind
    model_key: str
    prompt: str
    options: dict[str, Any] = field(default_factory=dict)
    size: tuple[int, int] | None = None
    reference_images: tuple[ImageSource, ...] = ()
    source_image: ImageSource | None = None
    start_frame: ImageSource | None = None
    end_frame: ImageSource | None = None
    private: bool = False
    origin: str = "command"
    parent_job_id: int | None = None
    notes: tuple[str, ...] = ()  # e.g. values that were clamped, shown in the receipt


@dataclass(frozen=True, slots=True)
class Started:
    job: JobRecord
    receipt: str


class JobService:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        jobs: JobRepository,
        quota: QuotaService,
        transitions: JobTransitions,
        catalogue: Catalogue,
        server_settings: ServerSettingsStore,
        fetcher: Fetcher,
        media: MediaStore,
        scheduler: Scheduler,
        delivery: Delivery,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._db = database
        self._jobs = jobs
        self._quota = quota
        self._transitions = transitions
        self._catalogue = catalogue
        self._server_settings = server_settings
        self._fetcher = fetcher
        self._media = media
        self._scheduler = scheduler
        self._delivery = delivery
        self._clock = clock

    # ------------------------------------------------------------------ choosing a model
    async def models_offered(self, guild_id: int | None, kind: Kind) -> list[ModelEntry]:
        """The models a member may pick here for this kind of job (for autocomplete)."""
        return offered_models(self._catalogue, await self._server_settings.get(guild_id), kind)

    async def choose_model(
        self, guild_id: int | None, kind: Kind, asked: str | None = None, *, preferred: str | None = None
    ) -> ModelEntry:
        """The model for a job of this kind in this server (0/None: DMs): see ``pick_model``."""
        config = await self._server_settings.get(guild_id)
        return pick_model(self._catalogue, config, kind, asked, preferred=preferred)

    # ------------------------------------------------------------------ starting
    async def check_allowed(self, requester: Requester, model_key: str, kind: Kind, prompt: str) -> ModelEntry:
        """The server's rules for this request: the channel allowed, the model usable here, no banned word."""
        config = await self._server_settings.get(requester.guild_id)
        if not config.allows_channel(requester.channel_id, *requester.ancestor_ids):
            channels = ", ".join(f"<#{c}>" for c in sorted(config.allowed_channels))
            raise NotAllowed(f"Generation is not allowed in this channel. Use one of: {channels}.")
        entry = pick_model(self._catalogue, config, kind, model_key)
        word = config.banned_word_in(prompt)
        if word is not None:
            raise InvalidInput(
                f"Your prompt contains a word this server does not allow (“{word}”). Remove it and try again."
            )
        return entry

    async def start(self, interaction: discord.Interaction, spec: JobSpec) -> Started:
        """Run the whole start of a job for an interaction that has already been deferred (ephemeral)."""
        requester = Requester.from_interaction(interaction)
        entry = await self.check_allowed(requester, spec.model_key, spec.kind, spec.prompt)
        # Refuse a banned or out-of-credits member before downloading anything; reserve() below decides for good.
        await self._quota.check(requester.guild_id, requester.user_id, requester.role_ids, entry.cost)
        params = job_params(
            upstream_model=entry.upstream_model,
            options=spec.options,
            size=spec.size,
            reference_images=tuple([await self._load_one(src, "reference image") for src in spec.reference_images]),
            source_image=await self._load(spec.source_image, "image to edit"),
            start_frame=await self._load(spec.start_frame, "start image"),
            end_frame=await self._load(spec.end_frame, "end image"),
        )
        job = await self._create(requester, spec, entry, params)
        receipt = await self._receipt(requester, job, spec)
        await self._announce(interaction, job, receipt)
        fresh = await self._jobs.get(job.id)
        assert fresh is not None
        self._scheduler.enqueue(fresh)
        log.info(
            "job %s started: user %s, %s, model %s, %s, origin %s",
            job.id,
            requester.user_id,
            job.scope,
            job.model_key,
            credits_text(job.cost),
            spec.origin,
        )
        return Started(fresh, receipt)

    async def _load(self, source: ImageSource | None, what: str) -> StoredImage | None:
        return None if source is None else await self._load_one(source, what)

    async def _load_one(self, source: ImageSource, what: str) -> StoredImage:
        return await load_image(source, fetcher=self._fetcher, media=self._media, settings=self._settings, what=what)

    async def _create(
        self, requester: Requester, spec: JobSpec, entry: ModelEntry, params: dict[str, Any]
    ) -> JobRecord:
        now = self._clock()
        deadline = self._settings.video_deadline_s if spec.kind is Kind.VIDEO else self._settings.image_deadline_s
        new = NewJob(
            user_id=requester.user_id,
            guild_id=requester.guild_id,
            channel_id=requester.channel_id,
            model_key=entry.key,
            provider=entry.provider,
            kind=spec.kind.value,
            prompt=spec.prompt,
            params=params,
            cost=entry.cost,
            created_at=now,
            deadline_at=now + deadline,
            origin=spec.origin,
            parent_job_id=spec.parent_job_id,
            application_id=requester.application_id,
            interaction_token=requester.token,
            token_expires_at=requester.token_expires_at,
            token_edits_original=spec.private,
            ephemeral=spec.private,
            interaction_context=requester.context,
            guild_installed=requester.guild_installed,
            channel_nsfw=requester.channel_nsfw,
            attachment_size_limit=requester.attachment_size_limit,
        )
        async with self._db.transaction() as conn:
            job_id = await self._jobs.insert(conn, new)
            await self._quota.reserve(
                conn,
                job_id=job_id,
                guild_id=requester.guild_id,
                user_id=requester.user_id,
                role_ids=requester.role_ids,
                cost=entry.cost,
                now=now,
            )
            job = await self._jobs.get_in(conn, job_id)
        assert job is not None
        return job

    async def _receipt(self, requester: Requester, job: JobRecord, spec: JobSpec) -> str:
        status = await self._quota.status(requester.guild_id, requester.user_id, requester.role_ids)
        bonus = f" + {credits_text(status.bonus)} bonus" if status.bonus else ""
        lines = [
            f"✅ Job #{job.id} started: {credits_text(job.cost)}. You have {credits_text(status.left)} left "
            f"for today{bonus} (more {timestamp(status.resets_at)})."
        ]
        lines += [f"ℹ️ {note}" for note in spec.notes]
        return "\n".join(lines)

    async def _announce(self, interaction: discord.Interaction, job: JobRecord, receipt: str) -> None:
        """Post the job's message: the ephemeral reply itself for private jobs, else a public follow-up."""
        position = self._scheduler.position_if_enqueued(job.provider)
        rendered = await self._delivery.render(job, position=position)
        kwargs = message_kwargs(rendered)
        message: discord.Message
        try:
            if job.ephemeral:
                message = await interaction.edit_original_response(
                    content=f"{receipt}\n\n{kwargs['content']}"[:2000], embeds=kwargs["embeds"], view=kwargs["view"]
                )
            else:
                await interaction.edit_original_response(content=receipt)
                message = await interaction.followup.send(
                    kwargs["content"], embeds=kwargs["embeds"], view=kwargs["view"], wait=True
                )
        except discord.HTTPException as exc:
            # The job is safe in the database; delivery will post its result another way.
            log.warning("job %s: could not post its message (%s %s)", job.id, exc.status, exc.code)
            return
        await self._jobs.set_message(job.id, message.id)

    # ------------------------------------------------------------------ follow-up jobs from a result
    async def follow_up_spec(
        self, job_id: int, requester: Requester, *, origin: str, prompt: str | None = None
    ) -> JobSpec:
        """A new job from an earlier one: ``reroll`` (same parameters, new seed), ``edit`` (an image edit of its
        output with a new prompt) or ``animate`` (its output as the start frame of a video)."""
        parent = await self._jobs.get(job_id)
        if parent is None:
            raise NotFound(f"There is no job #{job_id}.")
        if not access.can_use(parent, requester):
            raise NotAllowed("Only the person who started this private job can use its buttons.")
        if origin == "reroll":
            entry = self._catalogue.get(parent.model_key)
            options = {k: parent.params[k] for k in SCALAR_PARAMS if k in parent.params}
            if entry is not None and entry.capabilities.seed_range is not None:
                low, high = entry.capabilities.seed_range
                options["seed"] = random.randint(max(low, 0), high)
            return JobSpec(
                kind=Kind(parent.kind),
                model_key=parent.model_key,
                prompt=parent.prompt,
                options=options,
                size=tuple(parent.params["size"]) if parent.params.get("size") else None,  # type: ignore[arg-type]
                reference_images=tuple(
                    StoredImage(ref["path"], ref["media_type"]) for ref in parent.params.get("reference_images", [])
                ),
                source_image=_stored(parent.params.get("source_image")),
                start_frame=_stored(parent.params.get("start_frame")),
                end_frame=_stored(parent.params.get("end_frame")),
                private=parent.ephemeral,
                origin=origin,
                parent_job_id=parent.id,
            )
        image = await self._output_image(parent)
        kind = Kind.IMAGE_EDIT if origin == "edit" else Kind.VIDEO
        preferred = parent.model_key if origin == "edit" else None
        entry = await self.choose_model(requester.guild_id, kind, preferred=preferred)
        text = (prompt or parent.prompt).strip()
        if kind is Kind.IMAGE_EDIT:
            return JobSpec(
                kind=kind,
                model_key=entry.key,
                prompt=text,
                source_image=image,
                private=parent.ephemeral,
                origin=origin,
                parent_job_id=parent.id,
            )
        return JobSpec(
            kind=kind,
            model_key=entry.key,
            prompt=text,
            start_frame=image,
            private=parent.ephemeral,
            origin=origin,
            parent_job_id=parent.id,
        )

    async def _output_image(self, job: JobRecord) -> StoredImage:
        image = next((o for o in job.outputs if not o.is_video), None)
        if job.status != "succeeded" or image is None:
            raise InvalidInput(f"Job #{job.id} has no image to use.")
        if job.outputs_purged_at is not None or not await self._media.exists(image.path):
            raise InvalidInput(
                f"The result of job #{job.id} is no longer stored (results are kept for a limited time)."
            )
        return StoredImage(image.path, image.media_type)

    # ------------------------------------------------------------------ cancelling
    async def cancel(self, job_id: int, requester: Requester) -> str:
        """Cancel for the requester or a moderator of the job's server; returns what to tell them."""
        job = await self._visible_job(job_id, requester, moderator_allowed=True)
        outcome = await self._transitions.cancel(job.id)
        if outcome == "finished":
            return f"Job #{job.id} has already finished."
        if outcome == "sending":
            return f"Job #{job.id} is being sent to the service right now; try again in a few seconds."
        self._scheduler.forget(job.id, job.provider)
        self._delivery.notify(job.id)
        if outcome == "kept":
            return (
                f"Job #{job.id} is cancelled: you will get no more updates. It had already started at the service, "
                f"which cannot stop it, so its {credits_stay_spent(job.cost)}."
            )
        return f"Job #{job.id} is cancelled and its {credits_were(job.cost, 'refunded')}."

    async def _visible_job(self, job_id: int, requester: Requester, *, moderator_allowed: bool) -> JobRecord:
        """The job, if the requester may manage it (``access.can_manage``; only its own requester when
        ``moderator_allowed`` is false)."""
        job = await self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"There is no job #{job_id}.")
        if access.is_owner(job, requester) or (moderator_allowed and await self.may_manage(job, requester)):
            return job
        raise NotAllowed(access.refusal(job))

    # ------------------------------------------------------------------ access (bot/jobs/access.py)
    async def may_view(self, job: JobRecord, requester: Requester) -> bool:
        """May see the job by its number (``/job show``)."""
        config = await self._server_settings.get(job.guild_id)
        return access.can_view(job, requester, config, self._settings)

    async def may_manage(self, job: JobRecord, requester: Requester) -> bool:
        """May cancel the job or delete its message."""
        config = await self._server_settings.get(job.guild_id)
        return access.can_manage(job, requester, config, self._settings)

    # ------------------------------------------------------------------ the job's message
    async def renew_token(self, job: JobRecord, interaction: discord.Interaction) -> bool:
        """A click on the job's own message (Refresh) brings a fresh 15-minute token whose @original is that
        message: delivery keeps editing through it while the job runs. True if the token was taken."""
        message = interaction.message
        if not job.active or message is None or message.id != job.message_id:
            return False
        requester = Requester.from_interaction(interaction)
        await self._jobs.set_token(
            job.id,
            application_id=requester.application_id,
            token=requester.token,
            expires_at=requester.token_expires_at,
            edits_original=True,
        )
        return True

    async def message_deleted(self, job_id: int, message_id: int | None) -> bool:
        """A message showing the job was deleted. Only the job's own message matters (not, say, the copy of its
        result sent to DMs): then delivery stops editing it. True if it was the job's message."""
        job = await self._jobs.get(job_id)
        if job is None or message_id is None or message_id != job.message_id:
            return False
        await self._jobs.mark_message_deleted(job.id, self._clock())
        return True


def _stored(ref: dict[str, str] | None) -> StoredImage | None:
    return StoredImage(ref["path"], ref["media_type"]) if ref else None
