"""The database. ``Database(target)`` opens the store ``target`` names: a SQLite file (a path or ``sqlite:///…``,
the embedded default) or a PostgreSQL server (``postgresql://…``, see ``bot/storage/postgres.py``). Both take the
same SQL from the repositories (``?`` placeholders) and give rows read by name or position.

SQLite: one write connection (WAL, foreign keys, busy timeout) whose transactions are
serialised by an ``asyncio.Lock``, a read connection, and numbered SQL migrations tracked by ``user_version``.

aiosqlite serialises single calls, not transactions; the lock is what keeps two coroutines from interleaving
statements inside one ``BEGIN IMMEDIATE``. Across processes, ``BEGIN IMMEDIATE`` plus ``busy_timeout`` do that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
BUSY_TIMEOUT_MS = 10_000

Params = Sequence[Any]
T = TypeVar("T")
# PostgreSQL aborts one of two transactions that wait for each other (deadlock_detected) or that cannot both hold
# (serialization_failure); running the loser's transaction again is the documented answer.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction was rolled back and may simply run again."""
    return getattr(exc, "sqlstate", None) in CONFLICT_SQLSTATES


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


class Result(Protocol):
    """What a write statement answers: how many rows it changed (and the new row's id, on SQLite)."""

    @property
    def rowcount(self) -> int: ...


class Connection(Protocol):
    """Inside an open write transaction: what repositories take to compose writes (``aiosqlite.Connection`` on
    SQLite, ``postgres.PgConnection`` on PostgreSQL)."""

    def execute(self, sql: str, parameters: Params = ..., /) -> Awaitable[Result]: ...

    def executemany(self, sql: str, parameters: Iterable[Params], /) -> Awaitable[object]: ...

    def execute_fetchall(self, sql: str, parameters: Params = ..., /) -> Awaitable[Iterable[Any]]: ...


class CountedConnection:
    """The SQLite write connection inside a transaction, counting each statement it sends (``round_trips``)."""

    __slots__ = ("_db", "raw")

    def __init__(self, raw: aiosqlite.Connection, db: Database) -> None:
        self.raw = raw
        self._db = db

    def execute(self, sql: str, parameters: Params = (), /) -> Any:
        self._db.round_trips += 1
        return self.raw.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Params], /) -> Any:
        self._db.round_trips += 1
        return self.raw.executemany(sql, parameters)

    def execute_fetchall(self, sql: str, parameters: Params = (), /) -> Any:
        self._db.round_trips += 1
        return self.raw.execute_fetchall(sql, parameters)


def is_postgres(target: object) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


def sqlite_path(target: Path | str) -> Path:
    """``sqlite:///data/bot.sqlite3`` (relative) or ``sqlite:////abs/path`` or a plain path."""
    text = str(target)
    return Path(text[len(SQLITE_SCHEME) :]) if text.startswith(SQLITE_SCHEME) else Path(text)


