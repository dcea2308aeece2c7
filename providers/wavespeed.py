"""WaveSpeed AI: ``wavespeed-ai/neta-lumina`` text-to-image (providers.md §1).

Submit ``POST /api/v3/<model>``, poll ``GET /api/v3/predictions/{id}/result``. Every answer is an envelope
``{code, message, data}``: an envelope ``code`` other than 200 is an error even under HTTP 200, and a failed task
reports ``data.status == "failed"`` with a numeric ``data.code``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Unpack
from urllib.parse import quote, urlsplit

import aiohttp
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from providers import signed_callbacks
from providers._http import (
    AdapterOptions,
    HttpAdapter,
    Phase,
    Response,
    error_for_status,
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
    InvalidRequestError,
    ModeratedError,
    ProtocolError,
    UnavailableError,
)
from providers.messages import Message, msg
from providers.registry import ModelSpec, ProviderSettings, ProviderSpec

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wavespeed.ai"
MODEL = "wavespeed-ai/neta-lumina"

SIZE_RANGE = (256, 1536)
SEED_RANGE = (-1, 2_147_483_647)
OUTPUT_FORMATS = ("jpeg", "png", "webp")
# fmt: off
ASPECT_RATIOS = (
    "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9", "9:21", "2:1", "1:2", "3:1", "1:3",
)
# fmt: on
# Not documented. The model's Gemma text encoder reads about 256 tokens (Lumina-Image-2.0's default
# max_sequence_length), so longer prompts are silently cut upstream; 2000 characters is generous and safe.
PROMPT_MAX_LENGTH = 2000
# A sync-mode POST stays open until the image is ready; the server gives up after about 90 s (code 5004).
SYNC_SUBMIT_TIMEOUT_S = 120.0

_TARGET_PIXELS = 1024 * 1024
_SIDE_STEP = 64

CAPABILITIES = Capabilities(
    kinds=frozenset({Kind.IMAGE}),
    fields=frozenset({"aspect_ratio", "size", "seed", "output_format"}),
    aspect_ratios=ASPECT_RATIOS,
    output_formats=OUTPUT_FORMATS,
    size_range=SIZE_RANGE,
    seed_range=SEED_RANGE,
    prompt_max_length=PROMPT_MAX_LENGTH,
    typical_duration_s=8.0,
)

_STATUS_MAP: dict[str, JobStatus] = {
    "created": JobStatus.QUEUED,
    "pending": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.FAILED,
    "timeout": JobStatus.FAILED,
    "deleted": JobStatus.FAILED,
}
_unknown_statuses_logged: set[str] = set()

_MEDIA_TYPES = {"jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_BASE64_RE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_RATIO_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*")

_FIX_REQUEST_MESSAGE = msg("The service rejected these settings. Change the prompt or options and try again.")
_RETRY_MESSAGE = msg("The service had a temporary problem making this image. Try again in a minute.")
_CANNOT_MAKE_MESSAGE = msg(
    "The service could not make an image from this request. Change the prompt or options and try again."
)
_TOO_SLOW_MESSAGE = msg("The service took too long making this image. Try again in a minute.")
_FAILURE_MESSAGES: dict[int, Message] = {
    1200: ModeratedError.default_user_message,
    1400: _FIX_REQUEST_MESSAGE,
    1401: _FIX_REQUEST_MESSAGE,
    1402: msg("The service could not read an input file. Try again without it."),
    1403: _CANNOT_MAKE_MESSAGE,
    1405: _CANNOT_MAKE_MESSAGE,
    5000: _RETRY_MESSAGE,
    5003: UnavailableError.default_user_message,
    5004: _TOO_SLOW_MESSAGE,
}
_STATUS_FAILURES: dict[str, tuple[Message, bool]] = {
    "cancelled": (msg("The job was cancelled at the service before it finished. Try again."), False),
    "timeout": (_TOO_SLOW_MESSAGE, True),
    "deleted": (msg("The service deleted this job before it finished. Try again."), False),
}
_GENERIC_FAILURE = msg("The service could not make this image. Try again, or change the prompt.")
_NO_OUTPUT_MESSAGE = msg("The service finished the job but sent no image back. Try again.")


def size_for_aspect_ratio(ratio: str) -> tuple[int, int]:
    """(width, height) of about one megapixel for a ``"W:H"`` ratio; sides are multiples of 64 in 256..1536.

    A ratio too wide for 1536 pixels is scaled down to fit rather than distorted. Raises ``ValueError`` for a
    malformed ratio.
    """
    match = _RATIO_RE.fullmatch(ratio)
    if match is None:
        raise ValueError(f"not an aspect ratio: {ratio!r}")
    w, h = float(match[1]), float(match[2])
    if w <= 0 or h <= 0:
        raise ValueError(f"not an aspect ratio: {ratio!r}")
    width, height = math.sqrt(_TARGET_PIXELS * w / h), math.sqrt(_TARGET_PIXELS * h / w)
    shrink = min(1.0, SIZE_RANGE[1] / max(width, height))
    low, high = SIZE_RANGE

    def side(value: float) -> int:
        return min(high, max(low, round(value * shrink / _SIDE_STEP) * _SIDE_STEP))

    return side(width), side(height)


def _refuse(detail: str, user_message: Message) -> InvalidRequestError:
    return InvalidRequestError(detail, provider=WaveSpeedProvider.name, user_message=user_message)


def _to_body(request: GenerationRequest, *, base64_output: bool = False, sync_mode: bool = False) -> dict[str, Any]:
    """The JSON body for ``POST /api/v3/<model>``; raises ``InvalidRequestError`` for what the API would refuse."""
    if request.model != MODEL:
        raise _refuse(
            f"unknown model {request.model!r}", msg("This model is not served by WaveSpeed. Pick another model.")
        )
    if request.kind is not Kind.IMAGE:
        raise _refuse(
            f"kind {request.kind} not supported",
            msg("Neta Lumina only makes new images from a prompt. Pick another model for image edits or videos."),
        )
    if request.reference_images or request.source_image or request.start_frame or request.end_frame:
        raise _refuse(
            "image inputs not supported",
            msg("Neta Lumina does not take input images. Remove the images, or pick a model that takes them."),
        )
    if not request.prompt.strip():
        raise _refuse("empty prompt", msg("Write a prompt describing the image you want."))
    if len(request.prompt) > PROMPT_MAX_LENGTH:
        raise _refuse(
            f"prompt of {len(request.prompt)} characters",
            msg(
                "The prompt is too long ({length} characters). Keep it under {limit}.",
                length=len(request.prompt),
                limit=PROMPT_MAX_LENGTH,
            ),
        )
    body: dict[str, Any] = {"prompt": request.prompt}

    low, high = SIZE_RANGE
    if request.size is not None:
        width, height = request.size
        if not (low <= width <= high and low <= height <= high):
            raise _refuse(
                f"size {width}x{height} out of range",
                msg(
                    "Width and height must each be between {low} and {high} pixels (you asked for {width}×{height}).",
                    low=low,
                    high=high,
                    width=width,
                    height=height,
                ),
            )
        body["size"] = f"{width}*{height}"
    elif request.aspect_ratio is not None:
        try:
            width, height = size_for_aspect_ratio(request.aspect_ratio)
        except ValueError:
            raise _refuse(
                f"bad aspect ratio {request.aspect_ratio!r}",
                msg("“{ratio}” is not an aspect ratio. Use width:height, such as 16:9.", ratio=request.aspect_ratio),
            ) from None
        body["size"] = f"{width}*{height}"

    if request.seed is not None:
        if not SEED_RANGE[0] <= request.seed <= SEED_RANGE[1]:
            raise _refuse(
                f"seed {request.seed} out of range",
                msg(
                    "The seed must be a whole number from {low} to {high} (-1 picks one at random).",
                    low=SEED_RANGE[0],
                    high=SEED_RANGE[1],
                ),
            )
        body["seed"] = request.seed

    if request.output_format is not None:
        fmt = request.output_format.lower()
        if fmt == "jpg":
            fmt = "jpeg"
        if fmt not in OUTPUT_FORMATS:
            raise _refuse(
                f"output_format {request.output_format!r}",
                msg(
                    "Neta Lumina saves images as {formats}. Pick one of those formats.",
                    formats=", ".join(OUTPUT_FORMATS),
                ),
            )
        body["output_format"] = fmt

    body["enable_base64_output"] = base64_output
    body["enable_sync_mode"] = sync_mode
    return body


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


_Code = Annotated[int | None, BeforeValidator(_as_int)]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: _Code = None
    message: str | None = None
    data: Any = None


class _Urls(BaseModel):
    model_config = ConfigDict(extra="ignore")

    get: str | None = None


class _Prediction(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    model: str | None = None
    status: str | None = None
    outputs: list[Any] | None = None
    has_nsfw_contents: list[Any] | None = None
    code: _Code = None
    error: str | None = None
    urls: _Urls | None = None
    created_at: str | None = None
    input: dict[str, Any] | None = None


def _unwrap(response: Response, *, phase: Phase) -> Any:
    """The envelope's ``data``. An envelope ``code`` other than 200 is mapped like an HTTP status."""
    try:
        envelope = _Envelope.model_validate(response.body)
    except ValidationError:
        raise ProtocolError(
            "answer is not a {code, message, data} envelope",
            provider=WaveSpeedProvider.name,
            status=response.status,
            request_id=response.request_id,
        ) from None
    if envelope.code is not None and envelope.code not in (0, 200):
        raise error_for_status(
            envelope.code,
            envelope.message or f"envelope code {envelope.code}",
            provider=WaveSpeedProvider.name,
            phase=phase,
            request_id=response.request_id,
            code=str(envelope.code),
        )
    return envelope.data


