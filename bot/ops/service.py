"""``Operations``: the operator's side of the bot, built once with the services: metrics, health, and the hooks
the engine calls (a job ended). Spending, budgets, alerts and provider pauses hang off it too."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord

from bot.ops.health import Health
from bot.ops.metrics import Metrics
from bot.settings import Settings
from bot.storage.database import Connection, Database
from bot.storage.jobs import JobRepository
from bot.storage.operations import OperationsRepository
from providers.errors import ProviderError

if TYPE_CHECKING:
    from bot.jobs.engine import StepEngine


def gateway_connected(client: discord.Client) -> bool:
    if client.is_closed() or not client.is_ready():
        return False
    shards = getattr(client, "shards", None)
    if isinstance(shards, dict) and shards:
        return all(not shard.is_closed() for shard in shards.values())
    return True


class Operations:
    def __init__(
        self, settings: Settings, database: Database, jobs: JobRepository, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.repo = OperationsRepository(database)
        self.jobs = jobs
        self.clock = clock
        self.metrics = Metrics()
        self.client: discord.Client | None = None
        self.engine: StepEngine | None = None
        self.http_port: int | None = None  # where /healthz and /metrics are served, once started
        self.health = Health(
            ping_database=self.repo.ping,
            stall_s=max(settings.health_stall_s, 2 * settings.engine_sweep_interval_s),
            gateway=lambda: gateway_connected(self.client) if self.client is not None else False,
            heartbeat=lambda: self.engine.heartbeat_at if self.engine is not None else None,
            clock=clock,
        )

    def upstream_error(self, provider: str, exc: ProviderError) -> None:
        """A provider answered with an error (counted already); the alerts and pauses listen here."""

    async def refresh(self) -> None:
        """The gauges read from the database, before a scrape."""
        self.metrics.set_active(await self.repo.active_counts(), list(self.settings.providers()))

    async def job_ended(self, conn: Connection, job_id: int, status: str, now: float) -> None:
        """Inside the transaction that ended the job: its metrics."""
        job = await self.jobs.get_in(conn, job_id)
        if job is None:
            return
        charged = status == "succeeded" or (status == "cancelled" and job.submitted_at is not None)
        self.metrics.job_ended(
            model=job.model_key, status=status, duration_s=now - job.created_at, credits=job.cost if charged else 0
        )
