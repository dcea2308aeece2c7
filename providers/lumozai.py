"""Lumozai ``flux-cute-3d-kawaii``: a synchronous, form-encoded ``POST /api/v4/run`` plus a check endpoint.

The run call blocks until the image exists and answers ``{"success": true, "data": {"output": "<url>"}}``; a slow run
answers with only a ``request_id``, to be polled on the check endpoint (its path is not documented; see ``check_path``).
With a callback URL (the bot's ``WEBHOOK_PUBLIC_URL``) the run carries ``webhook``; its body is not documented and
is read as a check answer. Lumozai does not sign callbacks: the URL's per-job secret is what proves them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Literal, Unpack
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from providers._http import AdapterOptions, HttpAdapter, Phase, Timeouts
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
    AuthError,
    InsufficientFundsError,
    InvalidRequestError,
    ModeratedError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
)
from providers.messages import msg
from providers.registry import ModelSpec, ProviderSettings, ProviderSpec

log = logging.getLogger(__name__)

NAME = "lumozai"
DEFAULT_BASE_URL = "https://lumozai.com"
RUN_PATH = "/api/v4/run"
CHECK_PATH = "/api/v4/check"
SUBMIT_TIMEOUT_S = 180.0
MODEL = "flux-cute-3d-kawaii"
TRIGGER = "Cute 3d Kawaii"
SYNC_ID_PREFIX = "sync-"

_FIELDS = (
    "aspect_ratio",
    "prompt_strength",
    "steps",
    "guidance",
    "seed",
    "output_format",
    "quality",
    "lora_scale",
    "megapixels",
)
_CAPABILITIES = Capabilities(
    kinds=frozenset({Kind.IMAGE}),
    fields=frozenset(_FIELDS),
    aspect_ratios=("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"),
    output_formats=("webp", "jpg", "png"),
    megapixels=("1", "0.25"),
    seed_range=(0, 2147483647),
    steps_range=(1, 50),
    guidance_range=(0, 10),
    quality_range=(0, 100),
    lora_scale_range=(-1, 3),
    prompt_strength_range=(0, 1),
    typical_duration_s=12.0,
)
_MODELS: dict[str, Capabilities] = {MODEL: _CAPABILITIES}

# The run endpoint has no states; a check response may carry one [INF].
_STATUS_MAP: dict[str, JobStatus] = {
    "pending": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "starting": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "running": JobStatus.RUNNING,
    "in_progress": JobStatus.RUNNING,
    "success": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "completed": JobStatus.SUCCEEDED,
    "complete": JobStatus.SUCCEEDED,
    "done": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "failure": JobStatus.FAILED,
    "error": JobStatus.FAILED,
    "canceled": JobStatus.FAILED,
    "cancelled": JobStatus.FAILED,
}
_unknown_states: set[str] = set()

_MEDIA_TYPES = {
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "mp4": "video/mp4",
}

# Keyword hints in an error message, first match wins. The docs do not list error codes or messages.
_HINTS: tuple[tuple[tuple[str, ...], type[ProviderError]], ...] = (
    (("api key", "api_key", "apikey", "unauthenticated", "unauthorized", "invalid token"), AuthError),
    (("credit", "balance", "insufficient fund", "funds", "payment", "top up"), InsufficientFundsError),
    (("nsfw", "moderat", "safety", "unsafe", "inappropriate", "content policy", "prohibited"), ModeratedError),
    (("too many", "rate limit", "throttl"), RateLimitedError),
    (("not found", "no query results"), NotFoundError),
)

FAILED_MESSAGE = msg("The service could not make this image. Try again, perhaps with a different prompt.")
NO_OUTPUT_MESSAGE = msg("The service finished the job but sent no image back. Try again.")


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: int | str | None = None
    output: Any = None
    output_type: str | None = None
    status: str | None = None
    error: Any = None
    message: Any = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    success: bool | None = None
    message: Any = None
    data: _Data | None = None


def _number(value: float) -> str:
    """Plain decimal text: 3.0 → "3", 0.8 → "0.8", 1e-05 → "0.00001"."""
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _check_range(label: str, value: float, bounds: tuple[float, float] | None) -> None:
    assert bounds is not None
    low, high = bounds
    if not low <= value <= high:
        raise InvalidRequestError(
            f"{label}={value!r} outside [{low}, {high}]",
            provider=NAME,
            user_message=msg(
                "{label} must be between {low} and {high}; you gave {value}.",
                label=label,
                low=_number(low),
                high=_number(high),
                value=value,
            ),
        )


def _check_choice(label: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidRequestError(
            f"{label}={value!r} not in {choices}",
            provider=NAME,
            user_message=msg(
                "{label} must be one of {choices}; you gave {value}.",
                label=label,
                choices=", ".join(choices),
                value=repr(value),
            ),
        )


def _to_body(request: GenerationRequest) -> dict[str, str]:
    """The form fields for ``POST /api/v4/run``. Raises ``InvalidRequestError`` for what the API would refuse."""
    caps = _MODELS.get(request.model)
    if caps is None:
        raise InvalidRequestError(f"unknown model {request.model!r}", provider=NAME)
    if request.kind not in caps.kinds:
        raise InvalidRequestError(
            f"kind {request.kind} not supported",
            provider=NAME,
            user_message=msg("This model only makes images from a prompt; choose an image model for that."),
        )
    if request.reference_images or request.source_image or request.start_frame or request.end_frame:
        raise InvalidRequestError(
            "image inputs given",
            provider=NAME,
            user_message=msg("This model does not take input images. Remove the image and try again."),
        )
    prompt = request.prompt.strip()
    if not prompt:
        raise InvalidRequestError(
            "empty prompt", provider=NAME, user_message=msg("Write a prompt describing the image.")
        )
    if TRIGGER.lower() not in prompt.lower():
        prompt = f"{TRIGGER}, {prompt}"
    aspect_ratio = request.aspect_ratio or "1:1"
    _check_choice("aspect_ratio", aspect_ratio, caps.aspect_ratios)
    body = {"model_id": request.model, "prompt": prompt, "aspect_ratio": aspect_ratio}

    if request.prompt_strength is not None:
        _check_range("prompt_strength", request.prompt_strength, caps.prompt_strength_range)
        body["prompt_strength"] = _number(request.prompt_strength)
    if request.steps is not None:
        _check_range("steps", request.steps, caps.steps_range)
        body["num_inference_steps"] = str(int(request.steps))
    if request.guidance is not None:
        _check_range("guidance", request.guidance, caps.guidance_range)
        body["guidance"] = _number(request.guidance)
    if request.seed is not None:
        _check_range("seed", request.seed, caps.seed_range)
        body["seed"] = str(int(request.seed))
    if request.output_format is not None:
        fmt = request.output_format.lower().lstrip(".")
        fmt = "jpg" if fmt == "jpeg" else fmt
        _check_choice("output_format", fmt, caps.output_formats)
        body["output_format"] = fmt
    if request.quality is not None:
        _check_range("quality", request.quality, caps.quality_range)
        body["output_quality"] = str(int(request.quality))
    if request.lora_scale is not None:
        _check_range("lora_scale", request.lora_scale, caps.lora_scale_range)
        body["lora_scale"] = _number(request.lora_scale)
    if request.megapixels is not None:
        _check_choice("megapixels", request.megapixels.strip(), caps.megapixels)
        body["megapixels"] = request.megapixels.strip()
    if request.callback_url is not None:
        body["webhook"] = request.callback_url
    return body


def _hint(message: str) -> type[ProviderError] | None:
    text = message.lower()
    for keywords, error in _HINTS:
        if any(keyword in text for keyword in keywords):
            return error
    return None


def _refine(exc: ProviderError, phase: Phase) -> ProviderError:
    """A 4xx mapped by status alone, made more precise from its message (e.g. a 400 about credits)."""
    better = _hint(exc.detail)
    if type(exc) not in (InvalidRequestError, AuthError) or better in (None, type(exc)):
        return exc
    if better is NotFoundError and phase == "submit":
        return exc
    return better(exc.detail, provider=exc.provider, status=exc.status, request_id=exc.request_id)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("message") or value.get("detail") or ""
    return value if isinstance(value, str) else ""


def _failed(remote_id: str, message: str, request_id: str | None, upstream: str | None) -> JobState:
    moderated = _hint(message) is ModeratedError
    return JobState(
        remote_id=remote_id,
        status=JobStatus.FAILED,
        failure_code="moderated" if moderated else "failed",
        failure_message=ModeratedError.default_user_message if moderated else FAILED_MESSAGE,
        retryable=not moderated,
        request_id=request_id,
        upstream_status=upstream,
    )


def _outputs(raw: Any) -> tuple[Output, ...]:
    items = raw if isinstance(raw, list) else [raw]
    urls = [item.get("url") if isinstance(item, dict) else item for item in items]
    return tuple(
        Output(url=url, media_type=_MEDIA_TYPES.get(urlsplit(url).path.rsplit(".", 1)[-1].lower()))
        for url in urls
        if isinstance(url, str) and url.startswith(("http://", "https://"))
    )


def _sync_id() -> str:
    """A local id for a run that finished synchronously without a ``request_id``; it cannot be polled."""
    return f"{SYNC_ID_PREFIX}{uuid.uuid4().hex}"


def _status(raw: str | None) -> JobStatus | None:
    if not raw:
        return None
    status = _STATUS_MAP.get(raw.strip().lower())
    if status is None:
        if raw not in _unknown_states:
            _unknown_states.add(raw)
            log.warning("%s: unknown upstream status %r treated as running", NAME, raw)
        return JobStatus.RUNNING
    return status


def _parse(
    data: Any, *, remote_id: str | None = None, request_id: str | None = None, phase: Phase = "submit"
) -> JobState:
    """A run (``phase="submit"``) or check (``phase="fetch"``, with ``remote_id``) answer as a ``JobState``.

    ``success: false`` raises from the error tree, except on a check, where anything but an auth, funds, rate or
    not-found message is the job's own failure.
    """
    try:
        envelope = _Envelope.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(f"unexpected body ({exc.error_count()} problems)", provider=NAME) from None
    if envelope.success is False:
        message = _text(envelope.message)
        error = _hint(message) or InvalidRequestError
        if phase == "fetch" and remote_id and error in (InvalidRequestError, ModeratedError):
            return _failed(remote_id, message, request_id, "success=false")
        if error is NotFoundError and phase == "submit":
            error = InvalidRequestError
        raise error(message or "success=false", provider=NAME, request_id=request_id)
    body = envelope.data
    if body is None:
        raise ProtocolError("success without data", provider=NAME, request_id=request_id)
    rid = remote_id or (str(body.request_id) if body.request_id not in (None, "") else None)
    status = _status(body.status)
    if status is JobStatus.FAILED:
        message = _text(body.error) or _text(body.message)
        return _failed(rid or _sync_id(), message, request_id, body.status)
    outputs = _outputs(body.output)
    if outputs:
        return JobState(
            remote_id=rid or _sync_id(),
            status=JobStatus.SUCCEEDED,
            outputs=outputs,
            request_id=request_id,
            upstream_status=body.status,
        )
    if status is JobStatus.SUCCEEDED or body.output:
        return JobState(
            remote_id=rid or _sync_id(),
            status=JobStatus.FAILED,
            failure_code="no_output",
            failure_message=NO_OUTPUT_MESSAGE,
            retryable=True,
            request_id=request_id,
            upstream_status=body.status,
        )
    if rid is None:
        raise ProtocolError("neither an output nor a request_id", provider=NAME, request_id=request_id)
    return JobState(
        remote_id=rid, status=status or JobStatus.RUNNING, request_id=request_id, upstream_status=body.status
    )


class LumozaiProvider(HttpAdapter):
    """Lumozai's hosted LoRA models (only ``flux-cute-3d-kawaii`` so far)."""

    name: ClassVar[str] = NAME
    DEFAULT_BASE_URL: ClassVar[str] = DEFAULT_BASE_URL
    DEFAULT_TIMEOUTS: ClassVar[Timeouts | None] = Timeouts(submit_s=SUBMIT_TIMEOUT_S)

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        check_path: str = CHECK_PATH,
        check_method: Literal["POST", "GET"] = "POST",
        **options: Unpack[AdapterOptions],
    ) -> None:
        super().__init__(session, **options)
        self.check_path = check_path
        self.check_method = check_method

    def __repr__(self) -> str:
        return f"LumozaiProvider(base_url={self._http.base_url!r}, check_path={self.check_path!r})"

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(_MODELS)

    def capabilities(self, model: str) -> Capabilities:
        return _MODELS[model]

    async def submit(self, request: GenerationRequest) -> JobState:
        body = _to_body(request)
        try:
            response = await self._http.submit(RUN_PATH, form=body)
        except (InvalidRequestError, AuthError) as exc:
            raise _refine(exc, "submit") from None
        try:
            return _parse(response.body, request_id=response.request_id, phase="submit")
        except ProtocolError as exc:
            # The run may have happened (and been billed) even though its answer is unreadable.
            raise AmbiguousSubmitError(
                exc.detail, provider=NAME, status=response.status, request_id=response.request_id
            ) from None

    async def poll(self, remote_id: str) -> JobState:
        if remote_id.startswith(SYNC_ID_PREFIX):
            raise NotFoundError(f"{remote_id} finished synchronously and has no upstream id", provider=NAME)
        fields = {"request_id": remote_id}
        try:
            if self.check_method == "GET":
                response = await self._http.fetch(self.check_path, params=fields)
            else:
                response = await self._http.fetch(self.check_path, method="POST", form=fields)
        except (InvalidRequestError, AuthError) as exc:
            raise _refine(exc, "fetch") from None
        return _parse(response.body, remote_id=remote_id, request_id=response.request_id, phase="fetch")

    callbacks_supported: ClassVar[bool] = True

    def read_callback(self, headers: Mapping[str, str], body: bytes, *, now: float) -> Callback:
        """A ``webhook`` delivery, read as a check answer (``{"success", "data": {"request_id", "output"}}``)."""
        try:
            state = _parse(json.loads(body), phase="fetch")
        except (ValueError, ProviderError):
            raise CallbackRefused("unreadable answer", 400) from None
        if state.remote_id.startswith(SYNC_ID_PREFIX):
            raise CallbackRefused("no request_id", 400)
        return Callback(state=state)


