"""bot.fetch against a real aiohttp server on loopback: formats, size caps, statuses, timeouts, redirects, and the
address rules. Host names only ever go through a fake resolver (or the system's for ``localhost``): no internet."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image

from bot import fetch, net_guard
from bot.errors import BotError
from bot.fetch import Downloaded, Fetcher, FetchError, loggable_url, sniff
from bot.net_guard import BlockedAddressError, PublicAddressResolver, is_public_address
from tests.fakes.media import animated_bytes, image_bytes, mp4_bytes, polyglot, truncated_png

SECRET = "S3CR3T-SIGNATURE"
PNG = image_bytes("png", 64, 48)
IMAGES = {
    "png": (PNG, "image/png"),
    "jpeg": (image_bytes("jpeg", 64, 48), "image/jpeg"),
    "webp": (image_bytes("webp", 64, 48), "image/webp"),
    "gif": (image_bytes("gif", 64, 48), "image/gif"),
}
EBML_HEADER = bytes.fromhex("1a45dfa3") + b"\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
WEBM = EBML_HEADER + b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + bytes(64)
MATROSKA = EBML_HEADER + b"\x42\x82\x88matroska\x42\x87\x81\x04\x42\x85\x81\x02" + bytes(64)
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00\x00\x00\x08wide" + bytes(32)
HTML = b"<!doctype html><html><body>Access denied</body></html>"


def ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00" + brand + b"mif1" + bytes(32)


def other_format(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format=fmt)
    return buf.getvalue()


class FakeResolver(AbstractResolver):
    """Answers from a table; a name not in it fails as an unknown host would. Each entry may be a list of answers
    given in turn (for rebinding)."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        answers = self.table[host]
        addresses = answers[min(self.calls.count(host), len(answers)) - 1] if isinstance(answers[0], list) else answers
        assert isinstance(addresses, list)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if ":" in str(address) else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        self.closed = True


