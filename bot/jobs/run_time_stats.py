"""Each model's run-time distribution, learned from finished jobs and kept in memory: read from the database
(``storage/run_times.py``) at most every ``refresh_s`` (in the background: a poll never waits for it), with the
model's typical duration as the prior while there are few jobs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.jobs.poll_schedule import RunTimes
from bot.storage.run_times import RunTimeRepository

log = logging.getLogger(__name__)

WINDOW_S = 7 * 86400.0  # jobs older than a week say little about today's queue
PER_MODEL = 500


class RunTimeStats:
    def __init__(
        self,
        repo: RunTimeRepository,
        *,
        typical_s: Callable[[str], float],
        clock: Callable[[], float],
        refresh_s: float = 60.0,
    ) -> None:
        self._repo = repo
        self._typical_s = typical_s
        self._clock = clock
        self._refresh_s = refresh_s
        self._seen: dict[str, list[tuple[float, float]]] = {}
        self._runs: dict[str, RunTimes] = {}
        self._loaded_at: float | None = None
        self._refreshing: asyncio.Task[None] | None = None

    def runs(self, model_key: str) -> RunTimes:
        """The model's distribution now (the prior until the first read finished); starts a refresh when due."""
        self._maybe_refresh()
        runs = self._runs.get(model_key)
        if runs is None:  # before the first read, or a model with no jobs yet: the prior
            runs = RunTimes.learned(self._seen.get(model_key, []), self._typical_s(model_key))
            self._runs[model_key] = runs
        return runs

    async def refresh(self) -> None:
        now = self._clock()
        self._loaded_at = now
        try:
            seen = await self._repo.recent(since=now - WINDOW_S, per_model=PER_MODEL)
            typical = {model: self._typical_s(model) for model in seen}
            # The fit is pure CPU (tens of milliseconds per model): off the event loop.
            runs = await asyncio.to_thread(
                lambda: {model: RunTimes.learned(times, typical[model]) for model, times in seen.items()}
            )
        except Exception:
            log.warning("could not read the models' run times; keeping the ones known", exc_info=True)
            return
        self._seen, self._runs = seen, runs

    def _maybe_refresh(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return
        if self._loaded_at is not None and self._clock() - self._loaded_at < self._refresh_s:
            return
        try:
            self._refreshing = asyncio.get_running_loop().create_task(self.refresh(), name="run-time-stats")
        except RuntimeError:  # no loop (a synchronous caller): the next call starts it
            return
        self._loaded_at = self._clock()

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            await asyncio.gather(self._refreshing, return_exceptions=True)
