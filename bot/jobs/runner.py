"""The upstream side of a job, one leased step at a time: submit (per-provider lanes), poll, download.

Each handler reads the job fresh, does at most one upstream effect, and records its outcome in one fenced
transaction that also schedules the next step. The intent comes first where an effect cannot be repeated: the
job is marked ``submit_sent_at`` before the submit call, so after a crash a submit that may have reached the
service is failed and refunded, never sent twice.
"""

from __future__ import annotations

import logging

from bot.jobs.outcomes import (
    DOWNLOAD_LANE,
    GENERIC_FAILURE,
    INPUT_GONE,
    LOST_UPSTREAM,
    POLL_LANE,
    PROVIDER_DISABLED,
    QUEUE_TIMEOUT,
    RESTARTED_WHILE_SUBMITTING,
    RUN_TIMEOUT,
    dump_state,
    submit_lane,
)
from bot.jobs.poll_schedule import past_deadline, run_deadline_s
from bot.jobs.requests import build_request
from bot.jobs.result_steps import ResultSteps
from bot.storage.jobs import JobRecord
from bot.storage.steps import Lease, LeaseLost
from providers.base import JobState, JobStatus
from providers.errors import AuthError, InsufficientFundsError, NotFoundError, ProviderError

log = logging.getLogger(__name__)

RECORD_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0)


