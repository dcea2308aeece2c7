"""The Prometheus metrics (one registry per process start, so tests can build several), and the two places they
are fed from without touching the engine: a wrapper around each provider (upstream requests, detection latency)
and an aiohttp trace on discord.py's HTTP client (Discord requests by route and status, 429s included)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from providers.base import Callback, GenerationRequest, JobState, Provider
from providers.errors import ProviderError

DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 2700, float("inf"))
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, float("inf"))
LAG_INTERVAL_S = 0.5
# An upstream job not seen unfinished for this long ended where this process did not see it (polled to its end or
# its callback taken by another process, cancelled, past its deadline): forgotten, checked once a minute.
FORGET_UNSEEN_S = 3600.0
FORGET_EVERY_S = 60.0

# Every metric, by name, as exported (counters get ``_total``): README.md lists the same.
DOCUMENTED = (
    "genbot_jobs_total",
    "genbot_job_duration_seconds",
    "genbot_detection_latency_seconds",
    "genbot_jobs_queued",
    "genbot_jobs_in_flight",
    "genbot_upstream_requests_total",
    "genbot_discord_requests_total",
    "genbot_credits_spent_total",
    "genbot_spending_usd_total",
    "genbot_event_loop_lag_seconds",
    "genbot_db_round_trips_total",
)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.jobs = Counter("genbot_jobs", "Jobs ended, by model and final status", ["model", "status"], registry=r)
        self.job_duration = Histogram(
            "genbot_job_duration_seconds",
            "From command to the job's end",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.detection_latency = Histogram(
            "genbot_detection_latency_seconds",
            "Upper bound of how long a finished upstream job waited to be noticed: from the last look that saw it "
            "unfinished to the poll that saw it finished",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queued = Gauge("genbot_jobs_queued", "Jobs waiting in the bot's queue", ["provider"], registry=r)
        self.in_flight = Gauge(
            "genbot_jobs_in_flight", "Jobs being submitted or running upstream", ["provider"], registry=r
        )
        self.upstream = Counter(
            "genbot_upstream_requests",
            "Requests to the generation APIs by provider, operation (submit, poll) and outcome (ok or error code)",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.discord = Counter(
            "genbot_discord_requests",
            "Discord REST requests by route and HTTP status",
            ["route", "status"],
            registry=r,
        )
        self.callbacks = Counter(
            "genbot_callbacks",
            "Provider callbacks received, by provider and the HTTP status answered (200 taken, 4xx refused)",
            ["provider", "status"],
            registry=r,
        )
        self.credits = Counter("genbot_credits_spent", "Credits charged for jobs, by model", ["model"], registry=r)
        self.spending = Counter("genbot_spending_usd", "Upstream spending (USD) by provider", ["provider"], registry=r)
        self.loop_lag = Gauge("genbot_event_loop_lag_seconds", "How late the event loop ran a timer", registry=r)

    def count_round_trips(self, read: Callable[[], int]) -> None:
        """``genbot_db_round_trips_total``: every statement sent to the database, read from ``read`` at each
        scrape (the database counts them itself; no metric call per statement)."""
        self.registry.register(_RoundTrips(read))

    def set_active(self, counts: Mapping[tuple[str, str], int], providers: list[str]) -> None:
        """The queue and in-flight gauges from (provider, status) → jobs; providers without jobs read 0."""
        for provider in {*providers, *(p for p, _ in counts)}:
            self.queued.labels(provider).set(counts.get((provider, "queued"), 0))
            self.in_flight.labels(provider).set(
                counts.get((provider, "submitting"), 0) + counts.get((provider, "running"), 0)
            )

    def job_ended(self, *, model: str, status: str, duration_s: float, credits: int) -> None:
        self.jobs.labels(model, status).inc()
        self.job_duration.labels(model).observe(max(0.0, duration_s))
        if credits:
            self.credits.labels(model).inc(credits)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def discord_trace(self) -> aiohttp.TraceConfig:
        """Counts every Discord REST request (retries and 429s included) by route template and status."""
        trace = aiohttp.TraceConfig()

        async def on_end(session: Any, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
            self.discord.labels(discord_route(params.method, params.url.path), str(params.response.status)).inc()

        async def on_error(session: Any, context: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams) -> None:
            self.discord.labels(discord_route(params.method, params.url.path), "error").inc()

        trace.on_request_end.append(on_end)
        trace.on_request_exception.append(on_error)
        return trace

    async def measure_loop_lag(self, interval_s: float = LAG_INTERVAL_S) -> None:
        """Forever: sleep ``interval_s`` and record how much later than asked the loop woke up."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(interval_s)
            self.loop_lag.set(max(0.0, time.perf_counter() - start - interval_s))


