"""A fake Lumozai API (providers.md §4): synchronous ``POST /api/v4/run`` and the inferred ``/api/v4/check``.

Public API, beyond ``FakeProviderServer`` (``timing``, ``next_outcome``, ``script``, ``requests``, ``requests_to``,
``jobs``, ``media_ttl_s``, ``api_key``):

- ``FakeLumozai(reduced=False, slow_after_s=None, check_states=False)``
  - ``reduced``: answer runs with the model page's shape ``{"success":true,"data":{"output":url}}`` (no request_id).
  - ``slow_after_s``: a run whose ``timing`` (queued_s + processing_s) exceeds this answers after ``slow_after_s``
    with only ``{"success":true,"data":{"request_id":N}}``; the result then comes from ``/api/v4/check``.
  - ``check_states``: check answers carry ``data.status`` (``queued``/``processing``/``succeeded``/``failed``) and
    a failed job is ``{"success":true,"data":{"status":"failed","error":msg}}`` instead of ``success:false``.
- ``Outcome(success=False, failure=<HTTP status, default 200>, message=...)``: the job answers
  ``{"success":false,"message":message}`` with that status (on the run when synchronous, else on the check).
  ``Outcome(outputs=2)`` answers ``output`` as a list.
- ``runs``: the parameters (all strings) of every run received, whatever the body encoding.
- Outputs are real images in the requested ``output_format`` (default webp), sized to the aspect ratio, served at
  ``/storage/outputs/image_<id>.<fmt>`` without auth (expiring with ``media_ttl_s``).

Runs take form-urlencoded, multipart and JSON bodies (plus query parameters, as Laravel merges them); an empty
``seed`` is accepted. Missing or invalid ``model_id``/``prompt``/``aspect_ratio`` (and non-numeric numbers) answer
Laravel's 422 ``{"message":..., "errors":{field:[...]}}``; a bad key answers 401 ``{"success":false,...}``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.fakes.media import MEDIA_TYPES, media_bytes
from tests.fakes.providers._server import FakeJob, FakeProviderServer

MODELS = ("flux-cute-3d-kawaii",)
ASPECT_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
OUTPUT_FORMATS = ("webp", "jpg", "png")
NUMBERS = ("prompt_strength", "num_inference_steps", "guidance", "output_quality", "lora_scale")
FIRST_REQUEST_ID = 212121212121000


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else json.dumps(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _laravel_422(errors: dict[str, list[str]]) -> web.Response:
    first = next(iter(errors.values()))[0]
    extra = sum(len(v) for v in errors.values()) - 1
    suffix = f" (and {extra} more error{'s' if extra > 1 else ''})" if extra else ""
    return web.json_response({"message": first + suffix, "errors": errors}, status=422)


class FakeLumozai(FakeProviderServer):
    def __init__(self, *, reduced: bool = False, slow_after_s: float | None = None, check_states: bool = False) -> None:
        super().__init__()
        self.reduced = reduced
        self.slow_after_s = slow_after_s
        self.check_states = check_states
        self.output_format = "webp"
        self._storage: dict[str, str] = {}
        self.app.router.add_post("/api/v4/run", self._run)
        self.app.router.add_post("/api/v4/check", self._check)
        self.app.router.add_get("/api/v4/check", self._check)
        self.app.router.add_get("/storage/outputs/{name}", self._serve_output)

    # ----------------------------------------------------------------- helpers for tests
    @property
    def runs(self) -> list[dict[str, str]]:
        out = []
        for r in self.requests_to("POST", "/api/v4/run"):
            params = dict(r.query)
            if r.form is not None:
                params.update(r.form)
            elif isinstance(r.json, dict):
                params.update({k: _as_text(v) for k, v in r.json.items()})
            out.append(params)
        return out

    # ----------------------------------------------------------------- auth
    def unauthorized(self) -> web.Response:
        return web.json_response({"success": False, "message": "Invalid API key"}, status=401)

    def is_authorized(self, request: web.Request) -> bool:
        return request.path.startswith("/storage/") or super().is_authorized(request)

    # ----------------------------------------------------------------- routes
    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.content_type == "application/json":
            raw = await request.read()
            body = json.loads(raw) if raw else {}
            if isinstance(body, dict):
                params.update({k: _as_text(v) for k, v in body.items()})
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    async def _run(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        errors = self._validate(params)
        if errors:
            return _laravel_422(errors)
        request_id = FIRST_REQUEST_ID + int(self.new_id())
        job = self.create_job(str(request_id), params, fmt=params.get("output_format") or self.output_format)
        self.callbacks.watch(job, params.get("webhook"))
        total_s = job.timing.queued_s + job.timing.processing_s
        if self.slow_after_s is not None and total_s > self.slow_after_s:
            await asyncio.sleep(self.slow_after_s)
            return web.json_response({"success": True, "data": {"request_id": request_id}})
        await asyncio.sleep(total_s)
        job.extra["done"] = True
        return self._final(job, reduced=self.reduced)

    async def _check(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        rid = params.get("request_id", "")
        if not rid:
            return _laravel_422({"request_id": ["The request id field is required."]})
        job = self.jobs.get(rid)
        if job is None:
            return web.json_response({"success": False, "message": "Request not found"}, status=404)
        job.polls += 1
        phase = job.phase(self.clock())
        if job.extra.get("done") or phase in ("completed", "failed"):
            return self._final(job, reduced=False, check=True)
        data: dict[str, Any] = {"request_id": int(job.id)}
        if self.check_states:
            data["status"] = phase
        return web.json_response({"success": True, "data": data})

    async def _serve_output(self, request: web.Request) -> web.StreamResponse:
        key = self._storage.get(request.match_info["name"])
        if key is None:
            return web.Response(status=404, text="<html><body>404 | Not Found</body></html>", content_type="text/html")
        media = self._media[key]
        if media.expires_at is not None and self.clock() > media.expires_at:
            return web.Response(status=403, text="<html><body>403 | Forbidden</body></html>", content_type="text/html")
        return web.Response(body=media.data, content_type=media.media_type)

    # ----------------------------------------------------------------- internals
    def callback_payload(self, job: FakeJob) -> dict[str, Any]:
        if not job.outcome.success:
            return {
                "success": True,
                "data": {"request_id": int(job.id), "status": "failed", "error": job.outcome.message},
            }
        urls = self._output_urls(job)
        data = {"request_id": int(job.id), "output": urls[0], "output_type": "image", "status": "succeeded"}
        return {"success": True, "data": data}

    def _validate(self, params: dict[str, str]) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        model_id = params.get("model_id", "")
        if not model_id:
            errors["model_id"] = ["The model id field is required."]
        elif model_id not in MODELS:
            errors["model_id"] = ["The selected model id is invalid."]
        if not params.get("prompt", "").strip():
            errors["prompt"] = ["The prompt field is required."]
        ratio = params.get("aspect_ratio", "")
        if not ratio:
            errors["aspect_ratio"] = ["The aspect ratio field is required."]
        elif ratio not in ASPECT_RATIOS:
            errors["aspect_ratio"] = ["The selected aspect ratio is invalid."]
        fmt = params.get("output_format", "")
        if fmt and fmt not in OUTPUT_FORMATS:
            errors["output_format"] = ["The selected output format is invalid."]
        for name in NUMBERS:
            value = params.get(name, "")
            if value and not _is_number(value):
                errors[name] = [f"The {name.replace('_', ' ')} field must be a number."]
        seed = params.get("seed", "")
        if seed and not seed.lstrip("-").isdigit():
            errors["seed"] = ["The seed field must be an integer."]
        return errors

    def _final(self, job: FakeJob, *, reduced: bool, check: bool = False) -> web.Response:
        outcome = job.outcome
        if not outcome.success:
            if check and self.check_states:
                data = {"request_id": int(job.id), "status": "failed", "error": outcome.message}
                return web.json_response({"success": True, "data": data})
            status = outcome.failure if isinstance(outcome.failure, int) else 200
            return web.json_response({"success": False, "message": outcome.message}, status=status)
        urls = self._output_urls(job)
        output: str | list[str] = urls[0] if len(urls) == 1 else urls
        if reduced:
            return web.json_response({"success": True, "data": {"output": output}})
        data = {"request_id": int(job.id), "output": output, "output_type": "image"}
        if check and self.check_states:
            data["status"] = "succeeded"
        return web.json_response({"success": True, "data": data})

    def _output_urls(self, job: FakeJob) -> list[str]:
        if "urls" not in job.extra:
            width, height = (int(n) for n in str(job.body.get("aspect_ratio", "1:1")).split(":"))
            size = (64, max(1, round(64 * height / width))) if width >= height else (round(64 * width / height), 64)
            urls = []
            for index in range(max(1, job.outcome.outputs)):
                suffix = f"_{index}" if job.outcome.outputs > 1 else ""
                name = f"image_{job.id}{suffix}.{job.fmt}"
                media_url = self.add_media(name, media_bytes(job.fmt, *size), MEDIA_TYPES[job.fmt])
                self._storage[name] = media_url.split("/media/", 1)[1].split("/", 1)[0]  # the media key
                urls.append(f"{self.root_url}/storage/outputs/{name}")
            job.extra["urls"] = urls
        return list(job.extra["urls"])
