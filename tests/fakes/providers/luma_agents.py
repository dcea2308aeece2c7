"""A fake Luma Agents API (providers.md §3): ``POST /v1/generations`` → 201, ``GET /v1/generations/{id}``.

Faithful enough for the official ``luma_agents`` SDK to run against it. Reusable API for e2e tests::

    async with FakeLumaAgents(url_ttl_s=3600, rpm_limit=None, max_concurrent=None) as fake:
        fake.base_url                      # http://127.0.0.1:<port>/v1 — give it to the adapter or the SDK
        fake.timing = Timing(queued_s=0.0, processing_s=0.05)   # timeline of the next jobs
        fake.fail_next("content_moderated")                      # next job fails with this failure_code
        fake.next_outcome(Outcome(outputs=0))                    # next job completes with no output
        fake.clock = ManualClock()                               # jobs and URL expiry follow this clock
        fake.insufficient_balance = True / fake.suspended = True # POST → 402 / 403
        fake.created_bodies                # JSON bodies of every POST /v1/generations (e.g. to check user_id)
        fake.issued_urls[job_id]           # every output URL handed out for a job, oldest first
        fake.script(...), fake.requests, fake.jobs               # from FakeProviderServer

Quirks reproduced: 201 with ``X-Request-Id``/``X-API-Version``/``X-RateLimit-Limit``; UUID ids; ISO ``created_at``;
a new presigned-style URL on every poll (older ones expire after ``url_ttl_s``, answering 403 XML like S3);
``{"detail": "<str>"}`` errors, FastAPI list-form ``detail`` for schema errors; the two 429 flavours with
``Retry-After``; undecodable input images fail the job asynchronously with ``corrupt_input``.
Which checks come first (rate limits, then schema, then semantics, then balance) is inferred.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tests.fakes.media import media_bytes
from tests.fakes.providers._server import FakeJob, FakeProviderServer, Outcome

API_VERSION = "2026-04-01"
IMAGE_ASPECT_RATIOS = ("3:1", "2:1", "16:9", "3:2", "1:1", "2:3", "9:16", "1:2", "1:3")
MAX_REFS = {"image": 9, "image_edit": 8}
MAX_INPUT_BYTES = 50_000_000
SUPPORTED_INPUT_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")  # [INF]
FAILURE_REASONS = {  # wording [INF] except content_moderated (providers.md §3.10)
    "content_moderated": "Prompt or input image violated content guidelines",
    "generation_failed": "Internal model error",
    "budget_exhausted": "Insufficient balance to complete the generation",
    "output_not_found": "Generated output could not be retrieved",
    "image_too_large": "Input image exceeds the size limit",
    "unsupported_format": "Input media format is not supported",
    "corrupt_input": "Input could not be decoded",
    "invalid_request": "Invalid request",
    "rate_limited": "Upstream rate limit reached",
}


class ImageRefIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    generation_id: str | None = None
    file_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageRefIn:
        given = [k for k in ("url", "data", "generation_id", "file_id") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("Provide exactly one of url, data, generation_id or file_id")
        if self.data is not None and not self.media_type:
            raise ValueError("media_type is required with data")
        return self


class GenerationCreateIn(BaseModel):
    """The request schema of SDK 0.5.0 ``GenerationCreateParams`` (ray-3.2/video fields accepted, not served)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=6000)
    aspect_ratio: (
        Literal["3:1", "2:1", "21:9", "16:9", "4:3", "3:2", "1:1", "3:4", "2:3", "9:16", "1:2", "1:3"] | None
    ) = None
    image_ref: list[ImageRefIn] | None = None
    model: Literal["uni-1", "uni-1-max", "ray-3.2"] = "uni-1"
    output_format: Literal["png", "jpeg"] | None = None
    source: ImageRefIn | None = None
    style: Literal["auto", "manga"] = "auto"
    type: Literal["image", "image_edit", "video", "video_edit", "video_reframe", "layering"] = "image"
    user_id: str | None = Field(default=None, max_length=256)
    web_search: bool = False
    video: dict[str, Any] | None = None
    layering: dict[str, Any] | None = None


