"""The job engine: lanes of leased steps from the database, the lease keeper and the sweep.

One submit lane per provider (``submit:<provider>``, as many at once as the provider's ``max_concurrency``; a
synchronous upstream such as Lumozai thereby holds only its own lane), one lane each for polls, downloads and
Discord (messages and pings). Nothing that matters lives in memory: a lane claims due steps with a lease, the
keeper renews this process's leases while handlers work, and the sweep gives every job that lacks a step the one
it needs (also jobs from databases made before steps existed), so nothing can sit forever. Several processes can
share one database: each has its own owner id, and every write of a step holder is fenced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.clock import shared_clock
from bot.jobs.delivery import DISCORD_LANE
from bot.jobs.lanes import Lane, LaneSpec, LeaseKeeper
from bot.jobs.outcomes import DOWNLOAD_LANE, POLL_LANE, QUEUE_TIMEOUT, RESTARTED_WHILE_SUBMITTING, submit_lane
from bot.jobs.runner import Runner
from bot.jobs.transitions import JobTransitions
from bot.render.job import queue_place
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRepository
from bot.storage.steps import Lease, StepRepository

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

STOP_GRACE_S = 10.0
HANDED_DOWNLOADS_PER_PLACE = 4


class DiscordSteps(Protocol):
    """The handlers of the discord lane (``Outbox``; tests may record instead)."""

    async def message(self, lease: Lease) -> None: ...

    async def ping(self, lease: Lease) -> None: ...


def new_owner() -> str:
    """A unique id for this process start: whose leases are whose."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass
