"""What every fake provider server shares: an aiohttp app on 127.0.0.1, request recording, bearer auth,
scripted one-off answers (429, 5xx, HTML, slow, dropped connections), job timelines and expiring media URLs.

Each provider's fake subclasses ``FakeProviderServer`` and adds its own routes and body shapes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.media import MEDIA_TYPES, media_bytes
from tests.fakes.providers.callbacks import CallbackSender

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    json: Any = None
    form: dict[str, str] | None = None
    content_type: str = ""


@dataclass
class Scripted:
    """A one-off answer for requests matching ``method`` and ``path`` (a regex matched in full).

    ``after_handler`` runs the real handler first (so a job is created) and then answers with this script:
    that is how a fake reproduces "accepted upstream, but the client saw a 5xx / timeout / reset".
    """

    method: str
    path: re.Pattern[str]
    times: int = 1
    status: int = 200
    json: Any = None
    text: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False
    after_handler: bool = False


@dataclass
class Outcome:
    """How a fake job ends. ``failure`` is provider-specific (e.g. a Luma ``failure_code``, a WaveSpeed code)."""

    success: bool = True
    failure: Any = None
    message: str = "Generation failed"
    nsfw: bool = False
    outputs: int = 1


@dataclass
class Timing:
    queued_s: float = 0.0
    processing_s: float = 0.05


@dataclass
class FakeJob:
    id: str
    created_at: float
    timing: Timing
    outcome: Outcome
    body: Any
    fmt: str = "png"
    polls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def phase(self, now: float) -> str:
        """'queued', 'processing', 'completed' or 'failed' on this job's timeline."""
        elapsed = now - self.created_at
        if elapsed < self.timing.queued_s:
            return "queued"
        if elapsed < self.timing.queued_s + self.timing.processing_s:
            return "processing"
        return "completed" if self.outcome.success else "failed"


@dataclass
class Media:
    data: bytes
    media_type: str
    expires_at: float | None


class FakeProviderServer:
    """Base of the fake provider servers. Use as ``async with FakeX() as fake: ... fake.base_url ...``."""

    api_key = "test-key"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.jobs: dict[str, FakeJob] = {}
        self.timing = Timing()
        self.outcomes: deque[Outcome] = deque()
        self.clock: Callable[[], float] = time.monotonic
        self.media_ttl_s: float | None = None
        self.job_hooks: list[Callable[[FakeJob], None]] = []  # run on each new job (e.g. durations.py's timings)
        self.output_format = "png"
        self._scripts: list[Scripted] = []
        self._media: dict[str, Media] = {}
        self._ids = itertools.count(1)
        self.app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        self.app.router.add_get("/media/{key}/{name}", self._serve_media)
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Jobs submitted with a callback URL get their outcome POSTed there when they finish.
        self.callbacks = CallbackSender(payload=self.callback_payload, clock=lambda: self.clock())

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> FakeProviderServer:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        await self.callbacks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeProviderServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL an adapter is configured with. Subclasses add their API prefix."""
        return self.root_url

    # ----------------------------------------------------------------- scripting
    def script(self, method: str, path: str, **kwargs: Any) -> Scripted:
        """Answer the next ``times`` requests matching ``method`` and the ``path`` regex as given."""
        entry = Scripted(method=method.upper(), path=re.compile(path), **kwargs)
        self._scripts.append(entry)
        return entry

    def next_outcome(self, outcome: Outcome) -> None:
        """The next created job ends this way (outcomes are used in order, then jobs succeed)."""
        self.outcomes.append(outcome)

    def requests_to(self, method: str, path_regex: str) -> list[Recorded]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.fullmatch(r.path)]

    def new_id(self) -> str:
        return str(next(self._ids))

    def create_job(self, job_id: str, body: Any, fmt: str | None = None) -> FakeJob:
        outcome = self.outcomes.popleft() if self.outcomes else Outcome()
        job = FakeJob(
            id=job_id,
            created_at=self.clock(),
            timing=Timing(self.timing.queued_s, self.timing.processing_s),
            outcome=outcome,
            body=body,
            fmt=fmt or self.output_format,
        )
        self.jobs[job_id] = job
        for hook in self.job_hooks:
            hook(job)
        return job

    # ----------------------------------------------------------------- media
    def add_media(
        self, name: str, data: bytes | None = None, media_type: str | None = None, ttl_s: float | None = None
    ) -> str:
        """Serve ``data`` (default: real bytes for the file extension) and return its URL.

        With a TTL (default ``self.media_ttl_s``) the URL answers 403 once expired, like a presigned S3 URL.
        """
        ext = name.rsplit(".", 1)[-1].lower()
        key = f"k{next(self._ids)}"
        ttl = self.media_ttl_s if ttl_s is None else ttl_s
        self._media[key] = Media(
            data=data if data is not None else media_bytes(ext),
            media_type=media_type or MEDIA_TYPES.get(ext, "application/octet-stream"),
            expires_at=None if ttl is None else self.clock() + ttl,
        )
        query = f"?X-Amz-Expires={int(ttl)}&X-Amz-Signature=fake" if ttl is not None else ""
        return f"{self.root_url}/media/{key}/{name}{query}"

    async def _serve_media(self, request: web.Request) -> web.StreamResponse:
        media = self._media.get(request.match_info["key"])
        if media is None:
            return web.Response(
                status=404, text="<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml"
            )
        if media.expires_at is not None and self.clock() > media.expires_at:
            return web.Response(
                status=403,
                text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                content_type="application/xml",
            )
        return web.Response(body=media.data, content_type=media.media_type)

    # ----------------------------------------------------------------- hooks for subclasses
    def callback_payload(self, job: FakeJob) -> dict[str, Any]:
        """The body this provider POSTs to a job's callback URL (providers that send callbacks override it)."""
        raise NotImplementedError(f"{type(self).__name__} sends no callbacks")

    def unauthorized(self) -> web.Response:
        return web.json_response({"message": "Unauthorized"}, status=401)

    def is_authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    # ----------------------------------------------------------------- plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/media/"):
            return await handler(request)
        # multipart is parsed from the stream (post() caches it for the handler); other bodies are read raw.
        form = await request.post() if request.content_type == "multipart/form-data" else None
        raw = b"" if form is not None else await request.read()
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            raw=raw,
            content_type=request.content_type,
        )
        if request.content_type == "application/json" and raw:
            try:
                recorded.json = json.loads(raw)
            except ValueError:
                recorded.json = None
        elif form is not None or request.content_type == "application/x-www-form-urlencoded":
            fields = form if form is not None else await request.post()
            recorded.form = {k: v if isinstance(v, str) else "<file>" for k, v in fields.items()}
        self.requests.append(recorded)

        script = self._take_script(request)
        if script is not None and script.delay_s:
            await asyncio.sleep(script.delay_s)
        if script is None or script.after_handler:
            if not self.is_authorized(request):
                return self.unauthorized()
            response = await handler(request)
            if script is None:
                return response
        if script.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=204)
        if script.text is not None:
            return web.Response(
                status=script.status,
                text=script.text,
                headers=script.headers,
                content_type=script.content_type or "text/html",
            )
        return web.json_response(script.json, status=script.status, headers=script.headers)

    def _take_script(self, request: web.Request) -> Scripted | None:
        for entry in self._scripts:
            if entry.method == request.method and entry.path.fullmatch(request.path):
                entry.times -= 1
                if entry.times <= 0:
                    self._scripts.remove(entry)
                return entry
        return None