def fastapi_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """A pydantic error as FastAPI renders it for a request body: ``loc`` starts with ``"body"``."""
    errors = json.loads(exc.json(include_url=False))
    for error in errors:
        error["loc"] = ["body", *error["loc"]]
    return errors


class FakeLumaAgents(FakeProviderServer):
    api_key = "luma-api-test-key"

    def __init__(
        self,
        *,
        url_ttl_s: float | None = 3600.0,
        rpm_limit: int | None = None,
        max_concurrent: int | None = None,
        concurrency_retry_after_s: int = 5,
    ) -> None:
        super().__init__()
        self.url_ttl_s = url_ttl_s
        self.rpm_limit = rpm_limit
        self.max_concurrent = max_concurrent
        self.concurrency_retry_after_s = concurrency_retry_after_s
        self.insufficient_balance = False
        self.suspended = False
        self.issued_urls: dict[str, list[str]] = {}
        self._accepted_at: deque[float] = deque()
        self.app.router.add_post("/v1/generations", self._create)
        self.app.router.add_get("/v1/generations/{generation_id}", self._get)
        self.app.on_response_prepare.append(self._add_headers)

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def created_bodies(self) -> list[Any]:
        return [r.json for r in self.requests_to("POST", "/v1/generations")]

    def fail_next(self, failure_code: str, reason: str | None = None) -> None:
        """The next created job ends ``failed`` with this ``failure_code``."""
        message = reason or FAILURE_REASONS.get(failure_code, "Generation failed")
        self.next_outcome(Outcome(success=False, failure=failure_code, message=message))

    def live_jobs(self) -> int:
        now = self.clock()
        return sum(1 for job in self.jobs.values() if job.phase(now) in ("queued", "processing"))

    # ----------------------------------------------------------------- answers
    def unauthorized(self) -> web.Response:
        return _detail(401, "Invalid or missing API key")

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/media/"):
            return
        response.headers.setdefault("X-Request-Id", request.headers.get("X-Request-Id") or str(uuid.uuid4()))
        response.headers.setdefault("X-API-Version", API_VERSION)

    async def _create(self, request: web.Request) -> web.Response:
        limited = self._rate_limit()
        if limited is not None:
            return limited
        try:
            raw = await request.json()
        except ValueError:
            return web.json_response(
                {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}]},
                status=422,
            )
        try:
            body = GenerationCreateIn.model_validate(raw)
        except ValidationError as exc:
            return web.json_response({"detail": fastapi_detail(exc)}, status=422)
        problem = self._check(body)
        if problem is not None:
            return problem
        if self.suspended:
            return _detail(403, "Access denied: API client is suspended")
        if self.insufficient_balance:
            return _detail(402, "Insufficient balance")

        input_failure = self._input_failure(body)
        if input_failure is not None:
            self.outcomes.appendleft(
                Outcome(success=False, failure=input_failure, message=FAILURE_REASONS[input_failure])
            )
        job = self.create_job(str(uuid.uuid4()), raw, fmt=body.output_format or "png")
        job.extra.update(
            created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            model=body.model,
            type=body.type,
            aspect_ratio=body.aspect_ratio or "1:1",
        )
        self._accepted_at.append(self.clock())
        headers = {"X-RateLimit-Limit": str(self.rpm_limit or 30)}
        if self.rpm_limit is not None:
            headers["X-RateLimit-Remaining"] = str(max(0, self.rpm_limit - len(self._accepted_at)))
        payload = self._generation(job, "queued") | {"failure_code": None, "failure_reason": None, "output": None}
        return web.json_response(payload, status=201, headers=headers)

    async def _get(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["generation_id"])
        if job is None:
            return _detail(404, "Generation not found")
        job.polls += 1
        state = job.phase(self.clock())
        payload = self._generation(job, state)
        if state == "completed":
            payload["output"] = [{"type": "image", "url": url} for url in self._fresh_urls(job)]
        elif state == "failed":
            payload.update(failure_code=job.outcome.failure, failure_reason=job.outcome.message, output=None)
        return web.json_response(payload)

    # ----------------------------------------------------------------- helpers
    def _generation(self, job: FakeJob, state: str) -> dict[str, Any]:
        return {
            "id": job.id,
            "created_at": job.extra["created_at"],
            "model": job.extra["model"],
            "state": state,
            "type": job.extra["type"],
        }

    def _fresh_urls(self, job: FakeJob) -> list[str]:
        width, height = _dimensions(job.extra["aspect_ratio"])
        urls = [
            self.add_media(f"{i}.{job.fmt}", data=media_bytes(job.fmt, width, height), ttl_s=self.url_ttl_s)
            for i in range(job.outcome.outputs)
        ]
        self.issued_urls.setdefault(job.id, []).extend(urls)
        return urls

    def _rate_limit(self) -> web.Response | None:
        now = self.clock()
        while self._accepted_at and now - self._accepted_at[0] >= 60:
            self._accepted_at.popleft()
        if self.rpm_limit is not None and len(self._accepted_at) >= self.rpm_limit:
            wait = max(1, math.ceil(60 - (now - self._accepted_at[0])))
            return _detail(429, "Rate limit exceeded", {"Retry-After": str(wait)})
        if self.max_concurrent is not None and self.live_jobs() >= self.max_concurrent:
            return _detail(429, "Too many concurrent jobs", {"Retry-After": str(self.concurrency_retry_after_s)})
        return None

    def _check(self, body: GenerationCreateIn) -> web.Response | None:
        """Checks the real API makes after schema validation, answered with a string ``detail``."""
        if body.model == "ray-3.2" or body.type not in MAX_REFS:
            return _detail(422, f"Model '{body.model}' does not support type '{body.type}'")
        if body.aspect_ratio is not None and body.aspect_ratio not in IMAGE_ASPECT_RATIOS:
            return _detail(422, f"aspect_ratio '{body.aspect_ratio}' is not supported for {body.model} images")
        if body.type == "image_edit" and body.source is None:
            return _detail(422, "source is required for type 'image_edit'")
        refs = body.image_ref or []
        if len(refs) > MAX_REFS[body.type]:
            return _detail(422, f"Too many reference images: at most {MAX_REFS[body.type]} for type '{body.type}'")
        for where, ref in [("source", body.source), *((f"image_ref[{i}]", r) for i, r in enumerate(refs))]:
            if ref is None:
                continue
            if ref.url is not None and not ref.url.startswith(("http://", "https://")):
                return _detail(422, f"Could not fetch image from {where}.url")
            if ref.file_id is not None:
                return _detail(422, f"File not found: {where}.file_id")
            if ref.generation_id is not None and ref.generation_id not in self.jobs:
                return _detail(422, f"Generation not found: {where}.generation_id")
            if ref.data is not None:
                decoded = _b64(ref.data)
                if decoded is None:
                    return _detail(422, f"Invalid base64 data in {where}.data")
                if len(decoded) > MAX_INPUT_BYTES:
                    return _detail(413, "Image exceeds 50 MB")
        return None

    def _input_failure(self, body: GenerationCreateIn) -> str | None:
        """Inline images are decoded during processing: bad ones fail the job, not the request."""
        for ref in [body.source, *(body.image_ref or [])]:
            if ref is None or ref.data is None:
                continue
            if ref.media_type not in SUPPORTED_INPUT_TYPES:
                return "unsupported_format"
            try:
                Image.open(io.BytesIO(_b64(ref.data) or b"")).verify()
            except Exception:
                return "corrupt_input"
        return None


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


def _b64(data: str) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _dimensions(aspect_ratio: str, long_side: int = 64) -> tuple[int, int]:
    w, h = (int(part) for part in aspect_ratio.split(":"))
    return (long_side, max(1, round(long_side * h / w))) if w >= h else (max(1, round(long_side * w / h)), long_side)
