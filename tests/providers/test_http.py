"""The shared HTTP rules: error-body parsing, status mapping, submit vs fetch retries."""

from __future__ import annotations

import pytest
from aiohttp import web

from providers._http import HttpClient, RetryPolicy, Timeouts, error_message_from_body, parse_retry_after
from providers.errors import (
    AmbiguousSubmitError,
    AuthError,
    InputImageError,
    InsufficientFundsError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    UnavailableError,
)
from tests.fakes.clock import RecordingSleep
from tests.fakes.providers._server import FakeProviderServer


class EchoServer(FakeProviderServer):
    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/jobs", self._create)
        self.app.router.add_get("/jobs/{id}", self._get)

    async def _create(self, request: web.Request) -> web.Response:
        job = self.create_job(self.new_id(), await request.json())
        return web.json_response({"id": job.id}, status=201)

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "state": "processing"})


@pytest.fixture
async def server():
    async with EchoServer() as fake:
        yield fake


@pytest.fixture
def session(http_session):
    return http_session


def client(session, server, sleep=None, **kw) -> HttpClient:
    return HttpClient(
        session,
        provider="echo",
        base_url=server.base_url,
        api_key="test-key",
        timeouts=Timeouts(connect_s=2, submit_s=kw.pop("submit_s", 2), fetch_s=kw.pop("fetch_s", 2)),
        retry=RetryPolicy(**kw),
        sleep=sleep or RecordingSleep(),
    )


