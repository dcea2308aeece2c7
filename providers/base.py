"""Provider-neutral types: what the bot asks for, what an upstream job looks like, and the adapter contract."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

from providers.messages import Message


class Kind(StrEnum):
    IMAGE = "image"
    IMAGE_EDIT = "image_edit"
    VIDEO = "video"


class JobStatus(StrEnum):
    """Where an upstream job stands. Unknown upstream states map to RUNNING."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


@dataclass(frozen=True, slots=True)
class ImageInput:
    """An image sent upstream inline, so that no provider ever has to reach Discord's CDN."""

    data: bytes = field(repr=False)
    media_type: str

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_uri(self) -> str:
        return f"data:{self.media_type};base64,{self.base64()}"

    def __repr__(self) -> str:
        return f"ImageInput(media_type={self.media_type!r}, bytes={len(self.data)})"


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything any adapter can send upstream. Each adapter reads the fields its API documents.

    ``size`` is (width, height) in pixels. ``duration_s`` is whole seconds. ``user_id`` is the requester's
    stable opaque id (the Discord user id), forwarded where the API takes one. ``extend_of`` is the upstream id
    of a finished video to continue instead of starting a new one (models whose capabilities list it).
    """

    kind: Kind
    prompt: str
    model: str
    user_id: str | None = None
    aspect_ratio: str | None = None
    size: tuple[int, int] | None = None
    seed: int | None = None
    style: str | None = None
    output_format: str | None = None
    reference_images: tuple[ImageInput, ...] = ()
    source_image: ImageInput | None = None
    start_frame: ImageInput | None = None
    end_frame: ImageInput | None = None
    duration_s: int | None = None
    resolution: str | None = None
    loop: bool | None = None
    enhance_prompt: bool | None = None
    steps: int | None = None
    guidance: float | None = None
    quality: int | None = None
    lora_scale: float | None = None
    megapixels: str | None = None
    prompt_strength: float | None = None
    web_search: bool | None = None
    extend_of: str | None = None
    # Where the provider may POST the job's outcome (adapters whose API takes a callback send it).
    callback_url: str | None = field(default=None, repr=False)

    def replace(self, **changes: object) -> GenerationRequest:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Output:
    """One generated file: a URL to download (often short-lived) or the bytes themselves."""

    media_type: str | None = None
    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    nsfw: bool = False


@dataclass(frozen=True, slots=True)
class JobState:
    """A snapshot of an upstream job.

    ``failure_message`` is written for a person to read (a ``providers.messages.Message``, never a raw provider
    body); ``retryable`` says whether running the same request again may succeed. ``poll_after_s`` is a hint from
    the provider for the next poll. ``upstream_status`` is the provider's own state string, for logs.
    """

    remote_id: str
    status: JobStatus
    outputs: tuple[Output, ...] = ()
    failure_code: str | None = None
    failure_message: Message | None = None
    retryable: bool = False
    poll_after_s: float | None = None
    request_id: str | None = None
    upstream_status: str | None = None
    progress: float | None = None


@dataclass(frozen=True, slots=True)
class Callback:
    """A provider's callback, checked (where the API signs them) and read: the job's state, and the delivery's
    own id when the provider gives one."""

    state: JobState
    delivery_id: str | None = None


class CallbackRefused(Exception):
    """A callback that is not taken: forged, stale or unreadable. ``reason`` is safe to log."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an upstream model accepts. The catalogue derives its options and inline flags from this.

    ``fields`` names the ``GenerationRequest`` fields the API documents for this model (beyond kind, prompt,
    model and user_id). Numeric ranges are inclusive (low, high).
    """

    kinds: frozenset[Kind]
    fields: frozenset[str]
    aspect_ratios: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    durations_s: tuple[int, ...] = ()
    resolutions: tuple[str, ...] = ()
    megapixels: tuple[str, ...] = ()
    max_reference_images: int = 0
    size_range: tuple[int, int] | None = None
    seed_range: tuple[int, int] | None = None
    steps_range: tuple[int, int] | None = None
    guidance_range: tuple[float, float] | None = None
    quality_range: tuple[int, int] | None = None
    lora_scale_range: tuple[float, float] | None = None
    prompt_strength_range: tuple[float, float] | None = None
    prompt_max_length: int | None = None
    typical_duration_s: float = 10.0


@runtime_checkable
class Provider(Protocol):
    """One upstream API. ``submit`` is never retried when its outcome is ambiguous; ``poll`` is safe to retry."""

    name: ClassVar[str]

    def capabilities(self, model: str) -> Capabilities: ...

    @property
    def models(self) -> Sequence[str]: ...

    async def submit(self, request: GenerationRequest) -> JobState: ...

    async def poll(self, remote_id: str) -> JobState: ...