class MediaServer:
    """Serves media and misbehaviour on 127.0.0.1 (and ::1 when the host has IPv6), recording every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.extra: dict[str, bytes] = {}  # more bodies served at /media/<name>
        self.headers: list[dict[str, str]] = []
        self.release = asyncio.Event()
        self.stream_done = asyncio.Event()
        self.streamed = 0
        self.port = 0
        self.port6: int | None = None
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/media/{name}", self._media)
        app.router.add_get("/html", self._html)
        app.router.add_get("/lying-png", self._lying_png)
        app.router.add_get("/big-declared", self._big_declared)
        app.router.add_get("/big-chunked", self._big_chunked)
        app.router.add_get("/chunked-png", self._chunked_png)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/chain/{n}", self._chain)
        app.router.add_get("/loop/{side}", self._loop)
        app.router.add_get("/status/{code}", self._status)
        app.router.add_get("/slow-body", self._slow_body)
        app.router.add_get("/slow-headers", self._slow_headers)
        app.router.add_get("/drop", self._drop)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)

    async def __aenter__(self) -> MediaServer:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        try:
            await web.TCPSite(self._runner, "::1", 0).start()
            self.port6 = self._runner.addresses[1][1]
        except OSError:
            self.port6 = None
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        await self._runner.cleanup()

    def url(self, path: str, host: str = "127.0.0.1", port: int | None = None) -> str:
        return f"http://{host}:{port or self.port}{path}"

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        self.headers.append(dict(request.headers))
        response: web.StreamResponse = await handler(request)
        return response

    async def _media(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = {"mp4": mp4_bytes(), "webm": WEBM, "mov": MOV} | {k: v[0] for k, v in IMAGES.items()} | self.extra
        if name not in body:
            raise web.HTTPNotFound()
        response = web.Response(body=body[name], content_type="application/octet-stream")
        response.set_cookie("session", "abc")
        return response

    async def _html(self, request: web.Request) -> web.Response:
        return web.Response(body=HTML, content_type="text/html")

    async def _lying_png(self, request: web.Request) -> web.Response:
        return web.Response(body=HTML, content_type="image/png")

    async def _big_declared(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 10**12
        await response.prepare(request)
        await response.write(PNG[:1000])
        await self._wait_released()
        return response

    async def _big_chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = PNG[:16] + bytes(64 * 1024 - 16)
        try:
            for _ in range(20_000):
                await response.write(chunk)
                self.streamed += len(chunk)
        except ConnectionError:
            pass
        finally:
            self.stream_done.set()
        return response

    async def _chunked_png(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(PNG), 7):
            await response.write(PNG[start : start + 7])
        await response.write_eof()
        return response

    async def _redirect(self, request: web.Request) -> web.Response:
        status = int(request.query.get("status", "302"))
        headers = {"Location": request.query["to"]} if "to" in request.query else {}
        return web.Response(status=status, headers=headers)

    async def _chain(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        location = f"/chain/{n - 1}?sig={SECRET}" if n > 0 else f"/media/png?sig={SECRET}"
        return web.Response(status=302, headers={"Location": location})

    async def _loop(self, request: web.Request) -> web.Response:
        other = "b" if request.match_info["side"] == "a" else "a"
        return web.Response(status=302, headers={"Location": f"/loop/{other}"})

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text=f"error page {SECRET}")

    async def _slow_body(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(PNG)
        await response.prepare(request)
        await response.write(PNG[:20])
        await self._wait_released()
        return response

    async def _slow_headers(self, request: web.Request) -> web.Response:
        await self._wait_released()
        return web.Response(body=PNG)

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 100_000
        await response.prepare(request)
        await response.write(PNG[:200])
        assert request.transport is not None
        request.transport.close()
        return response

    async def _wait_released(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.release.wait(), 30)


@pytest.fixture
async def server() -> AsyncIterator[MediaServer]:
    async with MediaServer() as media_server:
        yield media_server


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(
        {
            "localhost": ["127.0.0.1"],
            "cdn.test": ["127.0.0.1"],
            "internal.test": ["192.168.1.20"],
            "metadata.test": ["169.254.169.254"],
            "mapped.test": ["::ffff:127.0.0.1"],
        }
    )


def make_fetcher(resolver: AbstractResolver | None, **overrides: Any) -> Fetcher:
    options: dict[str, Any] = {"max_bytes": 1_000_000, "timeout_s": 2.0, "allow_loopback": True, "resolver": resolver}
    return Fetcher(**(options | overrides))


@pytest.fixture
async def fetcher(resolver: FakeResolver) -> AsyncIterator[Fetcher]:
    async with make_fetcher(resolver) as started:
        yield started


@pytest.fixture
async def strict(resolver: FakeResolver) -> AsyncIterator[Fetcher]:
    async with make_fetcher(resolver, allow_loopback=False) as started:
        yield started


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets the strict fetcher reach the test server at 127.0.0.1, and nothing else private."""
    real = net_guard.is_public_address
    monkeypatch.setattr(net_guard, "is_public_address", lambda address: str(address) == "127.0.0.1" or real(address))


async def refused(coro: Any, reason: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        await coro
    assert info.value.reason == reason, info.value.user_message
    return info.value


# sniff


@pytest.mark.parametrize("fmt", list(IMAGES))
@pytest.mark.parametrize(("width", "height"), [(64, 48), (1, 1), (300, 17)])
def test_sniff_reads_image_type_and_size(fmt: str, width: int, height: int) -> None:
    assert sniff(image_bytes(fmt, width, height)) == (IMAGES[fmt][1], width, height)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (mp4_bytes(), ("video/mp4", None, None)),
        (MOV, ("video/quicktime", None, None)),
        (WEBM, ("video/webm", None, None)),
        (ftyp(b"isom"), ("video/mp4", None, None)),
    ],
    ids=["mp4", "mov", "webm", "isom"],
)
def test_sniff_recognises_videos_by_magic(data: bytes, expected: tuple[str, None, None]) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        HTML,
        b"GIF89a",
        PNG[:12],
        PNG[:8] + b"garbage garbage garbage garbage",
        b"\xff\xd8\xff" + bytes(200),
        b"RIFF\x00\x00\x00\x00WEBP" + bytes(40),
        MATROSKA,
        ftyp(b"heic"),
        ftyp(b"avif"),
        ftyp(b"M4A "),
        b"\x00\x00\x00\x04ftypisom",
        other_format("BMP"),
        other_format("TIFF"),
        b"%PDF-1.7\n",
    ],
    ids=[
        "empty",
        "html",
        "gif-magic-only",
        "truncated-png",
        "png-garbage",
        "jpeg-garbage",
        "webp-garbage",
        "matroska",
        "heic",
        "avif",
        "m4a",
        "bad-ftyp-size",
        "bmp",
        "tiff",
        "pdf",
    ],
)
def test_sniff_refuses_everything_else(data: bytes) -> None:
    assert sniff(data) is None