def _parse(data: Any, *, output_format: str | None = None, request_id: str | None = None) -> JobState:
    """A ``JobState`` from an envelope's ``data`` object. Raises ``ProtocolError`` when it has no task id."""
    try:
        prediction = _Prediction.model_validate(data)
    except ValidationError:
        raise ProtocolError("prediction without an id", provider=WaveSpeedProvider.name) from None
    raw_status = (prediction.status or "").lower()
    error_text = prediction.error or ""
    common: dict[str, Any] = {
        "remote_id": prediction.id,
        "upstream_status": prediction.status,
        "request_id": request_id,
    }

    if prediction.code == 5004 and "sync mode timed out" in error_text.lower():
        return JobState(status=JobStatus.RUNNING, **common)

    status = _STATUS_MAP.get(raw_status)
    if status is None:
        if raw_status not in _unknown_statuses_logged:
            _unknown_statuses_logged.add(raw_status)
            log.warning("wavespeed: unknown task status %r, treating it as running", prediction.status)
        status = JobStatus.RUNNING

    if status is JobStatus.FAILED:
        return _failed(prediction, raw_status, error_text, common)
    if status is not JobStatus.SUCCEEDED:
        return JobState(status=status, **common)

    fmt = output_format or (prediction.input or {}).get("output_format")
    fallback = _MEDIA_TYPES.get(str(fmt).lower()) if fmt else None
    nsfw_flags = prediction.has_nsfw_contents or []
    outputs = []
    for index, item in enumerate(prediction.outputs or []):
        nsfw = index < len(nsfw_flags) and nsfw_flags[index] is True
        output = _output(item, nsfw=nsfw, fallback_type=fallback)
        if output is not None:
            outputs.append(output)
    if not outputs:
        log.warning("wavespeed task %s completed without a usable output: %r", prediction.id, prediction.outputs)
        return JobState(
            status=JobStatus.FAILED,
            failure_code="no_output",
            failure_message=_NO_OUTPUT_MESSAGE,
            retryable=True,
            **common,
        )
    return JobState(status=JobStatus.SUCCEEDED, outputs=tuple(outputs), **common)


