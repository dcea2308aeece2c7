"""What a download gives back (``Downloaded``), or why it failed (``FetchError``), in words a member can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bot.errors import BotError
from bot.i18n import msg

FetchReason = Literal[
    "bad_url",
    "blocked",
    "network",
    "tls",
    "timeout",
    "expired",
    "rate_limited",
    "unavailable",
    "http_error",
    "redirect",
    "too_large",
    "not_media",
    "bad_image",
]


class Downloaded:
    """A checked download. The content is in the temporary file ``path`` (the caller moves it, e.g. with
    ``MediaStore.save_output_file``, or calls ``discard``); a ``Downloaded`` made from ``data`` (tests, inline
    results) has no file. ``url`` is the final URL after redirects, as scheme://host/path."""

    __slots__ = ("_data", "height", "media_type", "path", "size", "url", "width")

    def __init__(
        self,
        data: bytes | None = None,
        media_type: str = "",
        width: int | None = None,
        height: int | None = None,
        url: str = "",
        *,
        path: Path | None = None,
        size: int | None = None,
    ) -> None:
        if (data is None) == (path is None):
            raise ValueError("a Downloaded has either data or a path")
        self._data = data
        self.path = path
        self.media_type = media_type
        self.width = width
        self.height = height
        self.url = url
        self.size = len(data) if data is not None else (size if size is not None else path.stat().st_size)  # type: ignore[union-attr]

    @property
    def kind(self) -> str:
        return "image" if self.media_type.startswith("image/") else "video"

    @property
    def data(self) -> bytes:
        """The whole content in memory: for small files only (reads the file on the calling thread)."""
        if self._data is not None:
            return self._data
        assert self.path is not None
        return self.path.read_bytes()

    def discard(self) -> None:
        """Delete the temporary file, if it is still there."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Downloaded):
            return NotImplemented
        mine = (self.media_type, self.width, self.height, self.url, self.size)
        return mine == (other.media_type, other.width, other.height, other.url, other.size) and self.data == other.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Downloaded(media_type={self.media_type!r}, width={self.width}, height={self.height}, "
            f"url={self.url!r}, size={self.size})"
        )


class FetchError(BotError):
    """A download failed or was refused. ``retryable`` means the same call (or a fresh URL) may work later."""

    def __init__(
        self,
        user_message: str,
        *,
        reason: FetchReason,
        retryable: bool = False,
        status: int | None = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(user_message)
        self.reason: FetchReason = reason
        self.retryable = retryable
        self.status = status
        self.problem = problem  # for "bad_image": what is wrong, completing "The image …"


def blocked() -> FetchError:
    return FetchError(
        msg("That link points to a private or internal network address, so I won't fetch it."), reason="blocked"
    )


def network_error() -> FetchError:
    return FetchError(msg("The download failed because of a network error."), reason="network", retryable=True)


def too_large(cap: int) -> FetchError:
    return FetchError(msg("The file is larger than the {limit} limit.", limit=human_size(cap)), reason="too_large")


def not_media(wanted: frozenset[str]) -> FetchError:
    if wanted == frozenset({"image"}):
        return FetchError(msg("The file isn't an image I can use."), reason="not_media")
    if wanted == frozenset({"video"}):
        return FetchError(msg("The file isn't a video I can use."), reason="not_media")
    return FetchError(msg("The file isn't an image or a video I can use."), reason="not_media")


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"
