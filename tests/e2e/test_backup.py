"""``python -m bot backup PATH`` while jobs run: the copy opens, passes its integrity check and holds the jobs."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import bot_running, delivered, eventually, job_when, latest_job_id
from tests.fakes.providers._server import Timing
from tests.test_settings import clean_env

ROOT = Path(__file__).resolve().parents[2]


def jobs_in(path: Path) -> dict[int, str]:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(conn.execute("SELECT id, status FROM jobs").fetchall())
    finally:
        conn.close()


async def test_a_backup_taken_while_jobs_run_opens_and_holds_them(tmp_path, fake_discord, fakes, settings):
    fakes.wavespeed.timing = Timing(queued_s=0.0, processing_s=1.5)
    async with bot_running(settings, fake_discord) as bot:
        for n in range(3):  # MAX_RUNNING_JOBS_PER_USER
            await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": f"a lighthouse {n}"}))
        await eventually(lambda: _count(bot, 3))
        last = await latest_job_id(bot)
        await job_when(bot, 1, lambda job: job.status == "running")
        # In-process (the API the command uses) and through the real command line, both while jobs are running.
        from bot.storage.backup import backup

        copied = await asyncio.to_thread(backup, settings.database_path, tmp_path / "copy.sqlite3")
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot", "backup", str(tmp_path / "backups" / "cli.sqlite3")],
            cwd=ROOT,
            env=clean_env(DATABASE_PATH=str(settings.database_path)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        live = {job_id: (await bot.services.job_records.get(job_id)).status for job_id in range(1, last + 1)}
        for job_id in live:
            await delivered(bot, job_id)

    assert cli.returncode == 0, cli.stderr
    assert "(3 jobs)" in cli.stdout
    assert copied == 3
    for path in (tmp_path / "copy.sqlite3", tmp_path / "backups" / "cli.sqlite3"):
        held = jobs_in(path)
        assert sorted(held) == sorted(live)
        assert any(status in ("queued", "submitting", "running") for status in held.values())


async def _count(bot, n: int) -> bool:
    return await latest_job_id(bot) >= n


def test_backup_of_a_missing_database_fails_clearly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot", "backup", str(tmp_path / "out.sqlite3")],
        cwd=ROOT,
        env=clean_env(DATABASE_PATH=str(tmp_path / "nothing.sqlite3")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Backup failed: no database at" in result.stderr
    assert not (tmp_path / "out.sqlite3").exists()
