"""Lanes: each kind of work claims its own due steps from the database and runs them with its own bounded
concurrency, so a slow lane (a 60-second synchronous upstream, a Discord outage) never delays another.

A lane keeps nothing that matters in memory: it asks the database for due steps, leases them, and hands each to
its handler. It sleeps until the lane's next due time, a local ``wake()``, a finished handler, or ``idle_s`` at
most (work scheduled by another process is seen within that time). A step this process leased in the transaction
that made it (a callback's download) is handed to the lane's handler at once (``adopt``):
no claim, no wait for the lane's next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.storage.database import is_conflict
from bot.storage.steps import Lease, StepRepository

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Handler = Callable[[Lease], Awaitable[None]]
RETRY_AFTER_ERROR_S = 30.0
RETRY_AFTER_CONFLICT_S = 0.2  # a step whose transaction lost a deadlock (PostgreSQL) runs again at once


class Handoff(Protocol):
    """The engine as those who make a step see it (the callback inbox): whether a lane of this
    process can take a step now, and taking it. A step to hand over is leased to ``owner`` for ``lease_s`` in the
    transaction that makes it; if the process dies before or while running it, the lease runs out and any
    process claims it."""

    owner: str
    lease_s: float

    def has_room(self, lane: str) -> bool: ...

    async def take(self, lease: Lease) -> None: ...


@dataclass(frozen=True, slots=True)
class LaneSpec:
    name: str
    concurrency: int
    handler: Handler
    capacity: Callable[[], tuple[str, int] | None] = lambda: None  # a provider's free upstream slots
    paused_until: Callable[[], float] = lambda: 0.0  # e.g. a provider's Retry-After before acceptance
    claimed: Callable[[list[Lease]], None] | None = None  # told of each batch claimed (e.g. the line moved)
    adopt_max: int | None = None  # most handlers running with adopted steps included (default: ``concurrency``)


class Lane:
    def __init__(
        self,
        spec: LaneSpec,
        *,
        steps: StepRepository,
        owner: str,
        lease_s: float,
        idle_s: float,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self.spec = spec
        self._steps = steps
        self._owner = owner
        self._lease_s = lease_s
        self._idle_s = idle_s
        self._clock = clock
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._retime = asyncio.Event()
        self._running: dict[asyncio.Task[None], Lease] = {}
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._idling = False
        self._ask_database = True  # at the start, and after each idle_s round: the next due time of every process
        self._saturated = False  # the last claim filled every free place: more may be due once one frees
        self._wake_at = 0.0  # while idling: when the lane looks again by itself
        self.handled = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def busy(self) -> int:
        return len(self._running)

    def held(self) -> list[int]:
        """The steps this lane's handlers are working on (their leases are renewed)."""
        return [lease.step_id for lease in self._running.values()]

    def has_room(self) -> bool:
        """Whether a step leased outside a claim may be handed to this lane now (``adopt``)."""
        most = self.spec.concurrency if self.spec.adopt_max is None else self.spec.adopt_max
        return self._loop is not None and not self._stopping and len(self._running) < most

    def adopt(self, lease: Lease) -> bool:
        """Run a step of this lane that this process has just leased (in the transaction that made it), as if the
        lane had claimed it: its lease is renewed, a stop waits for it, an unexpected error hands it back. False
        when the lane is stopping: the caller hands the step back."""
        if self._loop is None or self._stopping:
            return False
        self._start_handler(lease)
        return True

    def _start_handler(self, lease: Lease) -> None:
        task = asyncio.create_task(self._run(lease), name=f"lane-{self.name}-job-{lease.job_id}")
        self._running[task] = lease
        task.add_done_callback(self._done)

    def start(self) -> None:
        self._steps.hint_listeners.append(self._heard)
        self._loop = asyncio.create_task(self._claim_loop(), name=f"lane-{self.name}")

    def _heard(self, lane: str, due_at: float) -> None:
        if lane == self.name and not self._stopping:
            self.hinted(due_at)

    def wake(self) -> None:
        self._wake.set()

    def hinted(self, due_at: float) -> None:
        """This process gave a step of the lane a later due time: wake up by then. (Heard when the statement runs,
        before its commit: a step due now is claimed on the ``wake()`` its writer sends after committing, and a
        lane not idling reads this hint when it next goes idle.)"""
        if self._saturated or not self._idling:
            return  # every place is taken (a handler that finishes wakes the lane), or the lane is busy claiming
        if self._clock() < due_at < self._wake_at:
            self._wake_at = due_at
            self._retime.set()

    async def stop(self, grace_s: float) -> None:
        """Claim nothing more; give running handlers ``grace_s`` to finish, then cancel them (their steps stay
        in the database and are released or re-claimed after the lease)."""
        self._stopping = True
        self._wake.set()
        if self._heard in self._steps.hint_listeners:
            self._steps.hint_listeners.remove(self._heard)
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self._clock()
            free = self.spec.concurrency - len(self._running)
            claimed: list[Lease] = []
            if free > 0 and now >= self.spec.paused_until():
                try:
                    claimed = await self._steps.claim(
                        self.name,
                        owner=self._owner,
                        now=now,
                        lease_s=self._lease_s,
                        limit=free,
                        capacity=self.spec.capacity(),
                    )
                except Exception:
                    log.exception("lane %s: claiming failed; trying again shortly", self.name)
            if claimed and self.spec.claimed is not None:
                self.spec.claimed(claimed)
            for lease in claimed:
                self._start_handler(lease)
            self._saturated = free <= 0 or (bool(claimed) and len(claimed) == free)
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)
                continue  # maybe more is due: claim again once a handler frees a place
            await self._idle(now, full=free <= 0)

    def _done(self, task: asyncio.Task[None]) -> None:
        # A freed place matters only if due work was left unclaimed for want of one; what the handler scheduled
        # (a next poll, a retry) comes through ``hinted``.
        self._running.pop(task, None)
        if self._saturated:
            self._wake.set()

    async def _run(self, lease: Lease) -> None:
        try:
            await self.spec.handler(lease)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Handlers deal with every failure they know. Anything else (e.g. a storage error): the step is handed
            # back to run again a little later; if even that fails, its lease (no longer renewed) runs out. A
            # deadlock rolled the step's transaction back: it runs again at once (its handler is re-runnable).
            retry_s = RETRY_AFTER_CONFLICT_S if is_conflict(exc) else RETRY_AFTER_ERROR_S
            if retry_s == RETRY_AFTER_CONFLICT_S:
                log.warning("lane %s: step %s of job %s lost a deadlock; again", self.name, lease.kind, lease.job_id)
            else:
                log.exception("lane %s: step %s of job %s failed unexpectedly", self.name, lease.kind, lease.job_id)
            try:
                await self._steps.release_one(lease, due_at=self._clock() + retry_s)
            except Exception:
                log.warning("lane %s: could not hand step %s back; its lease will expire", self.name, lease.step_id)
        finally:
            self.handled += 1

    async def _idle(self, now: float, *, full: bool) -> None:
        """Wait for a wake-up, or until the next step is due; a step due already but not claimed (no free
        upstream slot, a pause) waits for a wake-up or ``idle_s``."""
        timeout = self._idle_s
        paused = self.spec.paused_until()
        if paused > now:
            timeout = min(self._idle_s, paused - now)
        elif not full:
            # The due times this process wrote are known here; the database is asked only after a quiet idle_s
            # round (another process's steps), not after every claim.
            due = self._steps.due_hint(self.name, now)
            if due is None and self._ask_database:
                try:
                    due = await self._steps.next_due(self.name)
                except Exception:
                    log.exception("lane %s: could not read its next due time", self.name)
                # A hint heard during that read found the lane not idling yet: it is in the heap, read it now.
                hint = self._steps.due_hint(self.name, now)
                due = hint if due is None or (hint is not None and hint < due) else due
            if due is not None and due > now:
                timeout = min(self._idle_s, due - now)
        waker = asyncio.ensure_future(self._wake.wait())
        self._wake_at = now + timeout
        self._idling = True
        try:
            while True:  # a sooner due time (``hinted``) shortens the sleep without a claim
                self._retime.clear()
                sleeper = asyncio.ensure_future(self._sleep(max(0.0, self._wake_at - self._clock())))
                retimer = asyncio.ensure_future(self._retime.wait())
                try:
                    done, _ = await asyncio.wait({waker, sleeper, retimer}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    retimer.cancel()
                if waker in done or sleeper in done:
                    break
        finally:
            self._idling = False
            self._ask_database = not waker.done() and self._wake_at - now >= self._idle_s
            waker.cancel()

    def quiet(self, parked: set[object]) -> bool:
        """For tests on virtual time: idle, not woken, and every handler waits on a timer in ``parked``."""
        if self._loop is None or self._loop.done():
            return not self._running
        if not self._idling or self._wake.is_set() or self._retime.is_set():
            return False
        return all(task._fut_waiter in parked for task in self._running)  # type: ignore[attr-defined]


class LeaseKeeper:
    """Renews every lease this process holds, so a long step (a synchronous upstream call) keeps its claim."""

    def __init__(
        self,
        steps: StepRepository,
        held: Callable[[], list[int]],
        *,
        owner: str,
        lease_s: float,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self._steps = steps
        self._held = held
        self._owner = owner
        self._lease_s = lease_s
        self._clock = clock
        self._sleep = sleep

    async def run(self) -> None:
        while True:
            await self._sleep(self._lease_s / 3)
            try:
                await self._steps.renew(self._owner, self._held(), now=self._clock(), lease_s=self._lease_s)
            except Exception:
                log.exception("could not renew the engine's leases")
