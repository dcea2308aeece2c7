"""The scheduler: follows every active job from the bot's own queue to a terminal state.

The database is the source of truth; this process keeps a heap of due times (polls and deadlines), a FIFO queue
per provider for jobs waiting for a concurrency slot, and a bounded pool of workers that do the HTTP calls under
per-provider request-rate limits. On start it rebuilds all of that from the unfinished jobs in the database.
``clock`` and ``sleep`` are injectable, so tests can run hours of schedule in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.catalogue import Catalogue
from bot.fetch import Fetcher
from bot.jobs.gates import Clock, ProviderGate, RateLimiter, Sleep
from bot.jobs.media_store import MediaStore
from bot.jobs.steps import PROVIDER_DISABLED, RESTARTED_WHILE_SUBMITTING, RETRY_AFTER_ERROR_S, JobSteps
from bot.jobs.transitions import JobTransitions
from bot.settings import Settings
from bot.storage.jobs import JobRecord, JobRepository
from providers.base import JobState, Provider

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0


class Scheduler(JobSteps):
    def __init__(
        self,
        *,
        settings: Settings,
        jobs: JobRepository,
        providers: Mapping[str, Provider],
        catalogue: Catalogue,
        transitions: JobTransitions,
        fetcher: Fetcher,
        media: MediaStore,
        notify: Callable[[int], None],
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._providers = providers
        self._catalogue = catalogue
        self._transitions = transitions
        self._fetcher = fetcher
        self._media = media
        self._notify = notify
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        blocks = settings.providers()
        self._gates = {
            name: ProviderGate(
                name, blocks[name], RateLimiter(blocks[name].requests_per_minute, clock=clock, sleep=sleep)
            )
            for name in providers
        }
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._work: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._accepted: dict[int, JobState] = {}  # accepted upstream, not yet recorded
        self._finished: dict[int, JobState] = {}  # finished upstream, outputs not yet downloaded
        self.calls: dict[str, int] = {"submit": 0, "poll": 0}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Resume every unfinished job recorded in the database, then start dispatching."""
        now = self._clock()
        for job in await self._jobs.active():
            gate = self._gates.get(job.provider)
            if gate is None:
                await self._transitions.fail(
                    job.id,
                    code="provider_disabled",
                    message=PROVIDER_DISABLED,
                )
                self._notify(job.id)
            elif job.status == "queued":
                gate.waiting.append(job.id)
                self._push(job.deadline_at or now, "deadline", job.id)
            elif job.status == "submitting":
                log.warning("job %s was being submitted when the bot stopped: failing it without resubmitting", job.id)
                await self._transitions.fail(job.id, code="interrupted_submit", message=RESTARTED_WHILE_SUBMITTING)
                self._notify(job.id)
            else:
                gate.running.add(job.id)
                self._push(max(now, job.next_poll_at or now), "poll", job.id)
        self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="scheduler-dispatch"))
        for n in range(self._settings.poll_workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"scheduler-worker-{n}"))

    async def stop(self) -> None:
        """Stop taking work; let calls under way finish (bounded). Unfinished jobs resume on the next start."""
        self._stopping = True
        self._wake.set()
        dispatcher, workers = self._tasks[:1], self._tasks[1:]
        for task in dispatcher:
            task.cancel()
        if workers:
            for _ in workers:
                self._work.put_nowait(("stop", 0))
            _, pending = await asyncio.wait(workers, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # ------------------------------------------------------------------ the public surface
    def enqueue(self, job: JobRecord) -> None:
        """A new queued job (already in the database)."""
        gate = self._gates[job.provider]
        gate.waiting.append(job.id)
        self._push(job.deadline_at or self._clock(), "deadline", job.id)
        self._wake.set()

    def position(self, job_id: int) -> int | None:
        for gate in self._gates.values():
            place = gate.position(job_id)
            if place is not None:
                return place
        return None

    def position_if_enqueued(self, provider: str) -> int | None:
        """The place a job of this provider would take in line now, or None if it would start at once."""
        gate = self._gates.get(provider)
        if gate is None or (not gate.waiting and gate.has_slot(self._clock())):
            return None
        return len(gate.waiting) + 1

    def forget(self, job_id: int, provider: str) -> None:
        """The job was cancelled: free its place in line or its slot."""
        gate = self._gates.get(provider)
        if gate is None:
            return
        self._leave_line(gate, job_id)
        gate.running.discard(job_id)
        self._wake.set()

    # ------------------------------------------------------------------ dispatching
    async def _dispatch_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                _, _, kind, job_id = heapq.heappop(self._heap)
                self._work.put_nowait((kind, job_id))
            for gate in self._gates.values():
                moved = 0
                while gate.waiting and gate.has_slot(now):
                    job_id = gate.waiting.popleft()
                    gate.running.add(job_id)
                    self._work.put_nowait(("submit", job_id))
                    moved += 1
                if moved:
                    self._notify_moved(gate, shift=moved)
            await self._idle(now)

    async def _idle(self, now: float) -> None:
        """Sleep until the next due time, a provider pause ending, or a wake-up."""
        candidates = [self._heap[0][0]] if self._heap else []
        candidates += [g.paused_until for g in self._gates.values() if g.waiting and g.paused_until > now]
        timeout = max(0.0, min(candidates) - now) if candidates else None
        waker = asyncio.ensure_future(self._wake.wait())
        waiters: set[asyncio.Future[Any]] = {waker}
        if timeout is not None:
            waiters.add(asyncio.ensure_future(self._sleep(timeout)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _worker(self) -> None:
        handlers = {
            "submit": self._submit,
            "poll": self._poll,
            "deadline": self._queue_deadline,
            "accept": self._accept_again,
        }
        while True:
            kind, job_id = await self._work.get()
            if kind == "stop":
                return
            if self._stopping:
                continue  # the job's state is in the database; the next start picks it up
            try:
                await handlers[kind](job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler: %s of job %s failed unexpectedly; trying again later", kind, job_id)
                # Each step re-reads the job and is safe to repeat; dropped, the job would hold its slot.
                self._push(self._clock() + RETRY_AFTER_ERROR_S, kind, job_id)