def _failed(prediction: _Prediction, raw_status: str, error_text: str, common: dict[str, Any]) -> JobState:
    code = prediction.code
    log.info("wavespeed task %s %s: code=%s error=%r", prediction.id, raw_status, code, error_text)
    # The SDK re-runs a failed task only when its error names an upstream HTTP 5xx or 429.
    transient_text = "HTTP 5" in error_text or "HTTP 429" in error_text
    if code is not None and code != 0:
        if code in _FAILURE_MESSAGES:
            message = _FAILURE_MESSAGES[code]
        elif code // 1000 == 5:
            message = _RETRY_MESSAGE
        elif code // 1000 == 1:
            message = _FIX_REQUEST_MESSAGE
        else:
            message = _GENERIC_FAILURE
        retryable = code // 1000 == 5 or (code != 1200 and transient_text)
        return JobState(
            status=JobStatus.FAILED, failure_code=str(code), failure_message=message, retryable=retryable, **common
        )
    if raw_status in _STATUS_FAILURES:
        message, retryable = _STATUS_FAILURES[raw_status]
        return JobState(
            status=JobStatus.FAILED, failure_code=raw_status, failure_message=message, retryable=retryable, **common
        )
    return JobState(
        status=JobStatus.FAILED,
        failure_code=raw_status or "failed",
        failure_message=_GENERIC_FAILURE,
        retryable=transient_text,
        **common,
    )


