"""Download links of results too large to attach, kept working while the bot keeps the file.

A provider's presigned URL dies long before the retention ends (the Luma relay's after an hour). When a job is
rendered (delivery, Refresh, ``/job show``) and a link it would show has expired or is about to, a provider that
can mint a fresh one (``fresh_download_url``) is asked for it; the new URL is stored and shown.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Final, Protocol, runtime_checkable

from bot.jobs.results import presigned_expiry
from bot.storage.jobs import JobRecord, JobRepository
from providers.errors import ProviderError

log = logging.getLogger(__name__)

REFRESH_MARGIN_S: Final = 600.0  # a link that dies within this is replaced before it is shown


@runtime_checkable
class FreshLinks(Protocol):
    async def fresh_download_url(self, remote_id: str) -> str | None: ...


async def fresh_links(
    job: JobRecord, *, upload_limit: int, providers: Mapping[str, object], jobs: JobRepository, now: float
) -> JobRecord:
    """``job`` with fresh URLs for the outputs shown as links whose URL has expired or soon will."""
    provider = providers.get(job.provider)
    if job.status != "succeeded" or not job.remote_id or not isinstance(provider, FreshLinks):
        return job
    stale = [
        o
        for o in job.outputs
        if o.size_bytes > upload_limit
        and o.source_url
        and o.url_expires_at is not None
        and o.url_expires_at - now < REFRESH_MARGIN_S
    ]
    if not stale:
        return job
    try:
        url = await provider.fresh_download_url(job.remote_id)
    except ProviderError as exc:
        log.info("job %s: no fresh download link (%s)", job.id, exc)
        return job
    if not url:
        return job
    expires_at = presigned_expiry(url, now)
    outputs = []
    for output in job.outputs:
        if output in stale:
            await jobs.set_output_url(job.id, output.idx, url=url, expires_at=expires_at)
            output = dataclasses.replace(output, source_url=url, url_expires_at=expires_at)
        outputs.append(output)
    log.info("job %s: fresh download link for %d output(s)", job.id, len(stale))
    return dataclasses.replace(job, outputs=tuple(outputs))
