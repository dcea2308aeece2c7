"""Taking outputs home: presigned-URL expiry, collecting data and URL outputs, the media store, retention."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from bot.fetch import Fetcher, FetchError
from bot.jobs import retention
from bot.jobs.media_store import MediaStore, extension_for
from bot.jobs.results import collect_outputs, presigned_expiry
from bot.jobs.retention import purge_expired_outputs
from bot.storage.database import Database
from bot.storage.jobs import JobRepository, NewJob, OutputRecord
from providers.base import Kind, Output
from tests.fakes.media import image_bytes, mp4_bytes
from tests.fakes.providers._server import FakeProviderServer
from tests.jobs.virtual import T0

PNG = image_bytes("png", 32, 16)
DAY = 86_400.0


# ---------------------------------------------------------------------------------------------- presigned URLs
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://r2.example/o.png?X-Amz-Date=20261121T100000Z&X-Amz-Expires=3600&X-Amz-Signature=s", T0 + 3600),
        ("https://r2.example/o.png?x-amz-date=20261121T093000Z&x-amz-expires=600", T0 - 1800 + 600),
        ("https://r2.example/o.png?X-Amz-Expires=900&X-Amz-Signature=s", T0 + 5 + 900),  # from when it was seen
        ("https://r2.example/o.png?X-Amz-Date=garbage&X-Amz-Expires=60", T0 + 5 + 60),
        ("https://r2.example/o.png?X-Amz-Date=20261121T100000Z", None),
        ("https://r2.example/o.png?X-Amz-Expires=soon", None),
        ("https://cdn.example/o.png", None),
        ("", None),
        (None, None),
    ],
)
def test_presigned_expiry(url, expected):
    assert presigned_expiry(url, T0 + 5) == expected


# ---------------------------------------------------------------------------------------------- collecting
@pytest.fixture
async def fetcher():
    async with Fetcher(max_bytes=10 * 1024 * 1024, timeout_s=5, allow_loopback=True) as started:
        yield started


@pytest.fixture
async def media_server():
    async with FakeProviderServer() as server:
        yield server


async def test_base64_outputs_are_checked_and_stored(tmp_path, fetcher):
    media = MediaStore(tmp_path)
    outputs = (Output("image/png", data=PNG, nsfw=True), Output(), Output("image/jpeg", data=image_bytes("jpeg")))
    records = await collect_outputs(7, Kind.IMAGE, outputs, fetcher=fetcher, media=media, now=T0)

    assert [(r.idx, r.path, r.media_type, r.width, r.height, r.nsfw) for r in records] == [
        (0, "outputs/7/0.png", "image/png", 32, 16, True),
        (2, "outputs/7/2.jpg", "image/jpeg", 64, 64, False),
    ]
    assert records[0].size_bytes == len(PNG)
    assert (tmp_path / "outputs/7/0.png").read_bytes() == PNG
    assert records[0].source_url is None
    assert records[0].url_expires_at is None


@pytest.mark.parametrize(
    ("kind", "data"), [(Kind.IMAGE, b"<html>oops</html>"), (Kind.VIDEO, PNG), (Kind.IMAGE_EDIT, mp4_bytes())]
)
async def test_data_that_is_not_the_media_asked_for_is_refused_for_good(tmp_path, fetcher, kind, data):
    with pytest.raises(FetchError) as caught:
        await collect_outputs(7, kind, (Output(data=data),), fetcher=fetcher, media=MediaStore(tmp_path), now=T0)
    assert caught.value.reason == "not_media"
    assert not caught.value.retryable
    assert not (tmp_path / "outputs").exists()


async def test_url_outputs_are_downloaded_with_their_link_and_its_expiry(tmp_path, fetcher, media_server):
    url = media_server.add_media("out.png", PNG, ttl_s=600)
    video_url = media_server.add_media("out.mp4")
    media = MediaStore(tmp_path)

    (image,) = await collect_outputs(3, Kind.IMAGE, (Output(url=url),), fetcher=fetcher, media=media, now=T0)
    (video,) = await collect_outputs(4, Kind.VIDEO, (Output(url=video_url),), fetcher=fetcher, media=media, now=T0)

    assert (image.path, image.media_type, image.width, image.height) == ("outputs/3/0.png", "image/png", 32, 16)
    assert image.source_url == url
    assert image.url_expires_at == T0 + 600
    assert (tmp_path / image.path).read_bytes() == PNG
    assert (video.path, video.media_type, video.url_expires_at) == ("outputs/4/0.mp4", "video/mp4", None)
    assert video.is_video


async def test_an_expired_url_is_a_retryable_failure(tmp_path, fetcher, media_server):
    url = media_server.add_media("out.png", PNG, ttl_s=0)
    await asyncio.sleep(0.01)
    with pytest.raises(FetchError) as caught:
        await collect_outputs(3, Kind.IMAGE, (Output(url=url),), fetcher=fetcher, media=MediaStore(tmp_path), now=T0)
    assert (caught.value.reason, caught.value.retryable) == ("expired", True)


async def test_no_output_at_all_is_retryable(tmp_path, fetcher):
    with pytest.raises(FetchError) as caught:
        await collect_outputs(3, Kind.IMAGE, (Output(),), fetcher=fetcher, media=MediaStore(tmp_path), now=T0)
    assert caught.value.retryable


# ---------------------------------------------------------------------------------------------- the media store
async def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
    media = MediaStore(tmp_path)
    path = await media.save_output(9, 0, b"first", "image/png")
    assert path == "outputs/9/0.png"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await media.save_output(9, 0, b"second, half written", "image/png")
    monkeypatch.undo()
    assert (tmp_path / path).read_bytes() == b"first"  # a reader never sees a half-written file

    await asyncio.gather(*(media.save_output(9, 1, bytes([n]) * 100_000, "image/png") for n in range(8)))
    assert (tmp_path / "outputs/9/1.png").read_bytes() in {bytes([n]) * 100_000 for n in range(8)}
    assert await media.read("outputs/9/1.png") == (tmp_path / "outputs/9/1.png").read_bytes()
    assert await media.exists("outputs/9/1.png")
    assert sorted(p.name for p in (tmp_path / "outputs/9").iterdir()) == ["0.png", "1.png"]  # no temporary files


async def test_inputs_are_stored_once_by_content(tmp_path):
    media = MediaStore(tmp_path)
    first = await media.save_input(PNG, "image/png")
    second = await media.save_input(PNG, "image/png")
    other = await media.save_input(image_bytes("jpeg"), "image/jpeg")
    assert first == second
    assert first.startswith("inputs/")
    assert first.endswith(".png")
    assert len(Path(first).stem) == 64
    assert other.endswith(".jpg")
    assert other != first
    assert len(list((tmp_path / "inputs").iterdir())) == 2
    # The same image uploaded by several commands at once: every one of them gets it stored.
    big = image_bytes("png", 512, 512)
    paths = await asyncio.gather(*(media.save_input(big, "image/png") for _ in range(8)))
    assert len(set(paths)) == 1
    assert (tmp_path / paths[0]).read_bytes() == big
    assert len(list((tmp_path / "inputs").iterdir())) == 3


def test_extensions():
    assert [extension_for(t) for t in ("image/png", "image/jpeg", "video/mp4", "video/quicktime", "video/webm")] == [
        ".png",
        ".jpg",
        ".mp4",
        ".mov",
        ".webm",
    ]
    assert extension_for("application/x-unknown-thing") == ".bin"


@pytest.mark.parametrize("relative", ["../outside.png", "outputs/../../outside.png", "/etc/passwd", "inputs/../.."])
async def test_paths_cannot_escape_the_store(tmp_path, relative):
    media = MediaStore(tmp_path / "store")
    with pytest.raises(ValueError, match="outside the media store"):
        media.absolute(relative)
    with pytest.raises(ValueError, match="outside the media store"):
        await media.read(relative)


async def test_a_symlink_out_of_the_store_is_refused(tmp_path):
    (tmp_path / "secret").write_text("no")
    store = tmp_path / "store"
    (store / "outputs").mkdir(parents=True)
    (store / "outputs" / "1").symlink_to(tmp_path)
    media = MediaStore(store)
    with pytest.raises(ValueError, match="outside the media store"):
        await media.read("outputs/1/secret")
    assert media.absolute("outputs/2/0.png") == (store / "outputs/2/0.png").resolve()


# ---------------------------------------------------------------------------------------------- retention
@pytest.fixture
async def db(tmp_path):
    async with Database(tmp_path / "bot.sqlite3") as database:
        yield database


async def add_finished_job(repo: JobRepository, db: Database, media: MediaStore, *, finished_at: float | None, files=1):
    new = NewJob(
        user_id=1,
        guild_id=1,
        channel_id=1,
        model_key="neta-lumina",
        provider="wavespeed",
        kind="image",
        prompt="p",
        params={},
        cost=0,
        created_at=(finished_at or T0) - 60,
        deadline_at=T0 + 600,
    )
    async with db.transaction() as conn:
        job_id = (await repo.insert(conn, new)).id
        if finished_at is not None:
            await repo.finish(conn, job_id, status="succeeded", now=finished_at)
        records = []
        for idx in range(files):
            path = await media.save_output(job_id, idx, PNG, "image/png")
            records.append(OutputRecord(job_id, idx, path, "image/png", len(PNG)))
        await repo.add_outputs(conn, records)
    return job_id


async def test_outputs_older_than_the_retention_are_purged_once(tmp_path, db):
    repo, media = JobRepository(db), MediaStore(tmp_path / "media")
    old = await add_finished_job(repo, db, media, finished_at=T0 - 8 * DAY, files=2)
    recent = await add_finished_job(repo, db, media, finished_at=T0 - 1 * DAY)
    old_without_files = await add_finished_job(repo, db, media, finished_at=T0 - 9 * DAY, files=0)
    active = await add_finished_job(repo, db, media, finished_at=None)

    assert await purge_expired_outputs(repo, media, retention_s=7 * DAY, now=T0) == 1
    assert not (media.root / f"outputs/{old}").exists()
    assert (media.root / f"outputs/{recent}/0.png").exists()
    assert (media.root / f"outputs/{active}/0.png").exists()
    purged = await repo.get(old)
    assert purged is not None
    assert purged.outputs_purged_at == T0
    assert len(purged.outputs) == 2  # the records stay, for /history; only the files go
    for job_id in (recent, old_without_files, active):
        job = await repo.get(job_id)
        assert job is not None
        assert job.outputs_purged_at is None
    assert await purge_expired_outputs(repo, media, retention_s=7 * DAY, now=T0 + 1) == 0


async def test_purging_goes_through_every_batch(tmp_path, db):
    repo, media = JobRepository(db), MediaStore(tmp_path / "media")
    for n in range(205):
        await add_finished_job(repo, db, media, finished_at=T0 - 30 * DAY + n)
    assert await purge_expired_outputs(repo, media, retention_s=7 * DAY, now=T0) == 205
    assert list((media.root / "outputs").iterdir()) == []


async def test_the_purge_loop_survives_a_failure(tmp_path, db, monkeypatch, caplog):
    repo, media = JobRepository(db), MediaStore(tmp_path / "media")
    await add_finished_job(repo, db, media, finished_at=T0 - 30 * DAY)
    calls = []
    real_purge = media.purge_job

    async def flaky_purge(job_id: int) -> None:
        calls.append(job_id)
        if len(calls) == 1:
            raise PermissionError("busy")
        await real_purge(job_id)

    monkeypatch.setattr(media, "purge_job", flaky_purge)
    monkeypatch.setattr(retention, "PURGE_EVERY_S", 0.001)
    caplog.set_level(logging.ERROR, logger="bot.jobs.retention")
    task = asyncio.create_task(retention.purge_forever(repo, media, retention_s=7 * DAY, clock=lambda: T0))
    try:
        for _ in range(500):
            job = await repo.get(1)
            assert job is not None
            if job.outputs_purged_at is not None:
                break
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(calls) == 2
    assert "purging old outputs failed" in caplog.text
    assert job.outputs_purged_at == T0
