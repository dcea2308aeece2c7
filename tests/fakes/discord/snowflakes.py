"""Discord snowflakes: ids whose top 42 bits are milliseconds since the Discord epoch (2015-01-01)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake_time(snowflake: int | str) -> datetime:
    """The creation time encoded in ``snowflake`` (what discord.py's ``utils.snowflake_time`` returns)."""
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso(moment: datetime) -> str:
    """A timestamp the way Discord writes it (ISO 8601 with microseconds and +00:00)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class SnowflakeFactory:
    """Makes unique snowflakes; the low 22 bits (worker, process, increment) come from a counter."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new(self, at: datetime) -> int:
        ms = int(at.timestamp() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)