# the address rules


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.0.0.1",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2002:a00:1::5",
        "64:ff9b::a00:1",
        "::127.0.0.1",
        "not an address",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)


async def test_resolver_refuses_a_public_looking_name_that_resolves_to_a_private_address() -> None:
    guarded = PublicAddressResolver(FakeResolver({"images.example.com": ["10.1.2.3"]}))
    with pytest.raises(BlockedAddressError):
        await guarded.resolve("images.example.com", 443)


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "::ffff:192.168.0.1", "2002:7f00:1::", "fe80::1"])
async def test_resolver_refuses_each_kind_of_private_answer(address: str) -> None:
    with pytest.raises(BlockedAddressError):
        await PublicAddressResolver(FakeResolver({"x.test": [address]})).resolve("x.test", 80)


async def test_resolver_refuses_a_mixed_answer() -> None:
    guarded = PublicAddressResolver(FakeResolver({"cdn.test": ["93.184.216.34", "10.0.0.7"]}))
    with pytest.raises(BlockedAddressError):
        await guarded.resolve("cdn.test", 443)


async def test_resolver_passes_public_answers_through_unchanged() -> None:
    base = FakeResolver({"cdn.test": ["93.184.216.34", "2606:4700::1"]})
    results = await PublicAddressResolver(base).resolve("cdn.test", 443, socket.AF_UNSPEC)
    assert [(r["host"], r["port"]) for r in results] == [("93.184.216.34", 443), ("2606:4700::1", 443)]


async def test_resolver_checks_every_lookup_so_rebinding_is_caught() -> None:
    guarded = PublicAddressResolver(FakeResolver({"rebind.test": [["93.184.216.34"], ["127.0.0.1"]]}))
    assert (await guarded.resolve("rebind.test", 80))[0]["host"] == "93.184.216.34"
    with pytest.raises(BlockedAddressError):
        await guarded.resolve("rebind.test", 80)


async def test_resolver_allows_loopback_answers_and_nothing_else_private_when_told_to() -> None:
    base = FakeResolver({"local.test": ["127.0.0.1"], "nas.test": ["192.168.1.5"], "meta.test": ["169.254.169.254"]})
    guarded = PublicAddressResolver(base, allow_loopback=True)
    assert (await guarded.resolve("local.test", 80))[0]["host"] == "127.0.0.1"
    for name in ("nas.test", "meta.test"):
        with pytest.raises(BlockedAddressError):
            await guarded.resolve(name, 80)
    await guarded.close()
    assert base.closed


PRIVATE_TARGETS = [
    ("127.0.0.1", "/media/png"),
    ("localhost", "/media/png"),
    ("[::1]", "/media/png"),
    ("169.254.169.254", "/latest/meta-data/"),
    ("10.0.0.1", "/media/png"),
    ("[::ffff:127.0.0.1]", "/media/png"),
    ("[::ffff:7f00:1]", "/media/png"),
    ("0.0.0.0", "/media/png"),
    ("[::]", "/media/png"),
    ("internal.test", "/media/png"),
    ("metadata.test", "/latest/meta-data/"),
    ("mapped.test", "/media/png"),
]


