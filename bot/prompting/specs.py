"""The one place a ``JobSpec`` is made: from a command's text and options, or from a button on an earlier job
(reroll, edit, animate). Checks everything that needs no download; ``JobService.start`` does the rest."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.catalogue import Catalogue, ModelEntry
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import msg
from bot.jobs import access
from bot.jobs.inputs import ImageSource, check_attachment
from bot.jobs.media_store import MediaStore
from bot.jobs.requester import Requester
from bot.jobs.requests import SCALAR_PARAMS, StoredImage
from bot.prompting.flags import UnknownFlag, flags_for, model_from, model_in, parse_prompt
from bot.prompting.models import offered_models, pick_model
from bot.prompting.options import random_seed_dropped, resolve_options
from bot.prompting.preferences import apply_preferences, model_note
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.jobs import JobRecord, JobRepository
from bot.storage.preferences import Preferences
from providers.base import Kind

EXTEND_FLAGS = frozenset({"enhance"})  # the only option the extend call takes besides the prompt
EXTEND_KEPT_PARAMS = ("aspect_ratio", "resolution", "enhance_prompt")  # shown on the extension, as on its original


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
    notes: tuple[str, ...] = ()  # e.g. values that were clamped, shown in an ephemeral note


class SpecBuilder:
    def __init__(
        self,
        *,
        settings: Settings,
        catalogue: Catalogue,
        server_settings: ServerSettingsService,
        jobs: JobRepository,
        media: MediaStore,
    ) -> None:
        self._settings = settings
        self._catalogue = catalogue
        self._server_settings = server_settings
        self._jobs = jobs
        self._media = media

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

    # ------------------------------------------------------------------ from a command
    async def for_command(
        self,
        *,
        guild_id: int | None,
        kind: Kind,
        text: str,
        slash: Mapping[str, Any],
        slash_model: str | None = None,
        reference_images: Sequence[ImageSource] = (),
        source_image: ImageSource | None = None,
        start_frame: ImageSource | None = None,
        end_frame: ImageSource | None = None,
        private: bool = False,
        preferences: Preferences | None = None,
    ) -> JobSpec:
        """Inline flags and slash options (the slash option wins), the member's preferences under them, the model
        to use, and the attachment checks that need no download. Shared by /imagine, /edit and /video."""
        settings = self._settings
        try:
            parsed = parse_prompt(text)
        except UnknownFlag as exc:
            raise await self._unknown_flag(guild_id, kind, exc, slash_model or model_in(text)) from None
        prompt = parsed.prompt.strip()
        if not prompt:
            raise InvalidInput(msg("Describe what you want in the prompt; it cannot be only flags."))
        preferences = preferences or Preferences(user_id=0)
        asked = model_from(parsed.flags, slash_model)
        entry = await self.choose_model(guild_id, kind, asked, preferred=preferences.model_key)
        limit = min(settings.prompt_max_length, entry.capabilities.prompt_max_length or settings.prompt_max_length)
        if len(prompt) > limit:
            raise InvalidInput(
                msg(
                    "The prompt is {length} characters long; `{model}` takes at most {limit}. Shorten it.",
                    length=len(prompt),
                    model=entry.key,
                    limit=limit,
                )
            )
        config = await self._server_settings.get(guild_id)
        applied = apply_preferences(
            preferences, entry, kind, prompt=prompt, flags=parsed.flags, slash=slash, prompt_limit=limit,
            banned_word=config.banned_word_in,
        )  # fmt: skip
        skipped = tuple(n for n in (model_note(preferences, entry, kind, asked), *applied.notes) if n)
        prompt = applied.prompt
        resolved = resolve_options(
            entry, kind, random_seed_dropped(entry, applied.flags), random_seed_dropped(entry, slash)
        )
        max_refs = entry.capabilities.max_reference_images - (1 if kind is Kind.IMAGE_EDIT else 0)
        if reference_images and "reference_images" not in entry.capabilities.fields:
            raise InvalidInput(
                msg("`{model}` does not take reference images. Remove it or choose another model.", model=entry.key)
            )
        if len(reference_images) > max(max_refs, 0):
            raise InvalidInput(
                msg("`{model}` takes at most {count} reference images here.", model=entry.key, count=max_refs)
            )
        for image, what in (
            *((a, msg("reference image")) for a in reference_images),
            (source_image, msg("image to edit")),
            (start_frame, msg("start image")),
            (end_frame, msg("end image")),
        ):
            if image is not None and not isinstance(image, StoredImage):
                check_attachment(image, settings, what=what)
        return JobSpec(
            kind=kind,
            model_key=entry.key,
            prompt=prompt,
            options=resolved.options,
            size=resolved.size,
            reference_images=tuple(reference_images),
            source_image=source_image,
            start_frame=start_frame,
            end_frame=end_frame,
            private=private,
            notes=resolved.notes + skipped,
        )

    async def _unknown_flag(
        self, guild_id: int | None, kind: Kind, exc: UnknownFlag, asked: str | None
    ) -> InvalidInput:
        """An unknown flag, told with the flags of the model the command would use (product.md §2)."""
        try:
            entry = await self.choose_model(guild_id, kind, asked.lower() if asked else None)
        except (InvalidInput, NotAllowed):
            return exc
        return InvalidInput(
            msg(
                "`--{name}` is not a flag.{hint} `{model}` takes: {flags}.",
                name=exc.name,
                hint=exc.hint,
                model=entry.key,
                flags=", ".join(flags_for(entry)),
            )
        )

    # ------------------------------------------------------------------ from a button on an earlier job
    async def follow_up(
        self,
        job_id: int,
        requester: Requester,
        *,
        origin: str,
        prompt: str | None = None,
        flags: Mapping[str, str | bool] | None = None,
    ) -> JobSpec:
        """A new job from an earlier one: ``reroll`` (same parameters, new seed), ``edit`` (an image edit of its
        output with a new prompt), ``animate`` (its output as the start frame of a video) or ``extend`` (a video
        that continues it). ``flags`` are inline flags typed in the Edit or Extend box, checked like a command's."""
        if origin == "extend" and flags and set(flags) - EXTEND_FLAGS:
            raise InvalidInput(
                msg(
                    "Only --enhance works when extending a video: the extension keeps the shape, length and "
                    "resolution of the video it continues."
                )
            )
        spec = await self._follow_up(job_id, requester, origin=origin, prompt=prompt)
        entry = self._catalogue.get(spec.model_key)
        if flags and entry is not None:
            resolved = resolve_options(entry, spec.kind, flags, {})
            options = {**spec.options, **resolved.options}
            spec = dataclasses.replace(spec, options=options, size=resolved.size, notes=resolved.notes)
        return spec

    def check_extendable(self, job: JobRecord) -> ModelEntry:
        """The model that extends ``job``, or a refusal saying why it cannot be extended."""
        entry = self._catalogue.get(job.model_key)
        if job.kind != Kind.VIDEO or entry is None or "extend_of" not in entry.capabilities.fields:
            raise InvalidInput(
                msg("Job #{job_id} is not a video that can be extended (only `luma-video` videos can).", job_id=job.id)
            )
        if job.status in ("queued", "submitting", "running"):
            raise InvalidInput(
                msg("Job #{job_id} is not finished yet. Extend it once its video is there.", job_id=job.id)
            )
        if job.status != "succeeded" or not any(o.is_video for o in job.outputs):
            if job.status == "failed":
                raise InvalidInput(msg("Job #{job_id} has no video to extend (it failed).", job_id=job.id))
            if job.status == "cancelled":
                raise InvalidInput(msg("Job #{job_id} has no video to extend (it was cancelled).", job_id=job.id))
            raise InvalidInput(msg("Job #{job_id} has no video to extend.", job_id=job.id))
        if not job.remote_id:
            raise InvalidInput(
                msg("The video service's id of job #{job_id} is not known, so it cannot be extended.", job_id=job.id)
            )
        return entry

    async def _follow_up(self, job_id: int, requester: Requester, *, origin: str, prompt: str | None) -> JobSpec:
        parent = await self._jobs.get(job_id)
        if parent is None:
            raise NotFound(msg("There is no job #{job_id}.", job_id=job_id))
        if not access.can_use(parent, requester):
            raise NotAllowed(msg("Only the person who started this private job can use its buttons."))
        if origin == "reroll":
            return self._reroll(parent)
        if origin == "extend":
            return self._extend(parent, prompt)
        image = await self._output_image(parent)
        kind = Kind.IMAGE_EDIT if origin == "edit" else Kind.VIDEO
        preferred = parent.model_key if origin == "edit" else None
        entry = await self.choose_model(requester.guild_id, kind, preferred=preferred)
        text = (prompt or parent.prompt).strip()
        editing = kind is Kind.IMAGE_EDIT
        return JobSpec(
            kind=kind,
            model_key=entry.key,
            prompt=text,
            source_image=image if editing else None,  # Edit: the image to change
            start_frame=None if editing else image,  # Animate: the first frame of the video
            private=parent.ephemeral,
            origin=origin,
            parent_job_id=parent.id,
        )

    def _reroll(self, parent: JobRecord) -> JobSpec:
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
            origin="reroll",
            parent_job_id=parent.id,
        )

    def _extend(self, parent: JobRecord, prompt: str | None) -> JobSpec:
        entry = self.check_extendable(parent)
        options = {k: parent.params[k] for k in EXTEND_KEPT_PARAMS if k in parent.params}
        return JobSpec(
            kind=Kind.VIDEO,
            model_key=entry.key,
            prompt=(prompt or parent.prompt).strip(),
            options={**options, "extend_of": parent.remote_id},
            private=parent.ephemeral,
            origin="extend",
            parent_job_id=parent.id,
        )

    async def _output_image(self, job: JobRecord) -> StoredImage:
        image = next((o for o in job.outputs if not o.is_video), None)
        if job.status != "succeeded" or image is None:
            raise InvalidInput(msg("Job #{job_id} has no image to use.", job_id=job.id))
        if job.outputs_purged_at is not None or not await self._media.exists(image.path):
            raise InvalidInput(
                msg(
                    "The result of job #{job_id} is no longer stored (results are kept for a limited time).",
                    job_id=job.id,
                )
            )
        return StoredImage(image.path, image.media_type)


def _stored(ref: dict[str, str] | None) -> StoredImage | None:
    return StoredImage(ref["path"], ref["media_type"]) if ref else None
