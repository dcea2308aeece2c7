"""ServerSettingsService.update: a change is a value or a function of the stored value, applied in the transaction,
so changes made at the same time all land; a function that raises changes (and audits) nothing."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import InvalidInput
from bot.server_settings.service import ServerSettingsService
from bot.storage.database import Database

G = 1
MOD = 900


@pytest.fixture
async def db(tmp_path):
    async with Database(tmp_path / "bot.sqlite3") as database:
        yield database


async def audits(db: Database) -> int:
    return int(await db.fetch_value("SELECT COUNT(*) FROM audit_log"))


async def test_a_change_can_be_a_function_of_the_stored_value(db):
    store = ServerSettingsService(db)
    await store.update(G, actor_id=MOD, allowed_channels=frozenset({1}), banned_words=("gore",))
    before, after = await store.update(
        G,
        actor_id=MOD,
        allowed_channels=lambda channels: channels | {2},
        banned_words=lambda words: (*words, "blood"),
        completion_ping=False,
    )
    assert before.allowed_channels == {1}
    assert (after.allowed_channels, after.banned_words, after.completion_ping) == ({1, 2}, ("gore", "blood"), False)
    store.forget(G)
    assert await store.get(G) == after


async def test_functions_see_the_stored_value_not_the_cache(db):
    mine, other = ServerSettingsService(db), ServerSettingsService(db)  # e.g. a second shard's process
    assert (await mine.get(G)).moderator_roles == frozenset()  # cached: no roles
    await other.update(G, actor_id=MOD, moderator_roles=frozenset({7}))
    _, after = await mine.update(G, actor_id=MOD, moderator_roles=lambda roles: roles | {8})
    assert after.moderator_roles == {7, 8}


async def test_concurrent_additions_all_land(db):
    store = ServerSettingsService(db)
    await store.get(G)
    await asyncio.gather(
        *(store.update(G, actor_id=MOD + n, allowed_channels=lambda c, n=n: c | {n}) for n in range(10)),
        *(store.update(G, actor_id=MOD, banned_words=lambda w, n=n: (*w, f"word{n}")) for n in range(10)),
    )
    store.forget(G)
    config = await store.get(G)
    assert config.allowed_channels == frozenset(range(10))
    assert sorted(config.banned_words) == sorted(f"word{n}" for n in range(10))
    assert await audits(db) == 20


async def test_a_function_that_refuses_changes_nothing(db):
    store = ServerSettingsService(db)
    await store.update(G, actor_id=MOD, allowed_channels=frozenset({1}))

    def refuse(channels: frozenset[int]) -> frozenset[int]:
        raise InvalidInput("no")

    with pytest.raises(InvalidInput):
        await store.update(G, actor_id=MOD, completion_ping=False, allowed_channels=refuse)
    store.forget(G)
    config = await store.get(G)
    assert (config.allowed_channels, config.completion_ping) == ({1}, True)
    assert await audits(db) == 1
