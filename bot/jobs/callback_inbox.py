"""Provider callbacks, received by whichever process serves ``WEBHOOK_PUBLIC_URL``: checked, then applied as the
poll that found the same state would have been, in one transaction committed before the provider gets its 2xx.

Refused (4xx, logged without the secret or the body): an unknown provider or job, a wrong per-job secret, a bad or
stale signature (WaveSpeed), a delivery taken before, a callback for another upstream job or for a job that has
already finished. A job still being submitted answers 503 (the provider may send it again; polling finds it
anyway). The step engine carries on from the database: a download is due now, or the job failed (refunded) and its
message is due. A result's download is leased to this process in the callback's own transaction when its
download lane has room, and handed to that lane at once, no claim in between (if this process dies first, the
lease runs out and any process claims the step).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.clock import shared_clock
from bot.jobs.callback_links import secret_matches, takes_callbacks
from bot.jobs.lanes import Handoff
from bot.jobs.outcomes import DOWNLOAD_LANE, GENERIC_FAILURE, POLL_LANE, dump_state, submit_lane
from bot.jobs.transitions import JobTransitions
from bot.storage.callbacks import CallbackRepository
from bot.storage.database import Connection, Database
from bot.storage.jobs import JobRepository
from bot.storage.run_times import RunTimeRepository
from bot.storage.steps import Lease, StepRepository
from providers.base import Callback, CallbackRefused, JobStatus, Provider

log = logging.getLogger(__name__)

FORGET_EVERY_S = 3600.0
KEEP_DELIVERIES_S = 86400.0
EXACT_S = 0.05  # the width given to a run time a callback reported


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    text: str


class CallbackInbox:
    def __init__(
        self,
        database: Database,
        jobs: JobRepository,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = shared_clock,
    ) -> None:
        self._db = database
        self._jobs = jobs
        self._providers = providers
        self._repo = CallbackRepository(database)
        self._steps = StepRepository(database)
        self._run_times = RunTimeRepository(database)
        self._clock = clock
        # Set when the job engine starts (``Services.start``): until then callbacks are answered 503.
        self.transitions: JobTransitions | None = None
        self.wake: Callable[[str], None] = lambda lane: None
        self.hand: Handoff | None = None  # this process's engine: a result's download is run here at once
        # Told of every answer (metrics): provider (only a known one, else "unknown"), status.
        self.answered: Callable[[str, int], None] = lambda provider, status: None
        self.taken = 0
        self.refused = 0
        self._forgotten_at = 0.0

    async def receive(
        self, provider: str, job_ref: str, secret: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        answer = await self._receive(provider, job_ref, secret, headers, body)
        self.answered(provider if provider in self._providers else "unknown", answer.status)
        if answer.status >= 400:
            self.refused += 1
            # Forged or misdirected ones are worth an operator's look; late duplicates are routine.
            level = logging.INFO if answer.status in (409, 503) else logging.WARNING
            log.log(level, "callback refused (%s job %s): %d %s", provider, job_ref[:20], answer.status, answer.text)
        else:
            self.taken += 1
            await self._forget_old_deliveries()
        return answer

    async def _forget_old_deliveries(self) -> None:
        """Once an hour: delivery ids of a day ago are past any signature's age and any job's run."""
        now = self._clock()
        if now - self._forgotten_at < FORGET_EVERY_S:
            return
        self._forgotten_at = now
        try:
            await self._repo.forget_deliveries(before=now - KEEP_DELIVERIES_S)
        except Exception:
            log.warning("could not forget old callback deliveries", exc_info=True)

    async def _receive(
        self, provider: str, job_ref: str, secret: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        adapter = self._providers.get(provider)
        if adapter is None or not takes_callbacks(adapter):
            return Answer(404, "unknown provider")
        if not job_ref.isdigit():
            return Answer(404, "unknown job")
        job_id = int(job_ref)
        stored = await self._repo.secret_hash(job_id, provider)
        if stored is None:
            return Answer(404, "unknown job")
        if not secret_matches(secret, stored):
            return Answer(403, "wrong callback secret")
        try:
            callback: Callback = adapter.read_callback(headers, body, now=self._clock())  # type: ignore[attr-defined]
        except CallbackRefused as exc:
            return Answer(exc.status, exc.reason)
        transitions = self.transitions
        if transitions is None:
            return Answer(503, "starting; send again")

        async def apply(conn: Connection) -> tuple[Answer, Lease | None]:
            return await self._apply(conn, transitions, provider, job_id, callback)

        answer, download = await self._db.transact(apply, attempts=3)
        if download is not None and self.hand is not None:
            await self.hand.take(download)
        elif answer.status == 200:
            self._after(provider, callback.state.status)
        return answer

    async def _apply(
        self, conn: Connection, transitions: JobTransitions, provider: str, job_id: int, callback: Callback
    ) -> tuple[Answer, Lease | None]:
        now = self._clock()
        state = callback.state
        await self._steps.lock_job(conn, job_id)
        job = await self._jobs.get_in(conn, job_id)
        if job is None or job.provider != provider:
            return Answer(404, "unknown job"), None
        if job.finished:
            return Answer(409, f"job already {job.status}"), None
        if job.status != "running" or job.remote_id is None:
            return Answer(503, "job not accepted yet; send again"), None
        if state.remote_id != job.remote_id:
            return Answer(403, "callback for another upstream job"), None
        delivery = callback.delivery_id or f"{state.remote_id}:{state.upstream_status or state.status}"
        if not await self._repo.first_delivery(conn, provider, delivery, job_id, now):
            return Answer(409, "delivery already taken (replayed)"), None
        if job.upstream_result is not None:
            return Answer(409, "result already known"), None
        if state.status is JobStatus.SUCCEEDED:
            if job.submitted_at is not None:  # told at once: the run time is known to the moment
                done_s = max(0.0, now - job.submitted_at)
                await self._run_times.record(
                    conn, job_id, job.model_key, seen_running_s=done_s - EXACT_S, done_s=done_s, now=now
                )
            await self._jobs.keep_result(conn, job_id, dump_state(state), state.upstream_status)
            await self._steps.drop_run_steps(conn, job_id)  # its poll: a poller mid-poll then writes nothing
            return Answer(200, "ok"), await self._download_step(conn, job_id, now)
        if state.status is JobStatus.FAILED and state.retryable and state.failure_code == "no_output":
            # Done, but without a usable output in the callback: a poll now asks the way a poll knows how.
            await self._steps.want(conn, job_id, "poll", POLL_LANE, due_at=now, now=now)
        elif state.status is JobStatus.FAILED:
            await transitions.fail_in(
                conn, job_id, code=state.failure_code or "failed", now=now,
                message=state.failure_message or GENERIC_FAILURE, upstream_status=state.upstream_status,
            )  # fmt: skip
        elif state.upstream_status and state.upstream_status != job.upstream_status:
            await self._jobs.note_poll(
                conn, job_id, upstream_status=state.upstream_status, next_poll_at=job.next_poll_at or now,
                poll_errors=job.poll_errors, visible=True,
            )  # fmt: skip
            await transitions.show(conn, job_id, now=now)
        return Answer(200, "ok"), None

    async def _download_step(self, conn: Connection, job_id: int, now: float) -> Lease | None:
        """The job's download, due now: leased to this process (returned, to hand to its lane after the commit)
        when its download lane has room, else left for any process's download lane."""
        hand = self.hand
        if hand is not None and hand.has_room(DOWNLOAD_LANE):
            return await self._steps.put_leased(
                conn, job_id, "download", DOWNLOAD_LANE, owner=hand.owner, now=now, lease_s=hand.lease_s
            )
        await self._steps.put(conn, job_id, "download", DOWNLOAD_LANE, due_at=now, now=now)
        return None

    def _after(self, provider: str, status: JobStatus) -> None:
        if status is JobStatus.SUCCEEDED:
            self.wake(DOWNLOAD_LANE)
        elif status is JobStatus.FAILED:
            self.wake(POLL_LANE)
            self.wake(submit_lane(provider))
            if self.transitions is not None:
                self.transitions.on_message()
        else:
            self.wake("discord")
