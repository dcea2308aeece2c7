"""The clock every process reads: lease expiries, due times and timestamps written by one process are compared by
others, on PostgreSQL possibly on other machines. A machine whose clock runs ahead would take over leases that
have not expired (and fail a submit in flight as interrupted), so each process reads time as its own clock plus its
offset from the database server's, measured at start and every ``RESYNC_S``. With SQLite (one machine) the offset
stays 0."""

from __future__ import annotations

import asyncio
import logging
import time

from bot.storage.database import Database
from bot.storage.server_time import server_time

log = logging.getLogger(__name__)

RESYNC_S = 300.0
SAMPLES = 3
WARN_OFFSET_S = 1.0


class SharedClock:
    """A callable like ``time.time``: this machine's time plus its offset from the database server's."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def __repr__(self) -> str:
        return f"SharedClock(offset={self.offset:+.3f}s)"

    async def sync(self, database: Database) -> float:
        """Measure the offset from the database server's clock (the sample with the shortest round trip wins)."""
        samples = []
        for _ in range(SAMPLES):
            sent = time.time()
            theirs = await server_time(database)
            received = time.time()
            samples.append((received - sent, theirs - (sent + received) / 2))
        best = min(samples)
        if abs(best[1]) >= WARN_OFFSET_S and abs(best[1] - self.offset) >= WARN_OFFSET_S / 2:
            log.warning(
                "this machine's clock is %.1fs %s the database server's; leases and due times follow the database's",
                abs(best[1]),
                "behind" if best[1] > 0 else "ahead of",
            )
        self.offset = best[1]
        return self.offset

    async def keep_in_sync(self, database: Database, every_s: float = RESYNC_S) -> None:
        """Re-measure every ``every_s`` until cancelled (a failed measure keeps the last offset)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sync(database)
            except Exception:  # the database may be briefly away: the last offset stands
                log.warning("could not measure the clock offset from the database; keeping %+.3fs", self.offset)


shared_clock = SharedClock()
