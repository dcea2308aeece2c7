"""The scheduler on virtual time: in-process fake providers (the ``Provider`` protocol, no HTTP), a real SQLite
database in tmp_path, the real repository, quota and transitions, and a recording ``notify``."""

from __future__ import annotations

import contextlib
import itertools
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

from bot.jobs.scheduler import Scheduler

from bot.catalogue import Catalogue
from bot.credits.service import QuotaService
from bot.fetch import Downloaded, FetchError
from bot.jobs import scheduler as scheduler_module
from bot.jobs.media_store import MediaStore
from bot.jobs.transitions import JobTransitions
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobRepository, NewJob
from providers.base import Capabilities, GenerationRequest, JobState, JobStatus, Kind, Output
from providers.errors import NotFoundError
from tests.fakes.media import image_bytes
from tests.jobs.virtual import T0, Driver, VirtualTime

PNG = image_bytes("png")


@dataclass
class RemoteJob:
    remote_id: str
    prompt: str
    submitted_at: float
    duration_s: float
    outcome: JobState | None = None  # a terminal state to answer once done (default: one PNG)
    polls: list[float] = field(default_factory=list)


class FakeProvider:
    """An upstream API in memory. Jobs finish ``duration_s`` after submission (virtual time); scripted errors
    (``submit_errors``/``poll_errors``) are raised first, in order. ``live`` counts jobs submitted whose terminal
    state the bot has not been told yet: what a provider sees as running."""

    name: ClassVar[str] = "wavespeed"

    def __init__(self, clock: VirtualTime, *, typical_s: float = 40.0, duration_s: float = 40.0) -> None:
        self.clock = clock
        self.typical_s = typical_s
        self.duration_s = duration_s
        self.jobs: dict[str, RemoteJob] = {}
        self.submits: list[tuple[float, str]] = []  # (time, prompt), errors included
        self.polls: list[tuple[float, str]] = []  # (time, remote id), errors included
        self.submit_errors: deque[Exception] = deque()
        self.poll_errors: deque[Exception] = deque()
        self.poll_after_s: float | None = None
        self.submit_answers_done = False
        self.submit_delay_s = 0.0  # how long each submit call takes (virtual time)
        self.durations: dict[str, float] = {}  # prompt -> duration, overriding duration_s
        self.outputs: Callable[[RemoteJob], tuple[Output, ...]] = lambda job: (Output("image/png", data=PNG),)
        self.live: set[str] = set()
        self.peak_live = 0
        self._ids = itertools.count(1)

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(kinds=frozenset({Kind.IMAGE}), fields=frozenset(), typical_duration_s=self.typical_s)

    @property
    def models(self) -> Sequence[str]:
        return ("wavespeed-ai/neta-lumina",)

    async def submit(self, request: GenerationRequest) -> JobState:
        self.submits.append((self.clock(), request.prompt))
        if self.submit_delay_s:
            await self.clock.sleep(self.submit_delay_s)
        if self.submit_errors:
            raise self.submit_errors.popleft()
        remote = RemoteJob(
            f"r{next(self._ids)}", request.prompt, self.clock(), self.durations.get(request.prompt, self.duration_s)
        )
        self.jobs[remote.remote_id] = remote
        self.live.add(remote.remote_id)
        self.peak_live = max(self.peak_live, len(self.live))
        if self.submit_answers_done:
            return self._state(remote)
        return JobState(remote.remote_id, JobStatus.QUEUED, upstream_status="created", request_id="req-1")

    async def poll(self, remote_id: str) -> JobState:
        self.polls.append((self.clock(), remote_id))
        if self.poll_errors:
            raise self.poll_errors.popleft()
        remote = self.jobs.get(remote_id)
        if remote is None:
            raise NotFoundError("no such job", provider=self.name, status=404)
        remote.polls.append(self.clock())
        return self._state(remote)

    def _state(self, remote: RemoteJob) -> JobState:
        if self.clock() - remote.submitted_at < remote.duration_s:
            return JobState(
                remote.remote_id, JobStatus.RUNNING, upstream_status="processing", poll_after_s=self.poll_after_s
            )
        self.live.discard(remote.remote_id)
        if remote.outcome is not None:
            return remote.outcome
        return JobState(remote.remote_id, JobStatus.SUCCEEDED, outputs=self.outputs(remote), upstream_status="done")

    def poll_times(self, remote_id: str) -> list[float]:
        return [t for t, rid in self.polls if rid == remote_id]


class FakeFetcher:
    """Stands in for ``Fetcher``: serves PNG bytes for any URL after the scripted ``errors``."""

    def __init__(self) -> None:
        self.errors: deque[FetchError] = deque()
        self.urls: list[str] = []

    async def download(self, url: str, *, kinds: Collection[str] = ("image", "video"), **_: Any) -> Downloaded:
        self.urls.append(url)
        if self.errors:
            raise self.errors.popleft()
        return Downloaded(data=PNG, media_type="image/png", width=64, height=64, url=url.split("?")[0])


