"""What the scheduler does at each step of one job: submit it, record its acceptance, poll it, collect its results
or fail it, and keep its place in its provider's line and in the heap of due times.

``Scheduler`` (bot/jobs/scheduler.py) inherits these and owns the state they share: it builds it, resumes it from
the database and runs the workers that call these steps.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Mapping

from bot.catalogue import Catalogue
from bot.fetch import Fetcher, FetchError
from bot.jobs.gates import Clock, ProviderGate
from bot.jobs.media_store import MediaStore
from bot.jobs.requests import build_request
from bot.jobs.results import collect_outputs
from bot.jobs.transitions import JobTransitions
from bot.render.job import queue_place
from bot.settings import ProviderSettings, Settings
from bot.storage.jobs import JobRecord, JobRepository
from providers.base import JobState, JobStatus, Kind, Provider
from providers.errors import NotFoundError, ProviderError

log = logging.getLogger("bot.jobs.scheduler")  # these steps log as the scheduler they are part of

FIRST_POLL_FRACTION = 0.75
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


class JobSteps:
    _settings: Settings
    _jobs: JobRepository
    _providers: Mapping[str, Provider]
    _catalogue: Catalogue
    _transitions: JobTransitions
    _fetcher: Fetcher
    _media: MediaStore
    _notify: Callable[[int], None]
    _clock: Clock
    _rng: random.Random
    _gates: dict[str, ProviderGate]
    _heap: list[tuple[float, int, str, int]]
    _seq: itertools.count[int]
    _wake: asyncio.Event
    _accepted: dict[int, JobState]  # accepted upstream, not yet recorded
    _finished: dict[int, JobState]  # finished upstream, outputs not yet downloaded
    calls: dict[str, int]

    # ------------------------------------------------------------------ places in line and due times
    def _push(self, due: float, kind: str, job_id: int) -> None:
        if not self._heap or due < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (due, next(self._seq), kind, job_id))

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
