"""Luma Dream Machine video through a new-api relay ("own format"): ``POST /luma/generations``, then
``GET /luma/generations/{id}``; ``POST /luma/generations/{id}/extend`` continues a finished video.

Facts: providers.md §2. The relay re-exposes Luma's web-app object (``state`` pending → processing → completed/failed).
Some relays wrap answers in ``{"code","message","data"}``; both shapes are accepted. With a callback URL (the bot's
``WEBHOOK_PUBLIC_URL``) the job is submitted with ``notify_hook``; the relay does not sign its callbacks (the URL's
per-job secret is what proves them), and their body is read as the generation object a poll returns.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Unpack
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from providers._http import (
    AdapterOptions,
    HttpAdapter,
    Phase,
    Response,
    error_for_status,
    error_message_from_body,
    parse_retry_after,
)
from providers.base import (
    Callback,
    CallbackRefused,
    Capabilities,
    GenerationRequest,
    JobState,
    JobStatus,
    Kind,
    Output,
)
from providers.errors import (
    AmbiguousSubmitError,
    InsufficientFundsError,
    InvalidRequestError,
    ModeratedError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from providers.messages import Message, msg
from providers.registry import ModelSpec, ProviderSettings, ProviderSpec

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.ephone.ai"  # [INF] one relay using this doc; the host is configuration
DEFAULT_MODEL = "luma"
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
DEFAULT_ASPECT_RATIO = "16:9"
DURATIONS_S = (5, 10)
RESOLUTIONS = ("720p", "1080p")
VIDEO_MEDIA_TYPE = "video/mp4"
SUBMIT_PATH = "/luma/generations"

_CAPABILITIES = Capabilities(
    kinds=frozenset({Kind.VIDEO}),
    fields=frozenset(
        {
            "aspect_ratio",
            "duration_s",
            "resolution",
            "loop",
            "enhance_prompt",
            "start_frame",
            "end_frame",
            "extend_of",
        }
    ),
    aspect_ratios=ASPECT_RATIOS,
    durations_s=DURATIONS_S,
    resolutions=RESOLUTIONS,
    typical_duration_s=150.0,
)

_STATUS_MAP: dict[str, JobStatus] = {
    "pending": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
}
_unknown_states_seen: set[str] = set()

# Envelope codes that mean "no error" (string codes from new-api task relays, numeric ones from other wrappers).
_OK_CODES: frozenset[object] = frozenset({"success", "", 0, 200})
_NOT_FOUND_CODES = frozenset({"task_not_exist", "task_not_found"})

# Luma's failure_reason is free text; these words are the only signal of why a job failed [INF].
_MODERATION_WORDS = ("moderation", "not allowed", "nsfw", "policy", "inappropriate", "safety")
_IMAGE_WORDS = ("image", "keyframe")

_FAILED_MESSAGE = msg("The video service could not make this video. Trying again may work.")
_IMAGE_FAILED_MESSAGE = msg(
    "The video service could not use the start or end frame you gave it. Try a different image."
)
_NO_OUTPUT_MESSAGE = msg("The video service finished the job but sent no video back. Trying again may work.")
_EMPTY_EXTEND_PROMPT_MESSAGE = msg("Write a prompt describing how the video goes on.")
_CANNOT_EXTEND_MESSAGE = msg(
    "The video service can no longer extend this video (it may be too old). Make a new video and extend that."
)
_VIDEO_ONLY_MESSAGE = msg("Luma only makes videos. Use the video command.")


class _Media(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    download_url: str | None = None


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    video: _Media | str | None = None
    video_raw: _Media | str | None = None


class _Generation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    task_id: str | None = None
    state: str | None = None
    video: _Media | str | None = None
    video_raw: _Media | str | None = None
    artifact: _Artifact | None = None
    failure_reason: str | None = None
    estimate_wait_seconds: Any = None


def _refuse(detail: str, user_message: Message) -> InvalidRequestError:
    return InvalidRequestError(detail, provider=LumaResellerProvider.name, user_message=user_message)


def _check_choice(what: Message, value: object, allowed: tuple[object, ...], shown: str) -> None:
    if value is not None and value not in allowed:
        raise _refuse(
            f"{what}={value!r}",
            msg(
                "Luma video does not offer {what} {value}. Choose one of: {choices}.",
                what=what,
                value=value,
                choices=shown,
            ),
        )


def _to_body(request: GenerationRequest, *, model_name: str | None = None) -> dict[str, Any]:
    """The JSON body of ``POST /luma/generations``. Raises ``InvalidRequestError`` for what the relay would refuse.

    Frames go only as ``image_url`` / ``image_end_url`` (data URIs), never also as ``keyframes``: the doc says
    those two fields take "third-party URL or Base64", while its ``keyframes`` example only shows
    ``{"type":"image","url":...}`` with no word on Base64, and every mirror of this API documents only the two
    fields. Sending both would upload each image twice and leave the relay to choose between two inputs.
    An end frame alone is allowed: both fields are independently optional in the doc, as Luma's keyframes are.
    """
    if request.kind is not Kind.VIDEO:
        raise _refuse(f"kind {request.kind}", _VIDEO_ONLY_MESSAGE)
    if not request.prompt.strip():
        raise _refuse("empty prompt", msg("Write a prompt describing the video."))
    _check_choice(msg("aspect ratio"), request.aspect_ratio, ASPECT_RATIOS, ", ".join(ASPECT_RATIOS))
    _check_choice(msg("duration"), request.duration_s, DURATIONS_S, msg("5 or 10 seconds"))
    _check_choice(msg("resolution"), request.resolution, RESOLUTIONS, ", ".join(RESOLUTIONS))
    if request.reference_images or request.source_image is not None:
        raise _refuse(
            "reference/source images on a video request",
            msg("Luma video takes no reference images. Give a start frame (and optionally an end frame) instead."),
        )

    body = _shared_fields(request)
    body["aspect_ratio"] = request.aspect_ratio or DEFAULT_ASPECT_RATIO  # required by the doc
    body["loop"] = bool(request.loop)  # required by the doc, though its own example omits it
    if request.duration_s is not None:
        body["duration"] = f"{request.duration_s}s"
    if request.resolution is not None:
        body["resolution"] = request.resolution
    if model_name is not None:
        body["model_name"] = model_name
    return body


def _extend_body(request: GenerationRequest) -> dict[str, Any]:
    """The JSON body of ``POST /luma/generations/{id}/extend``: the fields the doc lists for it (the video keeps
    the shape, length and resolution of the one it continues)."""
    if not request.prompt.strip():
        raise _refuse("empty prompt", _EMPTY_EXTEND_PROMPT_MESSAGE)
    return _shared_fields(request)


def _shared_fields(request: GenerationRequest) -> dict[str, Any]:
    """The fields a generation and an extension take alike: the prompt, its enhancement, the frames, the callback."""
    body: dict[str, Any] = {"user_prompt": request.prompt}
    if request.enhance_prompt is not None:
        body["expand_prompt"] = request.enhance_prompt
    if request.start_frame is not None:
        body["image_url"] = request.start_frame.data_uri()
    if request.end_frame is not None:
        body["image_end_url"] = request.end_frame.data_uri()
    if request.callback_url is not None:
        body["notify_hook"] = request.callback_url
    return body


def _ok_code(code: object) -> bool:
    return code is None or (isinstance(code, str | int) and not isinstance(code, bool) and code in _OK_CODES)


def _envelope_error(body: dict[str, Any], phase: Phase, status: int | None = None) -> ProviderError:
    """The error a relay envelope ``{"code": <not ok>, "message": ...}`` (or ``{"error": {...}}``) stands for."""
    code = body.get("code")
    inner = body.get("error")
    if isinstance(inner, dict) and inner.get("code") not in (None, ""):
        code = inner.get("code")
    detail = error_message_from_body(body)
    code_text = None if code is None else str(code)
    kwargs: dict[str, Any] = {"provider": LumaResellerProvider.name, "status": status, "code": code_text}
    if code_text in _NOT_FOUND_CODES and phase == "fetch":
        return NotFoundError(detail, **kwargs)
    if code_text and "quota" in code_text and status != 429:
        return InsufficientFundsError(detail, **kwargs)
    if status is not None and status >= 400:
        return error_for_status(status, detail, provider=LumaResellerProvider.name, phase=phase, code=code_text)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        return error_for_status(code, detail, provider=LumaResellerProvider.name, phase=phase, code=code_text)
    if phase == "fetch":  # reading state is safe to repeat; the relay may have failed to reach upstream
        return UnavailableError(detail, **kwargs)
    return InvalidRequestError(detail, **kwargs)


def _unwrap(data: Any, phase: Phase) -> dict[str, Any]:
    """The Luma generation object from a raw or wrapped answer; raises for envelope errors and unreadable bodies."""
    if not isinstance(data, dict):
        raise ProtocolError(f"expected a JSON object, got {type(data).__name__}", provider=LumaResellerProvider.name)
    if "error" in data and isinstance(data["error"], dict):
        raise _envelope_error(data, phase)
    if "code" in data and not _ok_code(data["code"]):
        raise _envelope_error(data, phase)
    inner = data.get("data")
    if isinstance(inner, dict) and ("state" in inner or "id" in inner):
        return inner
    if "state" in data or "id" in data:
        return data
    raise ProtocolError("no generation object in the answer", provider=LumaResellerProvider.name)


def _url_of(media: _Media | str | None, attr: str = "url") -> str | None:
    if isinstance(media, str):  # some relays flatten {"video": "<url>"}
        value: str | None = media if attr == "url" else None
    else:
        value = getattr(media, attr, None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _best_video_url(gen: _Generation) -> str | None:
    """``video.download_url`` (no watermark, presigned) → ``video_raw.url`` (no watermark) → ``video.url``."""
    artifact = gen.artifact or _Artifact()
    video = gen.video if gen.video is not None else artifact.video
    raw = gen.video_raw if gen.video_raw is not None else artifact.video_raw
    return _url_of(video, "download_url") or _url_of(raw) or _url_of(video)


def _failed(remote_id: str, reason: str | None, state: str, request_id: str | None) -> JobState:
    log.info("luma_reseller job %s failed upstream: %r", remote_id, reason)
    text = (reason or "").lower()
    if any(word in text for word in _MODERATION_WORDS):
        code, message, retryable = "moderated", ModeratedError.default_user_message, False
    elif any(word in text for word in _IMAGE_WORDS):
        code, message, retryable = "input_image", _IMAGE_FAILED_MESSAGE, False
    else:
        code, message, retryable = "generation_failed", _FAILED_MESSAGE, True
    return JobState(
        remote_id=remote_id,
        status=JobStatus.FAILED,
        failure_code=code,
        failure_message=message,
        retryable=retryable,
        upstream_status=state,
        request_id=request_id,
    )


def _parse(data: Any, *, remote_id: str | None = None, phase: Phase = "fetch") -> JobState:
    """A ``JobState`` from a raw or wrapped generation object. Raises for envelope errors and malformed bodies."""
    obj = _unwrap(data, phase)
    try:
        gen = _Generation.model_validate(obj)
    except ValidationError as exc:
        raise ProtocolError(f"unexpected generation object: {exc}", provider=LumaResellerProvider.name) from None
    job_id = str(gen.id) if gen.id not in (None, "") else gen.task_id or remote_id
    if not job_id:
        raise ProtocolError("generation object without an id", provider=LumaResellerProvider.name)
    state = gen.state or ""
    status = _STATUS_MAP.get(state)
    if status is None:
        if state not in _unknown_states_seen:
            _unknown_states_seen.add(state)
            log.warning("luma_reseller: unknown state %r, treating it as running", state)
        status = JobStatus.RUNNING
    wait = gen.estimate_wait_seconds
    poll_after = float(wait) if isinstance(wait, int | float) and not isinstance(wait, bool) and wait >= 0 else None
    request_id = data.get("request_id") if isinstance(data.get("request_id"), str) else None
    common: dict[str, Any] = {"remote_id": job_id, "upstream_status": gen.state, "request_id": request_id}
    if status is JobStatus.FAILED:
        return _failed(job_id, gen.failure_reason, state, request_id)
    if status is JobStatus.SUCCEEDED:
        url = _best_video_url(gen)
        if url is None:
            return JobState(
                status=JobStatus.FAILED,
                failure_code="no_output",
                failure_message=_NO_OUTPUT_MESSAGE,
                retryable=True,
                **common,
            )
        return JobState(status=status, outputs=(Output(media_type=VIDEO_MEDIA_TYPE, url=url),), **common)
    return JobState(status=status, poll_after_s=poll_after, **common)


def _no_mark_url(data: Any) -> str | None:
    """The URL in a "Get video of no mark" answer: ``{"url": ...}``, possibly wrapped in ``data``."""
    if not isinstance(data, dict) or not _ok_code(data.get("code", "success")):
        return None
    inner = data.get("data")
    for candidate in (data.get("url"), inner.get("url") if isinstance(inner, dict) else inner):
        if isinstance(candidate, str) and candidate.strip().startswith(("http://", "https://")):
            return candidate.strip()
    return None


def _relay_error(response: Response, phase: Phase) -> ProviderError | None:
    """new-api error codes (``quota_not_enough``, ``task_not_exist``) decide before the HTTP status does."""
    body = response.body
    has_code = isinstance(body, dict) and (body.get("code") not in (None, "") or isinstance(body.get("error"), dict))
    if not has_code:
        return None
    error = _envelope_error(body, phase, response.status)
    if response.status == 429 and isinstance(error, RateLimitedError):
        error.retry_after_s = parse_retry_after(response.headers, body)
    error.request_id = response.request_id
    return error


class LumaResellerProvider(HttpAdapter):
    """Luma Dream Machine videos through a relay's ``/luma/generations`` ("own format").

    ``model_name`` (e.g. ``ray-v2``) is an extra model id: requests for it send ``model_name``; requests for
    ``luma`` leave the choice to the relay.
    """

    name: ClassVar[str] = "luma_reseller"
    DEFAULT_BASE_URL: ClassVar[str] = DEFAULT_BASE_URL

    def __init__(
        self, session: aiohttp.ClientSession, *, model_name: str | None = None, **options: Unpack[AdapterOptions]
    ) -> None:
        super().__init__(session, error_mapper=_relay_error, **options)
        self._model_name = model_name

    def __repr__(self) -> str:
        return f"LumaResellerProvider(base_url={self._http.base_url!r}, models={self.models!r})"

    @property
    def models(self) -> tuple[str, ...]:
        if self._model_name and self._model_name != DEFAULT_MODEL:
            return (DEFAULT_MODEL, self._model_name)
        return (DEFAULT_MODEL,)

    def capabilities(self, model: str) -> Capabilities:
        if model not in self.models:
            raise KeyError(model)
        return _CAPABILITIES

    async def submit(self, request: GenerationRequest) -> JobState:
        if request.model not in self.models:
            raise _refuse(
                f"unknown model {request.model!r}", msg("This model is not offered here. Choose another model.")
            )
        if request.extend_of is not None:
            return await self.extend(request.extend_of, request)
        model_name = self._model_name if request.model == self._model_name else None
        return await self._create(SUBMIT_PATH, _to_body(request, model_name=model_name))

    async def extend(self, task_id: str, request: GenerationRequest) -> JobState:
        """A new job continuing the finished video ``task_id`` (same answer as a submit). A relay that no longer
        knows the video, or will not extend it, refuses with a 4xx: that is told as such, not as bad settings."""
        if request.kind is not Kind.VIDEO:
            raise _refuse(f"kind {request.kind}", _VIDEO_ONLY_MESSAGE)
        try:
            return await self._create(f"{SUBMIT_PATH}/{quote(task_id, safe='')}/extend", _extend_body(request))
        except InvalidRequestError as exc:
            if exc.user_message == InvalidRequestError.default_user_message:
                exc.user_message = _CANNOT_EXTEND_MESSAGE
            raise

    async def _create(self, path: str, body: dict[str, Any]) -> JobState:
        response = await self._http.submit(path, json_body=body)
        try:
            state = _parse(response.body, phase="submit")
        except ProtocolError as exc:  # accepted (2xx) but no readable id: the job may exist and be billed
            raise AmbiguousSubmitError(
                exc.detail, provider=self.name, status=response.status, request_id=response.request_id
            ) from None
        return dataclasses.replace(state, request_id=response.request_id or state.request_id)

    async def poll(self, remote_id: str) -> JobState:
        response = await self._http.fetch(f"{SUBMIT_PATH}/{remote_id}")
        state = _parse(response.body, remote_id=remote_id)
        state = dataclasses.replace(state, request_id=response.request_id or state.request_id)
        if state.failure_code == "no_output":
            state = await self._no_mark_fallback(state)
        return state

    callbacks_supported: ClassVar[bool] = True

    def read_callback(self, headers: Mapping[str, str], body: bytes, *, now: float) -> Callback:
        """A ``notify_hook`` delivery: the generation object (raw or in an envelope), as a poll would read it."""
        try:
            return Callback(state=_parse(json.loads(body)))
        except (ValueError, ProviderError):
            raise CallbackRefused("unreadable generation object", 400) from None

    async def fresh_download_url(self, remote_id: str) -> str | None:
        """A new presigned no-watermark URL of a finished job (``GET …/download_video_url``; about an hour's life),
        for a link that outlives the one the job finished with; None when the relay answers without one."""
        response = await self._http.fetch(f"{SUBMIT_PATH}/{remote_id}/download_video_url")
        return _no_mark_url(response.body)

    async def _no_mark_fallback(self, state: JobState) -> JobState:
        # The doc says of video.download_url "if it is missing, fetch it yourself", and lists "Get video of no
        # mark" for that. Only used when a completed job carries no URL at all: a watermarked video.url is
        # kept rather than spending an extra call that mirrors say fails after the relay rotates accounts.
        try:
            response = await self._http.fetch(f"{SUBMIT_PATH}/{state.remote_id}/download_video_url")
        except ProviderError as exc:
            log.info("luma_reseller job %s: no-watermark URL unavailable (%s)", state.remote_id, exc)
            return state
        url = _no_mark_url(response.body)
        if url is None:
            return state
        return dataclasses.replace(
            state,
            status=JobStatus.SUCCEEDED,
            outputs=(Output(media_type=VIDEO_MEDIA_TYPE, url=url),),
            failure_code=None,
            failure_message=None,
            retryable=False,
        )


__all__ = ["DEFAULT_BASE_URL", "LumaResellerProvider"]


class LumaResellerSettings(ProviderSettings):
    api_key: SecretStr | None = Field(
        None, description="The reseller's API key (sk-...). Leave empty to disable the model."
    )
    base_url: str = Field(DEFAULT_BASE_URL, description="The reseller's base URL (the host your key belongs to).")
    max_concurrency: int = Field(2, ge=1)
    poll_interval_s: float = Field(8.0, gt=0)
    model_name: str | None = Field(
        None,
        description="Sent as model_name when your reseller takes one (e.g. ray-v2); empty uses the reseller's default.",
    )


SPEC = ProviderSpec(
    name=LumaResellerProvider.name,
    title="Luma Dream Machine video through a reseller",
    settings=LumaResellerSettings,
    factory=lambda session, block: LumaResellerProvider(
        session, model_name=block.model_name, **block.adapter_options()
    ),
    models=(
        ModelSpec(
            key="luma-video",
            upstream_model=DEFAULT_MODEL,
            kinds=frozenset({Kind.VIDEO}),
            title="Luma Dream Machine",
            blurb="5 or 10 second videos from text, or from a start and end image",
            capabilities=_CAPABILITIES,
            cost=10,
            price_usd=0.4,
            default_for=frozenset({Kind.VIDEO}),
        ),
    ),
    upstream=lambda model, block: block.model_name or model.upstream_model,
)
