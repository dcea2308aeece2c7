"""Three real processes on one PostgreSQL database: two gateway shard processes (``SHARD_COUNT=2``, one shard each)
and a worker (``python -m bot worker``), against the fake Discord and the fake providers.

- 500 jobs from 50 users in four servers (two per shard), one shard process SIGKILLed mid-run: every job
  delivered exactly once, nothing submitted twice, credits exact (a reserve and one commit or refund per job, and
  the usage rows equal the ledger), and the steps the dead process held are taken over within the lease time.
- A rolling restart: a new process started while the old one runs, then the old one stopped with SIGTERM; nothing
  is lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.storage.database import Database
from tests.e2e.harness import eventually
from tests.fakes.discord.server import FakeDiscord
from tests.fakes.providers._server import Timing

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
JOBS = 500
USERS = 50
LEASE_S = 2.0
IDLE_S = 0.3
SUBMITS_AT_ONCE = 24


def process_env(tmp_path: Path, fake: FakeDiscord, fakes: Any, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "WAVESPEED", "LUMA", "LUMOZAI", "DEV_GUILD_ID", "ENGINE_", "SHARD_"))
    }
    env.update(
        {
            "DISCORD_TOKEN": fake.token,
            "DISCORD_API_BASE_URL": fake.api_base,
            "DATABASE_URL": database_url,
            "DATABASE_POOL_SIZE": "8",
            "OUTPUT_DIR": str(tmp_path / "outputs"),  # shared by every process, as a shared volume would be
            "ALLOW_LOOPBACK_FETCH": "true",
            "DAILY_CREDITS": "10000",
            "MAX_RUNNING_JOBS_PER_USER": "10000",
            "EDIT_MIN_INTERVAL_S": "0.05",
            "QUEUE_EDIT_INTERVAL_S": "5",
            "COMPLETION_PING_AFTER_S": "3600",
            "ENGINE_LEASE_S": str(LEASE_S),
            "ENGINE_IDLE_S": str(IDLE_S),
            "ENGINE_SWEEP_INTERVAL_S": "1",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    for name, block in fakes.settings_blocks(wavespeed={"max_concurrency": SUBMITS_AT_ONCE}).items():
        for key, value in block.items():
            env[f"{name.upper()}__{key.upper()}"] = str(value)
    return env


class Process:
    """One ``python -m bot [command]`` subprocess, its log in ``tmp_path/<name>.log``."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.cwd = tmp_path
        self.log_path = tmp_path / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, env: dict[str, str], *args: str) -> Process:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *args, cwd=self.cwd, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        await eventually(lambda: "job engine started as" in self.log(), timeout=30, interval=0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def owner_pattern(self) -> str:
        assert self.proc is not None
        return f"%-{self.proc.pid}-%"

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` and wait; a process still running after 30 s is killed (never left behind), and fails."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout=30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise AssertionError(f"{self.name} did not stop on signal {sig}") from None


async def shards_live(fake: FakeDiscord, shards: Sequence[int]) -> None:
    def live() -> bool:
        return {s.shard[0] for s in fake.gateway.live_sessions()} >= set(shards)

    await eventually(live, timeout=30, interval=0.05)


def guilds_on_both_shards(fake: FakeDiscord) -> list[tuple[int, int]]:
    """(guild, channel) pairs: two guilds on shard 0 and two on shard 1 of 2."""
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    guild_id = 1_300_000_000_000_000_000
    while min(len(found[0]), len(found[1])) < 2:
        guild_id += 1 << 22
        shard = (guild_id >> 22) % 2
        if len(found[shard]) < 2:
            fake.add_guild(f"guild {guild_id}", guild_id=guild_id)
            channel = fake.add_channel(guild_id, "general")
            found[shard].append((guild_id, int(channel.id)))
    return found[0] + found[1]


async def send_commands(fake: FakeDiscord, numbers: range, places: list[tuple[int, int]], users: list[int]) -> None:
    for n in numbers:
        guild_id, channel_id = places[n % len(places)]
        payload = fake.slash_command(
            "imagine", {"prompt": f"job {n}"}, user_id=users[n % len(users)], guild_id=guild_id, channel_id=channel_id
        )
        await fake.dispatch(payload)
        await asyncio.sleep(0.004)


async def check_everything(database: Database, fake: FakeDiscord, fakes: Any, expected_jobs: int) -> list[Any]:
    """Every job ended and was delivered once, charged once, submitted once; returns the jobs."""
    jobs = await database.fetch_all("SELECT * FROM jobs ORDER BY id")
    assert len(jobs) == expected_jobs
    ledger: dict[int, list[str]] = defaultdict(list)
    reserved: dict[int, int] = {}
    for row in await database.fetch_all("SELECT job_id, kind, period_delta FROM credit_ledger ORDER BY id"):
        ledger[row["job_id"]].append(row["kind"])
        if row["kind"] == "reserve":
            reserved[row["job_id"]] = row["period_delta"]
    for job in jobs:
        assert job["status"] in ("succeeded", "failed"), dict(job)
        assert job["delivered_at"] is not None, dict(job)
        assert job["shown_version"] == job["version"], dict(job)
        assert ledger[job["id"]] == ["reserve", "commit" if job["status"] == "succeeded" else "refund"], job["id"]
    failed = [dict(job) for job in jobs if job["status"] == "failed"]
    assert all(job["error_code"] == "interrupted_submit" for job in failed), failed
    assert len(failed) <= SUBMITS_AT_ONCE  # at most the submits in flight in the killed process

    # Credits exact: each member's usage is what their succeeded jobs reserved, and the ledger's sum.
    spent: Counter[tuple[int, int]] = Counter()
    for job in jobs:
        if job["status"] == "succeeded":
            spent[(job["guild_id"], job["user_id"])] += reserved[job["id"]]
    usage = await database.fetch_all("SELECT guild_id, user_id, SUM(used) AS used FROM credit_usage GROUP BY 1, 2")
    assert {(r["guild_id"], r["user_id"]): r["used"] for r in usage if r["used"]} == +spent
    sums = await database.fetch_all(
        "SELECT guild_id, user_id, SUM(period_delta) AS used FROM credit_ledger GROUP BY 1, 2"
    )
    assert {(r["guild_id"], r["user_id"]): r["used"] for r in sums if r["used"]} == +spent

    # Nothing submitted twice.
    prompts = [str((r.json or {}).get("prompt")) for r in fakes.wavespeed.requests_to("POST", r"/api/v3/.+")]
    assert len(prompts) == len(set(prompts))
    assert len(prompts) >= len(jobs) - len(failed)

    # Delivered exactly once: each job's message is its command's reply, showing the end; one copy of each result.
    copies = Counter(
        attachment["filename"].split("_")[0]
        for message in fake.messages.values()
        for attachment in message.get("attachments", [])
    )
    for job in jobs:
        message = fake.messages[job["message_id"]]
        if job["status"] == "succeeded":
            assert [a["filename"].split(".")[0] for a in message["attachments"]] == [f"job{job['id']}_0"]
            assert copies[f"job{job['id']}"] == 1, job["id"]
        else:
            assert "❌" in message["content"]
            assert copies[f"job{job['id']}"] == 0
    assert not fake.requests_to("POST", r"/channels/\d+/messages")  # no result had to be posted anew
    return jobs


async def test_three_processes_500_jobs_one_sigkilled_deliver_everything_once(tmp_path, fake_discord, fakes, pg_url):
    # Jobs of about a second, 24 at a time: the 500 take about 20 s, so a hundred are still due when the commands
    # have all been written, even on a loaded machine.
    fakes.wavespeed.timing = Timing(queued_s=0.1, processing_s=1.0)
    places = guilds_on_both_shards(fake_discord)
    users = [int(fake_discord.add_user(f"user{n}")["id"]) for n in range(USERS)]
    env = process_env(tmp_path, fake_discord, fakes, pg_url, SHARD_COUNT="2")
    processes = [Process("shard0", tmp_path), Process("shard1", tmp_path), Process("worker", tmp_path)]
    started = time.monotonic()
    try:
        await asyncio.gather(
            processes[0].start({**env, "SHARD_IDS": "0"}),
            processes[1].start({**env, "SHARD_IDS": "1"}),
            processes[2].start(env, "worker"),
        )
        await shards_live(fake_discord, [0, 1])
        async with Database(pg_url, pool_size=2) as database:
            await send_commands(fake_discord, range(JOBS), places, users)

            async def count(sql: str, *params: Any) -> int:
                return int(await database.fetch_value(sql, params))

            async def all_written() -> bool:
                return await count("SELECT COUNT(*) FROM jobs") == JOBS

            await eventually(all_written, timeout=30)

            # Kill shard 1's process while it holds leases, with at least 100 jobs still to deliver.
            victim = processes[1]

            async def victim_busy() -> bool:
                held = await count(
                    "SELECT COUNT(*) FROM job_steps WHERE lease_owner LIKE ? AND lease_expires_at > ?",
                    victim.owner_pattern,
                    time.time(),
                )
                return held >= 3

            await eventually(victim_busy, timeout=30, interval=0.01)
            await victim.stop(signal.SIGKILL)
            killed_at = time.time()
            held = await database.fetch_all(
                "SELECT id, lease_expires_at FROM job_steps WHERE lease_owner LIKE ?", (victim.owner_pattern,)
            )
            assert held
            assert await count("SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL") >= 100
            latest_expiry = max(row["lease_expires_at"] for row in held)
            assert latest_expiry <= killed_at + LEASE_S + 0.5

            # Taken over: every step it held is claimed by another process (or done) once its lease ran out, the
            # first ones within the lease time (the rest take their turn in lines that have a backlog: 500 jobs).
            expiry = {row["id"]: row["lease_expires_at"] for row in held}
            taken: dict[int, float] = {}

            async def all_taken_over() -> bool:
                rows = await database.fetch_all(
                    "SELECT id FROM job_steps WHERE lease_owner LIKE ?", (victim.owner_pattern,)
                )
                still = {row["id"] for row in rows}
                for step_id in expiry.keys() - still - taken.keys():
                    taken[step_id] = time.time()
                return not still

            await eventually(all_taken_over, timeout=45, interval=0.05)
            first = min(taken, key=taken.__getitem__)
            assert taken[first] <= expiry[first] + IDLE_S + 2.0, (taken[first], expiry[first])
            assert all(taken[step_id] >= expiry[step_id] - 0.5 for step_id in taken)  # not before the lease ran out

            async def all_delivered() -> bool:
                left = "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL OR shown_version < version"
                return await count(left) == 0

            await eventually(all_delivered, timeout=120, interval=0.2)
            await asyncio.sleep(0.5)  # a second delivery, were there one, has the time to go out
            await check_everything(database, fake_discord, fakes, JOBS)
    finally:
        await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)
    for process in (processes[0], processes[2]):
        assert process.proc is not None
        assert process.proc.returncode == 0, process.log()[-3000:]
        assert "could not renew" not in process.log(), process.log()[-3000:]  # a lease must not run out
    assert time.monotonic() - started < 90


async def test_a_rolling_restart_loses_nothing(tmp_path, fake_discord, fakes, pg_url):
    fakes.wavespeed.timing = Timing(queued_s=0.2, processing_s=1.0)
    places = guilds_on_both_shards(fake_discord)[:2]  # shard 0's guilds
    users = [int(fake_discord.add_user(f"user{n}")["id"]) for n in range(10)]
    env = process_env(tmp_path, fake_discord, fakes, pg_url, SHARD_COUNT="1")
    old, new = Process("old", tmp_path), Process("new", tmp_path)
    try:
        await old.start(env)
        await shards_live(fake_discord, [0])
        await send_commands(fake_discord, range(60), places, users)
        async with Database(pg_url, pool_size=2) as database:
            # The new version starts while the old one runs (both connected; Discord sends each event to one).
            await new.start(env)
            await eventually(lambda: len(fake_discord.gateway.live_sessions()) == 2, timeout=30)
            await send_commands(fake_discord, range(60, 100), places, users)
            in_flight = await database.fetch_value("SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL")
            assert in_flight > 0
            await old.stop(signal.SIGTERM)
            assert old.proc is not None
            assert old.proc.returncode == 0, old.log()[-3000:]
            await send_commands(fake_discord, range(100, 120), places, users)

            async def all_delivered() -> bool:
                left = await database.fetch_value(
                    "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL OR shown_version < version"
                )
                return left == 0

            await eventually(all_delivered, timeout=60, interval=0.2)
            await asyncio.sleep(0.5)
            jobs = await check_everything(database, fake_discord, fakes, 120)
        assert all(job["status"] == "succeeded" for job in jobs)  # a clean stop interrupts no submit
    finally:
        await asyncio.gather(old.stop(), new.stop(), return_exceptions=True)
    assert "lease(s) handed back" in old.log()
