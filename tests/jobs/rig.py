"""The job engine on virtual time: in-process fake providers (the ``Provider`` protocol, no HTTP), a real SQLite
database in tmp_path, the real repositories, credits, transitions, runner and lanes, and a discord lane that
records each message step (what the outbox would send) instead of calling Discord."""

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

from bot.catalogue import Catalogue
from bot.credits.service import QuotaService
from bot.fetch import Downloaded, FetchError
from bot.jobs import engine as engine_module
from bot.jobs.delivery import DISCORD_LANE, Outbox
from bot.jobs.engine import StepEngine
from bot.jobs.media_store import MediaStore
from bot.jobs.outcomes import submit_lane
from bot.jobs.runner import Runner
from bot.jobs.transitions import JobTransitions
from bot.render.job import queue_place
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobRepository, NewJob
from bot.storage.steps import Lease, LeaseLost, StepRepository
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


def make_settings(tmp_path: Path, *, extra: dict[str, Any] | None = None, **provider: Any) -> Settings:
    block = {
        "max_concurrency": 2,
        "requests_per_minute": 60_000,
        "poll_interval_s": 2.0,
        "max_poll_interval_s": 10.0,
        **provider,
    }
    values: dict[str, Any] = {
        "database_path": tmp_path / "bot.sqlite3",
        "output_dir": tmp_path / "media",
        "poll_workers": 4,
        "engine_idle_s": 3600.0,  # one process: local wake-ups are enough, and fewer virtual timers
        "engine_sweep_interval_s": 3600.0,
        "poll_target_latency_s": 2.0,
        "image_deadline_s": 600.0,
        "daily_credits": 10_000,
        "max_running_jobs_per_user": 10_000,
        "wavespeed": block,
        **(extra or {}),
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class RecordingOutbox:
    """The discord lane's handlers, recording instead of sending: each message step is a (time, job id) in
    ``notified`` and is confirmed as the outbox would (shown version, place in line), in one fenced transaction."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig

    async def message(self, lease: Lease) -> None:
        r = self.rig
        job = await r.jobs.get(lease.job_id)
        assert job is not None
        position = await r.jobs.queue_position(job.id, job.provider) if job.status == "queued" else None
        r.notified.append((r.clock(), job.id))
        try:
            async with r.db.transaction() as conn:
                await r.steps.complete(conn, lease)
                await r.jobs.message_shown(
                    conn,
                    job.id,
                    version=job.version,
                    now=r.clock(),
                    path="token",
                    message_id=None,
                    final=job.finished,
                    place=queue_place(position) if position else None,
                )
        except LeaseLost:
            pass

    async def ping(self, lease: Lease) -> None:
        async with self.rig.db.transaction() as conn:
            await self.rig.steps.complete(conn, lease)


class Rig:
    """A started engine and everything around it. ``driver`` moves virtual time. ``providers`` are the fake
    upstreams by name (``provider`` is the WaveSpeed one); with ``client`` (a ``StubClient``) the discord lane runs
    the real outbox against it instead of recording message steps."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: VirtualTime,
        provider: FakeProvider,
        *,
        more_providers: dict[str, FakeProvider] | None = None,
        client: Any = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.provider = provider
        self.providers: dict[str, FakeProvider] = {"wavespeed": provider, **(more_providers or {})}
        self.client = client
        self.jobs = JobRepository(db)
        self.steps = StepRepository(db)
        self.quota = QuotaService(db, settings, ServerSettingsService(db, clock=clock), clock=clock)
        self.transitions = JobTransitions(db, self.jobs, self.quota, self.steps, clock=clock)
        self.media = MediaStore(settings.output_dir)
        self.fetcher = FakeFetcher()
        self.catalogue = Catalogue.build(settings, self.providers)  # type: ignore[arg-type]
        self.notified: list[tuple[float, int]] = []
        self.others: list[StepEngine] = []  # engines of other "processes" sharing the database file
        self.engine = self.new_engine()
        self.driver = Driver(clock, self.quiet)

    def new_engine(self, owner: str = "", database: Database | None = None) -> StepEngine:
        """An engine (a process) on ``database`` (default: the rig's own connection to the file)."""
        db = database or self.db
        jobs, steps = (self.jobs, self.steps) if db is self.db else (JobRepository(db), StepRepository(db))
        quota = self.quota if db is self.db else QuotaService(db, self.settings, ServerSettingsService(db))
        transitions = self.transitions if db is self.db else JobTransitions(db, jobs, quota, steps, clock=self.clock)
        engine = StepEngine(
            settings=self.settings,
            database=db,
            jobs=jobs,
            steps=steps,
            transitions=transitions,
            clock=self.clock,
            sleep=self.clock.sleep,
            owner=owner,
        )
        transitions.on_message = lambda: engine.wake(DISCORD_LANE)
        runner = Runner(
            settings=self.settings,
            database=db,
            jobs=jobs,
            steps=steps,
            providers=self.providers,  # type: ignore[arg-type]
            catalogue=self.catalogue,
            transitions=transitions,
            fetcher=self.fetcher,  # type: ignore[arg-type]
            media=self.media,
            wake=engine.wake,
            line_changed=engine.line_changed,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(7),
        )
        engine.use(runner, self._outbox(db, jobs, steps, engine))
        engine.grace_s = 0.2  # a handler parked on a virtual timer would hold stop() for its whole grace
        return engine

    def _outbox(self, db: Database, jobs: JobRepository, steps: StepRepository, engine: StepEngine) -> Any:
        if self.client is None:
            return RecordingOutbox(self)
        outbox = Outbox(
            client=self.client,
            database=db,
            jobs=jobs,
            steps=steps,
            media=self.media,
            settings=self.settings,
            catalogue=self.catalogue,
            server_settings=ServerSettingsService(db, clock=self.clock),
            wake=engine.wake,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(7),
        )
        client = self.client

        async def edit_with_token(job: Any, kwargs: dict[str, Any]) -> None:
            await client._recorder("token")(**kwargs)

        outbox._edit_with_token = edit_with_token  # type: ignore[method-assign]
        return outbox

    @property
    def runner(self) -> Runner:
        assert self.engine.runner is not None
        return self.engine.runner

    async def restart(self) -> None:
        """Stop the engine cleanly and start a new one on the same database (what a bot restart does)."""
        await self.engine.stop()
        self.engine = self.new_engine()
        await self.engine.start()

    async def crash_and_restart(self, *, down_s: float | None = None) -> None:
        """Stop abruptly (no grace, no hand-back: leases stay until they expire), let ``down_s`` pass (by default
        just past the lease), then start a new engine with a new owner."""
        await self.engine.crash()
        self.clock.now += self.settings.engine_lease_s + 1 if down_s is None else down_s
        self.engine = self.new_engine()
        await self.engine.start()

    def quiet(self) -> bool:
        parked = self.clock.waiting()
        engines = (self.engine, *self.others)
        for engine in engines:  # a handler waiting for a download place is idle while the places' holders are
            parked |= set(getattr(engine.runner.downloads, "_waiters", None) or ()) if engine.runner else set()
        return all(engine.quiet(parked) for engine in engines)

    async def position(self, job_id: int) -> int | None:
        return await self.engine.position(job_id)

    # ------------------------------------------------------------------ jobs
    async def add(
        self,
        prompt: str = "a cat",
        *,
        user_id: int = 100,
        enqueue: bool = True,
        model_key: str = "neta-lumina",
        **job: Any,
    ) -> JobRecord:
        entry = self.catalogue.get(model_key)
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
            **job,
        )
        async with self.db.transaction() as conn:
            job_id = (await self.jobs.insert(conn, new)).id
            await self.quota.reserve(
                conn, job_id=job_id, guild_id=1, user_id=user_id, role_ids=(), cost=entry.cost, now=now
            )
            if enqueue:  # what JobService.start writes; without it, only a sweep finds the job
                await self.steps.put(conn, job_id, "submit", submit_lane(entry.provider), due_at=now, now=now)
                await self.steps.put(conn, job_id, "message", DISCORD_LANE, due_at=now, now=now)
        job = await self.jobs.get(job_id)
        assert job is not None
        if enqueue:
            self.engine.wake(submit_lane(entry.provider))
            self.engine.wake(DISCORD_LANE)
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
    tmp_path: Path,
    *,
    start: bool = True,
    provider: FakeProvider | None = None,
    more_providers: dict[str, FakeProvider] | None = None,
    client: Any = None,
    extra: dict[str, Any] | None = None,
    **block: Any,
) -> AsyncIterator[Rig]:
    clock = provider.clock if provider is not None else VirtualTime(T0)
    settings = make_settings(tmp_path, extra=extra, **block)
    async with Database(settings.database_path) as db:
        engine = Rig(settings, db, clock, provider or FakeProvider(clock), more_providers=more_providers, client=client)
        if start:
            await engine.engine.start()
        try:
            yield engine
        finally:
            with mock.patch.object(engine_module, "STOP_GRACE_S", 0.2):
                for other in engine.others:
                    await other.stop()
                await engine.engine.stop()
