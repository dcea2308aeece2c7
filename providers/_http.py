"""HTTP plumbing shared by the adapters: timeouts, status → error mapping, error-body parsing, retry rules.

Two kinds of call, with different rules:
- ``submit``: creates (and bills) an upstream job. A 429 or a refused connection means the request was not
  accepted, so it is retried after ``Retry-After`` (bounded). Anything that may have reached the provider
  without a clear answer (timeout, reset after sending, 5xx, unreadable 2xx) raises ``AmbiguousSubmitError``
  and is never sent again.
- ``fetch``: reads state. Safe to retry on 429, 5xx and network errors, with a short backoff.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypedDict, Unpack

import aiohttp
from pydantic import SecretStr

from providers.errors import (
    AmbiguousSubmitError,
    AuthError,
    InputImageError,
    InsufficientFundsError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Phase = Literal["submit", "fetch"]

_MAX_DETAIL_CHARS = 300
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 10.0
    submit_s: float = 60.0
    fetch_s: float = 30.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    submit_rate_limit_retries: int = 2
    fetch_retries: int = 2
    fetch_backoff_s: float = 0.5
    max_retry_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any
    text: str = field(repr=False)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("X-Request-Id") or self.headers.get("X-Oneapi-Request-Id")


ErrorMapper = Callable[[Response, Phase], ProviderError | None]
"""An adapter's own reading of an error response (e.g. codes in the body); None falls back to the status."""


