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
import socket
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bot.downloads import Downloaded, FetchError, blocked, network_error, not_media, too_large
from bot.i18n import msg
from bot.media_check import BadImage, inspect_image
from bot.media_sniff import MAGIC_BYTES, Sniffed, kind_from_magic, sniff, sniff_video
from bot.net_guard import BlockedAddressError, PublicAddressResolver, address_allowed

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT: Final = "genbot/0.1 (media fetcher)"
CONNECT_TIMEOUT_S: Final = 15.0
CHUNK_BYTES: Final = 64 * 1024
MEDIA_KINDS: Final = frozenset({"image", "video"})

_SCHEMES: Final = frozenset({"http", "https"})
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_EXPIRED_STATUSES: Final = frozenset({403, 404, 410})

_TEMP_PREFIX: Final = "download-"
_STALE_TEMP_S: Final = 86400.0


def loggable_url(url: str | URL) -> str:
    """``url`` as scheme://host[:port]/path: no query string, fragment or user info."""
    try:
        parsed = URL(url) if isinstance(url, str) else url
        if not parsed.absolute:
            return parsed.path
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (TypeError, ValueError):
        return "<unparseable URL>"


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
            raise FetchError(msg("The download took too long."), reason="timeout", retryable=True) from exc
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
                raise FetchError(msg("The file host's secure connection could not be verified."), reason="tls") from exc
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, BlockedAddressError):
                    raise blocked() from exc
                raise network_error() from exc
            except aiohttp.InvalidURL as exc:
                raise FetchError(msg("That link isn't a valid web address."), reason="bad_url") from exc
            except aiohttp.ClientError as exc:
                raise network_error() from exc
        raise FetchError(msg("The link redirected too many times."), reason="redirect")

    def _check_target(self, url: URL, hosts: frozenset[str] | None = None) -> None:
        if url.scheme not in _SCHEMES or not url.host:
            raise FetchError(msg("Only http and https links can be downloaded."), reason="bad_url")
        if hosts is not None and url.host.lower().rstrip(".") not in hosts:
            log.warning("refused to fetch %s: not one of the allowed hosts", loggable_url(url))
            raise FetchError(msg("That file is not on Discord's file server, so I won't fetch it."), reason="blocked")
        try:
            literal = ipaddress.ip_address(url.host)
        except ValueError:
            if _is_legacy_numeric_host(url.host):
                raise FetchError(msg("That link isn't a valid web address."), reason="bad_url") from None
            return
        if not address_allowed(literal, allow_loopback=self._allow_loopback):
            raise blocked()


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
    kind = kind_from_magic(head[:MAGIC_BYTES])
    if kind not in wanted:
        raise not_media(wanted)
    if kind == "video":
        sniffed = sniff_video(head)
        if sniffed is None:
            raise not_media(wanted)
        return sniffed
    try:
        media_type, width, height = inspect_image(path, still_only=still_only, exact_end=exact_end)
    except BadImage as exc:
        raise FetchError(
            msg("The image {problem}", problem=exc.problem), reason="bad_image", problem=exc.problem
        ) from None
    return media_type, width, height


def _parse_url(url: str) -> URL:
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        raise FetchError(msg("That link isn't a valid web address."), reason="bad_url") from None
    if not parsed.absolute:
        raise FetchError(msg("That link isn't a valid web address."), reason="bad_url")
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
        raise FetchError(msg("The file host sent a broken redirect."), reason="redirect", status=response.status)
    try:
        return url.join(URL(location))
    except (TypeError, ValueError):
        raise FetchError(
            msg("The file host sent a broken redirect."), reason="redirect", status=response.status
        ) from None


def _check_status(status: int) -> None:
    if 200 <= status < 300:
        return
    if status in _EXPIRED_STATUSES:
        raise FetchError(
            msg("The file link has expired or the file is no longer there."),
            reason="expired",
            retryable=True,
            status=status,
        )
    if status == 429:
        raise FetchError(
            msg("The file host is limiting downloads right now."), reason="rate_limited", retryable=True, status=status
        )
    if status >= 500 or status == 408:
        raise FetchError(
            msg("The file host had a problem (HTTP {status}).", status=status),
            reason="unavailable",
            retryable=True,
            status=status,
        )
    raise FetchError(
        msg("The file host refused the download (HTTP {status}).", status=status), reason="http_error", status=status
    )


async def _read_capped(
    response: aiohttp.ClientResponse, cap: int, wanted: frozenset[str], sink: io.BufferedWriter
) -> int:
    """Stream the body into ``sink`` (small buffered writes: page-cache fast), stopping at the cap; its size."""
    length = response.content_length
    if length is not None and length > cap:
        raise too_large(cap)
    head = b""
    received = 0
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        received += len(chunk)
        if received > cap:
            raise too_large(cap)
        if len(head) < MAGIC_BYTES:
            head += chunk[: MAGIC_BYTES - len(head)]
            # Stop early on an error page or other non-media body rather than streaming all of it.
            if len(head) >= MAGIC_BYTES and kind_from_magic(head) not in wanted:
                raise not_media(wanted)
        sink.write(chunk)
    return received


def _kind_of(media_type: str) -> str:
    return media_type.partition("/")[0]


__all__ = ["Downloaded", "FetchError", "Fetcher", "loggable_url", "sniff"]
