"""The real process (``python -m bot``) SIGKILLed during a burst of 150 commands, and again with at least 100 jobs
in flight, then restarted: no job lost, none delivered twice, no job message left stale, none charged twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from tests.e2e.harness import eventually
from tests.fakes.providers._server import Timing

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = 150


def bot_env(tmp_path: Path, fake_discord: Any, fakes: Any) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "WAVESPEED", "LUMA", "LUMOZAI", "DEV_GUILD_ID", "ENGINE_"))
    }
    env.update(
        {
            "DISCORD_TOKEN": fake_discord.token,
            "DISCORD_API_BASE_URL": fake_discord.api_base,
            "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
            "OUTPUT_DIR": str(tmp_path / "outputs"),
            "ALLOW_LOOPBACK_FETCH": "true",
            "DAILY_CREDITS": "10000",
            "MAX_RUNNING_JOBS_PER_USER": "10000",
            "EDIT_MIN_INTERVAL_S": "0.05",
            "QUEUE_EDIT_INTERVAL_S": "0.5",
            "ENGINE_LEASE_S": "2",  # a killed process's work is taken over 2 s after its last renewal
            "ENGINE_IDLE_S": "0.5",
            "PYTHONPATH": str(ROOT),
        }
    )
    blocks = fakes.settings_blocks(wavespeed={"max_concurrency": 6})
    for name, block in blocks.items():
        for key, value in block.items():
            env[f"{name.upper()}__{key.upper()}"] = str(value)
    return env


async def start(tmp_path: Path, fake_discord: Any, fakes: Any, log: Any) -> asyncio.subprocess.Process:
    fake_discord.ready.clear()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=bot_env(tmp_path, fake_discord, fakes),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )
    await asyncio.wait_for(fake_discord.ready.wait(), timeout=30)
    return process


def rows(tmp_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with sqlite3.connect(tmp_path / "bot.sqlite3", timeout=10) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()


async def burst(fake_discord: Any, numbers: range, sent: list[Any]) -> None:
    """Slash commands as fast as the gateway takes them; those sent while the bot is down are not received."""
    for n in numbers:
        # No live gateway session (the bot is down), or one closing under the send (just killed): the bot never
        # got it, and Discord would say the application did not respond.
        with contextlib.suppress(RuntimeError, ConnectionError):
            sent.append(await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": f"cat {n}"})))
        await asyncio.sleep(0.005)


async def test_sigkill_during_a_burst_and_with_100_jobs_in_flight_loses_and_repeats_nothing(
    tmp_path, fake_discord, fakes
):
    fakes.wavespeed.timing = Timing(queued_s=0.1, processing_s=0.4)
    log = (tmp_path / "bot.log").open("wb")
    sent: list[Any] = []
    process = await start(tmp_path, fake_discord, fakes, log)
    try:
        # 1. Killed in the middle of a burst of commands.
        first = asyncio.create_task(burst(fake_discord, range(COMMANDS // 2), sent))
        await eventually(lambda: len(sent) >= COMMANDS // 4, timeout=30)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await first
        process = await start(tmp_path, fake_discord, fakes, log)
        await burst(fake_discord, range(COMMANDS // 2, COMMANDS), sent)

        # 2. Killed again with at least 100 jobs in flight (slower jobs now, so that many wait).
        fakes.wavespeed.timing = Timing(queued_s=0.5, processing_s=2.0)
        await burst(fake_discord, range(COMMANDS, COMMANDS + 120), sent)

        def in_flight() -> bool:
            active = rows(tmp_path, "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'submitting', 'running')")
            return active[0][0] >= 100

        await eventually(in_flight, timeout=30, interval=0.01)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        fakes.wavespeed.timing = Timing(queued_s=0.1, processing_s=0.3)
        process = await start(tmp_path, fake_discord, fakes, log)

        def all_delivered() -> bool:
            left = rows(tmp_path, "SELECT COUNT(*) FROM jobs WHERE delivered_at IS NULL OR shown_version < version")
            return left[0][0] == 0

        await eventually(all_delivered, timeout=90, interval=0.1)
        await asyncio.sleep(0.5)  # anything that would still go out (a second delivery) has the time to
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=30)
        log.close()

    jobs = rows(tmp_path, "SELECT * FROM jobs ORDER BY id")
    ledger: dict[int, list[str]] = {}
    for row in rows(tmp_path, "SELECT job_id, kind FROM credit_ledger ORDER BY id"):
        ledger.setdefault(row["job_id"], []).append(row["kind"])
    originals = {record.original_message_id: record for record in sent if record.original_message_id}
    assert len(jobs) >= COMMANDS // 2  # most commands reached the bot and started a job

    # 0 lost, 0 charged twice: every job ended, once, with one settlement.
    assert {job["status"] for job in jobs} <= {"succeeded", "failed"}
    for job in jobs:
        assert job["delivered_at"] is not None, dict(job)
        assert ledger[job["id"]] in (["reserve", "commit"], ["reserve", "refund"]), (job["id"], ledger[job["id"]])
        assert (ledger[job["id"]][-1] == "commit") == (job["status"] == "succeeded")
    failed = [job for job in jobs if job["status"] == "failed"]
    assert all(job["error_code"] == "interrupted_submit" for job in failed), [dict(j) for j in failed]
    assert len(failed) <= 2 * 6  # at most the submits in flight at the two kills

    # Nothing sent upstream twice.
    submits = fakes.wavespeed.requests_to("POST", "/api/v3/wavespeed-ai/.+")
    prompts = [str((r.json or {}).get("prompt")) for r in submits]
    assert len(prompts) >= len(jobs) - len(failed)  # the check sees the submissions it counts
    assert len(prompts) == len(set(prompts))

    # 0 delivered twice, 0 stale: each job's message is the command's reply, and it shows the end.
    for job in jobs:
        assert job["message_id"] in originals, job["id"]
        message = fake_discord.messages[job["message_id"]]
        if job["status"] == "succeeded":
            assert [a["filename"].split(".")[0] for a in message["attachments"]] == [f"job{job['id']}_0"]
        else:
            assert "❌" in message["content"]
        assert "Waiting to start" not in message["content"]
        assert "Making your" not in message["content"]
        copies = [
            m
            for m in fake_discord.messages.values()
            if any(a["filename"].startswith(f"job{job['id']}_") for a in m.get("attachments", []))
        ]
        assert len(copies) == (1 if job["status"] == "succeeded" else 0), job["id"]
    assert not fake_discord.requests_to("POST", r"/channels/\d+/messages")  # no result had to be posted anew