def _output(item: Any, *, nsfw: bool, fallback_type: str | None) -> Output | None:
    """One output: a URL, or base64 bytes (with or without a ``data:`` prefix; the form is not documented)."""
    if isinstance(item, dict):
        item = item.get("url") or item.get("data")
    if not isinstance(item, str) or not item.strip():
        return None
    text = item.strip()
    if text.startswith(("http://", "https://")):
        return Output(url=text, media_type=_type_from_url(text) or fallback_type, nsfw=nsfw)
    declared = None
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma:
            return None
        declared = header[5:].split(";")[0] or None
    raw = _decode_base64(text)
    if raw is None:
        return None
    return Output(data=raw, media_type=_sniff(raw) or declared or fallback_type, nsfw=nsfw)


def _type_from_url(url: str) -> str | None:
    path = urlsplit(url).path
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _MEDIA_TYPES.get(ext)


def _decode_base64(text: str) -> bytes | None:
    compact = "".join(text.split())
    if not _BASE64_RE.fullmatch(compact):
        return None
    compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw or None


def _sniff(raw: bytes) -> str | None:
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


class WaveSpeedProvider(HttpAdapter):
    """``wavespeed-ai/neta-lumina`` over the WaveSpeed v3 API.

    ``base64_output`` asks for outputs inline (``Output.data``) instead of CDN URLs. ``sync_mode`` makes the
    submit wait for the image; when the server's own sync wait runs out, submit returns RUNNING and the job is
    polled as usual.
    """

    name: ClassVar[str] = "wavespeed"
    DEFAULT_BASE_URL: ClassVar[str] = DEFAULT_BASE_URL

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base64_output: bool = False,
        sync_mode: bool = False,
        sync_timeout_s: float = SYNC_SUBMIT_TIMEOUT_S,
        webhook_secret: SecretStr | None = None,
        **options: Unpack[AdapterOptions],
    ) -> None:
        super().__init__(session, **options)
        self._webhook_secret = webhook_secret
        self.base64_output = base64_output
        self.sync_mode = sync_mode
        self.sync_timeout_s = sync_timeout_s

    def __repr__(self) -> str:
        return (
            f"WaveSpeedProvider(base_url={self._http.base_url!r}, base64_output={self.base64_output}, "
            f"sync_mode={self.sync_mode})"
        )

    @property
    def models(self) -> tuple[str, ...]:
        return (MODEL,)

    def capabilities(self, model: str) -> Capabilities:
        if model != MODEL:
            raise KeyError(model)
        return CAPABILITIES

    async def submit(self, request: GenerationRequest) -> JobState:
        body = _to_body(request, base64_output=self.base64_output, sync_mode=self.sync_mode)
        timeout_s = max(self.sync_timeout_s, self._http.timeouts.submit_s) if self.sync_mode else None
        params = {"webhook": request.callback_url} if request.callback_url and self.callbacks_supported else None
        response = await self._http.submit(
            f"/api/v3/{request.model}", json_body=body, timeout_s=timeout_s, params=params
        )
        try:
            return _parse(
                _unwrap(response, phase="submit"),
                output_format=body.get("output_format"),
                request_id=response.request_id,
            )
        except ProtocolError as exc:
            raise AmbiguousSubmitError(
                f"accepted, but unreadable: {exc.detail}",
                provider=self.name,
                status=response.status,
                request_id=response.request_id,
            ) from None

    async def poll(self, remote_id: str) -> JobState:
        response = await self._http.fetch(f"/api/v3/predictions/{quote(remote_id, safe='')}/result")
        return _parse(_unwrap(response, phase="fetch"), request_id=response.request_id)

    @property
    def callbacks_supported(self) -> bool:
        """Webhooks are used only with the account's signing secret: an unsigned callback proves nothing."""
        return self._webhook_secret is not None and bool(self._webhook_secret.get_secret_value().strip())

    def read_callback(self, headers: Mapping[str, str], body: bytes, *, now: float) -> Callback:
        """A webhook delivery (the prediction itself, not in an envelope), once its signature and age check."""
        if self._webhook_secret is None:
            raise CallbackRefused("no WAVESPEED__WEBHOOK_SECRET to check the signature with", 401)
        delivery_id = signed_callbacks.verify(self._webhook_secret.get_secret_value().strip(), headers, body, now=now)
        try:
            data = json.loads(body)
            state = _parse(data.get("data", data) if isinstance(data, dict) and "code" in data else data)
        except (ValueError, ProtocolError):
            raise CallbackRefused("unreadable prediction", 400) from None
        return Callback(state=state, delivery_id=delivery_id)

    async def balance(self) -> float:
        """The account's balance in USD (``GET /api/v3/balance``)."""
        response = await self._http.fetch("/api/v3/balance")
        data = _unwrap(response, phase="fetch")
        try:
            return float(data["balance"])
        except (TypeError, KeyError, ValueError):
            raise ProtocolError("balance answer has no number", provider=self.name, status=response.status) from None


