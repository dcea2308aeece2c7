"""A fake new-api relay serving Luma Dream Machine "own format" video (providers.md §2).

Routes:
- ``POST /luma/generations`` → 201 with the documented example shape (``state: "pending"``, nulls).
- ``GET /luma/generations/{id}`` → the Luma web object: pending → processing → completed / failed.
- ``GET /luma/generations/{id}/download_video_url`` → ``{"url": <presigned>}``; 400 until completed.
- ``POST /luma/generations/{id}/extend`` → like a submit: a new job continuing a completed one (``extended``:
  (task id, body) of each accepted extend; 400 ``task_not_exist`` / ``invalid_request`` for an unknown or
  unfinished task).
- ``GET /media/...`` → real mp4 / jpg bytes (``download_url`` expires like an R2 presigned URL).

Reusable API (for adapter tests and the bot's end-to-end tests):
- ``timing`` / ``next_outcome(Outcome(success=False, failure="<failure_reason>"))`` / ``clock``: the job timeline.
- Completed-object shape: ``download_url`` ("present" | "empty" | "missing"), ``include_video_raw``,
  ``include_video_url`` (watermarked ``video.url``), ``artifact_only`` (URLs only under ``artifact``),
  ``download_ttl_s``, ``no_mark_available`` (whether ``download_video_url`` ever answers).
- ``wrapped = True`` wraps every answer in ``{"code": wrapped_code, "message": "", "data": {...}}``.
- ``submit_status`` (201 as the doc says; mirrors 200), ``not_found_status`` (400 as new-api; some relays 404),
  ``estimate_wait_seconds`` (sent while pending/processing).
- Relay error shapes on demand: ``relay_error`` (``{"code","message","data":null}``), ``middleware_error``
  (``{"error":{...,"type":"new_api_error"}}``), ``saturate`` (429, Chinese message), ``wrapped_error`` (HTTP 200 with
  an error code). A wrong token gets 401 in the middleware shape.
- Inspection: ``requests`` / ``requests_to``, ``submitted`` (the JSON bodies of accepted and refused submits),
  ``generation(id)`` (what a GET would answer now).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes.providers._server import FakeJob, FakeProviderServer, Scripted

SUBMIT_PATH = "/luma/generations"
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
DURATIONS = ("5s", "10s")
RESOLUTIONS = ("720p", "1080p")
MODEL_NAMES = ("ray-v1", "ray-v2", "ray-v3")
SATURATED_MESSAGE = "当前分组上游负载已饱和，请稍后再试"
INVALID_TOKEN_MESSAGE = "无效的令牌"
_SIZES = {
    "16:9": (1360, 752),
    "9:16": (752, 1360),
    "1:1": (1024, 1024),
    "4:3": (1184, 880),
    "3:4": (880, 1184),
    "21:9": (1568, 672),
    "9:21": (672, 1568),
}
_STATES = {"queued": "pending", "processing": "processing", "completed": "completed", "failed": "failed"}


def task_path(task_id: str) -> str:
    return f"{SUBMIT_PATH}/{task_id}"


class FakeLumaReseller(FakeProviderServer):
    def __init__(self) -> None:
        super().__init__()
        self.output_format = "mp4"
        self.wrapped = False
        self.wrapped_code: str | int = "success"
        self.submit_status = 201
        self.not_found_status = 400
        self.download_url: Literal["present", "empty", "missing"] = "present"
        self.include_video_raw = True
        self.include_video_url = True
        self.artifact_only = False
        self.download_ttl_s: float = 3600.0
        self.no_mark_available = True
        self.estimate_wait_seconds: float | None = None
        self.submitted: list[Any] = []
        self._request_ids = 0
        self.app.router.add_post(SUBMIT_PATH, self._create)
        self.app.router.add_get(SUBMIT_PATH + "/{id}", self._get)
        self.app.router.add_get(SUBMIT_PATH + "/{id}/download_video_url", self._no_mark)
        self.extended: list[tuple[str, Any]] = []
        self.app.router.add_post(SUBMIT_PATH + "/{id}/extend", self._extend)

    # ----------------------------------------------------------------- error shapes on demand
    def relay_error(
        self, method: str, path: str, *, status: int, code: str, message: str | None = None, **kwargs: Any
    ) -> Scripted:
        """new-api's task error (``dto.TaskError``): ``{"code": code, "message": ..., "data": null}``."""
        return self.script(method, path, status=status, json=task_error(code, message or code), **kwargs)

    def middleware_error(
        self, method: str, path: str, *, status: int, message: str, code: str = "", **kwargs: Any
    ) -> Scripted:
        """new-api's auth/quota middleware error: ``{"error": {"message", "type": "new_api_error", "code"}}``."""
        return self.script(method, path, status=status, json=self._middleware_body(message, code), **kwargs)

    def saturate(
        self, method: str = "POST", path: str = SUBMIT_PATH, *, retry_after: float | None = None, **kwargs: Any
    ) -> Scripted:
        """The relay's 429 when the group's upstream pool is full (new-api overwrites the message)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return self.script(
            method, path, status=429, json=task_error("upstream_error", SATURATED_MESSAGE), headers=headers, **kwargs
        )

    def wrapped_error(self, method: str, path: str, *, code: str, message: str, **kwargs: Any) -> Scripted:
        """HTTP 200 carrying an error code in the envelope (seen on wrapping relays)."""
        return self.script(method, path, status=200, json=task_error(code, message), **kwargs)

    # ----------------------------------------------------------------- auth
    def unauthorized(self) -> web.Response:
        return web.json_response(self._middleware_body(INVALID_TOKEN_MESSAGE, ""), status=401)

    def _middleware_body(self, message: str, code: str) -> dict[str, Any]:
        return {
            "error": {
                "message": f"{message} (request id: {self._next_request_id()})",
                "type": "new_api_error",
                "code": code,
            }
        }

    def _next_request_id(self) -> str:
        self._request_ids += 1
        return f"20250205113030{self._request_ids:06d}"

    # ----------------------------------------------------------------- handlers
    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self._reply(task_error("invalid_request", "invalid character in request body"), status=400)
        self.submitted.append(body)
        problem = _validate(body)
        if problem is not None:
            return self._reply(task_error("invalid_request", problem), status=400)
        job = self.create_job(str(uuid.uuid4()), body)
        job.extra["created_at"] = _timestamp()
        self.callbacks.watch(job, body.get("notify_hook"))
        return self._answer(self.generation(job.id), status=self.submit_status)

    async def _get(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._reply(task_error("task_not_exist", "task_not_exist"), status=self.not_found_status)
        job.polls += 1
        return self._answer(self.generation(job.id))

    async def _no_mark(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._reply(task_error("task_not_exist", "task_not_exist"), status=self.not_found_status)
        if job.phase(self.clock()) != "completed" or not self.no_mark_available:
            return self._reply(task_error("invalid_request", "video is not completed"), status=400)
        # Presigned afresh on every call, like the relay's storage does.
        job.extra["no_mark_url"] = self.add_media(f"{job.id}.mp4", ttl_s=self.download_ttl_s)
        return self._answer({"url": job.extra["no_mark_url"]})

    async def _extend(self, request: web.Request) -> web.Response:
        original = self.jobs.get(request.match_info["id"])
        if original is None:
            return self._reply(task_error("task_not_exist", "task_not_exist"), status=self.not_found_status)
        if original.phase(self.clock()) != "completed":
            return self._reply(task_error("invalid_request", "task is not completed"), status=400)
        try:
            body = await request.json()
        except ValueError:
            return self._reply(task_error("invalid_request", "invalid character in request body"), status=400)
        problem = _validate(body)
        if problem is not None:
            return self._reply(task_error("invalid_request", problem), status=400)
        self.extended.append((original.id, body))
        job = self.create_job(str(uuid.uuid4()), {"aspect_ratio": original.body.get("aspect_ratio"), **body})
        job.extra["created_at"] = _timestamp()
        self.callbacks.watch(job, body.get("notify_hook"))
        return self._answer(self.generation(job.id), status=self.submit_status)

    # ----------------------------------------------------------------- bodies
    def callback_payload(self, job: FakeJob) -> dict[str, Any]:
        return self.generation(job.id)

    def generation(self, job_id: str) -> dict[str, Any]:
        """The Luma object a GET answers for this job right now (unwrapped)."""
        job = self.jobs[job_id]
        state = _STATES[job.phase(self.clock())]
        obj: dict[str, Any] = {
            "created_at": job.extra["created_at"],
            "estimate_wait_seconds": self.estimate_wait_seconds if state in ("pending", "processing") else None,
            "id": job.id,
            "last_frame": None,
            "liked": None,
            "prompt": job.body.get("user_prompt", ""),
            "state": state,
            "thumbnail": None,
            "video": None,
        }
        if state == "failed":
            obj["failure_reason"] = job.outcome.failure or job.outcome.message
        elif state == "completed":
            obj.update(self._completed(job))
        return obj

    def _completed(self, job: FakeJob) -> dict[str, Any]:
        if "completed" not in job.extra:
            width, height = _SIZES.get(job.body.get("aspect_ratio", "16:9"), _SIZES["16:9"])
            size = {"width": width, "height": height}
            video: dict[str, Any] = {**size}
            if self.include_video_url:
                video["url"] = self.add_media(f"{job.id}_watermarked_video.mp4")
            if self.download_url == "present":
                video["download_url"] = self.add_media(f"{job.id}.mp4", ttl_s=self.download_ttl_s)
            elif self.download_url == "empty":
                video["download_url"] = ""
            thumbnail = {
                "url": self.add_media(f"{job.id}_thumbnail.jpg"),
                **size,
                "palette": {"grid": "em9csKqXYUgqdHVm"},
                "media_type": "image",
            }
            last_frame = {
                "url": self.add_media(f"{job.id}_last_frame.jpg"),
                **size,
                "palette": None,
                "media_type": "image",
            }
            video_raw = (
                {"url": self.add_media(f"{job.id}_raw.mp4"), **size, "duration": 5.0, "media_type": "video"}
                if self.include_video_raw
                else None
            )
            artifact = {
                "video": video,
                "thumbnail": thumbnail,
                "video_raw": video_raw,
                "last_frame": last_frame,
                "created_at": job.extra["created_at"],
            }
            top = {"video": None, "video_raw": None} if self.artifact_only else {"video": video, "video_raw": video_raw}
            job.extra["completed"] = {
                **top,
                "thumbnail": thumbnail,
                "last_frame": last_frame,
                "request": {"prompt": job.body.get("user_prompt", ""), "aspect_ratio": job.body.get("aspect_ratio")},
                "artifact": artifact,
                "queue_state": None,
                "failure_reason": None,
            }
        completed: dict[str, Any] = job.extra["completed"]
        return completed

    def _answer(self, payload: Any, status: int = 200) -> web.Response:
        if self.wrapped:
            payload = {"code": self.wrapped_code, "message": "", "data": payload}
        return self._reply(payload, status=status)

    def _reply(self, payload: Any, status: int) -> web.Response:
        return web.json_response(payload, status=status, headers={"X-Oneapi-Request-Id": self._next_request_id()})


def task_error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "data": None}


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _validate(body: Any) -> str | None:
    """What the relay would refuse (400 invalid_request): firm where the doc is, lenient elsewhere."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("user_prompt"), str) or not body["user_prompt"].strip():
        return "user_prompt is required"
    choices = {
        "aspect_ratio": ASPECT_RATIOS,
        "duration": DURATIONS,
        "resolution": RESOLUTIONS,
        "model_name": MODEL_NAMES,
    }
    for key, allowed in choices.items():
        if key in body and body[key] not in allowed:
            return f"invalid {key}: {body[key]!r}"
    for key in ("loop", "expand_prompt"):
        if key in body and not isinstance(body[key], bool):
            return f"{key} must be a boolean"
    for key in ("image_url", "image_end_url"):
        if key in body and not _is_image_ref(body[key]):
            return f"{key} must be an image URL or Base64 image"
    return None


def _is_image_ref(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if value.startswith(("http://", "https://")):
        return True
    data = value.split(",", 1)[1] if value.startswith("data:image/") and ";base64," in value else value
    try:
        return len(base64.b64decode(data, validate=True)) > 0
    except (binascii.Error, ValueError):
        return False