class LumozaiSettings(ProviderSettings):
    api_key: SecretStr | None = Field(None, description="API key from lumozai.com. Leave empty to disable the model.")
    base_url: str = DEFAULT_BASE_URL
    max_concurrency: int = Field(2, ge=1)
    first_poll_s: float | None = Field(
        None,
        gt=0,
        description="Seconds before the first status check when a run did not answer at once "
        "(default: learned from its past run times).",
    )
    poll_interval_s: float = Field(5.0, gt=0)
    submit_timeout_s: float = Field(
        SUBMIT_TIMEOUT_S,
        gt=0,
        description="Seconds to wait for a run to answer: it is synchronous, so this is long "
        "(a timeout is never resubmitted).",
    )
    poll_timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for a status check's answer.")
    check_path: str = Field(
        CHECK_PATH, description="Path of the status endpoint used when a run answers with only a request_id."
    )


SPEC = ProviderSpec(
    name=NAME,
    title="Lumozai",
    settings=LumozaiSettings,
    factory=lambda session, block: LumozaiProvider(session, check_path=block.check_path, **block.adapter_options()),
    models=(
        ModelSpec(
            key="kawaii-3d",
            upstream_model=MODEL,
            kinds=frozenset({Kind.IMAGE}),
            title="Cute 3D Kawaii",
            blurb="cute 3D figures (FLUX with a kawaii LoRA)",
            capabilities=_CAPABILITIES,
            cost=1,
            price_usd=0.01,
        ),
    ),
)
