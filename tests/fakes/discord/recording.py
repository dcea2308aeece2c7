"""What the fake records about each REST request, and waiting for requests that match a predicate."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import BodyPartReader, web

FILE_FIELD_PREFIX = "files["


@dataclass
class UploadedFile:
    """One ``files[n]`` part of a multipart body. ``content_type`` is what the client declared."""

    field: str
    filename: str
    content_type: str
    data: bytes

    @property
    def index(self) -> int | None:
        """``n`` of ``files[n]`` (the attachment placeholder id), if the field is named that way."""
        inner = self.field.removeprefix(FILE_FIELD_PREFIX).removesuffix("]")
        return int(inner) if inner.isdigit() else None


@dataclass
class RecordedRequest:
    """One REST request to ``/api/v10``.

    ``path`` excludes ``/api/v10``; ``auth`` is "bot" (the fake's token), "none", or "invalid" (any other
    Authorization header); ``json`` is the JSON body or the unpacked ``payload_json``; ``status`` and
    ``response`` are filled in once answered; ``violations`` lists what this request broke.
    """

    index: int
    method: str
    path: str
    query: dict[str, str]
    auth: str
    headers: dict[str, str]
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    form: dict[str, str] = field(default_factory=dict)
    received_at: datetime | None = None
    interaction_token: str | None = None
    status: int | None = None
    response: Any = None
    violations: list[str] = field(default_factory=list)

    @property
    def multipart(self) -> bool:
        return bool(self.files) or bool(self.form)

    def summary(self) -> str:
        body = json.dumps(self.json, default=str)
        if len(body) > 160:
            body = body[:159] + "…"
        files = f" files={[f.filename for f in self.files]}" if self.files else ""
        query = f"?{'&'.join(f'{k}={v}' for k, v in self.query.items())}" if self.query else ""
        return f"#{self.index} {self.method} {self.path}{query} auth={self.auth} -> {self.status} {body}{files}"


async def read_body(request: web.Request) -> tuple[Any, list[UploadedFile], dict[str, str]]:
    """JSON body, uploaded files and other form fields; multipart ``payload_json`` is unpacked into the JSON."""
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        payload: Any = None
        files: list[UploadedFile] = []
        form: dict[str, str] = {}
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = await part.read(decode=False)
            if part.filename is not None or name.startswith(FILE_FIELD_PREFIX):
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                files.append(UploadedFile(name, part.filename or name, content_type, bytes(data)))
            elif name == "payload_json":
                payload = json.loads(data)
            else:
                form[name] = bytes(data).decode()
        return payload, files, form
    raw = await request.read()
    if not raw:
        return None, [], {}
    if request.content_type == "application/json":
        return json.loads(raw), [], {}
    if request.content_type == "application/x-www-form-urlencoded":
        return None, [], dict((await request.post()).items())  # type: ignore[arg-type]
    return None, [], {"_raw": raw.decode(errors="replace")}


@dataclass
class _Waiter:
    predicate: Callable[[RecordedRequest], bool]
    start: int
    future: asyncio.Future[RecordedRequest]


class WaitTimeout(AssertionError):
    """No matching request arrived in time; the message lists the most recent requests and the violations."""


class RequestLog:
    """The list of recorded requests plus futures waiting for an answered request that matches."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._waiters: list[_Waiter] = []

    def add(self, request: RecordedRequest) -> None:
        self.requests.append(request)

    def answered(self, request: RecordedRequest) -> None:
        """Call once ``request.status`` is set: resolves waiters whose predicate accepts it."""
        for waiter in list(self._waiters):
            if waiter.future.done() or request.index < waiter.start:
                continue
            try:
                matched = waiter.predicate(request)
            except Exception as exc:  # a broken predicate should fail the waiting test, not the server
                waiter.future.set_exception(exc)
                continue
            if matched:
                waiter.future.set_result(request)

    async def wait_for(
        self,
        predicate: Callable[[RecordedRequest], bool],
        *,
        timeout: float,
        start: int,
        violations: list[str],
    ) -> RecordedRequest:
        for request in self.requests[start:]:
            if request.status is not None and predicate(request):
                return request
        waiter = _Waiter(predicate, start, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            raise WaitTimeout(self._timeout_message(timeout, violations)) from None
        finally:
            self._waiters.remove(waiter)

    def _timeout_message(self, timeout: float, violations: list[str]) -> str:
        recent = "\n".join(f"  {r.summary()}" for r in self.requests[-25:]) or "  (none)"
        broken = "\n".join(f"  {v}" for v in violations) or "  (none)"
        return (
            f"no matching request within {timeout}s. {len(self.requests)} requests so far, the last ones:\n"
            f"{recent}\nviolations:\n{broken}"
        )
