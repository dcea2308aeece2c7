"""When to ask a provider again: the first poll where completion becomes likely, the provider's own hint kept
within bounds, and capped exponential backoff with jitter after errors (``Retry-After`` honoured past the cap);
and when to stop waiting (the deadline of a run)."""

from __future__ import annotations

import random

from bot.settings import ProviderSettings, Settings
from providers.base import JobState, Kind

FIRST_POLL_FRACTION = 0.75


def next_poll_delay(block: ProviderSettings, hint: float | None) -> float:
    """The provider's own estimate when it gives one, kept between the poll interval and its cap."""
    if hint is None:
        return block.poll_interval_s
    return max(block.poll_interval_s, min(hint, block.max_poll_interval_s))


def first_poll_delay(block: ProviderSettings, state: JobState, typical_duration_s: float | None) -> float:
    """``first_poll_s`` when set, else the provider's hint, else three quarters of the model's typical duration
    (never sooner than one poll interval)."""
    if block.first_poll_s is not None:
        return block.first_poll_s
    if state.poll_after_s is not None:
        return next_poll_delay(block, state.poll_after_s)
    typical = typical_duration_s if typical_duration_s is not None else block.poll_interval_s
    return max(block.poll_interval_s, typical * FIRST_POLL_FRACTION)


def error_delay(block: ProviderSettings, errors: int, retry_after_s: float | None, rng: random.Random) -> float:
    """After the ``errors``-th error in a row: doubling from the poll interval, jittered, never past
    ``max_poll_interval_s`` (only a provider's Retry-After goes past it)."""
    delay = min(block.max_poll_interval_s, block.poll_interval_s * 2.0 ** min(errors - 1, 32))
    delay = min(block.max_poll_interval_s, delay * rng.uniform(0.8, 1.2))
    return max(delay, retry_after_s or 0.0)


def run_deadline_s(settings: Settings, kind: str) -> float:
    """How long a job may run once the service accepted it."""
    return settings.video_deadline_s if kind == Kind.VIDEO else settings.image_deadline_s


def past_deadline(deadline_at: float | None, now: float) -> bool:
    return deadline_at is not None and now >= deadline_at
