"""Real media bytes for fakes and tests: images drawn with Pillow, and a tiny MP4 made once with PyAV."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from PIL import Image

_MEDIA_DIR = Path(__file__).parent / "media"

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP", "gif": "GIF"}
MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
}


@cache
def image_bytes(
    fmt: str = "png", width: int = 64, height: int = 64, color: tuple[int, int, int] = (200, 80, 160)
) -> bytes:
    """A real, decodable image in ``fmt`` (png, jpeg/jpg, webp, gif)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format=_PIL_FORMATS[fmt.lower()])
    return buf.getvalue()


@cache
def mp4_bytes() -> bytes:
    """A real 1-second, 64x64 MPEG-4 video (8 frames)."""
    return (_MEDIA_DIR / "sample.mp4").read_bytes()


def media_bytes(fmt: str, width: int = 64, height: int = 64) -> bytes:
    return mp4_bytes() if fmt == "mp4" else image_bytes(fmt, width, height)
