"""Credit periods: a day that starts at the operator's reset hour (UTC), named by its date."""

from __future__ import annotations

import math
from datetime import UTC, datetime

DAY_S = 86_400


class Periods:
    def __init__(self, reset_hour_utc: int) -> None:
        self._reset_offset = reset_hour_utc * 3600

    def _start(self, ts: float) -> float:
        return math.floor((ts - self._reset_offset) / DAY_S) * DAY_S + self._reset_offset

    def period_at(self, ts: float) -> str:
        """The period containing ``ts``: the UTC date of ``ts`` shifted back by the reset hour."""
        return datetime.fromtimestamp(self._start(ts) - self._reset_offset, tz=UTC).date().isoformat()

    def next_reset(self, ts: float) -> float:
        """The first reset instant strictly after ``ts``."""
        return self._start(ts) + DAY_S