@pytest.mark.parametrize(("host", "path"), PRIVATE_TARGETS)
async def test_private_targets_are_refused_without_a_request(
    strict: Fetcher, server: MediaServer, host: str, path: str
) -> None:
    started = time.monotonic()
    error = await refused(strict.download(server.url(path, host)), "blocked")
    assert not error.retryable
    assert server.requests == []
    assert time.monotonic() - started < 1.0  # refused outright, not after a connection attempt timed out


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "0177.0.0.1"])
async def test_legacy_numeric_hosts_are_refused(strict: Fetcher, server: MediaServer, host: str) -> None:
    await refused(strict.download(server.url("/media/png", host)), "bad_url")
    assert server.requests == []


async def test_localhost_is_refused_through_the_system_resolver(server: MediaServer) -> None:
    try:
        socket.getaddrinfo("localhost", None)
    except OSError:
        pytest.skip("this host cannot resolve localhost")
    async with make_fetcher(None, allow_loopback=False) as system:
        await refused(system.download(server.url("/media/png", "localhost")), "blocked")
    assert server.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "cdn.test", "[::ffff:127.0.0.1]", "[::1]"])
async def test_private_targets_work_when_allowed(fetcher: Fetcher, server: MediaServer, host: str) -> None:
    port = server.port6 if host == "[::1]" else server.port
    if port is None:
        pytest.skip("no IPv6 loopback here")
    downloaded = await fetcher.download(server.url("/media/png", host, port))
    assert downloaded.media_type == "image/png"
    assert server.requests == ["/media/png"]


async def test_the_default_resolver_works_when_private_is_allowed(server: MediaServer) -> None:
    async with make_fetcher(None) as default:
        assert (await default.download(server.url("/media/png"))).data == PNG


# downloads


@pytest.mark.parametrize("name", list(IMAGES))
async def test_downloads_images_whatever_the_content_type(fetcher: Fetcher, server: MediaServer, name: str) -> None:
    data, media_type = IMAGES[name]
    downloaded = await fetcher.download(server.url(f"/media/{name}"))
    assert downloaded == Downloaded(data, media_type, 64, 48, server.url(f"/media/{name}"))
    assert downloaded.kind == "image"


@pytest.mark.parametrize(
    ("name", "media_type"), [("mp4", "video/mp4"), ("webm", "video/webm"), ("mov", "video/quicktime")]
)
async def test_downloads_videos(fetcher: Fetcher, server: MediaServer, name: str, media_type: str) -> None:
    downloaded = await fetcher.download(server.url(f"/media/{name}"), kinds=("video",))
    assert (downloaded.media_type, downloaded.width, downloaded.height, downloaded.kind) == (
        media_type,
        None,
        None,
        "video",
    )


async def test_chunked_bodies_are_read_whole(fetcher: Fetcher, server: MediaServer) -> None:
    assert (await fetcher.download(server.url("/chunked-png"))).data == PNG


async def test_downloaded_url_and_repr_leave_out_the_query_and_the_bytes(fetcher: Fetcher, server: MediaServer) -> None:
    downloaded = await fetcher.download(server.url(f"/media/png?X-Amz-Signature={SECRET}#frag"))
    assert downloaded.url == server.url("/media/png")
    assert "data=" not in repr(downloaded)
    assert SECRET not in repr(downloaded)


@pytest.mark.parametrize("path", ["/html", "/lying-png"])
async def test_non_media_is_refused(fetcher: Fetcher, server: MediaServer, path: str) -> None:
    error = await refused(fetcher.download(server.url(path)), "not_media")
    assert not error.retryable
    assert isinstance(error, BotError)
    assert error.user_message == "The file isn't an image or a video I can use."


async def test_kinds_restrict_what_is_accepted(fetcher: Fetcher, server: MediaServer) -> None:
    error = await refused(fetcher.download(server.url("/media/mp4"), kinds=("image",)), "not_media")
    assert "an image" in error.user_message
    error = await refused(fetcher.download(server.url("/media/gif"), kinds=["video"]), "not_media")
    assert "a video" in error.user_message
    assert (await fetcher.download(server.url("/media/gif"), kinds={"image"})).media_type == "image/gif"


