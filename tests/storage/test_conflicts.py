"""PostgreSQL deadlocks and serialization failures: ``Database.transact`` runs the losing body again (bounded),
and a job's transitions lock its steps before its row, like claims and step holders do."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bot.storage.database import Connection, Database, is_conflict

pytestmark = pytest.mark.postgres


async def test_a_deadlock_runs_the_losing_transaction_again(pg_url):
    async with Database(pg_url, pool_size=4) as database:
        async with database.transaction() as conn:
            await conn.execute("CREATE TABLE pair (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
            await conn.execute("INSERT INTO pair VALUES (1, 0), (2, 0)")
        both_hold_one = asyncio.Barrier(2)
        runs: list[str] = []

        def body(name: str, first: int, second: int):
            async def run(conn: Connection) -> str:
                runs.append(name)
                await conn.execute("UPDATE pair SET v = v + 1 WHERE id = ?", (first,))
                if runs.count(name) == 1:
                    await both_hold_one.wait()  # each holds one row and wants the other's: a deadlock
                await conn.execute("UPDATE pair SET v = v + 1 WHERE id = ?", (second,))
                return name

            return run

        done = await asyncio.gather(database.transact(body("a", 1, 2)), database.transact(body("b", 2, 1)))
        assert sorted(done) == ["a", "b"]
        assert len(runs) == 3  # one of them lost the deadlock and ran again
        rows = await database.fetch_all("SELECT v FROM pair ORDER BY id")
        assert [row["v"] for row in rows] == [2, 2]  # the rolled back attempt left nothing behind


async def test_conflicts_are_retried_a_bounded_number_of_times_and_other_errors_not_at_all(pg_url):
    async with Database(pg_url, pool_size=2) as database:
        calls = 0

        async def always_conflicts(conn: Connection) -> None:
            nonlocal calls
            calls += 1
            raise asyncpg.exceptions.SerializationError("could not serialize access")

        with pytest.raises(asyncpg.exceptions.SerializationError):
            await database.transact(always_conflicts, attempts=3)
        assert calls == 3

        calls = 0

        async def broken(conn: Connection) -> None:
            nonlocal calls
            calls += 1
            raise asyncpg.exceptions.UniqueViolationError("duplicate key")

        with pytest.raises(asyncpg.exceptions.UniqueViolationError):
            await database.transact(broken)
        assert calls == 1
    assert is_conflict(asyncpg.exceptions.DeadlockDetectedError("x"))
    assert not is_conflict(RuntimeError("deadlock"))
