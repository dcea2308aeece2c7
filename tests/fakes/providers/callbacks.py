"""Callbacks from the fake providers: a job submitted with a callback URL (WaveSpeed ``?webhook=``, the reseller's
``notify_hook``, Lumozai's ``webhook``) gets its outcome POSTed there when it finishes, the way each provider
sends it (WaveSpeed's signed with its ``webhook-*`` headers). Tests can lose them (``lost``), hold them back, and
send forged, replayed or stale ones by hand (``deliver``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from tests.fakes.providers._server import FakeJob

WAVESPEED_SECRET = "whsec_fake0123456789abcdef"
RETRIES = 3
RETRY_BASE_S = 0.2


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None  # what the bot answered (None: it could not be reached)
    text: str = ""


def wavespeed_headers(
    body: bytes, *, secret: str = WAVESPEED_SECRET, delivery_id: str | None = None, timestamp: float | None = None
) -> dict[str, str]:
    """WaveSpeed's signing (providers.md §1.6): hex HMAC-SHA256 of ``id.timestamp.body`` keyed with the secret
    without its ``whsec_`` prefix, as ``webhook-signature: v3,<hex>``."""
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time() if timestamp is None else timestamp))
    key = secret.removeprefix("whsec_").encode()
    digest = hmac.new(key, f"{delivery_id}.{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v3,{digest}",
    }


@dataclass
class CallbackSender:
    """One fake provider's outgoing callbacks. ``payload(job)`` is the body the provider sends for a job now;
    ``signed`` adds WaveSpeed's headers."""

    payload: Callable[[FakeJob], dict[str, Any]]
    clock: Callable[[], float]
    signed: bool = False
    secret: str = WAVESPEED_SECRET
    lost: bool = False  # finished jobs send nothing (a callback lost on the way)
    urls: dict[str, str] = field(default_factory=dict)  # job id → its callback URL
    deliveries: list[Delivery] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def watch(self, job: FakeJob, url: str | None) -> None:
        """Called by the fake when it creates a job: with a URL, the outcome is sent when the job finishes."""
        if not url:
            return
        self.urls[job.id] = url
        task = asyncio.get_running_loop().create_task(self._when_done(job, url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _when_done(self, job: FakeJob, url: str) -> None:
        await asyncio.sleep(max(0.0, job.created_at + job.timing.queued_s + job.timing.processing_s - self.clock()))
        while job.phase(self.clock()) not in ("completed", "failed"):
            await asyncio.sleep(0.01)
        if self.lost:
            return
        # Like WaveSpeed's (providers.md §1.6): a delivery the receiver did not take (5xx, unreachable) is retried
        # up to 3 times with exponential backoff.
        for attempt in range(RETRIES + 1):
            delivery = await self.deliver(job, url)
            if delivery.status is not None and delivery.status < 500:
                return
            await asyncio.sleep(RETRY_BASE_S * 2**attempt)

    def body(self, job: FakeJob) -> bytes:
        return json.dumps(self.payload(job)).encode()

    async def deliver(
        self,
        job: FakeJob,
        url: str | None = None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Delivery:
        """POST a callback for ``job`` (default: its real outcome, to its URL, signed when the provider signs)."""
        url = url or self.urls[job.id]
        raw = self.body(job) if body is None else body
        if headers is None:
            headers = (
                wavespeed_headers(raw, secret=self.secret) if self.signed else {"Content-Type": "application/json"}
            )
        delivery = Delivery(url=url, body=raw, headers=headers)
        self.deliveries.append(delivery)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()  # one for all deliveries: a thousand may finish at once
        try:
            async with self._session.post(url, data=raw, headers=headers) as response:
                delivery.status, delivery.text = response.status, await response.text()
        except aiohttp.ClientError:
            delivery.status = None
        return delivery

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