@pytest.mark.parametrize("kinds", [(), ("audio",), ("image", "pdf")])
async def test_unknown_kinds_are_a_programming_error(fetcher: Fetcher, kinds: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="kinds"):
        await fetcher.download("http://127.0.0.1/", kinds=kinds)


# size caps


async def test_a_declared_length_over_the_cap_is_refused_before_reading(fetcher: Fetcher, server: MediaServer) -> None:
    started = time.monotonic()
    error = await refused(fetcher.download(server.url("/big-declared")), "too_large")
    assert time.monotonic() - started < 1.0  # the server never finishes this body
    assert not error.retryable
    assert "larger than the 977 KB limit" in error.user_message


async def test_a_stream_over_the_cap_is_cut_off(fetcher: Fetcher, server: MediaServer) -> None:
    await refused(fetcher.download(server.url("/big-chunked")), "too_large")
    await asyncio.wait_for(server.stream_done.wait(), 5)
    assert server.streamed < 20 * 1_000_000  # it stopped long before the server's 1.3 GB


@pytest.mark.parametrize("path", ["/media/png", "/chunked-png"])
async def test_a_body_exactly_at_the_cap_is_accepted_and_one_byte_more_is_not(
    resolver: FakeResolver, server: MediaServer, path: str
) -> None:
    async with make_fetcher(resolver, max_bytes=len(PNG)) as exact:
        assert (await exact.download(server.url(path))).data == PNG
        await refused(exact.download(server.url(path), max_bytes=len(PNG) - 1), "too_large")


async def test_a_per_call_cap_cannot_raise_the_fetchers_cap(resolver: FakeResolver, server: MediaServer) -> None:
    async with make_fetcher(resolver, max_bytes=len(PNG) - 1) as small:
        await refused(small.download(server.url("/media/png"), max_bytes=10 * len(PNG)), "too_large")


# statuses, timeouts, network errors


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (403, "expired", True),
        (404, "expired", True),
        (410, "expired", True),
        (429, "rate_limited", True),
        (500, "unavailable", True),
        (502, "unavailable", True),
        (503, "unavailable", True),
        (408, "unavailable", True),
        (400, "http_error", False),
        (401, "http_error", False),
        (405, "http_error", False),
        (304, "http_error", False),
    ],
)
async def test_statuses_map_to_errors(
    fetcher: Fetcher, server: MediaServer, status: int, reason: str, retryable: bool
) -> None:
    error = await refused(fetcher.download(server.url(f"/status/{status}")), reason)
    assert (error.retryable, error.status) == (retryable, status)
    assert SECRET not in error.user_message


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
async def test_slow_responses_time_out(resolver: FakeResolver, server: MediaServer, path: str) -> None:
    async with make_fetcher(resolver, timeout_s=0.3) as quick:
        started = time.monotonic()
        error = await refused(quick.download(server.url(path)), "timeout")
    assert error.retryable
    assert time.monotonic() - started < 2.0


async def test_a_refused_connection_is_a_retryable_network_error(fetcher: Fetcher) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await refused(fetcher.download(f"http://127.0.0.1:{port}/media/png"), "network")
    assert error.retryable


async def test_a_connection_dropped_mid_body_is_a_retryable_network_error(
    fetcher: Fetcher, server: MediaServer
) -> None:
    error = await refused(fetcher.download(server.url("/drop")), "network")
    assert error.retryable


async def test_an_unknown_host_is_a_retryable_network_error(fetcher: Fetcher) -> None:
    error = await refused(fetcher.download("https://nowhere.test/a.png"), "network")
    assert error.retryable


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "/media/png", "http:///nohost", ""])
async def test_only_absolute_http_urls_are_fetched(fetcher: Fetcher, url: str) -> None:
    await refused(fetcher.download(url), "bad_url")


# redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_followed(fetcher: Fetcher, server: MediaServer, status: int) -> None:
    downloaded = await fetcher.download(server.url(f"/redirect?status={status}&to=/media/jpeg"))
    assert (downloaded.media_type, downloaded.url) == ("image/jpeg", server.url("/media/jpeg"))


async def test_a_redirect_to_another_allowed_host_is_followed(fetcher: Fetcher, server: MediaServer) -> None:
    target = server.url("/media/webp", "cdn.test")
    downloaded = await fetcher.download(server.url(f"/redirect?to={target}"))
    assert downloaded.url == target


async def test_up_to_max_redirects_are_followed(fetcher: Fetcher, server: MediaServer) -> None:
    assert (await fetcher.download(server.url("/chain/2"))).url == server.url("/media/png")  # three redirects


async def test_more_than_max_redirects_are_refused(fetcher: Fetcher, server: MediaServer) -> None:
    error = await refused(fetcher.download(server.url("/chain/3")), "redirect")
    assert not error.retryable
    assert len(server.requests) == 4


async def test_a_redirect_loop_is_refused(resolver: FakeResolver, server: MediaServer) -> None:
    async with make_fetcher(resolver, max_redirects=5) as looping:
        await refused(looping.download(server.url("/loop/a")), "redirect")
    assert server.requests == ["/loop/a", "/loop/b"] * 3


async def test_max_redirects_zero_follows_none(resolver: FakeResolver, server: MediaServer) -> None:
    async with make_fetcher(resolver, max_redirects=0) as direct:
        assert (await direct.download(server.url("/media/png"))).media_type == "image/png"
        await refused(direct.download(server.url("/chain/0")), "redirect")


async def test_a_redirect_without_location_is_refused(fetcher: Fetcher, server: MediaServer) -> None:
    await refused(fetcher.download(server.url("/redirect")), "redirect")


async def test_a_redirect_to_another_scheme_is_refused(fetcher: Fetcher, server: MediaServer) -> None:
    await refused(fetcher.download(server.url("/redirect?to=file:///etc/passwd")), "bad_url")
    await refused(fetcher.download(server.url("/redirect?to=ftp://127.0.0.1/x")), "bad_url")


async def test_redirects_to_allowed_targets_work_with_the_rules_on(
    loopback_is_public: None, strict: Fetcher, server: MediaServer
) -> None:
    assert (await strict.download(server.url("/redirect?to=/media/png"))).media_type == "image/png"
    assert (await strict.download(server.url("/chain/1"))).media_type == "image/png"


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/media/png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/media/png",
        "http://[::1]:{port}/media/png",
        "http://internal.test:{port}/media/png",
        "http://metadata.test/latest/meta-data/",
        "http://127.1:{port}/media/png",
    ],
)
async def test_every_redirect_hop_is_checked(
    loopback_is_public: None, strict: Fetcher, server: MediaServer, resolver: FakeResolver, target: str
) -> None:
    with pytest.raises(FetchError) as info:
        await strict.download(server.url(f"/redirect?to={target.format(port=server.port)}"))
    assert info.value.reason in {"blocked", "bad_url"}
    assert len(server.requests) == 1
    assert server.requests[0].startswith("/redirect?")


async def test_a_redirect_to_a_name_resolving_privately_is_refused_by_the_resolver(
    loopback_is_public: None, strict: Fetcher, server: MediaServer, resolver: FakeResolver
) -> None:
    await refused(strict.download(server.url(f"/redirect?to=http://internal.test:{server.port}/")), "blocked")
    assert resolver.calls == ["internal.test"]


# logging, headers, lifecycle


async def test_logs_never_carry_query_strings(
    caplog: pytest.LogCaptureFixture, fetcher: Fetcher, server: MediaServer
) -> None:
    caplog.set_level(logging.DEBUG)
    await fetcher.download(server.url(f"/media/png?X-Amz-Signature={SECRET}"))
    await fetcher.download(server.url("/chain/2"))
    await refused(fetcher.download(server.url(f"/status/404?token={SECRET}")), "expired")
    await refused(fetcher.download(server.url(f"/html?token={SECRET}")), "not_media")
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")  # the test server's log
    assert "/media/png" in ours
    assert "/status/404" in ours
    assert SECRET not in ours


