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


@cache
def truncated_png(keep: float = 0.6) -> bytes:
    """A noisy 256x256 PNG cut off after ``keep`` of its bytes: its header reads fine, its pixels do not."""
    noisy = Image.frombytes("RGB", (256, 256), bytes(range(256)) * 768)
    buf = io.BytesIO()
    noisy.save(buf, format="PNG")
    data = buf.getvalue()
    return data[: int(len(data) * keep)]


@cache
def animated_bytes(fmt: str = "png") -> bytes:
    """A two-frame animated image (APNG, animated WebP or GIF)."""
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format=_PIL_FORMATS[fmt], save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def polyglot(image: bytes) -> bytes:
    """``image`` with a zip archive holding a web page appended: still opens as the image."""
    return image + b"PK\x03\x04" + bytes(26) + b"payload.html" + b"<html><script>alert(1)</script></html>"
