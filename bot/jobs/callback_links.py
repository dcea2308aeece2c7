"""Callback URLs: each job submitted with a callback gets its own secret in the URL
(``<WEBHOOK_PUBLIC_URL>/callbacks/<provider>/<job id>/<secret>``); only its SHA-256 is stored, and a callback is
taken only when the secret in its URL hashes to it (compared in constant time)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from providers.base import Provider

ROUTE = "/callbacks/{provider}/{job_id}/{secret}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret).encode(), stored_hash.encode())


def takes_callbacks(provider: Provider) -> bool:
    """The adapter sends a callback URL upstream and can read (and, where signed, check) what comes back."""
    return bool(getattr(provider, "callbacks_supported", False)) and hasattr(provider, "read_callback")


class CallbackLinks:
    def __init__(self, public_url: str, providers: Mapping[str, Provider]) -> None:
        self._base = public_url.rstrip("/")
        self._providers = providers

    def enabled_for(self, provider: str) -> bool:
        adapter = self._providers.get(provider)
        return adapter is not None and takes_callbacks(adapter)

    def new(self, provider: str, job_id: int) -> tuple[str, str]:
        """(callback URL, hash of its secret) for one submission of the job."""
        secret = secrets.token_urlsafe(32)
        url = self._base + ROUTE.format(provider=provider, job_id=job_id, secret=secret)
        return url, secret_hash(secret)
