"""What the credit services return, and the bounds of what moderators may set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.storage.credits import LedgerEntry, LedgerKind

__all__ = ["MAX_CREDITS", "MAX_REASON_LENGTH", "LedgerEntry", "LedgerKind", "LimitSource", "QuotaStatus", "Reservation"]

MAX_CREDITS = 1_000_000_000
MAX_REASON_LENGTH = 500

LimitSource = Literal["member", "role", "server", "default", "personal"]


@dataclass(frozen=True, slots=True)
class Reservation:
    job_id: int
    guild_id: int
    user_id: int
    period: str
    from_period: int
    from_bonus: int
    limit: int
    used_after: int
    bonus_after: int

    @property
    def cost(self) -> int:
        return self.from_period + self.from_bonus


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    guild_id: int
    user_id: int
    limit: int
    limit_source: LimitSource
    used: int
    left: int
    bonus: int
    period: str
    resets_at: float
    banned: bool
    ban_reason: str | None
    active_jobs: int
