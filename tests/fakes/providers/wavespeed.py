"""A fake WaveSpeed v3 API (providers.md §1) serving ``wavespeed-ai/neta-lumina``.

Routes:
- ``POST /api/v3/{owner}/{model}``: validates the body like the docs' parameter table (400 envelope otherwise),
  creates a job, answers the ``{code, message, data}`` envelope. Honours ``enable_sync_mode`` (waits for the job,
  or answers the 5004 "Sync mode timed out" fixture after ``sync_timeout_s``) and ``enable_base64_output``.
- ``GET /api/v3/predictions/{id}/result`` and ``GET /api/v3/predictions/{id}`` (the docs show both).
- ``POST /api/v3/predictions`` (history list, newest first).

Reusable API for end-to-end tests (besides the base class's ``timing``, ``next_outcome``, ``requests``,
``requests_to``, ``script``, ``jobs``, ``media_ttl_s``):
- ``Outcome(success=False, failure=1200, message="...")``: the next job fails with ``data.code`` 1200 and
  ``data.error`` "..."; ``failure="cancelled" | "timeout" | "deleted"`` ends it in that status instead;
  ``failure=None`` fails without a code. ``Outcome(nsfw=True)`` flags every output, ``Outcome(outputs=0)``
  completes with none.
- ``queued_status`` ("created"; set "pending" for the quirk seen in the SDK tests), ``base64_data_uri`` (base64
  outputs carry a ``data:`` prefix when True), ``sync_timeout_s``, ``models``.
- ``force_status(job_id, status)``: answer this status for the job from now on (e.g. an unknown one).
- ``envelope_error(code, message, method="POST", path=None, times=1)``: HTTP 200 with ``code != 200``.
- ``rate_limit(times=1, retry_after=None)``: 429 on submit, body as providers.md §1.11.
- ``submissions``: the JSON bodies of the submit requests received, in order.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.media import MEDIA_TYPES, media_bytes
from tests.fakes.providers._server import FakeJob, FakeProviderServer, Scripted

MODEL = "wavespeed-ai/neta-lumina"
SEED_MAX = 2_147_483_647
OUTPUT_FORMATS = ("jpeg", "png", "webp")
_FAILURE_TEXT = {
    1200: "The content contains sensitive information.",
    1400: "Missing required parameter.",
    1401: "Invalid parameter.",
    1402: "Failed to access media.",
    1403: "Task execution failed.",
    1405: "Task failed.",
    5000: "Internal error.",
    5003: "Service unavailable.",
    5004: "Request timed out.",
}


def _envelope(data: Any, code: int = 200, message: str = "success", status: int = 200) -> web.Response:
    return web.json_response({"code": code, "message": message, "data": data}, status=status)


def _bad_request(message: str) -> web.Response:
    return _envelope(None, code=400, message=message, status=400)


def _created_at() -> str:
    ns = time.time_ns()
    stamp = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns % 1_000_000_000:09d}Z"


class FakeWaveSpeed(FakeProviderServer):
    def __init__(self) -> None:
        super().__init__()
        self.callbacks.signed = True
        self.models = {MODEL}
        self.output_format = "jpeg"
        self.queued_status = "created"
        self.base64_data_uri = False
        self.sync_timeout_s = 90.0
        self.balance = 12.34
        self.app.router.add_get("/api/v3/balance", self._balance)
        self.app.router.add_post("/api/v3/predictions", self._list)
        self.app.router.add_get("/api/v3/predictions/{id}/result", self._result)
        self.app.router.add_get("/api/v3/predictions/{id}", self._result)
        self.app.router.add_post("/api/v3/{model:.+}", self._submit)

    # ----------------------------------------------------------------- public helpers
    def result_url(self, job_id: str) -> str:
        return f"{self.root_url}/api/v3/predictions/{job_id}/result"

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def force_status(self, job_id: str, status: str) -> None:
        self.jobs[job_id].extra["forced_status"] = status

    def envelope_error(
        self, code: int, message: str, *, method: str = "POST", path: str | None = None, times: int = 1
    ) -> Scripted:
        """HTTP 200 whose envelope carries ``code`` (e.g. 401, 429, 500) and ``data: null``."""
        pattern = path or ("/api/v3/(?!predictions).+" if method.upper() == "POST" else "/api/v3/predictions/.+")
        return self.script(
            method, pattern, status=200, json={"code": code, "message": message, "data": None}, times=times
        )

    def rate_limit(self, *, times: int = 1, retry_after: float | None = None) -> Scripted:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"code": 429, "message": "Too many requests, rate limit exceeded", "data": None}
        return self.script("POST", "/api/v3/(?!predictions).+", status=429, json=body, headers=headers, times=times)

    @property
    def submissions(self) -> list[Any]:
        return [r.json for r in self.requests_to("POST", "/api/v3/(?!predictions).+")]

    # ----------------------------------------------------------------- base-class hooks
    def callback_payload(self, job: FakeJob) -> dict[str, Any]:
        return self._data(job)  # the prediction itself, not in the envelope

    def unauthorized(self) -> web.Response:
        return _envelope(None, code=401, message="Unauthorized: invalid API key", status=401)

    # ----------------------------------------------------------------- handlers
    async def _balance(self, request: web.Request) -> web.Response:
        return _envelope({"balance": self.balance})

    async def _submit(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in self.models:
            return _envelope(None, code=404, message=f"model {model} not found", status=404)
        try:
            body = await request.json()
        except ValueError:
            return _bad_request("invalid JSON body")
        problem = self._validate(body)
        if problem:
            return _bad_request(problem)
        job = self.create_job(self.new_id(), body, fmt=body.get("output_format", "jpeg"))
        job.extra.update(model=model, created_at=_created_at())
        self.callbacks.watch(job, request.query.get("webhook") or body.get("webhook_url"))
        if body.get("enable_sync_mode"):
            return await self._sync_answer(job)
        return _envelope(self._data(job))

    async def _sync_answer(self, job: FakeJob) -> web.Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.sync_timeout_s
        while self._status(job) not in ("completed", "failed", "cancelled", "timeout", "deleted"):
            if loop.time() >= deadline:
                seconds = f"{self.sync_timeout_s:g}"
                return _envelope(
                    {
                        "id": job.id,
                        "status": "processing",
                        "code": 5004,
                        "error": f"Sync mode timed out after {seconds} seconds. "
                        "The prediction is still processing asynchronously.",
                        "urls": {"get": self.result_url(job.id)},
                    }
                )
            await asyncio.sleep(0.005)
        return _envelope(self._data(job))

    async def _result(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return _envelope(None, code=404, message="prediction not found", status=404)
        job.polls += 1
        return _envelope(self._data(job))

    async def _list(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        page = int(body.get("page", 1) or 1)
        size = min(int(body.get("page_size", 100) or 100), 100)
        items = [self._data(job) for job in reversed(self.jobs.values())]
        if body.get("model"):
            items = [item for item in items if item["model"] == body["model"]]
        if body.get("status"):
            items = [item for item in items if item["status"] == body["status"]]
        chunk = items[(page - 1) * size : page * size]
        return _envelope({"page": page, "items": [{**item, "executionTime": 0} for item in chunk]})

    # ----------------------------------------------------------------- shapes
    @staticmethod
    def _validate(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return "prompt is required"
        if "size" in body:
            size = body["size"]
            parts = size.split("*") if isinstance(size, str) else []
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                return f"invalid size {size!r}: expected WIDTH*HEIGHT"
            if not all(256 <= int(p) <= 1536 for p in parts):
                return f"invalid size {size!r}: each dimension must be between 256 and 1536"
        if "seed" in body:
            seed = body["seed"]
            if isinstance(seed, bool) or not isinstance(seed, int) or not -1 <= seed <= SEED_MAX:
                return f"invalid seed {seed!r}: must be an integer between -1 and {SEED_MAX}"
        if "output_format" in body and body["output_format"] not in OUTPUT_FORMATS:
            return f"invalid output_format {body['output_format']!r}: must be one of jpeg, png, webp"
        for flag in ("enable_base64_output", "enable_sync_mode"):
            if flag in body and not isinstance(body[flag], bool):
                return f"invalid {flag}: must be a boolean"
        return None

    def _status(self, job: FakeJob) -> str:
        if "forced_status" in job.extra:
            return str(job.extra["forced_status"])
        phase = job.phase(self.clock())
        if phase == "queued":
            return self.queued_status
        if phase == "failed" and isinstance(job.outcome.failure, str):
            return job.outcome.failure
        return phase

    def _data(self, job: FakeJob) -> dict[str, Any]:
        status = self._status(job)
        data: dict[str, Any] = {
            "id": job.id,
            "model": job.extra.get("model", MODEL),
            "outputs": [],
            "urls": {"get": self.result_url(job.id)},
            "has_nsfw_contents": [],
            "status": status,
            "created_at": job.extra.get("created_at", _created_at()),
            "error": "",
            "timings": {"inference": 0},
        }
        if status == "completed":
            outputs = self._outputs(job)
            data["outputs"] = outputs
            data["has_nsfw_contents"] = [job.outcome.nsfw] * len(outputs)
            data["timings"] = {"inference": int(job.timing.processing_s * 1000)}
        elif status in ("failed", "cancelled", "timeout", "deleted"):
            failure = job.outcome.failure
            if isinstance(failure, int):
                data["code"] = failure
            default = _FAILURE_TEXT.get(failure, "Task failed.") if isinstance(failure, int) else "Task failed."
            message = job.outcome.message
            data["error"] = default if message == "Generation failed" else message
        return data

    def _outputs(self, job: FakeJob) -> list[str]:
        if "outputs" not in job.extra:
            values = []
            for index in range(job.outcome.outputs):
                if job.body.get("enable_base64_output"):
                    encoded = base64.b64encode(media_bytes(job.fmt)).decode("ascii")
                    prefix = f"data:{MEDIA_TYPES[job.fmt]};base64," if self.base64_data_uri else ""
                    values.append(prefix + encoded)
                else:
                    values.append(self.add_media(f"output_{index}.{job.fmt}"))
            job.extra["outputs"] = values
        return list(job.extra["outputs"])
