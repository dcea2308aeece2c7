"""``Operations``: the operator's side of the bot, built once with the services: metrics, health, and the hooks
the engine calls (a job ended, an upstream error). Spending and budgets, alerts and provider pauses live here:

- a successful job records its model's price (``PRICE_USD__<MODEL>``) in ``job_spending``, in the transaction
  that ends it; ``check_budget`` refuses new jobs for a provider whose spending today (UTC) reached its
  ``BUDGET_USD_PER_DAY__<PROVIDER>``;
- a provider that rejects the key or has no balance is paused (a ``provider_pauses`` row, shared by every
  process): its submit lane claims nothing, its jobs wait in line; ``resume`` lets them run;
- operators are alerted once per incident (``Alerter``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.clock import shared_clock
from bot.errors import NotAllowed
from bot.i18n import N_, Msg, msg
from bot.ops.alerts import Alerter
from bot.ops.health import Health
from bot.ops.metrics import Metrics
from bot.settings import Settings
from bot.storage.database import Connection, Database
from bot.storage.jobs import JobRecord, JobRepository
from bot.storage.operations import OperationsRepository, Pause, SpendingRow
from providers.errors import (
    AuthError,
    InsufficientFundsError,
    InvalidRequestError,
    ModeratedError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
)

if TYPE_CHECKING:
    from bot.jobs.engine import StepEngine

log = logging.getLogger(__name__)

HOUR_S = 3600.0
# Errors that say something about the request, not about the provider: never "failing repeatedly".
NOT_THE_PROVIDERS_FAULT = (InvalidRequestError, ModeratedError, NotFoundError, RateLimitedError)
PAUSE_REASONS = {
    "auth": N_("the service refused the bot's API key"),
    "no_balance": N_("the bot's account with the service has run out of funds"),
}


def utc_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def next_utc_day(ts: float) -> float:
    day = dt.datetime.fromtimestamp(ts, dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def gateway_connected(client: discord.Client) -> bool:
    if client.is_closed() or not client.is_ready():
        return False
    shards = getattr(client, "shards", None)
    if isinstance(shards, dict) and shards:
        return all(not shard.is_closed() for shard in shards.values())
    return True


class Operations:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        jobs: JobRepository,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = shared_clock,
    ) -> None:
        self.settings = settings
        self.repo = OperationsRepository(database)
        self.jobs = jobs
        self.clock = clock
        self.metrics = Metrics()
        self.metrics.count_round_trips(lambda: database.round_trips)
        self.alerts = Alerter(settings, session)
        self._client: discord.Client | None = None
        self.engine: StepEngine | None = None
        self.http_port: int | None = None  # where /healthz and /metrics are served, once started
        self.paused: dict[str, Pause] = {}  # read from provider_pauses; refreshed by ``watch_pauses``
        self.providers: Mapping[str, Any] = {}  # the enabled adapters, for their account balance where they have one
        self.resumed: Callable[[str], None] = lambda provider: None  # wired to the engine: run the waiting jobs
        self.line_changed: Callable[[str], Coroutine[Any, Any, None]] | None = None  # re-render a provider's line
        self._errors: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.health = Health(
            ping_database=self.repo.ping,
            stall_s=max(settings.health_stall_s, 2 * settings.engine_sweep_interval_s),
            gateway=lambda: gateway_connected(self._client) if self._client is not None else False,
            heartbeat=lambda: self.engine.heartbeat_at if self.engine is not None else None,
            clock=clock,
        )

    @property
    def client(self) -> discord.Client | None:
        return self._client

    @client.setter
    def client(self, client: discord.Client | None) -> None:
        self._client = client
        self.alerts.client = client

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ upstream errors, pauses
    def upstream_error(self, provider: str, exc: ProviderError) -> None:
        """A provider answered with an error (counted already): a refused key or no balance pauses it; many
        errors within an hour raise a "failing repeatedly" alert."""
        if isinstance(exc, (AuthError, InsufficientFundsError)):
            self._spawn(self.provider_refused(provider, exc))
            return
        if isinstance(exc, NOT_THE_PROVIDERS_FAULT):
            return
        now = self.clock()
        seen = self._errors.setdefault(provider, deque())
        seen.append(now)
        while seen and seen[0] < now - HOUR_S:
            seen.popleft()
        if len(seen) >= self.settings.alert_failures_per_hour:
            text = f"{provider} is failing repeatedly: {len(seen)} errors in the last hour (latest: {exc})."
            self._spawn(self.alerts.alert(f"failing:{provider}", text))
        elif len(seen) <= 1:
            self.alerts.resolve(f"failing:{provider}")

    async def provider_refused(self, provider: str, exc: ProviderError) -> None:
        """The key was rejected or the balance is gone: pause the provider (once) and tell the operators."""
        code = "auth" if isinstance(exc, AuthError) else "no_balance"
        reason = PAUSE_REASONS[code]
        if await self.pause(provider, code=code, reason=reason, paused_by="automatic"):
            await self.alerts.alert(
                f"paused:{provider}",
                f"{provider} is paused: {reason} ({exc}). Its jobs wait in the queue; fix it, then "
                f"`/operator resume {provider}`.",
            )

    def is_paused(self, provider: str) -> bool:
        return provider in self.paused

    def waiting_reason(self, provider: str) -> Msg | None:
        """What a waiting job's message says while its provider is paused (rendered in the reader's language)."""
        pause = self.paused.get(provider)
        if pause is None:
            return None
        why = Msg(PAUSE_REASONS.get(pause.code, N_("an operator paused it")))
        return msg("This service is paused ({why}). Your job keeps its place and starts once it is back.", why=why)

    async def pause(self, provider: str, *, code: str, reason: str, paused_by: str) -> bool:
        new = await self.repo.pause(provider, code=code, reason=reason, paused_by=paused_by, now=self.clock())
        self.paused = await self.repo.pauses()
        if new:
            log.warning("provider %s paused by %s: %s", provider, paused_by, reason)
            await self._show_line(provider)
        return new

    async def resume(self, provider: str) -> bool:
        pause = self.paused.get(provider) or (await self.repo.pauses()).get(provider)
        resumed = await self.repo.resume(provider)
        self.paused = await self.repo.pauses()
        if pause is not None:
            # The time spent paused does not count against the waiting jobs' deadlines.
            await self.repo.extend_queue_deadlines(provider, max(0.0, self.clock() - pause.paused_at))
        self._after_resume(provider)
        return resumed

    def _after_resume(self, provider: str) -> None:
        self.alerts.resolve(f"paused:{provider}")
        self.alerts.resolve(f"failing:{provider}")
        self._errors.pop(provider, None)
        log.info("provider %s resumed", provider)
        self.resumed(provider)
        self._spawn(self._show_line(provider))

    async def _show_line(self, provider: str) -> None:
        if self.line_changed is not None:
            await self.line_changed(provider)

    async def watch_pauses(self, interval_s: float) -> None:
        """Pauses and resumes made by another process sharing the database, seen within ``interval_s``."""
        while True:
            try:
                before = set(self.paused)
                self.paused = await self.repo.pauses()
                for provider in before - set(self.paused):
                    self._after_resume(provider)
            except Exception:
                log.exception("could not read the provider pauses")
            await asyncio.sleep(interval_s)

    # ------------------------------------------------------------------ spending and budgets
    async def check_budget(self, provider: str) -> None:
        """Before anything is reserved: refuse a new job for a provider whose spending today reached its cap."""
        cap = self.settings.budget_usd_per_day.for_provider(provider)
        if cap is None:
            return
        now = self.clock()
        spent = (await self.repo.spent_on(utc_day(now))).get(provider, 0.0)
        if spent + 1e-9 < cap:
            return
        await self._budget_reached(provider, spent, cap, now)
        raise NotAllowed(
            msg(
                "This model is not available right now: the bot has reached today's spending limit for its service. "
                "It is available again {when}. Nothing was charged; try another model.",
                when=f"<t:{int(next_utc_day(now))}:R>",
            )
        )

    async def _budget_reached(self, provider: str, spent: float, cap: float, now: float) -> None:
        await self.alerts.alert(
            f"budget:{provider}:{utc_day(now)}",
            f"{provider} reached its daily budget: ${spent:.2f} of ${cap:.2f} spent today (UTC). New jobs for it "
            "are refused until the next UTC day.",
        )

    async def refresh(self) -> None:
        """The gauges read from the database, before a scrape."""
        self.metrics.set_active(await self.repo.active_counts(), list(self.settings.providers()))

    async def job_ended(self, conn: Connection, job: JobRecord, now: float) -> None:
        """Inside the transaction that ended the job (``job``: as it ended): its metrics, and what a success cost
        upstream."""
        status = job.status
        charged = status == "succeeded" or (status == "cancelled" and job.submitted_at is not None)
        self.metrics.job_ended(
            model=job.model_key, status=status, duration_s=now - job.created_at, credits=job.cost if charged else 0
        )
        if status != "succeeded":
            return
        usd = self.settings.price_usd.for_model(job.model_key)
        day = utc_day(now)
        recorded = await self.repo.record_spending(
            conn, job_id=job.id, provider=job.provider, model_key=job.model_key, guild_id=job.guild_id,
            day=day, usd=usd, now=now,
        )  # fmt: skip
        if not recorded:
            return
        self.metrics.spending.labels(job.provider).inc(usd)
        cap = self.settings.budget_usd_per_day.for_provider(job.provider)
        if cap is not None:
            spent = await self.repo.spent_in(conn, day, job.provider)
            if spent + 1e-9 >= cap:
                self._spawn(self._budget_reached(job.provider, spent, cap, now))

    # ------------------------------------------------------------------ /operator status
    async def _balance(self, name: str) -> float | None:
        """The provider's account balance, when its adapter can ask (WaveSpeed); None when it cannot or fails."""
        ask = getattr(self.providers.get(name), "balance", None)
        if ask is None:
            return None
        try:
            return float(await asyncio.wait_for(ask(), BALANCE_TIMEOUT_S))
        except (ProviderError, TimeoutError, ValueError) as exc:
            log.warning("could not read %s's balance: %s", name, exc)
            return None

    async def status(self) -> OperatorStatus:
        now = self.clock()
        active = await self.repo.active_counts()
        failures = await self.repo.failures_since(now - HOUR_S)
        today = utc_day(now)
        spent = await self.repo.spending(utc_day(now - 6 * 86400))
        self.paused = await self.repo.pauses()
        rows = [
            ProviderStatus(
                name=name,
                enabled=block.enabled,
                pause=self.paused.get(name),
                queued=active.get((name, "queued"), 0),
                in_flight=active.get((name, "submitting"), 0) + active.get((name, "running"), 0),
                failures_last_hour=failures.get(name, 0),
                spent_today=sum(r.usd for r in spent if r.day == today and r.provider == name),
                budget=self.settings.budget_usd_per_day.for_provider(name),
                balance=await self._balance(name),
            )
            for name, block in self.settings.providers().items()
        ]
        return OperatorStatus(day=today, providers=rows, spending=spent)


BALANCE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    name: str
    enabled: bool
    pause: Pause | None
    queued: int
    in_flight: int
    failures_last_hour: int
    spent_today: float
    budget: float | None
    balance: float | None = None  # the account balance in USD, where the provider's API tells it


@dataclass(frozen=True, slots=True)
class OperatorStatus:
    day: str
    providers: list[ProviderStatus]
    spending: list[SpendingRow]  # the last seven days, per day, provider and server
