"""The outbox on virtual time without Discord: the discord lane alone, with a recording stand-in for the client
(``StubClient``: scripted errors per path, nonces honoured like Discord's) and helpers to add and change jobs."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord

from bot.catalogue import Catalogue
from bot.jobs.delivery import DISCORD_LANE, Outbox
from bot.jobs.lanes import Lane, LaneSpec
from bot.jobs.media_store import MediaStore
from bot.jobs.transitions import FINAL_PRIORITY
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRepository, NewJob
from bot.storage.steps import Lease, StepRepository
from tests.jobs.rig import FakeProvider
from tests.jobs.virtual import T0, Driver, VirtualTime


def http_error(status: int, code: int = 0) -> discord.HTTPException:
    return discord.HTTPException(SimpleNamespace(status=status, reason="x"), {"code": code, "message": "nope"})


class StubClient:
    """Just what the outbox touches on a discord.Client for the bot-token paths; every call is recorded. New
    messages (channel or DM) with a nonce already used on that path return the message made then, as Discord
    does; ``created`` lists the messages really made. ``after`` (if set) runs after each successful call."""

    allowed_mentions = discord.AllowedMentions.none()

    def __init__(self, sent: list[tuple[float, str, dict[str, Any]]], clock: VirtualTime) -> None:
        self.sent = sent
        self.clock = clock
        self.errors: dict[str, deque[BaseException]] = defaultdict(deque)
        self.created: list[tuple[str, int]] = []
        self.after: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        self.refuse: Callable[[str, dict[str, Any]], BaseException | None] | None = None
        self.down_until = 0.0  # an outage: every call fails with ``down_errors`` (in turn) until then
        self.down_errors: list[BaseException] = []
        self._down_calls = 0
        self._nonces: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(777)

    def get_guild(self, guild_id: int) -> None:
        return None

    def get_partial_messageable(self, channel_id: int) -> Any:
        return SimpleNamespace(
            get_partial_message=lambda message_id: SimpleNamespace(edit=self._recorder("channel")),
            send=self._recorder("new_message"),
        )

    async def create_dm(self, user: Any) -> Any:
        return SimpleNamespace(send=self._recorder("dm"))

    def _recorder(self, path: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.sent.append((self.clock(), path, kwargs))
            if self.clock() < self.down_until and self.down_errors:
                self._down_calls += 1
                raise self.down_errors[self._down_calls % len(self.down_errors)]
            if self.errors[path]:
                raise self.errors[path].popleft()
            refused = self.refuse(path, kwargs) if self.refuse is not None else None
            if refused is not None:
                raise refused
            message_id = 0
            if path in ("new_message", "dm"):
                nonce = kwargs.get("nonce")
                known = self._nonces.get((path, str(nonce))) if nonce is not None else None
                if known is None:
                    known = next(self._ids)
                    self.created.append((path, known))
                    if nonce is not None:
                        self._nonces[(path, str(nonce))] = known
                message_id = known
            if self.after is not None:
                await self.after(path, kwargs)
            return SimpleNamespace(id=message_id or 777)

        return call


@dataclasses.dataclass
class Setup:
    delivery: Outbox
    lane: Lane
    steps: StepRepository
    jobs: JobRepository
    db: Database
    driver: Driver
    clock: VirtualTime
    client: StubClient
    sent: list[tuple[float, str, dict[str, Any]]]
    positions: dict[int, int]

    def contents(self, path: str | None = None) -> list[str]:
        return [kwargs["content"] for _, p, kwargs in self.sent if path is None or p == path]

    def times(self) -> list[float]:
        return [at - T0 for at, _, _ in self.sent]

    async def add(self, **changes: Any) -> int:
        values: dict[str, Any] = {
            "user_id": 111_111_111_111_111_111,
            "guild_id": 222_222_222_222_222_222,
            "channel_id": 333,
            "model_key": "neta-lumina",
            "provider": "wavespeed",
            "kind": "image",
            "prompt": "a cat",
            "params": {"model": "wavespeed-ai/neta-lumina"},
            "cost": 1,
            "created_at": T0,
            "deadline_at": T0 + 600,
            "application_id": 99,
            "interaction_token": "tok",
            "token_expires_at": T0 + 900,
            **changes,
        }
        async with self.db.transaction() as conn:
            job_id = (await self.jobs.insert(conn, NewJob(**values))).id
        await self.jobs.set_message(job_id, 5000 + job_id)
        return job_id

    async def update(self, job_id: int, **columns: Any) -> None:
        """Change the job as the engine would (a new version)."""
        assignments = ", ".join(f"{name} = ?" for name in columns)
        await self.db.execute(
            f"UPDATE jobs SET {assignments}, version = version + 1 WHERE id = ?", (*columns.values(), job_id)
        )

    async def notify(self, job_id: int) -> None:
        """What a transition does: want a message step (final results first), then the lane takes it."""
        job = await self.jobs.get(job_id)
        assert job is not None
        now = self.clock()
        async with self.db.transaction() as conn:
            await self.steps.want(
                conn, job_id, "message", DISCORD_LANE, due_at=now, now=now, priority=FINAL_PRIORITY * job.finished
            )
        self.lane.wake()
        await self.driver.settle()


@contextlib.asynccontextmanager
async def outbox_setup(tmp_path: Path, **settings_values: Any) -> AsyncIterator[Setup]:
    clock = VirtualTime()
    settings = Settings(  # type: ignore[call-arg]
        **{
            "_env_file": None,
            "edit_min_interval_s": 2.0,
            "queue_edit_interval_s": 10.0,
            "completion_ping_after_s": 1e9,
            **settings_values,
        }
    )
    sent: list[tuple[float, str, dict[str, Any]]] = []
    client = StubClient(sent, clock)
    positions: dict[int, int] = {}
    async with Database(tmp_path / "bot.sqlite3") as db:
        jobs = JobRepository(db)
        steps = StepRepository(db)
        delivery = Outbox(
            client=client,  # type: ignore[arg-type]
            database=db,
            jobs=jobs,
            steps=steps,
            media=MediaStore(tmp_path / "media"),
            settings=settings,
            catalogue=Catalogue.build(settings, {"wavespeed": FakeProvider(clock)}),  # type: ignore[dict-item]
            server_settings=ServerSettingsService(db, clock=clock),
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(7),
        )

        async def edit_with_token(job: Any, kwargs: dict[str, Any]) -> None:
            await client._recorder("token")(**kwargs)

        async def position(job: Any) -> int | None:
            return positions.get(job.id) if job.status == "queued" else None

        delivery._edit_with_token = edit_with_token  # type: ignore[method-assign]
        delivery.position = position  # type: ignore[method-assign]

        async def handle(lease: Lease) -> None:
            await (delivery.ping(lease) if lease.kind == "ping" else delivery.message(lease))

        lane = Lane(
            LaneSpec(DISCORD_LANE, concurrency=8, handler=handle),
            steps=steps,
            owner="test",
            lease_s=30.0,
            idle_s=3600.0,
            clock=clock,
            sleep=clock.sleep,
        )
        delivery._wake = lambda name: lane.wake()  # as the engine wires it
        lane.start()

        def quiet() -> bool:
            return lane.quiet(clock.waiting())

        yield Setup(delivery, lane, steps, jobs, db, Driver(clock, quiet), clock, client, sent, positions)
        await lane.stop(0.2)