def test_loggable_url_keeps_scheme_host_port_and_path_only() -> None:
    url = f"https://user:pw@cdn.example.com:8443/out/a.png?X-Amz-Signature={SECRET}#x"
    assert loggable_url(url) == "https://cdn.example.com:8443/out/a.png"
    assert loggable_url("http://[::1]/a?b=c") == "http://[::1]/a"


async def test_requests_carry_the_user_agent_and_no_cookies(resolver: FakeResolver, server: MediaServer) -> None:
    async with make_fetcher(resolver, user_agent="genbot-test/1") as fetcher:
        await fetcher.download(server.url("/media/png"))
        await fetcher.download(server.url("/media/png"))
    assert [h.get("User-Agent") for h in server.headers] == ["genbot-test/1"] * 2
    assert all("Cookie" not in h for h in server.headers)
    assert server.headers[0]["Accept-Encoding"] == "identity"


async def test_download_needs_start(resolver: FakeResolver) -> None:
    with pytest.raises(RuntimeError, match="start"):
        await make_fetcher(resolver).download("http://127.0.0.1/")


async def test_close_is_idempotent_and_leaves_an_injected_resolver_open(resolver: FakeResolver) -> None:
    fetcher = make_fetcher(resolver)
    await fetcher.start()
    await fetcher.start()
    await fetcher.close()
    await fetcher.close()
    assert not resolver.closed
    with pytest.raises(RuntimeError):
        await fetcher.download("http://127.0.0.1/")


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        Fetcher(max_bytes=0, timeout_s=1, allow_loopback=False)
    with pytest.raises(ValueError, match="positive"):
        Fetcher(max_bytes=1, timeout_s=1, allow_loopback=False, max_redirects=-1)


def test_fetch_error_is_a_bot_error_with_a_reason() -> None:
    error = FetchError("The download took too long.", reason="timeout", retryable=True)
    assert isinstance(error, BotError)
    assert (str(error), error.reason, error.retryable, error.status) == (
        "The download took too long.",
        "timeout",
        True,
        None,
    )


# hardening: loopback only, hosts, streaming to a file, full decode


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/media/png",
        "http://192.168.1.20/media/png",
        "http://[fe80::1]/media/png",
        "http://100.64.0.1/media/png",
        "http://240.0.0.1/media/png",
        "http://metadata.test/latest/meta-data/",
        "http://internal.test/media/png",
    ],
)
async def test_loopback_allowed_never_lets_a_redirect_reach_private_or_metadata_addresses(
    fetcher: Fetcher, server: MediaServer, resolver: FakeResolver, target: str
) -> None:
    await refused(fetcher.download(server.url(f"/redirect?to={target}")), "blocked")
    assert server.requests == [server.requests[0]]
    assert server.requests[0].startswith("/redirect?")


@pytest.mark.parametrize("host", ["169.254.169.254", "[fd00:ec2::254]", "10.0.0.1", "metadata.test"])
async def test_loopback_allowed_still_refuses_private_targets_outright(
    fetcher: Fetcher, server: MediaServer, host: str
) -> None:
    await refused(fetcher.download(f"http://{host}/latest/meta-data/"), "blocked")
    assert server.requests == []


def test_allow_private_is_the_old_name_of_allow_loopback() -> None:
    assert "allow_loopback=True" in repr(Fetcher(max_bytes=1, timeout_s=1, allow_private=True))


async def test_hosts_limit_every_hop(fetcher: Fetcher, server: MediaServer) -> None:
    assert (await fetcher.download(server.url("/media/png"), hosts={"127.0.0.1"})).media_type == "image/png"
    await refused(fetcher.download(server.url("/media/png", "localhost"), hosts={"127.0.0.1"}), "blocked")
    redirect = server.url(f"/redirect?to=http://cdn.test:{server.port}/media/png")
    await refused(fetcher.download(redirect, hosts={"127.0.0.1"}), "blocked")
    assert server.requests == ["/media/png", redirect.split(str(server.port), 1)[1]]


