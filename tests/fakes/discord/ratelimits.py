"""Discord's REST rate limits, enforced on the fake (discord.md §3). Off unless ``FakeDiscord(rate_limits=True)``.

- Per-route buckets, keyed like Discord's by route and top-level resource: a channel's message sends, a
  channel's message edits and deletes, each interaction's webhook (``webhook_id + token``, callbacks included),
  anything else per route. Every answer of a limited route carries ``X-RateLimit-Limit``, ``-Remaining``,
  ``-Reset``, ``-Reset-After`` and ``-Bucket``; a request over the limit gets 429
  ``{"message", "retry_after", "global": false}`` with ``X-RateLimit-Scope: user``.
- The global limit: ``global_per_s`` (50) requests per second over every bot-token route; interaction and
  webhook-token routes are exempt, as on Discord. Over it: 429 with ``"global": true``, ``X-RateLimit-Global``
  and ``X-RateLimit-Scope: global``.

Windows are fixed (a bucket refills at its reset time), which is what the headers describe. A refused request
does not use up the bucket. Real 429s carry ``Via`` (discord.py treats a 429 without it as a Cloudflare ban).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RATE_LIMITED = "You are being rate limited."


@dataclass(frozen=True)
class RouteLimit:
    """``limit`` requests per ``period_s`` for requests matching ``method`` and ``pattern``; ``major`` names the
    path group that makes a bucket per resource (a channel, an interaction's token)."""

    name: str
    method: str
    pattern: re.Pattern[str]
    limit: int
    period_s: float
    major: str | None
    token_route: bool = False


def _route(
    name: str, method: str, pattern: str, limit: int, period_s: float, major: str | None, token: bool = False
) -> RouteLimit:
    return RouteLimit(name, method, re.compile(pattern), limit, period_s, major, token)


_WEBHOOK = r"/webhooks/\d+/(?P<token>[^/]+)"
_CHANNEL = r"/channels/(?P<channel>\d+)"

# Values as observed on Discord and listed in discord.md §3 (not documented: "should not be hard coded").
ROUTE_LIMITS: tuple[RouteLimit, ...] = (
    # An interaction's callback and its webhook routes share the bucket of its token.
    _route("webhook", "POST", r"/interactions/\d+/(?P<token>[^/]+)/callback", 5, 2.0, "token", True),
    _route("webhook", "*", _WEBHOOK + r"(?:/.*)?", 5, 2.0, "token", True),
    _route("channel message create", "POST", _CHANNEL + r"/messages", 5, 5.0, "channel"),
    _route("channel message edit", "PATCH", _CHANNEL + r"/messages/\d+", 5, 5.0, "channel"),
    _route("channel message delete", "DELETE", _CHANNEL + r"/messages/\d+", 5, 1.0, "channel"),
    _route("channel", "*", _CHANNEL + r"(?:/.*)?", 10, 10.0, "channel"),
    _route("other", "*", r"/.*", 50, 1.0, None),
)


@dataclass
class Bucket:
    limit: int
    period_s: float
    hash: str
    remaining: int = 0
    reset_at: float = 0.0

    def refill(self, now: float) -> None:
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + self.period_s


@dataclass
class Verdict:
    """What the limiter says about one request: ``refused`` (then ``body`` is the 429's) and the headers."""

    refused: bool
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    scope: str = ""


class RateLimiter:
    """Buckets of one bot (its token); ``check(method, path, bot_auth)`` before a request is served."""

    def __init__(self, *, global_per_s: int = 50, clock: Callable[[], float] = time.monotonic) -> None:
        self.global_per_s = global_per_s
        self.clock = clock
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.global_bucket = Bucket(global_per_s, 1.0, "global")
        self.refused: list[tuple[str, str, str]] = []  # (method, path, scope) of every 429 given

    def check(self, method: str, path: str, *, bot_auth: bool) -> Verdict:
        route, major = self._route(method, path)
        now = self.clock()
        if bot_auth and not route.token_route:
            self.global_bucket.refill(now)
            if self.global_bucket.remaining <= 0:
                return self._refuse(method, path, self.global_bucket, now, scope="global")
        bucket = self._bucket(route, major if route.major else f"{method} {path}")
        bucket.refill(now)
        if bucket.remaining <= 0:
            return self._refuse(method, path, bucket, now, scope="user")
        bucket.remaining -= 1
        if bot_auth and not route.token_route:
            self.global_bucket.remaining -= 1
        return Verdict(refused=False, headers=self._headers(bucket, now))

    def _route(self, method: str, path: str) -> tuple[RouteLimit, str]:
        for route in ROUTE_LIMITS:
            found = route.pattern.fullmatch(path)
            if found and route.method in ("*", method):
                return route, found.group(route.major) if route.major else ""
        raise AssertionError("the last route matches every path")  # pragma: no cover

    def _bucket(self, route: RouteLimit, major: str) -> Bucket:
        key = (route.name, major)
        bucket = self.buckets.get(key)
        if bucket is None:
            digest = hashlib.sha256(route.name.encode()).hexdigest()[:32]
            bucket = self.buckets[key] = Bucket(route.limit, route.period_s, digest)
        return bucket

    def _refuse(self, method: str, path: str, bucket: Bucket, now: float, *, scope: str) -> Verdict:
        retry_after = round(max(0.001, bucket.reset_at - now), 3)
        is_global = scope == "global"
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": scope,
            "Via": "1.1 google",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update(self._headers(bucket, now))
        self.refused.append((method, path, scope))
        body = {"message": RATE_LIMITED, "retry_after": retry_after, "global": is_global}
        return Verdict(refused=True, headers=headers, body=body, scope=scope)

    @staticmethod
    def _headers(bucket: Bucket, now: float) -> dict[str, str]:
        reset_after = max(0.0, bucket.reset_at - now)
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(0, bucket.remaining)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket.hash,
        }
