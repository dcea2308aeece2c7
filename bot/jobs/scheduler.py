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
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.catalogue import Catalogue
from bot.fetch import Fetcher, FetchError
from bot.jobs.media_store import MediaStore
from bot.jobs.requests import build_request
from bot.jobs.results import collect_outputs
from bot.jobs.transitions import JobTransitions
from bot.render.job import queue_place
from bot.settings import ProviderSettings, Settings
from bot.storage.jobs import JobRecord, JobRepository
from providers.base import JobState, JobStatus, Kind, Provider
from providers.errors import NotFoundError, ProviderError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

FIRST_POLL_FRACTION = 0.75
STOP_GRACE_S = 10.0
RETRY_AFTER_ERROR_S = 30.0
# Failure texts; the job's message adds that the credits were refunded.
GENERIC_FAILURE = "Something went wrong on our side while running this job."
RESTARTED_WHILE_SUBMITTING = (
    "The bot restarted while sending this job to the service, so it cannot tell whether the job started. "
    "It was not sent again; try again if you still want it."
)
QUEUE_TIMEOUT = "The service was too busy to start this job in time. Try again later."
RUN_TIMEOUT = "The service took too long to finish this job, so the bot stopped waiting."
LOST_UPSTREAM = "The service no longer knows this job (it may have expired)."
DOWNLOAD_FAILED = "The result was made but could not be downloaded."
INPUT_GONE = "An input image of this job is no longer stored, so it cannot be sent."
PROVIDER_DISABLED = "This model is no longer enabled on this bot."


class RateLimiter:
    """A token bucket: ``per_minute`` requests a minute, in bursts of up to a tenth of that."""

    def __init__(self, per_minute: int, *, clock: Clock, sleep: Sleep) -> None:
        self.rate_per_s = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 10.0)
        self._tokens = self.capacity
        self._updated = clock()
        self._clock = clock
        self._sleep = sleep

    def try_acquire(self) -> float:
        """Take a token and return 0, or return how long until one is available (taking nothing)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate_per_s

    async def acquire(self) -> None:
        while (wait := self.try_acquire()) > 0:
            await self._sleep(wait)


@dataclass
class ProviderGate:
    """One provider's concurrency slots, its waiting line and its request rate."""

    name: str
    settings: ProviderSettings
    limiter: RateLimiter
    waiting: deque[int] = field(default_factory=deque)
    running: set[int] = field(default_factory=set)
    paused_until: float = 0.0

    def has_slot(self, now: float) -> bool:
        return len(self.running) < self.settings.max_concurrency and now >= self.paused_until

    def position(self, job_id: int) -> int | None:
        try:
            return self.waiting.index(job_id) + 1
        except ValueError:
            return None


