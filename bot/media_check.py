"""A full check of an image file: decoded to the last pixel (within Pillow's pixel limit), not just its header.

Blocking and CPU-heavy: callers run ``inspect_image`` in a thread (``asyncio.to_thread``). It refuses, with a
sentence that says what to change:

- more pixels than ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb), checked before decoding;
- a file that cannot be decoded to the end (truncated, corrupt);
- with ``still_only``, an animated image (APNG, animated WebP or GIF; a camera's MPO JPEG counts as still);
- with ``exact_end``, any byte after the image's own end (a PNG's IEND chunk, a JPEG's EOI marker, a WebP's RIFF
  size, a GIF's trailer): the mark of a polyglot, e.g. an image with a zip archive or a web page appended.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Final

from PIL import Image

from bot.i18n import msg

PIL_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF")
PIL_MEDIA_TYPES: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # what Pillow calls a JPEG carrying extra frames (many phone cameras)
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PNG_CHUNK_LIMIT: Final = 1_000_000  # more chunks than any real PNG has: stop walking

RESAVE = msg("Open it in an image editor, save or export it again as a PNG, JPEG or WebP, and attach the new file.")


class BadImage(ValueError):
    """``problem`` completes "The image …" (or "The start image (x.png) …") for the user."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def inspect_image(source: Path | bytes, *, still_only: bool = False, exact_end: bool = False) -> tuple[str, int, int]:
    """(media_type, width, height) of a fully decoded PNG, JPEG, WebP or GIF; ``BadImage`` otherwise."""
    with _open(source) as stream:
        size = _size_of(stream)
        try:
            with Image.open(stream, formats=PIL_FORMATS) as image:
                pil_format = image.format or ""
                width, height = image.size
                if width <= 0 or height <= 0 or pil_format not in PIL_MEDIA_TYPES:
                    raise BadImage(msg("could not be read as an image. {resave}", resave=RESAVE))
                limit = Image.MAX_IMAGE_PIXELS
                if limit is not None and width * height > limit:
                    raise BadImage(
                        msg(
                            "is {width}×{height} pixels, more than the {limit} pixels I can read. "
                            "Resize it and try again.",
                            width=width,
                            height=height,
                            limit=f"{limit:,}",
                        )
                    )
                if still_only and getattr(image, "is_animated", False) and pil_format != "MPO":
                    raise BadImage(msg("is animated. Attach a still image (a single frame) instead."))
                image.load()  # decodes every pixel: a truncated or corrupt file fails here
        except BadImage:
            raise
        except Image.DecompressionBombError:
            raise BadImage(
                msg("has more pixels than I can read. Resize it and try again. {resave}", resave=RESAVE)
            ) from None
        except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, EOFError, zlib errors…)
            raise BadImage(
                msg("is damaged or incomplete: it could not be read to the end. {resave}", resave=RESAVE)
            ) from None
        if exact_end and not _ends_where_the_image_ends(stream, pil_format, size):
            raise BadImage(
                msg(
                    "has extra data after the end of the image (it may be two files in one, such as an image with an "
                    "archive or a web page appended). {resave}",
                    resave=RESAVE,
                )
            )
    return PIL_MEDIA_TYPES[pil_format], width, height


def _open(source: Path | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def _size_of(stream: BinaryIO) -> int:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _ends_where_the_image_ends(stream: BinaryIO, pil_format: str, size: int) -> bool:
    if pil_format == "PNG":
        return _png_end(stream) == size
    if pil_format in ("JPEG", "MPO"):
        return _tail(stream, size, 2) == b"\xff\xd9"
    if pil_format == "WEBP":
        stream.seek(4)
        riff = int.from_bytes(stream.read(4), "little") + 8
        return size in (riff, riff + (riff & 1))
    if pil_format == "GIF":
        return _tail(stream, size, 1) == b"\x3b"
    return False


def _tail(stream: BinaryIO, size: int, n: int) -> bytes:
    if size < n:
        return b""
    stream.seek(size - n)
    return stream.read(n)


def _png_end(stream: BinaryIO) -> int | None:
    """The offset just past the IEND chunk, walking the chunk headers; None when there is none."""
    stream.seek(0)
    if stream.read(8) != _PNG_MAGIC:
        return None
    offset = 8
    for _ in range(_PNG_CHUNK_LIMIT):
        stream.seek(offset)
        header = stream.read(8)
        if len(header) < 8:
            return None
        length = int.from_bytes(header[:4], "big")
        offset += 12 + length
        if header[4:8] == b"IEND":
            return offset
    return None
