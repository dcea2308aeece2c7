"""Wiring: everything built once, in order, and closed in reverse order. ``python -m bot`` and the end-to-end
tests both go through ``open_services`` and ``Bot``, so the tests run the production wiring."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import discord

from bot.catalogue import Catalogue
from bot.clock import shared_clock
from bot.credits.purchases import Purchases
from bot.credits.service import QuotaService
from bot.fetch import Fetcher
from bot.jobs.callback_inbox import CallbackInbox
from bot.jobs.callback_links import CallbackLinks
from bot.jobs.delivery import DISCORD_LANE, Outbox
from bot.jobs.engine import StepEngine
from bot.jobs.media_store import MediaStore
from bot.jobs.outcomes import submit_lane
from bot.jobs.retention import purge_forever
from bot.jobs.runner import Runner
from bot.jobs.service import JobService
from bot.jobs.transitions import JobTransitions
from bot.ops.http_server import add_callback_route, build_app, serving
from bot.ops.metrics import instrument
from bot.ops.service import Operations
from bot.preferences import PreferenceService
from bot.prompting.specs import SpecBuilder
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.audit import AuditLog
from bot.storage.database import Database
from bot.storage.job_chains import JobChains
from bot.storage.jobs import JobRepository
from bot.storage.preferences import PreferenceRepository
from bot.storage.steps import StepRepository
from providers import registry
from providers.base import Provider

log = logging.getLogger(__name__)

HTTP_USER_AGENT = "genbot/0.1 (+https://github.com/; discord bot)"


def build_providers(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Provider]:
    """One adapter per registered provider that has an API key, built by the provider's own factory."""
    blocks = settings.providers()
    return {
        spec.name: spec.factory(session, blocks[spec.name])
        for spec in registry.specs()
        if spec.name in blocks and blocks[spec.name].enabled
    }


@dataclass
class Engine:
    """The parts of the job engine that need the Discord client; built when the bot starts."""

    delivery: Outbox
    steps: StepEngine
    jobs: JobService


