"""What the upstream step handlers (``Runner``) share: the parts they work with, each provider's settings, rate
limiter and pause, and the one way a handler ends a job as failed."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping

from bot.catalogue import Catalogue
from bot.fetch import Fetcher
from bot.jobs.callback_links import CallbackLinks
from bot.jobs.gates import RateLimiter
from bot.jobs.media_store import MediaStore
from bot.jobs.outcomes import submit_lane
from bot.jobs.poll_schedule import (
    PollPlan,
    error_delay,
    first_poll_delay,
    later_poll_delay,
    plan_for,
    seen_running_until,
)
from bot.jobs.run_time_stats import RunTimeStats
from bot.jobs.transitions import JobTransitions
from bot.settings import ProviderSettings, Settings
from bot.storage.callbacks import CallbackRepository
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobRepository
from bot.storage.run_times import RunTimeRepository
from bot.storage.steps import Lease, LeaseLost, StepRepository
from providers.base import JobState, Provider
from providers.errors import ProviderError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
PROGRESS_AFTER_TYPICAL = 1.5
Sleep = Callable[[float], Awaitable[None]]


class RunnerBase:
    """The parts the step handlers work with and the helpers they share."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        jobs: JobRepository,
        steps: StepRepository,
        providers: Mapping[str, Provider],
        catalogue: Catalogue,
        transitions: JobTransitions,
        fetcher: Fetcher,
        media: MediaStore,
        wake: Callable[[str], None],
        clock: Clock,
        line_changed: Callable[[str], None] = lambda provider: None,
        sleep: Sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._db = database
        self._jobs = jobs
        self._steps = steps
        self._providers = providers
        self._catalogue = catalogue
        self._transitions = transitions
        self._fetcher = fetcher
        self._media = media
        self._wake = wake
        self._line_changed = line_changed
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        blocks = settings.providers()
        self.blocks: dict[str, ProviderSettings] = {name: blocks[name] for name in providers}
        self.limiters = {
            name: RateLimiter(block.requests_per_minute, clock=clock, sleep=sleep)
            for name, block in self.blocks.items()
        }
        self.paused_until: dict[str, float] = dict.fromkeys(providers, 0.0)
        # Result downloads at once (ENGINE_DOWNLOAD_CONCURRENCY), the download lane's and the polls' own together.
        self.downloads = asyncio.Semaphore(settings.engine_download_concurrency)
        # Paused by an operator or automatically (``Operations``): the submit lane claims nothing meanwhile.
        self.held: Callable[[str], bool] = lambda provider: False
        # The provider refused the key or has no balance: pause it (the job goes back in line).
        self.refused: Callable[[str, ProviderError], Awaitable[None]] | None = None
        self.calls: dict[str, int] = {"submit": 0, "poll": 0, "download": 0}
        self.plans: dict[str, PollPlan] = {name: plan_for(settings, block) for name, block in self.blocks.items()}
        self._run_times_seen = RunTimeRepository(database)
        self.run_times = RunTimeStats(
            self._run_times_seen,
            typical_s=self._typical_s,
            clock=clock,
            sleep=sleep,
            refresh_s=settings.poll_stats_refresh_s,
            # A job in flight is polled at least once per cap: one not seen for two has ended elsewhere.
            running_stale_s=2 * max((block.max_poll_interval_s for block in self.blocks.values()), default=60.0),
        )
        # With WEBHOOK_PUBLIC_URL: submissions carry a callback, and polls are only a safety net.
        self.callback_links: CallbackLinks | None = None
        self._callbacks = CallbackRepository(database)

    def submit_paused_until(self, provider: str) -> float:
        """When the provider's submit lane may claim again: never while it is held."""
        return float("inf") if self.held(provider) else self.paused_until[provider]

    # ------------------------------------------------------------------ shared
    async def _fail(
        self, job: JobRecord, code: str, message: str, lease: Lease, *, upstream_status: str | None = None
    ) -> None:
        self.run_times.ended(job.id)
        try:
            ended = await self._transitions.fail(
                job.id, code=code, message=message, upstream_status=upstream_status, lease=lease
            )
        except LeaseLost:
            log.info("job %s: lost its %s step before failing it; another process has it", job.id, lease.kind)
            return
        if ended:  # a slot (or a place in line) came free
            self._wake(submit_lane(job.provider))
            self._line_changed(job.provider)

    def _typical_s(self, model_key: str) -> float:
        entry = self._catalogue.get(model_key)
        return entry.capabilities.typical_duration_s if entry else 10.0

    def _callbacks_on(self, provider: str) -> bool:
        return self.callback_links is not None and self.callback_links.enabled_for(provider)

    def _first_poll_delay(self, job: JobRecord, state: JobState) -> float:
        return first_poll_delay(
            self.blocks[job.provider],
            self.plans[job.provider],
            state,
            self.run_times.runs(job.model_key),
            callbacks=self._callbacks_on(job.provider),
        )

    async def _sent_with_callback(self, job: JobRecord) -> bool:
        """Whether this job was submitted with a callback (not just whether callbacks are on now: a job submitted
        before they were turned on is polled by the plan, not only by the safety net)."""
        if not self._callbacks_on(job.provider):
            return False
        return await self._callbacks.secret_hash(job.id, job.provider) is not None

    async def _next_poll_delay(self, job: JobRecord, state: JobState, now: float) -> float:
        elapsed = max(0.0, now - job.submitted_at) if job.submitted_at is not None else 0.0
        return later_poll_delay(
            self.blocks[job.provider],
            self.plans[job.provider],
            state,
            self.run_times.runs(job.model_key),
            elapsed,
            callbacks=await self._sent_with_callback(job),
        )

    async def _seen_running(self, job: JobRecord, now: float) -> tuple[float, float] | None:
        """A poll found the job done: (last seen running, found done) in seconds after acceptance, for the learned
        plan: when a poll before saw it running (this process's, else the time recorded with the job by any
        process, also before a restart), else as its schedule says (a job polled before the column existed). Read
        before the transaction that records it."""
        last_seen = self.run_times.ended(job.id)
        if job.submitted_at is None:
            return None
        elapsed = max(0.0, now - job.submitted_at)
        if last_seen is None and job.seen_running_at is not None:
            last_seen = job.seen_running_at - job.submitted_at
        if last_seen is not None and last_seen < elapsed:  # a poll before saw it running: the time itself
            return last_seen, elapsed
        seen = seen_running_until(
            self.blocks[job.provider],
            self.plans[job.provider],
            self.run_times.runs(job.model_key),
            elapsed,
            callbacks=await self._sent_with_callback(job),
        )
        return seen, elapsed

    def _progress_due(self, job: JobRecord, now: float) -> float:
        """When a change of progress (sent, running upstream) is worth an edit of the job's message: not before
        the model usually has the result (``PROGRESS_AFTER_TYPICAL`` times its typical duration from the start), so
        a job that finishes by then gets its result as the next edit and nothing in between (also one that waited
        in line: its place, then its result)."""
        entry = self._catalogue.get(job.model_key)
        typical = entry.capabilities.typical_duration_s if entry else 0.0
        started = job.submitted_at or now
        return max(now + self._settings.edit_min_interval_s, started + PROGRESS_AFTER_TYPICAL * typical)

    def _error_delay(self, job: JobRecord, errors: int, retry_after_s: float | None) -> float:
        return error_delay(self.blocks[job.provider], errors, retry_after_s, self._rng)
