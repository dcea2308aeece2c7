"""The PostgreSQL database (asyncpg): a connection pool, the same methods as the SQLite ``Database``, and the thin
layer that lets repositories write one SQL dialect.

- Placeholders: repositories write ``?``; ``pg_sql`` rewrites them to ``$1..$n`` (outside string literals, quoted
  identifiers and comments).
- Results: a write answers its row count (parsed from the command tag); rows are ``asyncpg.Record`` (by name or
  position, ``dict(row)``), like ``sqlite3.Row``.
- Transactions are READ COMMITTED and run concurrently (a pool, many processes): the repositories' writes that
  must hold across them are guarded single statements, row locks (``FOR UPDATE SKIP LOCKED``) or advisory locks.
- Migrations: ``migrations/postgresql/NNNN_*.sql`` mirror the SQLite ones number for number; ``schema_migrations``
  records the level, and an advisory lock lets one process at a time migrate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg

from bot.storage.database import Connection, Database, Params, T, is_conflict, migrations, redacted_url

log = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 10
CONFLICT_ATTEMPTS = 5  # a transaction body ``transact`` runs again after a deadlock or serialization failure
CONFLICT_BACKOFF_S = 0.02  # times the attempt number, jittered
MIGRATION_LOCK = 7_201_001  # pg_advisory_xact_lock key held while migrating
_COUNT = re.compile(r"(\d+)$")


@lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """``?`` → ``$1..$n``, leaving string literals, quoted identifiers and comments alone."""
    out: list[str] = []
    number = 0
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1])
            i = end + 1
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            number += 1
            out.append(f"${number}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to send (see ``PostgresDatabase.open``)."""


def _rowcount(status: str) -> int:
    """``UPDATE 3`` → 3, ``INSERT 0 1`` → 1; statements without a count → 0."""
    match = _COUNT.search(status or "")
    return int(match.group(1)) if match else 0


@dataclass(frozen=True, slots=True)
class PgResult:
    rowcount: int
    lastrowid: int | None = None


class PgConnection:
    """One pooled connection inside a transaction, with the aiosqlite calls the repositories use."""

    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection, db: Database | None = None) -> None:
        self.raw = conn
        self._db = db

    def _count(self) -> None:
        if self._db is not None:
            self._db.round_trips += 1

    async def execute(self, sql: str, parameters: Params = (), /) -> PgResult:
        self._count()
        return PgResult(_rowcount(await self.raw.execute(pg_sql(sql), *parameters)))

    async def executemany(self, sql: str, parameters: Iterable[Params], /) -> None:
        rows = [tuple(p) for p in parameters]
        if rows:
            self._count()  # asyncpg pipelines the rows: one round trip
            await self.raw.executemany(pg_sql(sql), rows)

    async def execute_fetchall(self, sql: str, parameters: Params = (), /) -> list[asyncpg.Record]:
        self._count()
        return list(await self.raw.fetch(pg_sql(sql), *parameters))


class PostgresDatabase(Database):
    """``Database("postgresql://…", pool_size=n)``."""

    dialect = "postgresql"

    def __init__(self, target: Any, *, pool_size: int = 0) -> None:
        self.url = str(target)
        self.pool_size = pool_size or DEFAULT_POOL_SIZE
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresDatabase({redacted_url(self.url)!r})"

    async def open(self) -> PostgresDatabase:
        # No reset query when a connection goes back to the pool (asyncpg's default sends one per release): the bot
        # keeps no session state (only transaction-scoped advisory locks, no LISTEN, SET or cursors), and an open
        # transaction is still rolled back by asyncpg itself.
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size, reset=_keep_session)
        await self._apply_migrations()
        return self

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    async def _apply_migrations(self) -> None:
        async with self.pool.acquire() as raw, raw.transaction():
            await raw.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await raw.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
            level = await raw.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            for number, name, sql in migrations("postgresql"):
                if number <= level:
                    continue
                await raw.execute(sql)
                await raw.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name)
                log.info("database %s: applied migration %s", redacted_url(self.url), name)

    async def schema_version(self) -> int:
        return int(await self.fetch_value("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") or 0)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One READ COMMITTED transaction on a pooled connection, committed on exit, rolled back on error."""
        async with self.pool.acquire() as raw:
            self.round_trips += 2  # BEGIN, then COMMIT or ROLLBACK
            async with raw.transaction():
                yield PgConnection(raw, self)

    async def transact(self, body: Callable[[Connection], Awaitable[T]], *, attempts: int = CONFLICT_ATTEMPTS) -> T:
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as conn:
                    return await body(conn)
            except Exception as exc:
                if not is_conflict(exc) or attempt >= attempts:
                    raise
                log.info("transaction conflict (%s), running it again (attempt %d)", type(exc).__name__, attempt + 1)
                await asyncio.sleep(CONFLICT_BACKOFF_S * attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Any]:
        self.round_trips += 1
        return list(await self.pool.fetch(pg_sql(sql), *params))

    @property
    def writer(self) -> Any:
        raise RuntimeError("PostgreSQL has no single write connection: use transaction()")

    @property
    def reader(self) -> Any:
        raise RuntimeError("PostgreSQL has no single read connection: use fetch_all()")
