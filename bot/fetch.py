"""The one place that downloads anything: provider outputs and users' Discord attachments.

The rules, and where each is enforced so that nothing can route around it:

- Only http and https.
- Non-public addresses (private, loopback, link-local, cloud metadata, multicast, reserved, unspecified, and IPv6
  forms that embed one of those) are always refused; ``allow_loopback`` (local set-ups and tests) lets loopback
  through and nothing else. Host names are checked by ``PublicAddressResolver`` inside the
  connector, on the very addresses it is about to connect to, so DNS rebinding cannot slip through; IP-literal hosts
  (which aiohttp never resolves) are checked before each request. Redirects are followed by hand and every hop is
  checked again.
- ``hosts``, when given (users' attachments: Discord's CDN), is the only set of host names any hop may reach.
- A byte cap, enforced on ``Content-Length`` and again while streaming the body into a temporary file: the body is
  never held in memory whole. The caller moves the file (``Downloaded.path``) or lets ``discard`` delete it.
- The content is identified from its bytes (``sniff``); ``Content-Type`` is never trusted. Images are decoded in
  full, in a thread (``bot.media_check``): a truncated, corrupt or over-large image is refused.
- URLs are logged as scheme://host/path only: presigned URLs carry credentials in their query string.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from PIL import Image
from yarl import URL

from bot.errors import BotError
from bot.media_check import PIL_FORMATS as _PIL_FORMATS
from bot.media_check import PIL_MEDIA_TYPES as _PIL_MEDIA_TYPES
from bot.media_check import BadImage, inspect_image

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT: Final = "genbot/0.1 (media fetcher)"
CONNECT_TIMEOUT_S: Final = 15.0
CHUNK_BYTES: Final = 64 * 1024
MEDIA_KINDS: Final = frozenset({"image", "video"})

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
Sniffed = tuple[str, int | None, int | None]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES: Final = frozenset({"http", "https"})
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_EXPIRED_STATUSES: Final = frozenset({403, 404, 410})
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")

_MAGIC_BYTES: Final = 16
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
_TEMP_PREFIX: Final = "download-"
_STALE_TEMP_S: Final = 86400.0


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


class BlockedAddressError(OSError):
    """A host name resolved to an address the fetcher may not connect to."""


def is_loopback_address(address: str | IPAddress) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address: what ``allow_loopback`` lets through."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def address_allowed(address: str | IPAddress, *, allow_loopback: bool = False) -> bool:
    return is_public_address(address) or (allow_loopback and is_loopback_address(address))


def is_public_address(address: str | IPAddress) -> bool:
    """Whether connecting to ``address`` is allowed. Unparseable addresses are not."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if any(inner is not None and not is_public_address(inner) for inner in embedded):
            return False
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


