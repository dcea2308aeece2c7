"""The result side of a job's upstream steps: the download (by the poll that saw the job finish, when a place is
free, else by its own step), the success that commits the credits, and asking the service again for fresh links.
"""

from __future__ import annotations

import logging

from bot.fetch import FetchError
from bot.jobs.outcomes import DOWNLOAD_FAILED, DOWNLOAD_LANE, POLL_LANE, dump_state, load_state, submit_lane
from bot.jobs.poll_schedule import past_deadline
from bot.jobs.results import collect_outputs
from bot.jobs.runner_base import RunnerBase
from bot.storage.database import Connection
from bot.storage.jobs import JobRecord, OutputRecord
from bot.storage.steps import Lease, LeaseLost
from providers.base import JobState, Kind

log = logging.getLogger(__name__)

# Downloads of one result tried at most this often (each after a fresh poll): an output that stays unreachable
# ends the job in minutes, not at its deadline (45 minutes for a video).
DOWNLOAD_TRIES = 6


class ResultSteps(RunnerBase):
    """The download step and the download done by the poll that saw the job finish."""

    async def _download_now(self, job: JobRecord, lease: Lease, state: JobState) -> bool:
        """The poll that saw the job finish takes its result home at once when a download place is free (no
        download step to write, claim and read: a transaction and a claim less per job). False leaves it to the
        download step (no free place). A failed download is handled as the download step would: polled again
        (fresh links) a few times, then failed."""
        if self.downloads.locked():
            return False
        seen = await self._seen_running(job, self._clock())
        async with self.downloads:
            self.calls["download"] += 1
            try:
                outputs = await collect_outputs(
                    job.id, Kind(job.kind), state.outputs, fetcher=self._fetcher, media=self._media, now=self._clock()
                )
            except FetchError as exc:
                outputs = None
                failure = exc
            except Exception:
                log.exception("job %s: its download failed unexpectedly; the download step tries again", job.id)
                return False
        if outputs is None:
            errors = job.poll_errors + 1
            if failure.retryable and errors < DOWNLOAD_TRIES and not past_deadline(job.deadline_at, self._clock()):
                log.info("job %s: download problem #%d (%s)", job.id, errors, failure)
                due = self._clock() + self._error_delay(job, errors, None)
                try:
                    async with self._db.transaction() as conn:
                        await self._steps.release(conn, lease, due_at=due, attempts=errors)
                        await self._jobs.note_poll(
                            conn, job.id, upstream_status=None, next_poll_at=due, poll_errors=errors
                        )
                except LeaseLost:
                    pass
            else:
                log.warning("job %s: result download refused: %s", job.id, failure)
                await self._fail(job, "download_failed", DOWNLOAD_FAILED, lease)
            return True
        await self._succeeded(job, lease, outputs, state, seen=seen)
        return True

    async def _to_download(self, job: JobRecord, lease: Lease, state: JobState | None) -> None:
        now = self._clock()
        seen = await self._seen_running(job, now) if state is not None else None
        try:
            async with self._db.transaction() as conn:
                await self._steps.advance(conn, lease, "download", DOWNLOAD_LANE, due_at=now)
                if state is not None:
                    await self._jobs.keep_result(conn, job.id, dump_state(state), state.upstream_status)
                if seen is not None:
                    await self._run_times_seen.record(
                        conn, job.id, job.model_key, seen_running_s=seen[0], done_s=seen[1], now=now
                    )
        except LeaseLost:
            return
        self._wake(DOWNLOAD_LANE)

    # ------------------------------------------------------------------ download
    async def download(self, lease: Lease) -> None:
        job = await self._jobs.get(lease.job_id)
        if job is None or job.status != "running":
            await self._steps.complete_one(lease)
            return
        if job.upstream_result is None:
            # Nothing to download (e.g. recovered by the sweep): ask the service again.
            await self._repoll(job, lease, 0.0)
            return
        state = load_state(job.upstream_result)
        self.calls["download"] += 1
        try:
            async with self.downloads:
                outputs = await collect_outputs(
                    job.id, Kind(job.kind), state.outputs, fetcher=self._fetcher, media=self._media, now=self._clock()
                )
        except FetchError as exc:
            errors = job.poll_errors + 1
            if exc.retryable and errors < DOWNLOAD_TRIES and not past_deadline(job.deadline_at, self._clock()):
                # A fresh poll usually hands out fresh URLs (presigned links expire).
                log.info("job %s: download problem #%d (%s)", job.id, errors, exc)
                await self._repoll(job, lease, self._error_delay(job, errors, None), errors=errors)
            else:
                log.warning("job %s: result download refused: %s", job.id, exc)
                await self._fail(job, "download_failed", DOWNLOAD_FAILED, lease)
            return
        await self._succeeded(job, lease, outputs, state)

    async def _succeeded(
        self,
        job: JobRecord,
        lease: Lease,
        outputs: list[OutputRecord],
        state: JobState,
        *,
        seen: tuple[float, float] | None = None,
    ) -> None:
        """The outputs are stored: the job succeeds (credits committed) in the step's fenced transaction, with
        what the poll saw of its run time (``seen``) for the learned poll plan."""

        async def record_run_time(conn: Connection) -> None:
            if seen is not None:
                now = self._clock()
                await self._run_times_seen.record(
                    conn, job.id, job.model_key, seen_running_s=seen[0], done_s=seen[1], now=now
                )

        try:
            ended = await self._transitions.succeed(
                lease, outputs, upstream_status=state.upstream_status, also=record_run_time
            )
        except LeaseLost:
            # Another process holds the step now (and writes the same files), or the job ended meanwhile.
            ended = False
            current = await self._jobs.get(job.id)
            if current is None or current.status in ("succeeded", "running"):
                return
        if ended:  # a slot came free: the submit lane's next claim moves the line (and says so)
            self._wake(submit_lane(job.provider))
        else:
            await self._media.purge_job(job.id)  # it ended meanwhile (cancelled): nobody will see these files

    async def _repoll(self, job: JobRecord, lease: Lease, delay_s: float, *, errors: int | None = None) -> None:
        now = self._clock()
        try:
            async with self._db.transaction() as conn:
                await self._steps.advance(conn, lease, "poll", POLL_LANE, due_at=now + delay_s)
                if errors is not None:
                    await self._jobs.note_poll(
                        conn, job.id, upstream_status=None, next_poll_at=now + delay_s, poll_errors=errors
                    )
        except LeaseLost:
            return
        self._wake(POLL_LANE)