def make_settings(tmp_path: Path, **provider: Any) -> Settings:
    block = {
        "max_concurrency": 2,
        "requests_per_minute": 60_000,
        "poll_interval_s": 2.0,
        "max_poll_interval_s": 10.0,
        **provider,
    }
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        output_dir=tmp_path / "media",
        poll_workers=4,
        image_deadline_s=600.0,
        daily_credits=10_000,
        max_running_jobs_per_user=10_000,
        wavespeed=block,
    )


class Rig:
    """A started scheduler and everything around it. ``driver`` moves virtual time."""

    def __init__(self, settings: Settings, db: Database, clock: VirtualTime, provider: FakeProvider) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.provider = provider
        self.jobs = JobRepository(db)
        self.quota = QuotaService(db, settings, ServerSettingsService(db, clock=clock), clock=clock)
        self.transitions = JobTransitions(db, self.jobs, self.quota, clock=clock)
        self.media = MediaStore(settings.output_dir)
        self.fetcher = FakeFetcher()
        self.catalogue = Catalogue.build(settings, {"wavespeed": provider})  # type: ignore[dict-item]
        self.notified: list[tuple[float, int]] = []
        self.scheduler = self._new_scheduler()
        self.driver = Driver(clock, self.quiet)

    def _new_scheduler(self) -> Scheduler:
        return Scheduler(
            settings=self.settings,
            jobs=self.jobs,
            providers={"wavespeed": self.provider},  # type: ignore[dict-item]
            catalogue=self.catalogue,
            transitions=self.transitions,
            fetcher=self.fetcher,  # type: ignore[arg-type]
            media=self.media,
            notify=lambda job_id: self.notified.append((self.clock(), job_id)),
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(7),
        )

    async def restart(self) -> None:
        """Stop the scheduler and start a new one on the same database (what a bot restart does)."""
        await self.scheduler.stop()
        self.scheduler = self._new_scheduler()
        await self.scheduler.start()

    def quiet(self) -> bool:
        scheduler = self.scheduler
        work = scheduler._work
        if work.qsize() or scheduler._wake.is_set():
            return False
        idle: set[Any] = set(getattr(work, "_getters", ())) | self.clock.waiting()
        workers = scheduler._tasks[1:]
        return all(task.done() or task._fut_waiter in idle for task in workers)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ jobs
    async def add(self, prompt: str = "a cat", *, user_id: int = 100, enqueue: bool = True) -> JobRecord:
        entry = self.catalogue.get("neta-lumina")
        assert entry is not None
        now = self.clock()
        new = NewJob(
            user_id=user_id,
            guild_id=1,
            channel_id=10,
            model_key=entry.key,
            provider=entry.provider,
            kind="image",
            prompt=prompt,
            params={"model": entry.upstream_model},
            cost=entry.cost,
            created_at=now,
            deadline_at=now + self.settings.image_deadline_s,
        )
        async with self.db.transaction() as conn:
            job_id = await self.jobs.insert(conn, new)
            await self.quota.reserve(
                conn, job_id=job_id, guild_id=1, user_id=user_id, role_ids=(), cost=entry.cost, now=now
            )
        job = await self.jobs.get(job_id)
        assert job is not None
        if enqueue:
            self.scheduler.enqueue(job)
        return job

    async def job(self, job_id: int) -> JobRecord:
        job = await self.jobs.get(job_id)
        assert job is not None
        return job

    async def ledger(self, job_id: int) -> list[str]:
        rows = await self.db.fetch_all("SELECT kind FROM credit_ledger WHERE job_id = ? ORDER BY id", (job_id,))
        return [row["kind"] for row in rows]

    async def finished(self, *job_ids: int) -> bool:
        for job_id in job_ids:
            if not (await self.job(job_id)).finished:
                return False
        return True

    async def run_until_finished(self, *job_ids: int, limit_s: float = 86_400.0) -> float:
        return await self.driver.run_until(lambda: self.finished(*job_ids), limit_s=limit_s)

    def notified_ids(self) -> list[int]:
        return [job_id for _, job_id in self.notified]


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path, *, start: bool = True, provider: FakeProvider | None = None, **block: Any
) -> AsyncIterator[Rig]:
    clock = provider.clock if provider is not None else VirtualTime(T0)
    settings = make_settings(tmp_path, **block)
    async with Database(settings.database_path) as db:
        engine = Rig(settings, db, clock, provider or FakeProvider(clock))
        if start:
            await engine.scheduler.start()
        try:
            yield engine
        finally:
            # A worker parked on a virtual timer would hold stop() for its whole real-time grace.
            with mock.patch.object(scheduler_module, "STOP_GRACE_S", 0.2):
                await engine.scheduler.stop()
