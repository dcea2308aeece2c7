"""What a file is, from its first bytes: PNG, JPEG, WebP, GIF (read by Pillow's header parser), MP4/MOV or
WebM. ``Content-Type`` headers are never trusted; this is."""

from __future__ import annotations

import io
import re
from typing import Final

from PIL import Image

from bot.media_check import PIL_FORMATS as _PIL_FORMATS
from bot.media_check import PIL_MEDIA_TYPES as _PIL_MEDIA_TYPES

Sniffed = tuple[str, int | None, int | None]

MAGIC_BYTES: Final = 16
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_GIF_MAGICS: Final = (b"GIF87a", b"GIF89a")
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_WEBM_DOCTYPE: Final = re.compile(rb"\x42\x82.{1,8}?webm", re.DOTALL)
# ISO-BMFF major brands that are still images or audio, not video.
_NON_VIDEO_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis", b"jp2 ", b"crx "}
    | {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
)


def sniff(data: bytes) -> Sniffed | None:
    """(media_type, width, height) of PNG, JPEG, WebP, GIF, MP4/MOV or WebM bytes; None for anything else.

    Images are read by Pillow, which parses the header only (``bot.media_check.inspect_image`` decodes them in
    full); bytes whose header it cannot read are refused. Videos are recognised by their magic bytes and have no
    dimensions here.
    """
    kind = kind_from_magic(data[:MAGIC_BYTES])
    if kind == "image":
        return _sniff_image(data)
    if kind == "video":
        return sniff_video(data)
    return None


def kind_from_magic(prefix: bytes) -> str | None:
    if prefix.startswith((_PNG_MAGIC, _JPEG_MAGIC, *_GIF_MAGICS)) or (
        prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP"
    ):
        return "image"
    if (prefix[4:8] == b"ftyp" and prefix[8:12] not in _NON_VIDEO_BRANDS) or prefix.startswith(_EBML_MAGIC):
        return "video"
    return None


def _sniff_image(data: bytes) -> Sniffed | None:
    try:
        with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as image:
            pil_format = image.format or ""
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    media_type = _PIL_MEDIA_TYPES.get(pil_format)
    if media_type is None or width <= 0 or height <= 0:
        return None
    return media_type, width, height


def sniff_video(data: bytes) -> Sniffed | None:
    if data[4:8] == b"ftyp":
        if len(data) < 16 or int.from_bytes(data[:4], "big") < 16:
            return None
        return ("video/quicktime" if data[8:12] == b"qt  " else "video/mp4"), None, None
    if data.startswith(_EBML_MAGIC) and _WEBM_DOCTYPE.search(data[:64]):
        return "video/webm", None, None
    return None