class PublicAddressResolver(AbstractResolver):
    """Wraps a resolver and refuses any name that resolves to a non-public address (loopback allowed only with
    ``allow_loopback``).

    The connector connects only to addresses this returns, so the check holds at connection time.
    """

    def __init__(self, base: AbstractResolver, *, allow_loopback: bool = False) -> None:
        self._base = base
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._base.resolve(host, port, family)
        for result in results:
            if not address_allowed(result["host"], allow_loopback=self._allow_loopback):
                log.warning("refused to connect to %s: it resolves to non-public %s", host, result["host"])
                raise BlockedAddressError(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        await self._base.close()


def loggable_url(url: str | URL) -> str:
    """``url`` as scheme://host[:port]/path: no query string, fragment or user info."""
    try:
        parsed = URL(url) if isinstance(url, str) else url
        if not parsed.absolute:
            return parsed.path
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (TypeError, ValueError):
        return "<unparseable URL>"


def sniff(data: bytes) -> Sniffed | None:
    """(media_type, width, height) of PNG, JPEG, WebP, GIF, MP4/MOV or WebM bytes; None for anything else.

    Images are read by Pillow, which parses the header only (``bot.media_check.inspect_image`` decodes them in
    full); bytes whose header it cannot read are refused. Videos are recognised by their magic bytes and have no
    dimensions here.
    """
    kind = _kind_from_magic(data[:_MAGIC_BYTES])
    if kind == "image":
        return _sniff_image(data)
    if kind == "video":
        return _sniff_video(data)
    return None


def _kind_from_magic(prefix: bytes) -> str | None:
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


def _sniff_video(data: bytes) -> Sniffed | None:
    if data[4:8] == b"ftyp":
        if len(data) < 16 or int.from_bytes(data[:4], "big") < 16:
            return None
        return ("video/quicktime" if data[8:12] == b"qt  " else "video/mp4"), None, None
    if data.startswith(_EBML_MAGIC) and _WEBM_DOCTYPE.search(data[:64]):
        return "video/webm", None, None
    return None


class Fetcher:
    """Downloads media under the rules above. Owns its own session, connector and resolver.

    ``resolver`` replaces aiohttp's default resolver underneath the address filter (tests inject a fake one);
    the caller keeps ownership of an injected resolver. ``allow_private`` is the old name of ``allow_loopback`` and
    means only that now. Bodies are streamed into ``temp_dir`` (default: the system's temporary folder).
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout_s: float,
        allow_loopback: bool = False,
        allow_private: bool | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        max_redirects: int = 3,
        resolver: AbstractResolver | None = None,
        temp_dir: Path | None = None,
    ) -> None:
        if max_bytes <= 0 or timeout_s <= 0 or max_redirects < 0:
            raise ValueError("max_bytes and timeout_s must be positive and max_redirects not negative")
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._allow_loopback = allow_loopback or bool(allow_private)
        self._user_agent = user_agent
        self._max_redirects = max_redirects
        self._base_resolver = resolver
        self._temp_dir = temp_dir
        self._resolver: PublicAddressResolver | None = None
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return (
            f"Fetcher(max_bytes={self._max_bytes}, timeout_s={self._timeout_s}, "
            f"allow_loopback={self._allow_loopback}, max_redirects={self._max_redirects})"
        )

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    async def start(self) -> None:
        if self._session is not None:
            return
        if self._temp_dir is not None:
            await asyncio.to_thread(_prepare_temp_dir, self._temp_dir)
        self._resolver = PublicAddressResolver(
            self._base_resolver or DefaultResolver(), allow_loopback=self._allow_loopback
        )
        connector = aiohttp.TCPConnector(resolver=self._resolver)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=min(CONNECT_TIMEOUT_S, self._timeout_s)),
            headers={hdrs.USER_AGENT: self._user_agent, hdrs.ACCEPT_ENCODING: "identity"},
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # an environment proxy would connect on our behalf, past the resolver's check
        )

    async def close(self) -> None:
        session, resolver = self._session, self._resolver
        self._session = self._resolver = None
        if session is not None:
            await session.close()
        if resolver is not None and self._base_resolver is None:
            await resolver.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def download(
        self,
        url: str,
        *,
        kinds: Collection[str] = ("image", "video"),
        max_bytes: int | None = None,
        hosts: Collection[str] | None = None,
        still_only: bool = False,
        exact_end: bool = False,
    ) -> Downloaded:
        """Download ``url`` into a temporary file and check it is one of ``kinds``. ``max_bytes`` may lower the
        fetcher's cap, not raise it; ``hosts`` limits every hop to those host names; ``still_only`` and
        ``exact_end`` refuse animated images and bytes after an image's end (see ``bot.media_check``).

        Raises ``FetchError`` for every failure or refusal (and then leaves no file behind).
        """
        if self._session is None:
            raise RuntimeError("Fetcher.start() has not been called")
        wanted = frozenset(kinds)
        if not wanted or not wanted <= MEDIA_KINDS:
            raise ValueError(f"kinds must be a non-empty subset of {sorted(MEDIA_KINDS)}")
        cap = self._max_bytes if max_bytes is None else min(max_bytes, self._max_bytes)
        allowed_hosts = frozenset(h.lower() for h in hosts) if hosts is not None else None
        target = _parse_url(url)
        fd, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".part", dir=self._temp_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as sink:
                async with asyncio.timeout(self._timeout_s):
                    final, size = await self._get(self._session, target, cap, wanted, allowed_hosts, sink)
            sniffed = await asyncio.to_thread(_check_file, path, wanted, still_only, exact_end)
        except TimeoutError as exc:
            _remove(path)
            log.info("download of %s timed out after %ss", loggable_url(target), self._timeout_s)
            raise FetchError("The download took too long.", reason="timeout", retryable=True) from exc
        except FetchError as exc:
            _remove(path)
            log.info("download of %s failed: %s (status %s)", loggable_url(target), exc.reason, exc.status)
            raise
        except BaseException:
            _remove(path)
            raise
        media_type, width, height = sniffed
        log.debug("downloaded %s: %s, %d bytes", loggable_url(final), media_type, size)
        return Downloaded(
            media_type=media_type, width=width, height=height, url=loggable_url(final), path=path, size=size
        )

    async def _get(
        self,
        session: aiohttp.ClientSession,
        url: URL,
        cap: int,
        wanted: frozenset[str],
        hosts: frozenset[str] | None,
        sink: io.BufferedWriter,
    ) -> tuple[URL, int]:
        for _ in range(self._max_redirects + 1):
            self._check_target(url, hosts)
            try:
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in _REDIRECT_STATUSES:
                        url = _redirect_target(url, response)
                        log.debug("redirected to %s", loggable_url(url))
                        continue
                    _check_status(response.status)
                    return url, await _read_capped(response, cap, wanted, sink)
            except TimeoutError:
                raise
            except aiohttp.ClientSSLError as exc:
                raise FetchError("The file host's secure connection could not be verified.", reason="tls") from exc
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, BlockedAddressError):
                    raise _blocked() from exc
                raise _network_error() from exc
            except aiohttp.InvalidURL as exc:
                raise FetchError("That link isn't a valid web address.", reason="bad_url") from exc
            except aiohttp.ClientError as exc:
                raise _network_error() from exc
        raise FetchError("The link redirected too many times.", reason="redirect")

    def _check_target(self, url: URL, hosts: frozenset[str] | None = None) -> None:
        if url.scheme not in _SCHEMES or not url.host:
            raise FetchError("Only http and https links can be downloaded.", reason="bad_url")
        if hosts is not None and url.host.lower().rstrip(".") not in hosts:
            log.warning("refused to fetch %s: not one of the allowed hosts", loggable_url(url))
            raise FetchError("That file is not on Discord's file server, so I won't fetch it.", reason="blocked")
        try:
            literal = ipaddress.ip_address(url.host)
        except ValueError:
            if _is_legacy_numeric_host(url.host):
                raise FetchError("That link isn't a valid web address.", reason="bad_url") from None
            return
        if not address_allowed(literal, allow_loopback=self._allow_loopback):
            raise _blocked()


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _prepare_temp_dir(folder: Path) -> None:
    """Create the folder; delete what a crashed process left there a day or more ago."""
    folder.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - _STALE_TEMP_S
    for leftover in folder.glob(f"{_TEMP_PREFIX}*.part"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            continue


def _check_file(path: Path, wanted: frozenset[str], still_only: bool, exact_end: bool) -> Sniffed:
    """Runs in a thread: identify the file, and decode an image in full."""
    with path.open("rb") as stream:
        head = stream.read(64)
    kind = _kind_from_magic(head[:_MAGIC_BYTES])
    if kind not in wanted:
        raise _not_media(wanted)
    if kind == "video":
        sniffed = _sniff_video(head)
        if sniffed is None:
            raise _not_media(wanted)
        return sniffed
    try:
        media_type, width, height = inspect_image(path, still_only=still_only, exact_end=exact_end)
    except BadImage as exc:
        raise FetchError(f"The image {exc.problem}", reason="bad_image", problem=exc.problem) from None
    return media_type, width, height


def _parse_url(url: str) -> URL:
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        raise FetchError("That link isn't a valid web address.", reason="bad_url") from None
    if not parsed.absolute:
        raise FetchError("That link isn't a valid web address.", reason="bad_url")
    return parsed


def _is_legacy_numeric_host(host: str) -> bool:
    """Forms like ``127.1``, ``2130706433`` or ``0x7f.1`` that the C library reads as an IPv4 address."""
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


def _redirect_target(url: URL, response: aiohttp.ClientResponse) -> URL:
    location = response.headers.get(hdrs.LOCATION)
    if not location:
        raise FetchError("The file host sent a broken redirect.", reason="redirect", status=response.status)
    try:
        return url.join(URL(location))
    except (TypeError, ValueError):
        raise FetchError("The file host sent a broken redirect.", reason="redirect", status=response.status) from None


def _check_status(status: int) -> None:
    if 200 <= status < 300:
        return
    if status in _EXPIRED_STATUSES:
        raise FetchError(
            "The file link has expired or the file is no longer there.", reason="expired", retryable=True, status=status
        )
    if status == 429:
        raise FetchError(
            "The file host is limiting downloads right now.", reason="rate_limited", retryable=True, status=status
        )
    if status >= 500 or status == 408:
        raise FetchError(
            f"The file host had a problem (HTTP {status}).", reason="unavailable", retryable=True, status=status
        )
    raise FetchError(f"The file host refused the download (HTTP {status}).", reason="http_error", status=status)


async def _read_capped(
    response: aiohttp.ClientResponse, cap: int, wanted: frozenset[str], sink: io.BufferedWriter
) -> int:
    """Stream the body into ``sink`` (small buffered writes: page-cache fast), stopping at the cap; its size."""
    length = response.content_length
    if length is not None and length > cap:
        raise _too_large(cap)
    head = b""
    received = 0
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        received += len(chunk)
        if received > cap:
            raise _too_large(cap)
        if len(head) < _MAGIC_BYTES:
            head += chunk[: _MAGIC_BYTES - len(head)]
            # Stop early on an error page or other non-media body rather than streaming all of it.
            if len(head) >= _MAGIC_BYTES and _kind_from_magic(head) not in wanted:
                raise _not_media(wanted)
        sink.write(chunk)
    return received


def _kind_of(media_type: str) -> str:
    return media_type.partition("/")[0]


def _blocked() -> FetchError:
    return FetchError(
        "That link points to a private or internal network address, so I won't fetch it.", reason="blocked"
    )


def _network_error() -> FetchError:
    return FetchError("The download failed because of a network error.", reason="network", retryable=True)


def _too_large(cap: int) -> FetchError:
    return FetchError(f"The file is larger than the {_human_size(cap)} limit.", reason="too_large")


def _not_media(wanted: frozenset[str]) -> FetchError:
    what = {frozenset({"image"}): "an image", frozenset({"video"}): "a video"}.get(wanted, "an image or a video")
    return FetchError(f"The file isn't {what} I can use.", reason="not_media")


def _human_size(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"
