"""Input files are garbage-collected: storing or reusing one refreshes it, and retention deletes the ones untouched
for longer than the retention that no queued, submitting or running job needs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from bot.errors import InvalidInput
from bot.jobs import media_store, retention
from bot.jobs.inputs import load_image
from bot.jobs.media_store import MediaStore
from bot.jobs.requests import StoredImage
from bot.jobs.retention import purge_unused_inputs
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRepository, NewJob
from tests.fakes.media import image_bytes

DAY = 86_400.0
RETENTION = 7 * DAY


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


@pytest.fixture
def media(tmp_path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def age(media: MediaStore, relative: str, days: float) -> None:
    """Make a stored file look last stored ``days`` ago."""
    then = time.time() - days * DAY
    os.utime(media.absolute(relative), (then, then))


def mtime(media: MediaStore, relative: str) -> float:
    return media.absolute(relative).stat().st_mtime


async def stored(media: MediaStore, n: int) -> str:
    return await media.save_input(image_bytes("png", 64 + n, 64), "image/png")


async def add_job(db: Database, status: str, params: dict[str, Any]) -> int:
    repo = JobRepository(db)
    new = NewJob(
        user_id=1,
        guild_id=1,
        channel_id=1,
        model_key="neta-lumina",
        provider="wavespeed",
        kind="image_edit",
        prompt="p",
        params=params,
        cost=0,
        created_at=time.time(),
        deadline_at=time.time() + 600,
    )
    async with db.transaction() as conn:
        job_id = (await repo.insert(conn, new)).id
        if status in ("submitting", "running"):
            await conn.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))
        elif status != "queued":
            await repo.finish(conn, job_id, status=status, now=time.time())
    return job_id


def ref(path: str) -> dict[str, str]:
    return {"path": path, "media_type": "image/png"}


async def test_storing_an_input_again_refreshes_its_time(media):
    path = await stored(media, 0)
    age(media, path, 30)
    assert await stored(media, 0) == path
    assert mtime(media, path) > time.time() - 60


async def test_reusing_an_input_refreshes_its_time_and_says_whether_it_is_still_there(media):
    path = await stored(media, 0)
    age(media, path, 30)
    assert await media.reuse(path) is True
    assert mtime(media, path) > time.time() - 60
    assert await media.reuse("inputs/" + "0" * 64 + ".png") is False
    assert not media.absolute("inputs/" + "0" * 64 + ".png").exists()  # not created by refreshing
    output = await media.save_output(5, 0, image_bytes("png"), "image/png")
    age(media, output, 30)
    before = mtime(media, output)
    assert await media.reuse(output) is True
    assert mtime(media, output) == before  # outputs are kept by their job's finish time, not touched
    assert await media.reuse("outputs/6/0.png") is False


async def test_load_image_refreshes_a_reused_input(media):
    path = await stored(media, 0)
    age(media, path, 30)
    image = StoredImage(path, "image/png")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert await load_image(image, fetcher=None, media=media, settings=settings, what="image") == image  # type: ignore[arg-type]
    assert mtime(media, path) > time.time() - 60
    gone = StoredImage("inputs/" + "1" * 64 + ".png", "image/png")
    with pytest.raises(InvalidInput, match="no longer stored"):
        await load_image(gone, fetcher=None, media=media, settings=settings, what="image")  # type: ignore[arg-type]


async def test_input_paths_in_use_are_those_of_unfinished_jobs(db):
    await add_job(db, "queued", {"model": "m", "source_image": ref("inputs/a.png")})
    await add_job(db, "submitting", {"model": "m", "reference_images": [ref("inputs/b.png"), ref("inputs/c.png")]})
    await add_job(db, "running", {"model": "m", "start_frame": ref("inputs/d.png"), "end_frame": ref("inputs/a.png")})
    await add_job(db, "running", {"model": "m", "source_image": ref("outputs/3/0.png")})  # an earlier job's output
    for status in ("succeeded", "failed", "cancelled"):
        await add_job(db, status, {"model": "m", "source_image": ref(f"inputs/{status}.png")})
    await add_job(db, "queued", {"model": "m", "seed": 4})
    assert await JobRepository(db).input_paths_in_use() == {
        "inputs/a.png",
        "inputs/b.png",
        "inputs/c.png",
        "inputs/d.png",
    }


async def test_old_inputs_no_unfinished_job_needs_are_purged(db, media):
    old_unused, old_queued, old_running, old_finished, recent, reused = [await stored(media, n) for n in range(6)]
    await add_job(db, "queued", {"model": "m", "source_image": ref(old_queued)})
    await add_job(db, "running", {"model": "m", "reference_images": [ref(old_running)]})
    await add_job(db, "succeeded", {"model": "m", "source_image": ref(old_finished)})
    for path in (old_unused, old_queued, old_running, old_finished, reused):
        age(media, path, 8)
    age(media, recent, 6)
    assert await media.reuse(reused)  # e.g. a reroll picked it up again
    repo = JobRepository(db)

    assert await purge_unused_inputs(repo, media, retention_s=RETENTION, now=time.time()) == 2
    left = {f"inputs/{p.name}" for p in media.absolute("inputs").iterdir()}
    assert left == {old_queued, old_running, recent, reused}
    assert await purge_unused_inputs(repo, media, retention_s=RETENTION, now=time.time()) == 0


async def test_an_input_refreshed_while_the_purge_runs_is_kept(db, media, monkeypatch):
    path = await stored(media, 0)
    age(media, path, 30)
    real = media_store._files_older_than

    def listed_then_stored_again(folder: Path, older_than: float) -> list[Path]:
        found = real(folder, older_than)
        os.utime(media.absolute(path))  # a new job stores the same image before the purge deletes anything
        return found

    monkeypatch.setattr(media_store, "_files_older_than", listed_then_stored_again)
    assert await media.purge_inputs(older_than=time.time() - RETENTION, keep=()) == 0
    assert media.absolute(path).exists()


async def test_purging_inputs_without_an_inputs_folder_does_nothing(media):
    assert await media.purge_inputs(older_than=time.time(), keep=()) == 0


async def test_the_purge_loop_purges_unused_inputs_even_when_outputs_fail(db, media, monkeypatch, caplog):
    path = await stored(media, 0)
    age(media, path, 30)

    async def broken(*args: Any, **kwargs: Any) -> int:
        raise PermissionError("busy")

    monkeypatch.setattr(retention, "purge_expired_outputs", broken)
    monkeypatch.setattr(retention, "PURGE_EVERY_S", 0.001)
    caplog.set_level(logging.ERROR, logger="bot.jobs.retention")
    task = asyncio.create_task(retention.purge_forever(JobRepository(db), media, retention_s=RETENTION))
    try:
        for _ in range(500):
            if not media.absolute(path).exists():
                break
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not media.absolute(path).exists()
    assert "purging old outputs failed" in caplog.text
