"""The database server's clock, in Unix seconds (``bot.clock`` measures this process' offset from it)."""

from __future__ import annotations

from bot.storage.database import Database

_NOW_SQL = {
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
    "postgresql": "SELECT EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION",
}


async def server_time(database: Database) -> float:
    return float(await database.fetch_value(_NOW_SQL[database.dialect]))