@dataclass
class Services:
    """What the bot is built from, constructed once. ``start`` builds the job engine around the Discord client."""

    settings: Settings
    session: aiohttp.ClientSession
    database: Database
    providers: dict[str, Provider]
    catalogue: Catalogue
    server_settings: ServerSettingsService
    quota: QuotaService
    job_records: JobRepository
    media: MediaStore
    fetcher: Fetcher
    ops: Operations
    callbacks: CallbackInbox
    _engine: Engine | None = None
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    audit: AuditLog = field(init=False, repr=False)  # the moderators' audit trail, read from the database
    specs: SpecBuilder = field(init=False, repr=False)  # job specs from commands and buttons, and model choice
    chains: JobChains = field(init=False, repr=False)  # which jobs extend a job (video chains)
    preferences: PreferenceService = field(init=False, repr=False)  # each member's own defaults (/prefer)
    purchases: Purchases = field(init=False, repr=False)  # credit packs bought through Discord

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.database)
        self.chains = JobChains(self.database)
        self.preferences = PreferenceService(PreferenceRepository(self.database), self.catalogue)
        self.purchases = Purchases(self.quota.packs)
        self.specs = SpecBuilder(
            settings=self.settings,
            catalogue=self.catalogue,
            server_settings=self.server_settings,
            jobs=self.job_records,
            media=self.media,
        )

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the job engine has not been started")
        return self._engine

    async def start(self, client: discord.Client) -> None:
        """Called from the bot's setup hook, once the Discord HTTP client exists: resume every unfinished job."""
        if self.database.dialect == "postgresql":  # processes on other machines compare our leases and due times
            await shared_clock.sync(self.database)
            self._background.append(asyncio.create_task(shared_clock.keep_in_sync(self.database), name="clock"))
        steps = StepRepository(self.database)
        transitions = JobTransitions(self.database, self.job_records, self.quota, steps)
        engine = StepEngine(
            settings=self.settings,
            database=self.database,
            jobs=self.job_records,
            steps=steps,
            transitions=transitions,
        )
        transitions.on_message = lambda: engine.wake(DISCORD_LANE)
        transitions.on_ended = self.ops.job_ended
        self.ops.client, self.ops.engine = client, engine
        self.ops.line_changed = engine.show_line

        def resumed(provider: str) -> None:  # its waiting jobs run, and their places show again
            engine.wake(submit_lane(provider))
            engine.line_changed(provider)

        self.ops.resumed = resumed
        self.ops.paused = await self.ops.repo.pauses()
        runner = Runner(
            settings=self.settings,
            database=self.database,
            jobs=self.job_records,
            steps=steps,
            providers=self.providers,
            catalogue=self.catalogue,
            transitions=transitions,
            fetcher=self.fetcher,
            media=self.media,
            wake=engine.wake,
            line_changed=engine.line_changed,
            clock=engine.clock,
            sleep=engine.sleep,
        )
        runner.held, runner.refused = self.ops.is_paused, self.ops.provider_refused
        if self.settings.webhook_public_url is not None:
            runner.callback_links = CallbackLinks(self.settings.webhook_public_url, self.providers)
        self.callbacks.transitions, self.callbacks.wake, self.callbacks.hand = transitions, engine.wake, engine
        outbox = Outbox(
            client=client,
            database=self.database,
            jobs=self.job_records,
            steps=steps,
            media=self.media,
            settings=self.settings,
            catalogue=self.catalogue,
            server_settings=self.server_settings,
            wake=engine.wake,
            providers=self.providers,
            waiting=self.ops.waiting_reason,
        )
        engine.use(runner, outbox)
        jobs = JobService(
            settings=self.settings,
            database=self.database,
            jobs=self.job_records,
            quota=self.quota,
            transitions=transitions,
            catalogue=self.catalogue,
            server_settings=self.server_settings,
            fetcher=self.fetcher,
            media=self.media,
            engine=engine,
            delivery=outbox,
            admission=self.ops.check_budget,
        )
        self._engine = Engine(delivery=outbox, steps=engine, jobs=jobs)
        await engine.start()
        self._background.append(
            asyncio.create_task(
                purge_forever(self.job_records, self.media, retention_s=self.settings.output_retention_days * 86400),
                name="purge-outputs",
            )
        )
        self._background.append(
            asyncio.create_task(self.ops.watch_pauses(self.settings.engine_idle_s), name="provider-pauses")
        )

    async def stop(self) -> None:
        """Stop polling and delivering (state is in the database), in the reverse order of start."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self._engine is not None:
            await self._engine.steps.stop()


@asynccontextmanager
async def open_services(settings: Settings, *, serve_http: bool = True) -> AsyncIterator[Services]:
    discord.http.Route.BASE = settings.discord_api_base_url
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=120)
    async with (
        aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": HTTP_USER_AGENT}) as session,
        Database(settings.database_target, pool_size=settings.database_pool_size) as database,
        Fetcher(
            max_bytes=settings.fetch_max_bytes,
            timeout_s=settings.fetch_timeout_s,
            allow_loopback=settings.loopback_fetch_allowed,
            temp_dir=settings.output_dir / "downloads",
            user_agent=HTTP_USER_AGENT,
        ) as fetcher,
    ):
        server_settings = ServerSettingsService(database)
        jobs = JobRepository(database)
        ops = Operations(settings, database, jobs, session=session)
        providers = instrument(build_providers(settings, session), ops.metrics, ops.upstream_error)
        ops.providers = providers
        services = Services(
            settings=settings,
            session=session,
            database=database,
            providers=providers,
            catalogue=Catalogue.build(settings, providers),
            server_settings=server_settings,
            quota=QuotaService(database, settings, server_settings),
            job_records=jobs,
            media=MediaStore(settings.output_dir),
            fetcher=fetcher,
            ops=ops,
            callbacks=CallbackInbox(database, jobs, providers),
        )
        services.callbacks.answered = lambda provider, status: ops.metrics.callbacks.labels(provider, status).inc()
        app = build_app(ops.health, ops.metrics, ops.refresh)
        if settings.webhook_public_url is not None:
            add_callback_route(app, services.callbacks)
        lag = asyncio.create_task(ops.metrics.measure_loop_lag(), name="event-loop-lag")
        try:
            async with serving(app, settings.http_host, settings.http_port if serve_http else None) as port:
                ops.http_port = port
                yield services
        finally:
            lag.cancel()
            await asyncio.gather(lag, return_exceptions=True)