def redacted_url(url: str) -> str:
    """The URL without its password, for logs and ``check``."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def sql_statements(script: str) -> list[str]:
    """The statements of a migration script, one by one (Python 3.11's ``executescript`` commits any open
    transaction first, so a migration cannot run through it inside ``BEGIN IMMEDIATE``)."""
    statements, start = [], 0
    for end, char in enumerate(script, 1):
        if char == ";" and sqlite3.complete_statement(script[start:end]):
            statements.append(script[start:end].strip())
            start = end
    if script[start:].strip() and not all(
        line.strip().startswith("--") for line in script[start:].splitlines() if line.strip()
    ):
        raise ValueError(f"migration ends with an incomplete statement: {script[start:].strip()[:80]!r}")
    return statements


def migrations(dialect: str = "sqlite") -> list[tuple[int, str, str]]:
    """(number, file name, SQL) for every migration shipped with the package for ``dialect``, in order."""
    found = []
    folder = resources.files("bot.storage").joinpath("migrations")
    if dialect == "postgresql":
        folder = folder.joinpath("postgresql")
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {numbers}")
    return found


class Database:
    """SQLite here; ``Database("postgresql://…")`` makes a ``PostgresDatabase`` (same methods).

    ``round_trips`` counts every statement sent to the database (BEGIN, COMMIT and ROLLBACK included) since it was
    opened: ``genbot_db_round_trips_total``."""

    dialect = "sqlite"
    round_trips = 0

    def __new__(cls, target: Path | str, *args: Any, **kwargs: Any) -> Database:
        if cls is Database and is_postgres(target):
            from bot.storage.postgres import PostgresDatabase

            return super().__new__(PostgresDatabase)
        return super().__new__(cls)

    def __init__(self, target: Path | str, *, pool_size: int = 0) -> None:
        self.path = sqlite_path(target)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"

    async def open(self) -> Database:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await self._use_wal(self._writer)
        await self._writer.execute("PRAGMA synchronous = NORMAL")
        await self._migrate(self._writer)
        self._reader = await self._connect()
        await self._reader.execute("PRAGMA query_only = ON")
        return self

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    @staticmethod
    async def _use_wal(conn: aiosqlite.Connection) -> None:
        """Switch to WAL. SQLite answers "database is locked" at once (no busy wait) when another process holds a
        lock at that moment, e.g. while it migrates a new database: wait a little and try again."""
        for attempt in range(100):
            try:
                await conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                await asyncio.sleep(0.1)

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        """Apply each missing migration in its own write transaction. The version is read after the write lock is
        taken: another process starting at the same moment may have applied the migration while we waited, and
        applying it again could rebuild a table a second time or set the version back."""
        for number, name, sql in migrations():
            await conn.execute("BEGIN IMMEDIATE")
            try:
                async with conn.execute("PRAGMA user_version") as cur:
                    row = await cur.fetchone()
                if row is not None and row[0] >= number:
                    await conn.execute("ROLLBACK")
                    continue
                for statement in sql_statements(sql):
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {number}")
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
            log.info("database %s: applied migration %s", self.path, name)

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("database is not open")
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("database is not open")
        return self._reader

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), committed on exit, rolled back on error."""
        async with self._write_lock:
            conn = CountedConnection(self.writer, self)
            try:
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                # Also when cancelled while BEGIN was on its way: aiosqlite still runs it, so a transaction may be
                # open even though the await never returned. Shielded, so a second cancel cannot skip it.
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.shield(conn.execute("ROLLBACK"))
                raise
            else:
                await conn.execute("COMMIT")

    async def transact(self, body: Callable[[Connection], Awaitable[T]], *, attempts: int = 1) -> T:
        """``body`` in one transaction, its result returned. On PostgreSQL a deadlock or serialization failure
        runs it again, up to ``attempts`` times in all: ``body`` must be re-runnable (only database work, which
        the rollback undid, and nothing sent anywhere before the commit). SQLite has one writer: no conflicts."""
        async with self.transaction() as conn:
            return await body(conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """A single write statement in its own transaction; returns the number of changed rows."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def fetch_one(self, sql: str, params: Params = ()) -> Any:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Any]:
        # One call on aiosqlite's thread: execute, fetch and close together. A statement left open between two
        # awaits would hold a read transaction, and every concurrent reader would see that stale snapshot.
        self.round_trips += 1
        return list(await self.reader.execute_fetchall(sql, params))

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def fetch_one_in(self, conn: Connection | None, sql: str, params: Params = ()) -> Any:
        """Read inside ``conn``'s transaction (seeing its own changes), or from the read connection when None."""
        return await (self.fetch_one(sql, params) if conn is None else fetch_one(conn, sql, params))

    async def fetch_all_in(self, conn: Connection | None, sql: str, params: Params = ()) -> list[Any]:
        return await (self.fetch_all(sql, params) if conn is None else fetch_all(conn, sql, params))


async def fetch_one(conn: Connection, sql: str, params: Params = ()) -> Any:
    """Read inside an open write transaction (sees its own uncommitted changes)."""
    rows = await fetch_all(conn, sql, params)
    return rows[0] if rows else None


async def fetch_all(conn: Connection, sql: str, params: Params = ()) -> list[Any]:
    return list(await conn.execute_fetchall(sql, params))


def placeholders(values: Iterable[object]) -> str:
    return ", ".join("?" for _ in values)
