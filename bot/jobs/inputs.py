"""Input images (attachments, or the stored output of an earlier job): checked before anything is charged.

``check_attachment`` looks only at what Discord says about an attachment (no I/O), so a command can refuse at
once; ``load_image`` then downloads it, checks the real bytes and stores it for the job.
"""

from __future__ import annotations

import discord

from bot.errors import InvalidInput
from bot.fetch import Fetcher, FetchError
from bot.i18n import msg
from bot.jobs.media_store import MediaStore
from bot.jobs.requests import StoredImage
from bot.settings import Settings

ACCEPTED_IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
MIN_SIDE_PX = 64

ImageSource = discord.Attachment | StoredImage


def _accepted() -> str:
    return ", ".join(ACCEPTED_IMAGE_TYPES.values())


def _check_dimensions(width: int | None, height: int | None, settings: Settings, what: str) -> None:
    if width is None or height is None:
        return
    longest = settings.attachment_max_side_px
    if max(width, height) > longest:
        raise InvalidInput(
            msg(
                "The {what} is {width}×{height} pixels; the longest side may be at most {longest}. "
                "Resize it and try again.",
                what=what,
                width=width,
                height=height,
                longest=longest,
            )
        )
    if min(width, height) < MIN_SIDE_PX:
        raise InvalidInput(
            msg(
                "The {what} is only {width}×{height} pixels; use an image at least {least} pixels on each side.",
                what=what,
                width=width,
                height=height,
                least=MIN_SIDE_PX,
            )
        )


def check_attachment(attachment: discord.Attachment, settings: Settings, *, what: str) -> None:
    """Refuse at once what Discord's own description of the file already rules out."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_IMAGE_TYPES:
        raise InvalidInput(
            msg(
                "The {what} ({filename}) is not a {types} image. Attach one of those.",
                what=what,
                filename=attachment.filename,
                types=_accepted(),
            )
        )
    if attachment.size > settings.attachment_max_bytes:
        raise InvalidInput(
            msg(
                "The {what} is {size} MB; the limit is {limit} MB. Attach a smaller image.",
                what=what,
                size=f"{attachment.size / 1024 / 1024:.1f}",
                limit=f"{settings.attachment_max_bytes / 1024 / 1024:.0f}",
            )
        )
    _check_dimensions(attachment.width, attachment.height, settings, what)


async def load_image(
    source: ImageSource, *, fetcher: Fetcher, media: MediaStore, settings: Settings, what: str
) -> StoredImage:
    if isinstance(source, StoredImage):
        if not await media.reuse(source.path):  # also keeps a reused input file from being purged
            raise InvalidInput(msg("The {what} is no longer stored (results are kept for a limited time).", what=what))
        return source
    check_attachment(source, settings, what=what)
    try:
        # Decoded in full (in a thread) before anything is charged: still images only, nothing after their end,
        # and only from Discord's CDN.
        downloaded = await fetcher.download(
            source.url,
            kinds=("image",),
            max_bytes=settings.attachment_max_bytes,
            hosts=settings.attachment_hosts,
            still_only=True,
            exact_end=True,
        )
    except FetchError as exc:
        if exc.reason == "not_media":  # e.g. declared image/png, but the bytes are a web page
            raise InvalidInput(
                msg(
                    "The {what} ({filename}) is not really a {types} image. Attach one of those.",
                    what=what,
                    filename=source.filename,
                    types=_accepted(),
                )
            ) from None
        if exc.reason == "bad_image" and exc.problem:
            raise InvalidInput(
                msg("The {what} ({filename}) {problem}", what=what, filename=source.filename, problem=exc.problem)
            ) from None
        raise InvalidInput(msg("Could not use the {what}: {problem}", what=what, problem=exc.user_message)) from None
    try:
        if downloaded.media_type not in ACCEPTED_IMAGE_TYPES:
            raise InvalidInput(
                msg("The {what} is not a {types} image. Attach one of those.", what=what, types=_accepted())
            )
        _check_dimensions(downloaded.width, downloaded.height, settings, what)
        if downloaded.path is not None:  # streamed to a temporary file: hashed in a thread and moved
            stored = await media.save_input_file(downloaded.path, downloaded.media_type)
        else:
            stored = await media.save_input(downloaded.data, downloaded.media_type)
    finally:
        downloaded.discard()
    return StoredImage(stored, downloaded.media_type)
