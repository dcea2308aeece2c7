"""audited_change: the state before, the change and its audit row, in one transaction; a refusal or a failure
anywhere (the audit row included) leaves neither the change nor the audit row."""

from __future__ import annotations

import pytest

import bot.storage.audit
from bot.storage.audit import AuditAction, audited_change, list_audit
from bot.storage.database import Connection, Database, fetch_one

G, U, ROLE, MOD = 1, 100, 55, 900
NOW = 1_795_255_200.0


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


async def read_limit(conn: Connection) -> int | None:
    row = await fetch_one(conn, "SELECT credit_limit FROM role_limits WHERE guild_id = ? AND role_id = ?", (G, ROLE))
    return None if row is None else int(row[0])


def set_limit(credits: int):
    async def write(conn: Connection, before: int | None) -> int:
        await conn.execute(
            """INSERT INTO role_limits (guild_id, role_id, credit_limit) VALUES (?, ?, ?)
               ON CONFLICT (guild_id, role_id) DO UPDATE SET credit_limit = excluded.credit_limit""",
            (G, ROLE, credits),
        )
        return credits

    return write


async def stored_limit(db: Database) -> int | None:
    return await db.fetch_value("SELECT credit_limit FROM role_limits WHERE guild_id = ? AND role_id = ?", (G, ROLE))


async def audit_count(db: Database) -> int:
    return int(await db.fetch_value("SELECT COUNT(*) FROM audit_log"))


ACTION = AuditAction("role-limit", G, MOD, "busy week", target_role_id=ROLE)


async def test_the_change_and_its_audit_row_land_together(db):
    assert await audited_change(db, ACTION, now=NOW, read=read_limit, write=set_limit(5)) == (None, 5)
    assert await audited_change(db, ACTION, now=NOW + 1, read=read_limit, write=set_limit(8)) == (5, 8)
    assert await stored_limit(db) == 8
    newest, oldest = await list_audit(db, G)
    assert (oldest.before, oldest.after, newest.before, newest.after) == (None, 5, 5, 8)
    assert (newest.action, newest.actor_id, newest.reason, newest.target_role_id, newest.target_user_id) == (
        "role-limit",
        MOD,
        "busy week",
        ROLE,
        None,
    )
    assert (oldest.created_at, newest.created_at) == (NOW, NOW + 1)


async def test_the_write_is_given_the_state_read_before_it(db):
    await audited_change(db, ACTION, now=NOW, read=read_limit, write=set_limit(5))
    seen: list[int | None] = []

    async def write(conn: Connection, before: int | None) -> int:
        seen.append(before)
        return await set_limit((before or 0) + 1)(conn, before)

    await audited_change(db, ACTION, now=NOW, read=read_limit, write=write)
    assert seen == [5]
    assert await stored_limit(db) == 6


async def test_describe_shapes_what_the_audit_row_records(db):
    before, after = await audited_change(
        db,
        ACTION,
        now=NOW,
        read=read_limit,
        write=set_limit(3),
        describe=lambda old, new: ({"credit_limit": old}, {"credit_limit": new}),
    )
    assert (before, after) == (None, 3)  # the caller still gets the values themselves
    [entry] = await list_audit(db, G)
    assert (entry.before, entry.after) == ({"credit_limit": None}, {"credit_limit": 3})


async def test_a_refused_write_changes_and_audits_nothing(db):
    await audited_change(db, ACTION, now=NOW, read=read_limit, write=set_limit(5))

    async def refuse(conn: Connection, before: int | None) -> int:
        await set_limit(9)(conn, before)
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await audited_change(db, ACTION, now=NOW, read=read_limit, write=refuse)
    assert (await stored_limit(db), await audit_count(db)) == (5, 1)


async def test_a_failing_audit_row_rolls_the_change_back(db, monkeypatch):
    async def failing_write_audit(conn, entry, *, now):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bot.storage.audit, "write_audit", failing_write_audit)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await audited_change(db, ACTION, now=NOW, read=read_limit, write=set_limit(5))
    assert (await stored_limit(db), await audit_count(db)) == (None, 0)
