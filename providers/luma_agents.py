"""Luma Agents API (``uni-1`` / ``uni-1-max`` images): ``POST /generations`` (201), ``GET /generations/{id}``.

Facts: providers.md §3. Output URLs are presigned for one hour; every poll hands out a fresh one.
The official SDK retries POST after timeouts and 5xx without an idempotency key; this adapter never does.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from providers._http import HttpAdapter
from providers.base import Capabilities, GenerationRequest, ImageInput, JobState, JobStatus, Kind, Output
from providers.errors import (
    AmbiguousSubmitError,
    InputImageError,
    InsufficientFundsError,
    InvalidRequestError,
    ModeratedError,
    ProtocolError,
)
from providers.messages import Message, msg
from providers.registry import ModelSpec, ProviderSettings, ProviderSpec

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://agents.lumalabs.ai/v1"
MODELS = ("uni-1", "uni-1-max")
ASPECT_RATIOS = ("3:1", "2:1", "16:9", "3:2", "1:1", "2:3", "9:16", "1:2", "1:3")
OUTPUT_FORMATS = ("png", "jpeg")
STYLES = ("auto", "manga")
PROMPT_MAX_LENGTH = 6000
USER_ID_MAX_LENGTH = 256
MAX_REFERENCES = {Kind.IMAGE: 9, Kind.IMAGE_EDIT: 8}  # the edit source takes one of the nine slots
MAX_INPUT_BYTES = 50_000_000  # "Image exceeds 50 MB" → 413

# Typical durations are inferred (no published latency figures); uni-1-max is the slower, higher-quality tier.
_TYPICAL_DURATION_S = {"uni-1": 20.0, "uni-1-max": 35.0}
_CAPABILITIES = {
    model: Capabilities(
        kinds=frozenset({Kind.IMAGE, Kind.IMAGE_EDIT}),
        fields=frozenset({"aspect_ratio", "style", "output_format", "reference_images", "source_image", "web_search"}),
        aspect_ratios=ASPECT_RATIOS,
        output_formats=OUTPUT_FORMATS,
        styles=STYLES,
        max_reference_images=MAX_REFERENCES[Kind.IMAGE],
        prompt_max_length=PROMPT_MAX_LENGTH,
        typical_duration_s=_TYPICAL_DURATION_S[model],
    )
    for model in MODELS
}

_STATUS_MAP: dict[str, JobStatus] = {
    "queued": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
}

# failure_code → (message for the user, retryable), per providers.md §3.5.
_FAILURES: dict[str, tuple[Message, bool]] = {
    "content_moderated": (ModeratedError.default_user_message, False),
    "generation_failed": (msg("The service failed while making this image. Trying again may work."), True),
    "budget_exhausted": (InsufficientFundsError.default_user_message, False),
    "output_not_found": (msg("The service made the image but could not hand it over. Trying again may work."), True),
    "image_too_large": (
        msg("The image you gave is too large for the service. Use a smaller image (fewer pixels, under 50 MB)."),
        False,
    ),
    "unsupported_format": (
        msg("The service cannot read that image format. Convert it to PNG or JPEG and try again."),
        False,
    ),
    "corrupt_input": (
        msg("The service could not decode the image you gave it. Use a different PNG or JPEG file."),
        False,
    ),
    "invalid_request": (InvalidRequestError.default_user_message, False),
    "rate_limited": (msg("The service was too busy to finish this image. Trying again in a minute should work."), True),
}
_UNKNOWN_FAILURE = (msg("The service could not make this image."), False)
_NO_OUTPUT = (msg("The service finished the job but sent no image back. Trying again may work."), True)

_unknown_states_seen: set[str] = set()


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str | None = None
    url: str | None = None


class _Generation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    state: str | None = None
    type: str | None = None
    model: str | None = None
    created_at: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
    output: list[_Output] | None = None


def _refuse(detail: str, user_message: Message) -> InvalidRequestError:
    return InvalidRequestError(detail, provider=LumaAgentsProvider.name, user_message=user_message)


def _image_ref(image: ImageInput, what: Message) -> dict[str, str]:
    if len(image.data) > MAX_INPUT_BYTES:
        raise InputImageError(
            f"{what} is {len(image.data)} bytes",
            provider=LumaAgentsProvider.name,
            user_message=msg("The {what} is larger than 50 MB. Use a smaller PNG or JPEG image.", what=what),
        )
    return {"data": image.base64(), "media_type": image.media_type}


def _check_choice(name: Message, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise _refuse(
            f"{name}={value!r}",
            msg(
                "Luma uni-1 does not offer {name} {value}. Choose one of: {choices}.",
                name=name,
                value=repr(value),
                choices=", ".join(allowed),
            ),
        )


def _to_body(request: GenerationRequest) -> dict[str, Any]:
    """The JSON body of ``POST /generations``. Raises ``InvalidRequestError`` for anything the API would refuse."""
    if request.model not in MODELS:
        raise _refuse(
            f"unknown model {request.model!r}", msg("This model is not offered by Luma Agents. Choose another model.")
        )
    if request.kind not in MAX_REFERENCES:
        raise _refuse(f"kind {request.kind}", msg("Luma uni-1 makes and edits images only. Choose an image command."))
    if not request.prompt.strip():
        raise _refuse("empty prompt", msg("Write a prompt describing the image."))
    if len(request.prompt) > PROMPT_MAX_LENGTH:
        raise _refuse(
            f"prompt is {len(request.prompt)} chars",
            msg(
                "The prompt is too long ({length} characters). Shorten it to {limit} or fewer.",
                length=len(request.prompt),
                limit=PROMPT_MAX_LENGTH,
            ),
        )
    _check_choice(msg("aspect ratio"), request.aspect_ratio, ASPECT_RATIOS)
    _check_choice(msg("style"), request.style, STYLES)
    _check_choice(msg("output format"), request.output_format, OUTPUT_FORMATS)
    limit = MAX_REFERENCES[request.kind]
    if len(request.reference_images) > limit:
        raise _refuse(
            f"{len(request.reference_images)} reference images for {request.kind}",
            msg(
                "Too many reference images ({count}): use at most {limit} for this command.",
                count=len(request.reference_images),
                limit=limit,
            ),
        )
    if request.kind is Kind.IMAGE_EDIT and request.source_image is None:
        raise _refuse("image_edit without source", msg("Attach the image you want to edit."))
    if request.kind is Kind.IMAGE and request.source_image is not None:
        raise _refuse(
            "source image on a text-to-image request", msg("Use the edit command to change an existing image.")
        )
    if request.user_id is not None and len(request.user_id) > USER_ID_MAX_LENGTH:
        raise _refuse(
            f"user_id is {len(request.user_id)} chars",
            msg("The bot could not send this request (its user id is too long). An operator has been told."),
        )

    body: dict[str, Any] = {"prompt": request.prompt, "model": request.model, "type": request.kind.value}
    optional = {"aspect_ratio": request.aspect_ratio, "style": request.style, "output_format": request.output_format}
    body.update({key: value for key, value in optional.items() if value is not None})
    if request.reference_images:
        body["image_ref"] = [_image_ref(img, msg("reference image")) for img in request.reference_images]
    if request.source_image is not None:
        body["source"] = _image_ref(request.source_image, msg("image to edit"))
    if request.user_id is not None:
        body["user_id"] = request.user_id
    if request.web_search is not None:
        body["web_search"] = request.web_search
    return body


def _media_type(output: _Output) -> str | None:
    guessed = mimetypes.guess_type(urlsplit(output.url or "").path)[0]
    if guessed:
        return guessed
    return output.type if output.type and "/" in output.type else None


def _parse(data: Any, request_id: str | None = None) -> JobState:
    """A ``Generation`` object as a ``JobState``. Raises ``ProtocolError`` when it has no id."""
    try:
        gen = _Generation.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(
            f"unreadable generation: {exc.error_count()} problem(s)",
            provider=LumaAgentsProvider.name,
            request_id=request_id,
        ) from None
    state = gen.state or ""
    status = _STATUS_MAP.get(state)
    if status is None:
        if state not in _unknown_states_seen:
            _unknown_states_seen.add(state)
            log.warning("luma_agents: unknown generation state %r; treating it as running", state)
        status = JobStatus.RUNNING
    common: dict[str, Any] = {"remote_id": gen.id, "request_id": request_id, "upstream_status": gen.state}
    if status is JobStatus.FAILED:
        message, retryable = _FAILURES.get(gen.failure_code or "", _UNKNOWN_FAILURE)
        return JobState(
            status=status, failure_code=gen.failure_code, failure_message=message, retryable=retryable, **common
        )
    if status is JobStatus.SUCCEEDED:
        outputs = tuple(Output(url=o.url, media_type=_media_type(o)) for o in gen.output or () if o.url)
        if not outputs:
            message, retryable = _NO_OUTPUT
            return JobState(
                status=JobStatus.FAILED,
                failure_code="no_output",
                failure_message=message,
                retryable=retryable,
                **common,
            )
        return JobState(status=status, outputs=outputs, **common)
    return JobState(status=status, **common)


class LumaAgentsProvider(HttpAdapter):
    """Luma Agents image generation (``uni-1``, ``uni-1-max``)."""

    name: ClassVar[str] = "luma_agents"
    DEFAULT_BASE_URL: ClassVar[str] = DEFAULT_BASE_URL

    @property
    def models(self) -> tuple[str, ...]:
        return MODELS

    def capabilities(self, model: str) -> Capabilities:
        return _CAPABILITIES[model]

    async def submit(self, request: GenerationRequest) -> JobState:
        response = await self._http.submit("generations", json_body=_to_body(request))
        try:
            return _parse(response.body, response.request_id)
        except ProtocolError as exc:
            # The job was accepted (2xx) but we cannot track it: never submit it again.
            raise AmbiguousSubmitError(
                exc.detail, provider=self.name, status=response.status, request_id=response.request_id
            ) from None

    async def poll(self, remote_id: str) -> JobState:
        response = await self._http.fetch(f"generations/{quote(remote_id, safe='')}")
        return _parse(response.body, response.request_id)


class LumaAgentsSettings(ProviderSettings):
    api_key: SecretStr | None = Field(
        None, description="API key from platform.lumalabs.ai (luma-api-...). Leave empty to disable the models."
    )
    base_url: str = DEFAULT_BASE_URL
    max_concurrency: int = Field(4, ge=1)
    poll_interval_s: float = Field(3.0, gt=0)


def _model(
    key: str, title: str, blurb: str, cost: int, price_usd: float, default_for: frozenset[Kind] = frozenset()
) -> ModelSpec:
    return ModelSpec(
        key=key,
        upstream_model=key,
        kinds=frozenset({Kind.IMAGE, Kind.IMAGE_EDIT}),
        title=title,
        blurb=blurb,
        capabilities=_CAPABILITIES[key],
        cost=cost,
        price_usd=price_usd,
        default_for=default_for,
    )


SPEC = ProviderSpec(
    name=LumaAgentsProvider.name,
    title="Luma Agents",
    settings=LumaAgentsSettings,
    factory=lambda session, block: LumaAgentsProvider(session, **block.adapter_options()),
    models=(
        _model(
            "uni-1",
            "Luma uni-1",
            "images and image edits, with up to 9 reference images",
            cost=1,
            price_usd=0.04,
            default_for=frozenset({Kind.IMAGE_EDIT}),
        ),
        _model("uni-1-max", "Luma uni-1 max", "like uni-1, at higher quality", cost=3, price_usd=0.12),
    ),
)