class StepEngine:
    settings: Settings
    database: Database
    jobs: JobRepository
    steps: StepRepository
    transitions: JobTransitions
    clock: Clock = shared_clock
    sleep: Sleep = asyncio.sleep
    owner: str = ""

    def __post_init__(self) -> None:
        self.owner = self.owner or new_owner()
        self.lease_s = self.settings.engine_lease_s
        self.lanes: dict[str, Lane] = {}
        self.runner: Runner | None = None
        self.outbox: DiscordSteps | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.sweep_idle = False
        self._line_pending: set[str] = set()
        self._line_tasks: set[asyncio.Task[None]] = set()
        self._line_claimed_at: dict[str, float] = {}  # the last claim-driven look at each provider's line
        self.grace_s = STOP_GRACE_S
        self.heartbeat_at: float | None = None  # the sweep loop's last turn, for /healthz
        self.also_held: set[int] = set()  # steps leased outside the lanes (a command's first message): renewed too

    # ------------------------------------------------------------------ building
    def use(self, runner: Runner, outbox: DiscordSteps) -> None:
        """Build the lanes around the step handlers."""
        self.runner, self.outbox = runner, outbox
        specs = [
            LaneSpec(
                submit_lane(name),
                concurrency=block.max_concurrency,
                handler=runner.submit,
                capacity=lambda name=name, most=block.max_concurrency: (name, most),  # type: ignore[misc]
                paused_until=lambda name=name: runner.submit_paused_until(name),  # type: ignore[misc]
                claimed=lambda leases, name=name: self.line_changed(name, throttled=True),  # type: ignore[misc]
            )
            for name, block in runner.blocks.items()
        ]
        specs += [
            LaneSpec(POLL_LANE, concurrency=self.settings.poll_workers, handler=runner.poll),
            LaneSpec(
                DOWNLOAD_LANE,
                concurrency=self.settings.engine_download_concurrency,
                handler=runner.download,
                # Callbacks' downloads handed over: they wait for a download place (the runner's semaphore) in
                # memory rather than in the database, up to this many.
                adopt_max=HANDED_DOWNLOADS_PER_PLACE * self.settings.engine_download_concurrency,
            ),
            LaneSpec(DISCORD_LANE, concurrency=self.settings.engine_discord_concurrency, handler=self._discord_step),
        ]
        idle_s = self.settings.engine_idle_s
        self.lanes = {
            spec.name: Lane(
                spec,
                steps=self.steps,
                owner=self.owner,
                lease_s=self.lease_s,
                idle_s=idle_s,
                clock=self.clock,
                sleep=self.sleep,
            )
            for spec in specs
        }

    async def _discord_step(self, lease: Lease) -> None:
        assert self.outbox is not None
        if lease.kind == "ping":
            await self.outbox.ping(lease)
        else:
            await self.outbox.message(lease)

    def wake(self, lane: str) -> None:
        found = self.lanes.get(lane)
        if found is not None:
            found.wake()

    # ------------------------------------------------------------------ steps handed over (``lanes.Handoff``)
    def has_room(self, lane: str) -> bool:
        found = self.lanes.get(lane)
        return found is not None and found.has_room()

    async def take(self, lease: Lease) -> None:
        """Run a step this process leased in the transaction that made it on its lane now; if the lane is
        stopping, hand the step back (due now) for whoever runs next."""
        found = self.lanes.get(lease.lane)
        if found is not None and found.adopt(lease):
            return
        try:
            await self.steps.release_one(lease, due_at=self.clock())
        except Exception:
            log.warning("step %s of job %s could not be handed back; its lease will expire", lease.kind, lease.job_id)
        self.wake(lease.lane)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Sweep once (adopting jobs that lack a step) and read the models' run times, then start claiming."""
        try:
            await self.sweep()
        except Exception:
            log.exception("the first sweep failed; the sweep loop tries again")
        if self.runner is not None:
            await self.runner.run_times.refresh()
            self._tasks.append(asyncio.create_task(self.runner.run_times.keep_fresh(), name="engine-run-times"))
        for lane in self.lanes.values():
            lane.start()
        keeper = LeaseKeeper(
            self.steps, self.held, owner=self.owner, lease_s=self.lease_s, clock=self.clock, sleep=self.sleep
        )
        self._tasks.append(asyncio.create_task(keeper.run(), name="engine-leases"))
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="engine-sweep"))
        log.info("job engine started as %s with lanes %s", self.owner, ", ".join(self.lanes))

    async def stop(self) -> None:
        """Claim nothing more, give running handlers a grace period, then hand every lease back, so the next
        start (or another process) takes the work over at once."""
        for task in [*self._tasks, *self._line_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(lane.stop(self.grace_s) for lane in self.lanes.values()), return_exceptions=True)
        try:
            released = await self.steps.release_all(self.owner)
            log.info("job engine stopped; %d lease(s) handed back", released)
        except Exception:
            log.exception("could not hand the engine's leases back; they expire after %.0fs", self.lease_s)

    async def crash(self) -> None:
        """For tests: stop abruptly, as a killed process would (no grace, no release: the leases expire)."""
        for task in [*self._tasks, *self._line_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(lane.stop(0) for lane in self.lanes.values()), return_exceptions=True)

    def quiet(self, parked: set[object]) -> bool:
        """For tests on virtual time: nothing can progress until a timer in ``parked`` fires."""
        if any(task._fut_waiter not in parked for task in self._line_tasks):  # type: ignore[attr-defined]
            return False
        if self._tasks and not self.sweep_idle:
            return False
        if self.runner is not None and not self.runner.run_times.idle:
            return False
        return all(lane.quiet(parked) for lane in self.lanes.values())

    def held(self) -> list[int]:
        return [step_id for lane in self.lanes.values() for step_id in lane.held()] + list(self.also_held)

    @property
    def busy(self) -> int:
        return sum(lane.busy for lane in self.lanes.values())

    # ------------------------------------------------------------------ the sweep
    async def _sweep_loop(self) -> None:
        while True:
            self.heartbeat_at = self.clock()
            try:
                next_deadline = await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the sweep failed; trying again later")
                next_deadline = None
            wait = self.settings.engine_sweep_interval_s
            if next_deadline is not None:
                wait = max(0.0, min(wait, next_deadline - self.clock()))
            self.sweep_idle = True
            try:
                await self.sleep(wait)
            finally:
                self.sweep_idle = False

    async def sweep(self) -> float | None:
        """Give each job the step it lacks, fail queued jobs whose deadline passed; returns the next queue
        deadline (the sweep runs again by then)."""
        now = self.clock()
        woken: set[str] = set()
        orphans = await self.steps.orphans()
        interrupted: list[int] = []
        if orphans:
            async with self.database.transaction() as conn:
                for orphan in orphans:
                    job = await self.jobs.get_in(conn, orphan.job_id)
                    if job is None:
                        continue
                    if job.status == "submitting" and job.submit_sent_at is not None:
                        interrupted.append(job.id)  # it may have reached the service: never sent again
                        continue
                    if job.status in ("queued", "submitting"):
                        kind, lane = "submit", submit_lane(job.provider)
                    elif job.status == "running":
                        kind, lane = ("download", DOWNLOAD_LANE) if orphan.has_result else ("poll", POLL_LANE)
                    else:
                        kind, lane = "message", DISCORD_LANE
                    due = now
                    if kind == "poll" and job.next_poll_at is not None:
                        due = max(now, job.next_poll_at) if job.next_poll_at > now else now
                    priority = 1 if kind == "message" else 0
                    await self.steps.put(conn, job.id, kind, lane, due_at=due, now=now, priority=priority)
                    woken.add(lane)
            log.info("sweep: gave %d job(s) the step they lacked", len(orphans))
        for job_id in interrupted:
            log.warning("job %s was being submitted when its process stopped: failing it, not resubmitting", job_id)
            if await self.transitions.fail(
                job_id, code="interrupted_submit", message=RESTARTED_WHILE_SUBMITTING, from_statuses=("submitting",)
            ):
                woken.add(DISCORD_LANE)
        expired, next_deadline = await self.jobs.queue_deadlines(now)
        for job in expired:
            if self.runner is not None and self.runner.held(job.provider):
                continue  # its provider is paused: the job waits (resuming extends its deadline)
            if await self.transitions.fail(
                job.id, code="queue_timeout", message=QUEUE_TIMEOUT, from_statuses=("queued",)
            ):
                woken.add(DISCORD_LANE)
                self.line_changed(job.provider)
        for lane in woken:
            self.wake(lane)
        return next_deadline

    # ------------------------------------------------------------------ the line
    async def position(self, job_id: int) -> int | None:
        job = await self.jobs.get(job_id)
        if job is None or job.status != "queued":
            return None
        return await self.jobs.queue_position(job.id, job.provider)

    def line_changed(self, provider: str, *, throttled: bool = False) -> None:
        """Jobs left (or re-entered) the provider's line: update the places shown, soon (coalesced). ``throttled``
        (the submit lane's claims, which move the line all the time when it is long): at most once per
        ``edit_min_interval_s``, so a long line is read once per interval, not once per job that leaves it."""
        if provider in self._line_pending:
            return
        self._line_pending.add(provider)
        wait = 0.0
        if throttled:
            now = self.clock()
            last = self._line_claimed_at.get(provider)
            wait = 0.0 if last is None else max(0.0, last + self.settings.edit_min_interval_s - now)
            self._line_claimed_at[provider] = now + wait
        task = asyncio.create_task(self._line_task(provider, wait), name=f"engine-line-{provider}")
        self._line_tasks.add(task)
        task.add_done_callback(self._line_tasks.discard)

    async def _line_task(self, provider: str, wait: float) -> None:
        await (self.sleep(wait) if wait > 0 else asyncio.sleep(0))
        self._line_pending.discard(provider)
        try:
            await self.line_moved(provider)
        except Exception:
            log.exception("could not update the places in line of %s", provider)

    async def show_line(self, provider: str) -> None:
        """Every job waiting for the provider gets its message sent again (it was paused or resumed)."""
        line = await self.jobs.line(provider)
        if not line:
            return
        now = self.clock()
        async with self.database.transaction() as conn:
            await self.steps.want_many(conn, [(job_id, now) for job_id, *_ in line], "message", DISCORD_LANE, now=now)
        self.wake(DISCORD_LANE)

    async def line_moved(self, provider: str) -> None:
        """The provider's line moved: the waiting jobs whose shown place changed get their message edited, each
        once its last edit is ``queue_edit_interval_s`` old (all asked for in one statement)."""
        line = await self.jobs.line(provider)
        now = self.clock()
        interval = max(self.settings.edit_min_interval_s, self.settings.queue_edit_interval_s)
        moved = [
            (job_id, now if sent_at is None else max(now, sent_at + interval))
            for job_id, place, shown, sent_at in line
            if shown is not None and queue_place(place) != shown
        ]
        if not moved:
            return
        async with self.database.transaction() as conn:
            await self.steps.want_many(conn, moved, "message", DISCORD_LANE, now=now)
        self.wake(DISCORD_LANE)
