"""Taking a finished upstream job's outputs home: download (or decode), check, store on disk."""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from bot.fetch import Fetcher, FetchError, sniff
from bot.i18n import msg
from bot.jobs.media_store import MediaStore
from bot.storage.jobs import OutputRecord
from providers.base import Kind, Output

KINDS_FOR_JOB = {Kind.IMAGE: ("image",), Kind.IMAGE_EDIT: ("image",), Kind.VIDEO: ("video",)}


def presigned_expiry(url: str | None, now: float) -> float | None:
    """When a presigned S3/R2 URL stops working (``X-Amz-Date`` + ``X-Amz-Expires``), if it says."""
    if not url:
        return None
    query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    expires = query.get("x-amz-expires")
    if expires is None or not expires.isdigit():
        return None
    signed = query.get("x-amz-date")
    start: float
    if signed:
        try:
            start = calendar.timegm(time.strptime(signed, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            start = now
    else:
        start = now
    return start + int(expires)


async def collect_outputs(
    job_id: int, kind: Kind, outputs: Sequence[Output], *, fetcher: Fetcher, media: MediaStore, now: float
) -> list[OutputRecord]:
    """Store every output; raises ``FetchError`` (``retryable`` when a fresh poll may help, e.g. an expired URL)."""
    kinds = KINDS_FOR_JOB[kind]
    records = []
    for idx, output in enumerate(outputs):
        if output.data is not None:
            sniffed = sniff(output.data)
            if sniffed is None or sniffed[0].split("/")[0] not in kinds:
                raise FetchError(msg("The service sent a result the bot could not read."), reason="not_media")
            data, (media_type, width, height) = output.data, sniffed
            path = await media.save_output(job_id, idx, data, media_type)
            size = len(data)
        elif output.url:
            downloaded = await fetcher.download(output.url, kinds=kinds)
            media_type, width, height, size = (
                downloaded.media_type,
                downloaded.width,
                downloaded.height,
                downloaded.size,
            )
            try:
                if downloaded.path is not None:  # streamed to a temporary file: moved, never read into memory
                    path = await media.save_output_file(job_id, idx, downloaded.path, media_type)
                else:
                    path = await media.save_output(job_id, idx, downloaded.data, media_type)
            finally:
                downloaded.discard()
        else:
            continue
        records.append(
            OutputRecord(
                job_id=job_id,
                idx=idx,
                path=path,
                media_type=media_type,
                size_bytes=size,
                width=width,
                height=height,
                nsfw=output.nsfw,
                source_url=output.url,
                url_expires_at=presigned_expiry(output.url, now),
            )
        )
    if not records:
        raise FetchError(msg("The service finished but sent no result."), reason="not_media", retryable=True)
    return records
