"""Outputs are kept on disk for OUTPUT_RETENTION_DAYS so results can be shown again and reused; then purged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.jobs.media_store import MediaStore
from bot.storage.jobs import JobRepository

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0


async def purge_expired_outputs(jobs: JobRepository, media: MediaStore, *, retention_s: float, now: float) -> int:
    """Delete the stored outputs of jobs that finished before the retention window; returns how many jobs."""
    purged = 0
    while batch := await jobs.purgeable(now - retention_s):
        for job in batch:
            await media.purge_job(job.id)
            await jobs.mark_purged(job.id, now)
            purged += 1
    if purged:
        log.info("purged the stored outputs of %d job(s)", purged)
    return purged


async def purge_forever(
    jobs: JobRepository, media: MediaStore, *, retention_s: float, clock: Callable[[], float] = time.time
) -> None:
    while True:
        try:
            await purge_expired_outputs(jobs, media, retention_s=retention_s, now=clock())
        except Exception:
            log.exception("purging old outputs failed; will try again")
        await asyncio.sleep(PURGE_EVERY_S)