class _RoundTrips(Collector):
    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read

    def collect(self) -> Any:
        family = CounterMetricFamily(
            "genbot_db_round_trips",
            "Statements sent to the database (BEGIN, COMMIT and ROLLBACK included)",
        )
        family.add_metric([], float(self._read()))
        yield family


_SNOWFLAKE = re.compile(r"/\d{5,}(?=/|$)")
_TOKEN = re.compile(r"/(webhooks|interactions)/(\{id\})/[^/]+")
_VERSION = re.compile(r"^/api/v\d+")


def discord_route(method: str, path: str) -> str:
    """``PATCH /webhooks/{id}/{token}/messages/{id}``: ids and tokens generalised (few labels, no secrets)."""
    path = _VERSION.sub("", path)
    path = _SNOWFLAKE.sub("/{id}", path)
    path = _TOKEN.sub(r"/\1/\2/{token}", path)
    return f"{method} {path}"


def outcome(exc: BaseException) -> str:
    if isinstance(exc, ProviderError):
        return exc.code or type(exc).__name__
    return type(exc).__name__


class InstrumentedProvider:
    """A provider whose submits and polls are counted; anything else is passed through unchanged. ``on_error`` is
    told of each upstream error (the key rejected, no balance) so operators can be alerted."""

    def __init__(
        self,
        name: str,
        inner: Provider,
        metrics: Metrics,
        *,
        on_error: Callable[[str, ProviderError], None] = lambda name, exc: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.inner = inner
        self._metrics = metrics
        self._on_error = on_error
        self._clock = clock
        self._last_seen: dict[str, float] = {}  # remote id → when it was last seen unfinished
        self._forgotten_at = clock()

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    async def submit(self, request: GenerationRequest) -> JobState:
        state = await self._call("submit", self.inner.submit(request))
        self._seen(state)
        return state

    async def poll(self, remote_id: str) -> JobState:
        state = await self._call("poll", self.inner.poll(remote_id))
        if state.status.terminal:
            before = self._last_seen.pop(remote_id, None)
            if before is not None:
                self._metrics.detection_latency.labels(self.name).observe(max(0.0, self._clock() - before))
        else:
            self._seen(state)
        return state

    def read_callback(self, headers: Mapping[str, str], body: bytes, *, now: float) -> Callback:
        """A callback read by the adapter (which must take them): a terminal one is the job's detection."""
        callback: Callback = self.inner.read_callback(headers, body, now=now)  # type: ignore[attr-defined]
        if callback.state.status.terminal:
            before = self._last_seen.pop(callback.state.remote_id, None)
            if before is not None:
                self._metrics.detection_latency.labels(self.name).observe(max(0.0, self._clock() - before))
        return callback

    def _seen(self, state: JobState) -> None:
        if state.remote_id and not state.status.terminal:
            now = self._clock()
            self._last_seen[state.remote_id] = now
            if now - self._forgotten_at >= FORGET_EVERY_S:
                self._forgotten_at = now
                self._last_seen = {key: at for key, at in self._last_seen.items() if now - at < FORGET_UNSEEN_S}

    async def _call(self, operation: str, call: Any) -> JobState:
        try:
            state: JobState = await call
        except ProviderError as exc:
            self._metrics.upstream.labels(self.name, operation, outcome(exc)).inc()
            self._on_error(self.name, exc)
            raise
        except BaseException as exc:
            self._metrics.upstream.labels(self.name, operation, outcome(exc)).inc()
            raise
        self._metrics.upstream.labels(self.name, operation, "ok").inc()
        return state


def instrument(
    providers: Mapping[str, Provider], metrics: Metrics, on_error: Callable[[str, ProviderError], None]
) -> dict[str, Provider]:
    return {
        name: InstrumentedProvider(name, provider, metrics, on_error=on_error)  # type: ignore[misc]
        for name, provider in providers.items()
    }
