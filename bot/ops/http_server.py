"""The optional HTTP server (``HTTP_HOST``, ``HTTP_PORT``; off when no port is set): ``GET /healthz`` and
``GET /metrics``, and with ``WEBHOOK_PUBLIC_URL`` the providers' callbacks (``POST /callbacks/...``). Other
features (e.g. the performance endpoints) add their routes to ``app`` before it starts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.jobs.callback_inbox import CallbackInbox
from bot.jobs.callback_links import ROUTE
from bot.ops.health import Health
from bot.ops.metrics import Metrics

log = logging.getLogger(__name__)


def build_app(health: Health, metrics: Metrics, refresh: Callable[[], Awaitable[None]]) -> web.Application:
    """``refresh`` brings the gauges read from the database (queued, in flight) up to date before a scrape."""

    async def healthz(request: web.Request) -> web.Response:
        ok, body = await health.check()
        return web.json_response(body, status=200 if ok else 503)

    async def metrics_page(request: web.Request) -> web.Response:
        try:
            await refresh()
        except Exception:
            log.warning("metrics: could not read the queue from the database", exc_info=True)
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    return app


def add_callback_route(app: web.Application, inbox: CallbackInbox) -> None:
    """``POST /callbacks/{provider}/{job_id}/{secret}``: the answer says only what was wrong, never the secret."""

    async def callback(request: web.Request) -> web.Response:
        provider, job_ref = request.match_info["provider"], request.match_info["job_id"]
        try:
            answer = await inbox.receive(
                provider,
                job_ref,
                request.match_info["secret"],
                {key.lower(): value for key, value in request.headers.items()},
                await request.read(),
            )
        except Exception as exc:  # logged here, without the URL (it holds the job's secret): the provider retries
            log.error("callback (%s job %s) could not be recorded: %s", provider, job_ref[:20], type(exc).__name__)
            return web.Response(status=503, text="could not be recorded; send again")
        return web.Response(status=answer.status, text=answer.text)

    app.router.add_post(ROUTE, callback)


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int | None) -> AsyncIterator[int | None]:
    """Serve ``app`` while inside; yields the bound port (useful with port 0), or None when ``port`` is None."""
    if port is None:
        yield None
        return
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("health and metrics on http://%s:%s (/healthz, /metrics)", host, bound)
    try:
        yield bound
    finally:
        await runner.cleanup()
