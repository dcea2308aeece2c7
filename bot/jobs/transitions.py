"""The transitions that end a job, each in one transaction with its credits: success commits the reservation,
failure refunds it, cancelling refunds it if the job never reached the service. Each happens at most once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal

from bot.credits.service import QuotaService
from bot.storage.database import Database
from bot.storage.jobs import JobRepository, OutputRecord

log = logging.getLogger(__name__)

CancelOutcome = Literal["refunded", "kept", "sending", "finished"]


class JobTransitions:
    def __init__(
        self, database: Database, jobs: JobRepository, quota: QuotaService, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = database
        self._jobs = jobs
        self._quota = quota
        self._clock = clock

    async def succeed(
        self, job_id: int, outputs: Sequence[OutputRecord], *, upstream_status: str | None = None
    ) -> bool:
        now = self._clock()
        async with self._db.transaction() as conn:
            if not await self._jobs.finish(conn, job_id, status="succeeded", now=now, upstream_status=upstream_status):
                return False
            await self._jobs.add_outputs(conn, outputs)
            await self._quota.commit(conn, job_id=job_id, now=now)
        log.info("job %s succeeded with %d output(s)", job_id, len(outputs))
        return True

    async def fail(self, job_id: int, *, code: str, message: str, upstream_status: str | None = None) -> bool:
        now = self._clock()
        async with self._db.transaction() as conn:
            if not await self._jobs.finish(
                conn,
                job_id,
                status="failed",
                now=now,
                error_code=code,
                error_message=message,
                upstream_status=upstream_status,
            ):
                return False
            refunded = await self._quota.refund(conn, job_id=job_id, now=now)
        log.info("job %s failed (%s); refunded: %s", job_id, code, refunded)
        return True

    async def cancel(self, job_id: int) -> CancelOutcome:
        """Cancel an active job, deciding on the state it has inside the transaction (a worker may be claiming
        it for submission at the same moment). A job that reached the service keeps its credits spent: no API
        can stop it. One being sent right now is left alone: whether it reached the service is not known yet."""
        now = self._clock()
        async with self._db.transaction() as conn:
            job = await self._jobs.get_in(conn, job_id)
            if job is None or job.finished:
                return "finished"
            if job.status == "submitting":
                return "sending"
            submitted = job.status == "running"
            await self._jobs.finish(conn, job_id, status="cancelled", now=now, error_code="cancelled")
            if submitted:
                await self._quota.commit(conn, job_id=job_id, now=now)
            else:
                await self._quota.refund(conn, job_id=job_id, now=now)
        log.info("job %s cancelled (%s)", job_id, "credits kept" if submitted else "refunded")
        return "kept" if submitted else "refunded"