@pytest.mark.parametrize(
    ("body", "text", "expected"),
    [
        ({"detail": "Rate limit exceeded"}, "", "Rate limit exceeded"),
        ({"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}, "", "prompt: field required"),
        ({"message": "Invalid API key"}, "", "Invalid API key"),
        ({"error": "bad thing"}, "", "bad thing"),
        ({"error": {"message": "无效的令牌", "type": "new_api_error"}}, "", "无效的令牌"),
        ({"description": "desc"}, "", "desc"),
        (None, "<html><body><h1>502 Bad Gateway</h1></body></html>", "502 Bad Gateway"),
        (None, "x" * 1000, "x" * 299 + "…"),
    ],
)
def test_error_message_from_body(body, text, expected):
    assert error_message_from_body(body, text) == expected


def test_retry_after_forms():
    from multidict import CIMultiDict

    assert parse_retry_after(CIMultiDict({"retry-after": "12"})) == 12
    assert parse_retry_after(CIMultiDict({"Retry-After-Ms": "1500"})) == 1.5
    assert parse_retry_after(CIMultiDict({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    assert parse_retry_after(CIMultiDict(), {"retry_after": 0.25}) == 0.25
    assert parse_retry_after(CIMultiDict({"Retry-After": "soon"})) is None


async def test_submit_sends_bearer_and_returns_body(server, session):
    response = await client(session, server).submit("/jobs", json_body={"prompt": "a cat"})
    assert response.status == 201
    assert response.body == {"id": "1"}
    assert server.requests[0].headers["Authorization"] == "Bearer test-key"
    assert server.requests[0].json == {"prompt": "a cat"}


async def test_submit_retries_429_after_retry_after_then_succeeds(server, session):
    server.script(
        "POST", "/jobs", status=429, json={"detail": "Too many concurrent jobs"}, headers={"Retry-After": "3"}, times=2
    )
    sleep = RecordingSleep()
    response = await client(session, server, sleep).submit("/jobs", json_body={})
    assert response.status == 201
    assert sleep.calls == [3.0, 3.0]
    assert len(server.requests_to("POST", "/jobs")) == 3


async def test_submit_429_gives_up_after_bounded_retries(server, session):
    server.script(
        "POST", "/jobs", status=429, json={"detail": "Rate limit exceeded"}, headers={"Retry-After": "1"}, times=5
    )
    with pytest.raises(RateLimitedError) as info:
        await client(session, server).submit("/jobs", json_body={})
    assert info.value.retryable
    assert info.value.retry_after_s == 1
    assert len(server.requests_to("POST", "/jobs")) == 3


async def test_submit_429_with_long_retry_after_is_not_slept_on(server, session):
    server.script("POST", "/jobs", status=429, json={}, headers={"Retry-After": "600"})
    sleep = RecordingSleep()
    with pytest.raises(RateLimitedError) as info:
        await client(session, server, sleep).submit("/jobs", json_body={})
    assert info.value.retry_after_s == 600
    assert sleep.calls == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_submit_5xx_is_ambiguous_and_never_resent(server, session, status):
    server.script("POST", "/jobs", status=status, text="<html>oops</html>", after_handler=True)
    with pytest.raises(AmbiguousSubmitError) as info:
        await client(session, server).submit("/jobs", json_body={})
    assert not info.value.retryable
    assert "may still have run" in info.value.user_message
    assert len(server.requests_to("POST", "/jobs")) == 1
    assert len(server.jobs) == 1  # it did exist upstream


async def test_submit_timeout_is_ambiguous(server, session):
    server.script("POST", "/jobs", delay_s=1.0)
    with pytest.raises(AmbiguousSubmitError):
        await client(session, server, submit_s=0.2).submit("/jobs", json_body={})
    assert len(server.requests_to("POST", "/jobs")) == 1


async def test_submit_connection_reset_after_sending_is_ambiguous(server, session):
    server.script("POST", "/jobs", drop=True, after_handler=True)
    with pytest.raises(AmbiguousSubmitError):
        await client(session, server).submit("/jobs", json_body={})
    assert len(server.requests_to("POST", "/jobs")) == 1


async def test_submit_unreadable_success_body_is_ambiguous(server, session):
    server.script("POST", "/jobs", status=200, text="<html>ok</html>", after_handler=True)
    with pytest.raises(AmbiguousSubmitError):
        await client(session, server).submit("/jobs", json_body={})


async def test_submit_connection_refused_is_retried_then_unavailable(session):
    server = EchoServer()  # never started: nothing listens on the port
    server.port = 9  # discard port; connection refused on loopback
    sleep = RecordingSleep()
    with pytest.raises(UnavailableError) as info:
        await client(session, server, sleep).submit("/jobs", json_body={})
    assert info.value.retryable
    assert len(sleep.calls) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequestError),
        (401, AuthError),
        (403, AuthError),
        (402, InsufficientFundsError),
        (413, InputImageError),
        (422, InvalidRequestError),
        (404, InvalidRequestError),
    ],
)
async def test_submit_4xx_mapping(server, session, status, error):
    server.script("POST", "/jobs", status=status, json={"detail": "nope"})
    with pytest.raises(error) as info:
        await client(session, server).submit("/jobs", json_body={})
    assert info.value.status == status
    assert info.value.detail == "nope"
    assert "nope" not in info.value.user_message


async def test_fetch_retries_transient_errors(server, session):
    server.script("GET", "/jobs/1", status=503, text="down")
    server.script("GET", "/jobs/1", status=429, json={}, headers={"Retry-After": "2"})
    sleep = RecordingSleep()
    response = await client(session, server, sleep).fetch("/jobs/1")
    assert response.body["state"] == "processing"
    assert sleep.calls == [0.5, 2.0]


async def test_fetch_gives_up_after_retries(server, session):
    server.script("GET", "/jobs/1", status=502, text="bad gateway", times=10)
    with pytest.raises(UnavailableError):
        await client(session, server).fetch("/jobs/1")
    assert len(server.requests_to("GET", "/jobs/1")) == 3


async def test_fetch_html_body_is_protocol_error(server, session):
    server.script("GET", "/jobs/1", status=200, text="<html>maintenance</html>", times=10)
    with pytest.raises(ProtocolError):
        await client(session, server, fetch_retries=0).fetch("/jobs/1")


async def test_fetch_404_is_not_found_and_not_retried(server, session):
    server.script("GET", "/jobs/9", status=404, json={"detail": "Generation not found"})
    with pytest.raises(NotFoundError):
        await client(session, server).fetch("/jobs/9")
    assert len(server.requests_to("GET", "/jobs/9")) == 1


async def test_fetch_timeout_is_retryable_unavailable(server, session):
    server.script("GET", "/jobs/1", delay_s=1.0, times=3)
    with pytest.raises(UnavailableError):
        await client(session, server, fetch_s=0.1, fetch_retries=0).fetch("/jobs/1")


def test_repr_and_errors_hide_the_key():
    http = HttpClient(None, provider="echo", base_url="http://x", api_key="sk-secret-123")  # type: ignore[arg-type]
    assert "sk-secret" not in repr(http)
    assert "sk-secret" not in str(vars(http))
