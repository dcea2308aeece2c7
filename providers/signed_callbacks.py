"""Checking a signed callback the way WaveSpeed signs them (Standard Webhooks style): headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v3,<hex>``, the hex HMAC-SHA256 of
``"{id}.{timestamp}.{raw body}"`` keyed with the secret without its ``whsec_`` prefix; at most ``max_age_s`` old."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping

from providers.base import CallbackRefused

MAX_AGE_S = 300.0
SIGNATURE_VERSION = "v3"


def _key(secret: str) -> bytes:
    return secret.removeprefix("whsec_").encode()


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return hmac.new(_key(secret), signed, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float, max_age_s: float = MAX_AGE_S) -> str:
    """The delivery id of a correctly signed, fresh callback; raises ``CallbackRefused`` otherwise."""
    delivery_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    if not delivery_id or not timestamp or not given:
        raise CallbackRefused("unsigned: webhook-id, webhook-timestamp or webhook-signature missing", 401)
    try:
        sent_at = float(timestamp)
    except ValueError:
        sent_at = math.nan
    if not math.isfinite(sent_at):
        raise CallbackRefused("webhook-timestamp is not a number", 401)
    expected = signature(secret, delivery_id, timestamp, body)
    # Several signatures may be listed ("v3,<hex> v3,<hex>", e.g. while a secret is rotated): one must match.
    matches = False
    for part in given.split():
        version, _, value = part.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value.encode(), expected.encode()):
            matches = True
    if not matches:
        raise CallbackRefused("signature does not match", 401)
    if abs(now - sent_at) > max_age_s:
        raise CallbackRefused(f"timestamp {now - sent_at:.0f}s away from now (replayed or stale)", 401)
    return delivery_id
