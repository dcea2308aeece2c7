"""Each model's run-time distribution, learned from finished jobs and kept in memory: read from the database
(``storage/run_times.py``) when the engine starts, then every ``refresh_s`` by a timer of its own (``keep_fresh``,
one of the engine's background tasks), so a poll never waits for it and the first jobs after an idle spell already
use a plan fitted on every job before it. The model's typical duration is the prior while there are few jobs."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from bot.jobs.poll_schedule import RunTimes
from bot.storage.run_times import RunTimeRepository

log = logging.getLogger(__name__)

WINDOW_S = 7 * 86400.0  # jobs older than a week say little about today's queue
PER_MODEL = 500

Seen = list[tuple[float, float]]


class RunTimeStats:
    def __init__(
        self,
        repo: RunTimeRepository,
        *,
        typical_s: Callable[[str], float],
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        refresh_s: float = 60.0,
        running_stale_s: float = 120.0,
    ) -> None:
        self._repo = repo
        self._typical_s = typical_s
        self._clock = clock
        self._sleep = sleep
        self._refresh_s = refresh_s
        self._running_stale_s = running_stale_s  # a job not seen running for this long is not followed any more
        self._seen: dict[str, Seen] = {}
        self._runs: dict[str, RunTimes] = {}
        # Jobs this process's polls last saw running: job id → (model, seconds after acceptance, when). Finished
        # jobs alone would tell a refit during a burst only about its early finishers; these say "longer than".
        self._running: dict[int, tuple[str, float, float]] = {}
        self.idle = True  # between two refreshes (for tests on virtual time)
        self.refreshed_at: float | None = None

    def runs(self, model_key: str) -> RunTimes:
        """The model's distribution as last fitted (the prior before the first read, or for a model with no jobs)."""
        runs = self._runs.get(model_key)
        if runs is None:
            runs = RunTimes.learned(self._seen.get(model_key, []), self._typical_s(model_key))
            self._runs[model_key] = runs
        return runs

    def seen_running(self, job_id: int, model_key: str, elapsed: float) -> None:
        """A poll found the job still running ``elapsed`` seconds after its acceptance."""
        self._running[job_id] = (model_key, elapsed, self._clock())

    def ended(self, job_id: int) -> float | None:
        """The job is done (or failed): when this process last saw it running (None: never, or another process)."""
        found = self._running.pop(job_id, None)
        return None if found is None else found[1]

    async def keep_fresh(self) -> None:
        """After the first refresh (the engine's start awaits it): one every ``refresh_s`` until cancelled."""
        while True:
            await self._sleep(self._refresh_s)
            self.idle = False
            try:
                await self.refresh()
            finally:
                self.idle = True

    async def refresh(self) -> None:
        """Read what recent jobs showed and refit each model whose records changed. A failed read keeps every plan
        known, a failed fit the model's own; both are logged."""
        try:
            recent = await self._repo.recent(since=self._clock() - WINDOW_S, per_model=PER_MODEL)
        except Exception:
            log.warning("could not read the models' run times; keeping the plans known", exc_info=True)
            return
        seen = {model: sorted(times) for model, times in recent.items()}
        for model, times in self._still_running().items():
            seen[model] = sorted([*seen.get(model, []), *times])
        changed = {model: times for model, times in seen.items() if self._seen.get(model) != times}
        typical = {model: self._typical_s(model) for model in changed}
        # The fit is pure CPU (tens of milliseconds per model): off the event loop.
        fitted = await asyncio.to_thread(_fit_each, changed, typical) if changed else {}
        for model in [*self._seen, *self._runs]:
            if model not in seen:  # no job within the window any more: back to the prior
                self._seen.pop(model, None)
                self._runs.pop(model, None)
        for model, runs in fitted.items():
            self._seen[model], self._runs[model] = changed[model], runs
        self.refreshed_at = self._clock()

    def _still_running(self) -> dict[str, Seen]:
        """Each model's jobs in flight as (last seen running, infinity): run times known only to be longer."""
        now = self._clock()
        running: dict[str, Seen] = {}
        for job_id, (model, elapsed, at) in list(self._running.items()):
            if now - at > self._running_stale_s:
                del self._running[job_id]
            elif elapsed > 0:
                running.setdefault(model, []).append((round(elapsed, 1), math.inf))
        return running


def _fit_each(seen: dict[str, Seen], typical: dict[str, float]) -> dict[str, RunTimes]:
    fitted = {}
    for model, times in seen.items():
        try:
            fitted[model] = RunTimes.learned(times, typical[model])
        except Exception:
            log.warning("could not fit the run times of %s; keeping its plan", model, exc_info=True)
    return fitted
