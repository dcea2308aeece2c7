"""The transitions that end a job, each in one transaction with its credits and its steps: success commits the
reservation, failure refunds it, cancelling refunds it if the job never reached the service. Each happens at most
once, and each asks for the job's message to be sent again (final results first).

A step holder passes its ``Lease``: the transaction then also proves the lease and removes the step, so a process
that lost its lease changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from bot.clock import shared_clock
from bot.credits.service import QuotaService
from bot.storage.database import Connection, Database
from bot.storage.jobs import ACTIVE_STATUSES, JobRecord, JobRepository, OutputRecord
from bot.storage.steps import Lease, StepRepository
from providers import messages

log = logging.getLogger(__name__)

CancelOutcome = Literal["refunded", "kept", "sending", "finished"]
DISCORD_LANE = "discord"
FINAL_PRIORITY = 1


class JobTransitions:
    def __init__(
        self,
        database: Database,
        jobs: JobRepository,
        quota: QuotaService,
        steps: StepRepository,
        *,
        on_message: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = shared_clock,
    ) -> None:
        self._db = database
        self._jobs = jobs
        self._quota = quota
        self._steps = steps
        self.on_message = on_message
        self._clock = clock
        # Told inside the transaction that ended a job (metrics, spending): (conn, the job as it ended, now).
        self.on_ended: Callable[[Connection, JobRecord, float], Awaitable[None]] | None = None

    async def _ended(self, conn: Connection, job: JobRecord, now: float) -> None:
        if self.on_ended is not None:
            await self.on_ended(conn, job, now)

    async def show(
        self, conn: Connection, job_id: int, *, now: float, final: bool = False, due_at: float | None = None
    ) -> None:
        """Ask for the job's message to be sent by ``due_at`` (now by default; coalesced with a pending send, the
        sooner wins; final results first)."""
        await self._steps.want(
            conn,
            job_id,
            "message",
            DISCORD_LANE,
            due_at=now if due_at is None else due_at,
            now=now,
            priority=FINAL_PRIORITY if final else 0,
        )

    async def succeed(
        self,
        lease: Lease,
        outputs: Sequence[OutputRecord],
        *,
        upstream_status: str | None = None,
        also: Callable[[Connection], Awaitable[None]] | None = None,
    ) -> bool:
        """``also``: more writes of the same success, in its transaction (what the poll saw of the run time)."""
        now = self._clock()
        async with self._db.transaction() as conn:
            await self._steps.lock_job(conn, lease.job_id)
            await self._steps.drop_run_steps_held(conn, lease)  # its own step (fenced) and any other run step
            ended = await self._jobs.finish(
                conn, lease.job_id, status="succeeded", now=now, upstream_status=upstream_status
            )
            if ended is None:
                return False
            await self._jobs.add_outputs(conn, outputs)
            if also is not None:
                await also(conn)
            await self._quota.commit(conn, job_id=lease.job_id, now=now)
            await self._ended(conn, ended, now)
            await self.show(conn, lease.job_id, now=now, final=True)
        self.on_message()
        log.info("job %s succeeded with %d output(s)", lease.job_id, len(outputs))
        return True

    async def fail(
        self,
        job_id: int,
        *,
        code: str,
        message: str,
        upstream_status: str | None = None,
        lease: Lease | None = None,
        from_statuses: Sequence[str] = ACTIVE_STATUSES,
    ) -> bool:
        now = self._clock()
        async with self._db.transaction() as conn:
            await self._steps.lock_job(conn, job_id)
            if lease is not None:
                await self._steps.complete(conn, lease)
            ended = await self.fail_in(
                conn, job_id, code=code, message=message, upstream_status=upstream_status, now=now,
                from_statuses=from_statuses,
            )  # fmt: skip
        if ended:
            self.on_message()
        return ended

    async def fail_in(
        self,
        conn: Connection,
        job_id: int,
        *,
        code: str,
        message: str,
        now: float,
        upstream_status: str | None = None,
        from_statuses: Sequence[str] = ACTIVE_STATUSES,
    ) -> bool:
        """``fail`` inside the caller's transaction (which calls ``on_message`` after it commits). ``message`` (a
        ``providers.messages.Message``) is stored with its parameters, to be shown later in the reader's language."""
        ended = await self._jobs.finish(
            conn,
            job_id,
            status="failed",
            now=now,
            error_code=code,
            error_message=messages.dump(message),
            upstream_status=upstream_status,
            from_statuses=from_statuses,
        )
        if ended is None:
            return False
        await self._steps.drop_run_steps(conn, job_id)
        refunded = await self._quota.refund(conn, job_id=job_id, now=now)
        await self._ended(conn, ended, now)
        await self.show(conn, job_id, now=now, final=True)
        log.info("job %s failed (%s); refunded: %s", job_id, code, refunded)
        return True

    async def cancel(self, job_id: int) -> CancelOutcome:
        """Cancel an active job, deciding on the state it has inside the transaction (a worker may be sending it
        at the same moment). A job that reached the service keeps its credits spent: no API can stop it. One
        being sent right now is left alone: whether it reached the service is not known yet."""
        now = self._clock()

        async def cancel(conn: Connection) -> CancelOutcome:
            await self._steps.lock_job(conn, job_id)  # steps before the job row, as claims and step holders do
            job = await self._jobs.get_in(conn, job_id)
            if job is None or job.finished:
                return "finished"
            if job.status == "submitting" and job.submit_sent_at is not None:
                return "sending"
            submitted = job.status == "running"
            ended = await self._jobs.finish(conn, job_id, status="cancelled", now=now, error_code="cancelled")
            if ended is None:
                return "finished"
            await self._steps.drop_run_steps(conn, job_id)
            if submitted:
                await self._quota.commit(conn, job_id=job_id, now=now)
            else:
                await self._quota.refund(conn, job_id=job_id, now=now)
            await self._ended(conn, ended, now)
            await self.show(conn, job_id, now=now, final=True)
            return "kept" if submitted else "refunded"

        outcome = await self._db.transact(cancel)  # only database work: re-run after a deadlock
        if outcome in ("finished", "sending"):
            return outcome
        submitted = outcome == "kept"
        self.on_message()
        log.info("job %s cancelled (%s)", job_id, "credits kept" if submitted else "refunded")
        return "kept" if submitted else "refunded"