async def test_downloads_are_streamed_to_a_temporary_file_the_caller_owns(
    resolver: FakeResolver, server: MediaServer, tmp_path
) -> None:
    folder = tmp_path / "downloads"
    async with make_fetcher(resolver, temp_dir=folder) as fetcher:
        downloaded = await fetcher.download(server.url("/chunked-png"))
        assert downloaded.path is not None
        assert downloaded.path.parent == folder
        assert downloaded.path.read_bytes() == PNG
        assert downloaded.size == len(PNG)
        downloaded.discard()
        for path in ("/html", "/big-chunked", "/status/404", "/lying-png"):
            with pytest.raises(FetchError):
                await fetcher.download(server.url(path), max_bytes=100_000)
    assert list(folder.iterdir()) == []  # refused downloads leave nothing behind


async def test_the_body_is_never_held_whole_in_memory(resolver: FakeResolver, server: MediaServer, tmp_path) -> None:
    import tracemalloc

    cap = 8 * 1024 * 1024
    async with make_fetcher(resolver, max_bytes=cap, temp_dir=tmp_path) as fetcher:
        tracemalloc.start()
        try:
            await refused(fetcher.download(server.url("/big-chunked")), "too_large")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert server.streamed >= cap
    assert peak < cap / 4  # chunks go to the file as they come: no list of chunks, no join


BAD_IMAGES = [
    ("truncated", truncated_png(), {}, "is damaged or incomplete"),
    ("corrupt", PNG[:40] + bytes(len(PNG) - 40), {}, "is damaged or incomplete"),
    ("apng", animated_bytes("png"), {"still_only": True}, "is animated"),
    ("awebp", animated_bytes("webp"), {"still_only": True}, "is animated"),
    ("png-zip", polyglot(PNG), {"exact_end": True}, "has extra data after the end of the image"),
    ("jpeg-html", IMAGES["jpeg"][0] + HTML, {"exact_end": True}, "has extra data after the end of the image"),
    ("webp-tail", IMAGES["webp"][0] + b"<html>", {"exact_end": True}, "has extra data after the end of the image"),
]


@pytest.mark.parametrize(("name", "body", "options", "says"), BAD_IMAGES, ids=[b[0] for b in BAD_IMAGES])
async def test_bad_images_are_refused_after_a_full_decode(
    fetcher: Fetcher, server: MediaServer, name: str, body: bytes, options: dict[str, Any], says: str
) -> None:
    server.extra[name] = body
    error = await refused(fetcher.download(server.url(f"/media/{name}"), **options), "bad_image")
    assert error.problem is not None
    assert says in error.problem
    assert error.user_message.startswith("The image ")
    assert "again" in error.problem or "instead" in error.problem  # says what to change


async def test_animation_and_trailing_data_are_refused_only_when_asked(fetcher: Fetcher, server: MediaServer) -> None:
    server.extra |= {"apng": animated_bytes("png"), "png-zip": polyglot(PNG)}
    assert (await fetcher.download(server.url("/media/apng"))).media_type == "image/png"
    assert (await fetcher.download(server.url("/media/png-zip"))).media_type == "image/png"
    for name in IMAGES:
        assert (await fetcher.download(server.url(f"/media/{name}"), still_only=True, exact_end=True)).width == 64


async def test_the_pixel_limit_is_enforced_before_decoding(
    fetcher: Fetcher, server: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    error = await refused(fetcher.download(server.url("/media/png")), "bad_image")
    assert error.problem is not None
    assert "more than the 3,071 pixels I can read" in error.problem


async def test_images_are_decoded_off_the_event_loop(
    fetcher: Fetcher, server: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    threads: list[threading.Thread] = []
    real = fetch.inspect_image

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(fetch, "inspect_image", spy)
    await fetcher.download(server.url("/media/png"))
    assert threads
    assert threads[0] is not threading.main_thread()
