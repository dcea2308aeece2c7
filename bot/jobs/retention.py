"""Outputs are kept on disk for OUTPUT_RETENTION_DAYS so results can be shown again and reused; then purged.
Input files are purged too once unused for as long: not stored or reused within the retention, and needed by no
queued, submitting or running job."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.clock import shared_clock
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


async def purge_unused_inputs(jobs: JobRepository, media: MediaStore, *, retention_s: float, now: float) -> int:
    """Delete the input files not stored or reused within the retention that no unfinished job needs; returns how
    many. The jobs are read first: a job recorded after that refreshed its files just before, so they are kept."""
    in_use = await jobs.input_paths_in_use()
    purged = await media.purge_inputs(older_than=now - retention_s, keep=in_use)
    if purged:
        log.info("purged %d unused input file(s)", purged)
    return purged


async def purge_forever(
    jobs: JobRepository, media: MediaStore, *, retention_s: float, clock: Callable[[], float] = shared_clock
) -> None:
    while True:
        try:
            await purge_expired_outputs(jobs, media, retention_s=retention_s, now=clock())
        except Exception:
            log.exception("purging old outputs failed; will try again")
        try:
            await purge_unused_inputs(jobs, media, retention_s=retention_s, now=clock())
        except Exception:
            log.exception("purging unused input files failed; will try again")
        try:
            if cleared := await jobs.clear_expired_tokens(clock()):
                log.info("forgot %d expired interaction token(s)", cleared)
        except Exception:
            log.exception("clearing expired interaction tokens failed; will try again")
        await asyncio.sleep(PURGE_EVERY_S)