class WaveSpeedSettings(ProviderSettings):
    api_key: SecretStr | None = Field(
        None,
        description="API key from wavespeed.ai (the account must have been topped up). "
        "Leave empty to disable the model.",
    )
    base_url: str = DEFAULT_BASE_URL
    max_concurrency: int = Field(3, ge=1)
    requests_per_minute: int = Field(120, ge=1)
    poll_interval_s: float = Field(2.0, gt=0)
    webhook_secret: SecretStr | None = Field(
        None,
        description="Webhook signing secret (whsec_..., from GET /api/v3/webhook/secret). With WEBHOOK_PUBLIC_URL "
        "set, jobs are submitted with a webhook whose signature is checked with it; without it WaveSpeed is polled.",
    )


SPEC = ProviderSpec(
    name=WaveSpeedProvider.name,
    title="WaveSpeed",
    settings=WaveSpeedSettings,
    factory=lambda session, block: WaveSpeedProvider(
        session, webhook_secret=block.webhook_secret, **block.adapter_options()
    ),
    models=(
        ModelSpec(
            key="neta-lumina",
            upstream_model=MODEL,
            kinds=frozenset({Kind.IMAGE}),
            title="Neta Lumina",
            blurb="anime illustration; danbooru tags and Chinese, English or Japanese prompts work",
            capabilities=CAPABILITIES,
            cost=1,
            price_usd=0.01,
            default_for=frozenset({Kind.IMAGE}),
        ),
    ),
)