class Runner(ResultSteps):
    """The handlers of the submit, poll and download steps."""

    # ------------------------------------------------------------------ submit
    async def submit(self, lease: Lease) -> None:
        job = await self._jobs.get(lease.job_id)
        if job is None or job.status not in ("queued", "submitting"):
            await self._steps.complete_one(lease)
            return
        if job.provider not in self._providers:
            await self._fail(job, "provider_disabled", PROVIDER_DISABLED, lease)
            return
        if self.held(job.provider):  # paused after this step was claimed: it waits, at the head of the line
            await self._steps.release_one(lease, due_at=lease.due_at)
            return
        if job.submit_sent_at is not None:
            log.warning("job %s was being submitted by a process that stopped: failing it, not resubmitting", job.id)
            await self._fail(job, "interrupted_submit", RESTARTED_WHILE_SUBMITTING, lease)
            return
        if past_deadline(job.deadline_at, self._clock()):
            await self._fail(job, "queue_timeout", QUEUE_TIMEOUT, lease)
            return
        wait = self.limiters[job.provider].try_acquire()
        if wait > 0:
            await self._steps.release_one(lease, due_at=self._clock() + wait)
            return
        try:
            request = await build_request(job, self._media)
        except OSError:
            await self._fail(job, "input_missing", INPUT_GONE, lease)
            return
        except Exception:
            log.exception("job %s: could not build its request; nothing was sent", job.id)
            await self._fail(job, "internal_error", GENERIC_FAILURE, lease)
            return
        try:
            async with self._db.transaction() as conn:
                await self._steps.hold(conn, lease)
                if not await self._jobs.mark_submit_sent(conn, job.id, self._clock()):
                    await self._steps.complete(conn, lease)
                    return
                if self.callback_links is not None and self.callback_links.enabled_for(job.provider):
                    url, secret_hash = self.callback_links.new(job.provider, job.id)
                    await self._callbacks.register(conn, job.id, job.provider, secret_hash, self._clock())
                    request = request.replace(callback_url=url)
        except LeaseLost:
            return
        self.calls["submit"] += 1
        try:
            state = await self._providers[job.provider].submit(request)
        except ProviderError as exc:
            if isinstance(exc, (AuthError, InsufficientFundsError)) and self.refused is not None:
                # The operator must act, not the user: the provider is paused and the job waits for it.
                log.warning("job %s: %s refused the bot (%s); pausing it, the job waits", job.id, job.provider, exc)
                await self.refused(job.provider, exc)
                await self._back_in_line(job, lease, exc)
            elif exc.retryable:
                await self._back_in_line(job, lease, exc)
            else:
                log.warning("job %s: submit refused: %s", job.id, exc)
                await self._fail(job, exc.code or type(exc).__name__, exc.user_message, lease)
            return
        except Exception:
            log.exception("job %s: submit failed unexpectedly; not resubmitting", job.id)
            await self._fail(job, "internal_error", GENERIC_FAILURE, lease)
            return
        log.info(
            "job %s submitted to %s as %s (request id %s)", job.id, job.provider, state.remote_id, state.request_id
        )
        await self._record_accepted(job, lease, state)

    async def _record_accepted(self, job: JobRecord, lease: Lease, state: JobState) -> None:
        """The service accepted the job: until this is recorded it exists upstream only, so storage errors are
        retried here while the lease is kept alive, not dropped."""
        tries = 0
        while True:
            try:
                await self._accept(job, lease, state)
                return
            except LeaseLost:
                log.warning("job %s: accepted upstream as %s after its lease was lost", job.id, state.remote_id)
                return
            except Exception:
                # Never given up: the upstream job exists, and only this process knows it.
                delay = RECORD_RETRY_DELAYS_S[min(tries, len(RECORD_RETRY_DELAYS_S) - 1)]
                tries += 1
                log.exception("job %s: recording its acceptance failed (#%d); retrying in %.1fs", job.id, tries, delay)
                await self._sleep(delay)

    async def _accept(self, job: JobRecord, lease: Lease, state: JobState) -> None:
        now = self._clock()
        first_poll = now + self._first_poll_delay(job, state)
        async with self._db.transaction() as conn:
            # The submit step becomes the next one (the step before the job, the order every holder locks in).
            if state.status is JobStatus.SUCCEEDED:
                await self._steps.advance(conn, lease, "download", DOWNLOAD_LANE, due_at=now)
            elif state.status is JobStatus.FAILED:
                await self._steps.complete(conn, lease)
            else:
                await self._steps.advance(conn, lease, "poll", POLL_LANE, due_at=first_poll)
            if not await self._jobs.start_running(
                conn,
                job.id,
                remote_id=state.remote_id,
                request_id=state.request_id,
                upstream_status=state.upstream_status,
                submitted_at=now,
                next_poll_at=first_poll,
                deadline_at=now + run_deadline_s(self._settings, job.kind),
            ):
                log.warning(
                    "job %s left 'submitting' meanwhile; upstream job %s is not followed", job.id, state.remote_id
                )
                await self._steps.drop_run_steps(conn, job.id)
                return
            if state.status is JobStatus.SUCCEEDED:
                await self._jobs.keep_result(conn, job.id, dump_state(state), state.upstream_status)
            elif state.status is JobStatus.FAILED:
                # Failed at once: recorded, failed and refunded in this one transaction (nothing, e.g. a cancel
                # that would keep the credits of a running job, can come in between).
                await self._transitions.fail_in(
                    conn, job.id, code=state.failure_code or "failed", now=now,
                    message=state.failure_message or GENERIC_FAILURE, upstream_status=state.upstream_status,
                )  # fmt: skip
        # No progress edit is asked for here: a poll asks for one once the model's usual duration has passed
        # (``_handle_state``); a job that finishes before shows its result next.
        # Steps due later (the first poll, a progress edit) wake their lanes by their due time (the lanes hear
        # of it: ``StepRepository.due_hint``); what is due now, after the commit.
        if state.status is JobStatus.FAILED:
            # A slot came free: the submit lane's next claim moves the line (and says so).
            self._transitions.on_message()
            self._wake(submit_lane(job.provider))
        elif state.status is JobStatus.SUCCEEDED:
            self._wake(DOWNLOAD_LANE)

    async def _back_in_line(self, job: JobRecord, lease: Lease, exc: ProviderError) -> None:
        """Refused before acceptance (429, connection refused, a paused provider): queued again and retried after
        the pause."""
        if past_deadline(job.deadline_at, self._clock()) and not self.held(job.provider):
            await self._fail(job, "queue_timeout", QUEUE_TIMEOUT, lease)
            return
        wait = getattr(exc, "retry_after_s", None) or self.blocks[job.provider].poll_interval_s
        log.info("job %s: %s not accepting jobs (%s); retrying in %.1fs", job.id, job.provider, exc, wait)
        now = self._clock()
        self.paused_until[job.provider] = max(self.paused_until[job.provider], now + wait)
        try:
            async with self._db.transaction() as conn:
                # Its due time stays: at the head of the line again once the pause ends.
                await self._steps.release(conn, lease, due_at=min(lease.due_at, now))
                await self._jobs.back_in_line(conn, job.id)
                await self._transitions.show(conn, job.id, now=now)
        except LeaseLost:
            return
        self._line_changed(job.provider)
        self._wake("discord")

    # ------------------------------------------------------------------ poll
    async def poll(self, lease: Lease) -> None:
        job = await self._jobs.get(lease.job_id)
        if job is None or job.status != "running" or job.remote_id is None:
            await self._steps.complete_one(lease)
            return
        if job.provider not in self._providers:
            await self._fail(job, "provider_disabled", PROVIDER_DISABLED, lease)
            return
        wait = self.limiters[job.provider].try_acquire()
        if wait > 0:
            await self._steps.release_one(lease, due_at=self._clock() + wait)
            return
        self.calls["poll"] += 1
        try:
            state = await self._providers[job.provider].poll(job.remote_id)
        except NotFoundError as exc:
            if job.upstream_result is not None:
                # Some results cannot be asked for again (a synchronous answer): download the same outputs again.
                await self._to_download(job, lease, None)
                return
            log.warning("job %s: %s", job.id, exc)
            await self._fail(job, "not_found", LOST_UPSTREAM, lease)
            return
        except ProviderError as exc:
            await self._poll_later(job, lease, exc, getattr(exc, "retry_after_s", None))
            return
        except Exception as exc:
            log.exception("job %s: poll failed unexpectedly", job.id)
            await self._poll_later(job, lease, exc, None)
            return
        await self._handle_state(job, lease, state)

    async def _poll_later(
        self, job: JobRecord, lease: Lease, exc: BaseException | str, retry_after_s: float | None
    ) -> None:
        if past_deadline(job.deadline_at, self._clock()):
            await self._fail(job, "timeout", RUN_TIMEOUT, lease)
            return
        errors = job.poll_errors + 1
        delay = self._error_delay(job, errors, retry_after_s)
        log.info("job %s: poll problem #%d (%s); next try in %.1fs", job.id, errors, exc, delay)
        due = self._clock() + delay
        if job.deadline_at is not None:  # a Retry-After past the deadline: ask once more then, then stop
            due = min(due, job.deadline_at)
        try:
            async with self._db.transaction() as conn:
                await self._steps.release(conn, lease, due_at=due, attempts=errors)
                await self._jobs.note_poll(conn, job.id, upstream_status=None, next_poll_at=due, poll_errors=errors)
        except LeaseLost:
            pass

    async def _handle_state(self, job: JobRecord, lease: Lease, state: JobState) -> None:
        if state.status is JobStatus.SUCCEEDED:
            if not await self._download_now(job, lease, state):
                await self._to_download(job, lease, state)
        elif state.status is JobStatus.FAILED:
            log.info("job %s failed upstream: %s (%s)", job.id, state.failure_code, state.upstream_status)
            await self._fail(
                job,
                state.failure_code or "failed",
                state.failure_message or GENERIC_FAILURE,
                lease,
                upstream_status=state.upstream_status,
            )
        elif past_deadline(job.deadline_at, self._clock()):
            await self._fail(job, "timeout", RUN_TIMEOUT, lease, upstream_status=state.upstream_status)
        else:
            now = self._clock()
            if job.submitted_at is not None:
                self.run_times.seen_running(job.id, job.model_key, now - job.submitted_at)
            due = now + await self._next_poll_delay(job, state, now)
            if job.deadline_at is not None:  # the last poll at the deadline, not a tail gap past it
                due = min(due, max(job.deadline_at, now))
            visible = state.upstream_status != job.upstream_status
            progress_due = self._progress_due(job, now)
            # The message still shows an older state (waiting, sending) and the job has run as long as it usually
            # takes in all: show that it runs.
            behind = job.shown_version != job.version and now >= progress_due
            try:
                async with self._db.transaction() as conn:
                    await self._steps.release(conn, lease, due_at=due, attempts=0)
                    await self._jobs.note_poll(
                        conn,
                        job.id,
                        upstream_status=state.upstream_status,
                        next_poll_at=due,
                        poll_errors=0,
                        request_id=state.request_id,
                        visible=visible,
                        seen_running_at=now,
                    )
                    if visible or behind:
                        await self._transitions.show(conn, job.id, now=now, due_at=now if behind else progress_due)
            except LeaseLost:
                return
