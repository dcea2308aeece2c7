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
from bot.jobs import access
from bot.jobs.inputs import ImageSource, check_attachment
from bot.jobs.media_store import MediaStore
from bot.jobs.requester import Requester
from bot.jobs.requests import SCALAR_PARAMS, StoredImage
from bot.prompting.flags import UnknownFlag, flags_for, model_from, model_in, parse_prompt
from bot.prompting.models import offered_models, pick_model
from bot.prompting.options import random_seed_dropped, resolve_options
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.jobs import JobRecord, JobRepository
from providers.base import Kind


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
    ) -> JobSpec:
        """Inline flags and slash options (the slash option wins), the model to use, and the attachment checks
        that need no download. Shared by /imagine, /edit and /video."""
        settings = self._settings
        try:
            parsed = parse_prompt(text)
        except UnknownFlag as exc:
            raise await self._unknown_flag(guild_id, kind, exc, slash_model or model_in(text)) from None
        prompt = parsed.prompt.strip()
        if not prompt:
            raise InvalidInput("Describe what you want in the prompt; it cannot be only flags.")
        entry = await self.choose_model(guild_id, kind, model_from(parsed.flags, slash_model))
        limit = min(settings.prompt_max_length, entry.capabilities.prompt_max_length or settings.prompt_max_length)
        if len(prompt) > limit:
            raise InvalidInput(
                f"The prompt is {len(prompt)} characters long; `{entry.key}` takes at most {limit}. Shorten it."
            )
        resolved = resolve_options(
            entry, kind, random_seed_dropped(entry, parsed.flags), random_seed_dropped(entry, slash)
        )
        max_refs = entry.capabilities.max_reference_images - (1 if kind is Kind.IMAGE_EDIT else 0)
        if reference_images and "reference_images" not in entry.capabilities.fields:
            raise InvalidInput(f"`{entry.key}` does not take reference images. Remove it or choose another model.")
        if len(reference_images) > max(max_refs, 0):
            raise InvalidInput(f"`{entry.key}` takes at most {max_refs} reference images here.")
        for image, what in (
            *((a, "reference image") for a in reference_images),
            (source_image, "image to edit"),
            (start_frame, "start image"),
            (end_frame, "end image"),
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
            notes=resolved.notes,
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
            f"`--{exc.name}` is not a flag.{exc.hint} `{entry.key}` takes: {', '.join(flags_for(entry))}."
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
        output with a new prompt) or ``animate`` (its output as the start frame of a video). ``flags`` are inline
        flags typed in the Edit box, checked like a command's."""
        spec = await self._follow_up(job_id, requester, origin=origin, prompt=prompt)
        entry = self._catalogue.get(spec.model_key)
        if flags and entry is not None:
            resolved = resolve_options(entry, spec.kind, flags, {})
            spec = dataclasses.replace(spec, options=resolved.options, size=resolved.size, notes=resolved.notes)
        return spec

    async def _follow_up(self, job_id: int, requester: Requester, *, origin: str, prompt: str | None) -> JobSpec:
        parent = await self._jobs.get(job_id)
        if parent is None:
            raise NotFound(f"There is no job #{job_id}.")
        if not access.can_use(parent, requester):
            raise NotAllowed("Only the person who started this private job can use its buttons.")
        if origin == "reroll":
            return self._reroll(parent)
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

    async def _output_image(self, job: JobRecord) -> StoredImage:
        image = next((o for o in job.outputs if not o.is_video), None)
        if job.status != "succeeded" or image is None:
            raise InvalidInput(f"Job #{job.id} has no image to use.")
        if job.outputs_purged_at is not None or not await self._media.exists(image.path):
            raise InvalidInput(
                f"The result of job #{job.id} is no longer stored (results are kept for a limited time)."
            )
        return StoredImage(image.path, image.media_type)


def _stored(ref: dict[str, str] | None) -> StoredImage | None:
    return StoredImage(ref["path"], ref["media_type"]) if ref else None