def error_message_from_body(body: Any, text: str = "") -> str:
    """The most useful human text in an error body: detail (str or list) → message → error → description → raw."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            return _clip(detail)
        if isinstance(detail, list) and detail:
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    msg = str(item.get("msg") or item.get("message") or "")
                    parts.append(f"{loc}: {msg}" if loc else msg)
                else:
                    parts.append(str(item))
            return _clip("; ".join(p for p in parts if p))
        for key in ("message", "error", "description", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _clip(value)
            if isinstance(value, dict):
                inner = value.get("message") or value.get("detail")
                if isinstance(inner, str) and inner:
                    return _clip(inner)
    return _clip(_SPACE_RE.sub(" ", _TAG_RE.sub(" ", text)).strip())


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL_CHARS else text[: _MAX_DETAIL_CHARS - 1] + "…"


def parse_retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Seconds to wait from ``Retry-After-Ms``, ``Retry-After`` (seconds or HTTP date) or a body ``retry_after``.

    ``headers`` must look keys up case-insensitively (aiohttp's ``CIMultiDictProxy`` does).
    """
    raw_ms = headers.get("Retry-After-Ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("Retry-After")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                return None
            return max(0.0, parsed.timestamp() - time.time())
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return max(0.0, float(body["retry_after"]))
    return None


def error_for_status(
    status: int,
    detail: str,
    *,
    provider: str,
    phase: Phase,
    request_id: str | None = None,
    retry_after_s: float | None = None,
    code: str | None = None,
) -> ProviderError:
    """Map an HTTP (or envelope) status to the error tree."""
    kwargs: dict[str, Any] = {"provider": provider, "status": status, "request_id": request_id, "code": code}
    if status == 429:
        return RateLimitedError(detail, retry_after_s=retry_after_s, **kwargs)
    if status in (401, 403):
        return AuthError(detail, **kwargs)
    if status == 402:
        return InsufficientFundsError(detail, **kwargs)
    if status == 413:
        return InputImageError(detail, **kwargs)
    if status == 408 or status >= 500:
        if phase == "submit":
            return AmbiguousSubmitError(detail, **kwargs)
        return UnavailableError(detail, retry_after_s=retry_after_s, **kwargs)
    if status == 404 and phase == "fetch":
        return NotFoundError(detail, **kwargs)
    return InvalidRequestError(detail, **kwargs)


class HttpClient:
    """One adapter's view of the shared ``aiohttp.ClientSession``: base URL, auth header, timeouts, retries.

    The key is held as a ``SecretStr`` and only ever placed in the Authorization header.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        provider: str,
        base_url: str,
        api_key: SecretStr | str,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        error_mapper: ErrorMapper | None = None,
    ) -> None:
        self._session = session
        self._error_mapper = error_mapper
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"HttpClient(provider={self.provider!r}, base_url={self.base_url!r})"

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key.get_secret_value()}", "Accept": "application/json"}
        if extra:
            headers.update(extra)
        return headers

    async def submit(
        self,
        path: str,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """POST that creates a job. Returns a 2xx response; raises otherwise (see module docstring)."""
        attempt = 0
        while True:
            try:
                response = await self._send(
                    "POST", path, "submit", json_body=json_body, form=form, params=params, timeout_s=timeout_s
                )
            except UnavailableError as exc:
                # Only raised for failures before the request was sent (connection refused, DNS).
                if attempt >= self.retry.submit_rate_limit_retries:
                    raise
                attempt += 1
                await self._sleep(min(self.retry.fetch_backoff_s * 2**attempt, self.retry.max_retry_after_s))
                log.info("%s submit: connection failed before sending (%s); retry %d", self.provider, exc, attempt)
                continue
            if response.status == 429 and attempt < self.retry.submit_rate_limit_retries:
                wait = parse_retry_after(response.headers, response.body)
                if wait is None or wait <= self.retry.max_retry_after_s:
                    attempt += 1
                    wait = 1.0 * attempt if wait is None else wait
                    log.info("%s submit: 429, retrying in %.1fs (attempt %d)", self.provider, wait, attempt)
                    await self._sleep(wait)
                    continue
            if 200 <= response.status < 300:
                if response.body is None:
                    raise AmbiguousSubmitError(
                        f"2xx with an unreadable body: {error_message_from_body(None, response.text)!r}",
                        provider=self.provider,
                        status=response.status,
                        request_id=response.request_id,
                    )
                return response
            raise self._error(response, "submit")

    async def fetch(
        self,
        path: str,
        *,
        method: str = "GET",
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> Response:
        """Read state. Retried on 429, 5xx, network errors and unreadable bodies; raises when retries run out."""
        attempt = 0
        while True:
            try:
                response = await self._send(method, path, "fetch", params=params, json_body=json_body, form=form)
                if 200 <= response.status < 300 and response.body is None:
                    raise ProtocolError(
                        f"unreadable body: {error_message_from_body(None, response.text)!r}",
                        provider=self.provider,
                        status=response.status,
                        request_id=response.request_id,
                    )
                if 200 <= response.status < 300:
                    return response
                raise self._error(response, "fetch")
            except ProviderError as exc:
                if not exc.retryable or attempt >= self.retry.fetch_retries:
                    raise
                attempt += 1
                wait = getattr(exc, "retry_after_s", None)
                if wait is None or wait > self.retry.max_retry_after_s:
                    wait = self.retry.fetch_backoff_s * 2 ** (attempt - 1)
                log.info("%s fetch %s: %s; retry %d in %.1fs", self.provider, path, exc, attempt, wait)
                await self._sleep(wait)

    def _error(self, response: Response, phase: Phase) -> ProviderError:
        if self._error_mapper is not None:
            mapped = self._error_mapper(response, phase)
            if mapped is not None:
                return mapped
        return error_for_status(
            response.status,
            error_message_from_body(response.body, response.text),
            provider=self.provider,
            phase=phase,
            request_id=response.request_id,
            retry_after_s=parse_retry_after(response.headers, response.body),
        )

    async def _send(
        self,
        method: str,
        path: str,
        phase: Phase,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        read_s = timeout_s or (self.timeouts.submit_s if phase == "submit" else self.timeouts.fetch_s)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeouts.connect_s, sock_read=read_s)
        kwargs: dict[str, Any] = {"headers": self._headers(None), "timeout": timeout, "params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        elif form is not None:
            kwargs["data"] = aiohttp.FormData(dict(form))
        url = self.url(path)
        started = time.monotonic()
        try:
            async with self._session.request(method, url, **kwargs) as resp:
                text = await resp.text(errors="replace")
                headers = resp.headers
                status = resp.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise UnavailableError(f"could not connect: {type(exc).__name__}", provider=self.provider) from None
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            if phase == "submit":
                raise AmbiguousSubmitError(
                    f"no answer within {read_s:.0f}s ({type(exc).__name__})", provider=self.provider
                ) from None
            raise UnavailableError(f"timed out after {read_s:.0f}s", provider=self.provider) from None
        except (aiohttp.ClientError, OSError) as exc:
            if phase == "submit":
                raise AmbiguousSubmitError(
                    f"connection failed after sending ({type(exc).__name__})", provider=self.provider
                ) from None
            raise UnavailableError(f"connection failed ({type(exc).__name__})", provider=self.provider) from None
        log.debug("%s %s %s -> %d in %.2fs", self.provider, method, path, status, time.monotonic() - started)
        return Response(status=status, headers=headers, body=_json_or_none(text), text=text)


def _json_or_none(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class AdapterOptions(TypedDict, total=False):
    """What every adapter's constructor takes besides the session (and its own options)."""

    api_key: SecretStr | str
    base_url: str
    timeouts: Timeouts | None
    retry: RetryPolicy | None
    sleep: Sleep


class HttpAdapter:
    """The part every adapter shares: one ``HttpClient`` for its provider, and a repr without the key."""

    name: ClassVar[str]
    DEFAULT_BASE_URL: ClassVar[str]
    DEFAULT_TIMEOUTS: ClassVar[Timeouts | None] = None

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        error_mapper: ErrorMapper | None = None,
        **options: Unpack[AdapterOptions],
    ) -> None:
        self._http = HttpClient(
            session,
            provider=self.name,
            base_url=options.get("base_url") or self.DEFAULT_BASE_URL,
            api_key=options["api_key"],
            timeouts=options.get("timeouts") or self.DEFAULT_TIMEOUTS,
            retry=options.get("retry"),
            sleep=options.get("sleep", asyncio.sleep),
            error_mapper=error_mapper,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._http.base_url!r})"