class Scheduler:
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
    def _push(self, due: float, kind: str, job_id: int) -> None:
        if not self._heap or due < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (due, next(self._seq), kind, job_id))

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

    def _notify_moved(self, gate: ProviderGate, *, shift: int, start: int = 0) -> None:
        """Jobs from index ``start`` on moved ``shift`` places forward (negative: back): tell those whose shown
        place in line changed."""
        for index in range(start, len(gate.waiting)):
            if queue_place(index + 1) != queue_place(index + 1 + shift):
                self._notify(gate.waiting[index])

    def _leave_line(self, gate: ProviderGate, job_id: int) -> None:
        try:
            index = gate.waiting.index(job_id)
        except ValueError:
            return
        del gate.waiting[index]
        self._notify_moved(gate, shift=1, start=index)

    def _release(self, job: JobRecord) -> None:
        gate = self._gates.get(job.provider)
        if gate is not None:
            gate.running.discard(job.id)
        self._wake.set()

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

    # ------------------------------------------------------------------ submitting
    async def _submit(self, job_id: int) -> None:
        job = await self._jobs.get(job_id)
        if job is None or job.status != "queued":
            if job is not None:
                self._release(job)
            return
        gate = self._gates[job.provider]
        if job.deadline_at is not None and self._clock() >= job.deadline_at:
            await self._fail(job, "queue_timeout", QUEUE_TIMEOUT)
            return
        wait = gate.limiter.try_acquire()
        if wait > 0:
            self._push(self._clock() + wait, "submit", job_id)  # keeps its slot; no worker waits meanwhile
            return
        if not await self._jobs.claim_for_submit(job_id):
            self._release(job)
            return
        try:
            request = await build_request(job, self._media)
        except OSError:
            await self._fail(job, "input_missing", INPUT_GONE)
            return
        except Exception:
            log.exception("job %s: could not build its request; nothing was sent", job.id)
            await self._fail(job, "internal_error", GENERIC_FAILURE)
            return
        self.calls["submit"] += 1
        try:
            state = await self._providers[job.provider].submit(request)
        except ProviderError as exc:
            if exc.retryable:
                await self._back_in_line(job, gate, exc)
            else:
                log.warning("job %s: submit refused: %s", job.id, exc)
                await self._fail(job, exc.code or type(exc).__name__, exc.user_message)
            return
        except Exception:
            log.exception("job %s: submit failed unexpectedly; not resubmitting", job.id)
            await self._fail(job, "internal_error", GENERIC_FAILURE)
            return
        log.info(
            "job %s submitted to %s as %s (request id %s)", job.id, job.provider, state.remote_id, state.request_id
        )
        self._accepted[job.id] = state
        try:
            await self._accept_again(job.id)
        except Exception:
            log.exception("job %s: accepted upstream as %s but not recorded yet; retrying", job.id, state.remote_id)
            self._push(self._clock() + RETRY_AFTER_ERROR_S, "accept", job.id)

    async def _accept_again(self, job_id: int) -> None:
        """Record a submission the provider accepted. Until that works the job exists upstream but not in our
        records, so a failure here is retried (from the worker) rather than dropped."""
        state = self._accepted.get(job_id)
        job = await self._jobs.get(job_id)
        if state is None or job is None:
            return
        now = self._clock()
        first_poll = now + self._first_poll_delay(job, state)
        recorded = await self._jobs.mark_running(
            job.id,
            remote_id=state.remote_id,
            request_id=state.request_id,
            upstream_status=state.upstream_status,
            submitted_at=now,
            next_poll_at=first_poll,
            deadline_at=now + self._run_deadline_s(job),
        )
        del self._accepted[job_id]
        if not recorded:
            log.warning("job %s left 'submitting' meanwhile; upstream job %s is not followed", job.id, state.remote_id)
            self._release(job)
            return
        running = await self._jobs.get(job.id)
        assert running is not None
        if state.status.terminal:
            await self._handle_state(running, state)
        else:
            self._push(first_poll, "poll", job.id)
            self._notify(job.id)

    def _run_deadline_s(self, job: JobRecord) -> float:
        return self._settings.video_deadline_s if job.kind == Kind.VIDEO else self._settings.image_deadline_s

    async def _back_in_line(self, job: JobRecord, gate: ProviderGate, exc: ProviderError) -> None:
        """Rejected before acceptance (429, connection refused): wait at the head of the line and try again."""
        if job.deadline_at is not None and self._clock() >= job.deadline_at:
            # Its queue deadline passed while it was being submitted (and was skipped then): it ends here.
            await self._fail(job, "queue_timeout", QUEUE_TIMEOUT)
            return
        wait = getattr(exc, "retry_after_s", None) or gate.settings.poll_interval_s
        log.info("job %s: %s not accepting jobs (%s); retrying in %.1fs", job.id, gate.name, exc, wait)
        await self._jobs.requeue(job.id)
        gate.running.discard(job.id)
        gate.waiting.appendleft(job.id)
        gate.paused_until = max(gate.paused_until, self._clock() + wait)
        self._notify_moved(gate, shift=-1, start=1)
        self._notify(job.id)
        self._wake.set()

    async def _queue_deadline(self, job_id: int) -> None:
        job = await self._jobs.get(job_id)
        if job is None or job.status != "queued":
            return
        gate = self._gates.get(job.provider)
        if gate is not None:
            self._leave_line(gate, job_id)
        await self._fail(job, "queue_timeout", QUEUE_TIMEOUT)

    # ------------------------------------------------------------------ polling
    def _first_poll_delay(self, job: JobRecord, state: JobState) -> float:
        block = self._gates[job.provider].settings
        if block.first_poll_s is not None:
            return block.first_poll_s
        if state.poll_after_s is not None:
            return self._next_poll_delay(block, state.poll_after_s)
        entry = self._catalogue.get(job.model_key)
        typical = entry.capabilities.typical_duration_s if entry else block.poll_interval_s
        return max(block.poll_interval_s, typical * FIRST_POLL_FRACTION)

    @staticmethod
    def _next_poll_delay(block: ProviderSettings, hint: float | None) -> float:
        """The provider's own estimate when it gives one, kept between the poll interval and its cap."""
        if hint is None:
            return block.poll_interval_s
        return max(block.poll_interval_s, min(hint, block.max_poll_interval_s))

    def _error_delay(self, job: JobRecord, errors: int, retry_after_s: float | None) -> float:
        block = self._gates[job.provider].settings
        delay = min(block.max_poll_interval_s, block.poll_interval_s * 2.0 ** min(errors - 1, 32))
        # Jittered, then capped again: never past max_poll_interval_s (only a provider's Retry-After goes past it).
        delay = min(block.max_poll_interval_s, delay * self._rng.uniform(0.8, 1.2))
        return max(delay, retry_after_s or 0.0)

    async def _poll(self, job_id: int) -> None:
        job = await self._jobs.get(job_id)
        if job is None or job.status != "running" or job.remote_id is None:
            log.debug("job %s: not polled (%s)", job_id, job.status if job else "missing")
            return
        gate = self._gates[job.provider]
        wait = gate.limiter.try_acquire()
        if wait > 0:
            self._push(self._clock() + wait, "poll", job_id)
            return
        self.calls["poll"] += 1
        try:
            state = await self._providers[job.provider].poll(job.remote_id)
        except NotFoundError as exc:
            finished = self._finished.get(job.id)
            if finished is not None:
                # Some results cannot be asked for again (a synchronous answer): retry the same outputs.
                await self._collect(job, finished)
                return
            log.warning("job %s: %s", job.id, exc)
            await self._fail(job, "not_found", LOST_UPSTREAM)
            return
        except ProviderError as exc:
            await self._poll_later(job, exc, getattr(exc, "retry_after_s", None))
            return
        except Exception as exc:
            log.exception("job %s: poll failed unexpectedly", job.id)
            await self._poll_later(job, exc, None)
            return
        await self._handle_state(job, state)

    def _past_deadline(self, job: JobRecord) -> bool:
        return job.deadline_at is not None and self._clock() >= job.deadline_at

    async def _poll_later(self, job: JobRecord, exc: BaseException, retry_after_s: float | None) -> None:
        if self._past_deadline(job):
            await self._fail(job, "timeout", RUN_TIMEOUT)
            return
        errors = job.poll_errors + 1
        delay = self._error_delay(job, errors, retry_after_s)
        log.info("job %s: poll problem #%d (%s); next try in %.1fs", job.id, errors, exc, delay)
        due = self._clock() + delay
        await self._jobs.record_poll(job.id, upstream_status=None, next_poll_at=due, poll_errors=errors)
        self._push(due, "poll", job.id)

    async def _handle_state(self, job: JobRecord, state: JobState) -> None:
        if state.status is JobStatus.SUCCEEDED:
            await self._collect(job, state)
        elif state.status is JobStatus.FAILED:
            log.info("job %s failed upstream: %s (%s)", job.id, state.failure_code, state.upstream_status)
            await self._fail(
                job,
                state.failure_code or "failed",
                state.failure_message or GENERIC_FAILURE,
                upstream_status=state.upstream_status,
            )
        elif self._past_deadline(job):
            await self._fail(job, "timeout", RUN_TIMEOUT, upstream_status=state.upstream_status)
        else:
            block = self._gates[job.provider].settings
            due = self._clock() + self._next_poll_delay(block, state.poll_after_s)
            await self._jobs.record_poll(
                job.id,
                upstream_status=state.upstream_status,
                next_poll_at=due,
                poll_errors=0,
                request_id=state.request_id,
            )
            self._push(due, "poll", job.id)
            if state.upstream_status != job.upstream_status:
                self._notify(job.id)

    async def _collect(self, job: JobRecord, state: JobState) -> None:
        try:
            outputs = await collect_outputs(
                job.id, Kind(job.kind), state.outputs, fetcher=self._fetcher, media=self._media, now=self._clock()
            )
        except FetchError as exc:
            if exc.retryable:
                # A fresh poll usually hands out fresh URLs (presigned links expire).
                self._finished[job.id] = state
                await self._poll_later(job, exc, None)
            else:
                log.warning("job %s: result download refused: %s", job.id, exc)
                await self._fail(job, "download_failed", DOWNLOAD_FAILED)
            return
        self._finished.pop(job.id, None)
        if await self._transitions.succeed(job.id, outputs, upstream_status=state.upstream_status):
            self._release(job)
            self._notify(job.id)
        else:
            await self._media.purge_job(job.id)  # it ended meanwhile (cancelled): nobody will see these files

    async def _fail(self, job: JobRecord, code: str, message: str, *, upstream_status: str | None = None) -> None:
        self._finished.pop(job.id, None)
        if await self._transitions.fail(job.id, code=code, message=message, upstream_status=upstream_status):
            self._notify(job.id)
        self._release(job)
