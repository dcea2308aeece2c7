"""Moderator actions: bonus grants and revokes, resets, limits, bans; each audited in the transaction of its change,
and none of them reaching into another server."""

from __future__ import annotations

import json

import pytest

import bot.storage.audit
from bot.errors import InvalidInput
from bot.storage.audit import list_audit
from bot.storage.database import fetch_one
from tests.quota.helpers import bonus, ledger_kinds, used

MOD = 900
G, U = 1, 100
TODAY = "2026-11-21"


async def test_grant_and_revoke_bonus_credits(service, db, clock):
    assert await service.grant(G, U, 5, actor_id=MOD, reason="contest winner") == 5
    assert await service.grant(G, U, 3, actor_id=MOD) == 8
    assert await service.grant(G, U, -6, actor_id=MOD, reason="oops") == 2
    with pytest.raises(InvalidInput) as refused:
        await service.grant(G, U, -3, actor_id=MOD)
    assert "only 2 bonus credits" in refused.value.user_message
    with pytest.raises(InvalidInput):
        await service.grant(G, U, 0, actor_id=MOD)
    with pytest.raises(InvalidInput):
        await service.grant(G, 101, -1, actor_id=MOD)  # nobody's balance goes below 0
    assert await bonus(db, G, U) == 2
    entries = await service.ledger(G, U)
    assert [(e.kind, e.bonus_delta, e.actor_id, e.reason) for e in entries] == [
        ("revoke", -6, MOD, "oops"),
        ("grant", 3, MOD, None),
        ("grant", 5, MOD, "contest winner"),
    ]
    assert all(e.created_at == clock() and e.job_id is None for e in entries)
    audit = await list_audit(db, G, target_user_id=U)
    assert [(a.action, a.before, a.after, a.reason, a.actor_id) for a in audit] == [
        ("revoke", {"bonus": 8}, {"bonus": 2}, "oops", MOD),
        ("grant", {"bonus": 5}, {"bonus": 8}, None, MOD),
        ("grant", {"bonus": 0}, {"bonus": 5}, "contest winner", MOD),
    ]
    assert len(await service.ledger(G, U, limit=2)) == 2


async def test_reset_clears_this_periods_usage_and_keeps_bonus(make_service, db, clock):
    from tests.quota.helpers import Jobs

    service = make_service(daily_credits=3, max_running_jobs_per_user=10)
    jobs = Jobs(db, service, clock)
    await service.grant(G, U, 2, actor_id=MOD)
    await jobs.start(cost=4)  # 3 period + 1 bonus
    assert (await service.status(G, U, ())).bonus == 1
    await service.reset(G, U, actor_id=MOD, reason="bad outputs")
    status = await service.status(G, U, ())
    assert (status.used, status.left, status.bonus) == (0, 3, 1)
    [entry, *_] = await service.ledger(G, U)
    assert (entry.kind, entry.period, entry.period_delta, entry.bonus_delta, entry.actor_id, entry.reason) == (
        "reset",
        TODAY,
        -3,
        0,
        MOD,
        "bad outputs",
    )
    [audit, *_] = await list_audit(db, G, target_user_id=U)
    assert (audit.action, audit.before, audit.after) == (
        "reset",
        {"period": TODAY, "used": 3},
        {"period": TODAY, "used": 0},
    )
    await jobs.start(cost=3)


async def test_every_moderator_action_is_audited_with_before_after_reason_and_actor(service, db, clock):
    await service.set_member_limit(G, U, 7, actor_id=MOD, reason="regular")
    assert await service.set_member_limit(G, U, None, actor_id=MOD) == (7, None)
    await service.ban(G, U, actor_id=MOD, reason="  rude  ")
    await service.unban(G, U, actor_id=MOD + 1)
    assert await service.set_role_limit(G, 55, 30, actor_id=MOD) == (None, 30)
    assert await service.set_role_limit(G, 55, None, actor_id=MOD, reason="role gone") == (30, None)
    assert await service.set_server_default(G, 12, actor_id=MOD) == (None, 12)
    await service.grant(G, U, 1, actor_id=MOD)
    await service.reset(G, U, actor_id=MOD)
    rows = await db.fetch_all("SELECT * FROM audit_log ORDER BY id")
    got = [
        (r["action"], r["actor_id"], r["target_user_id"], r["target_role_id"], json.loads(r["before"]),
         json.loads(r["after"]), r["reason"], r["created_at"], r["guild_id"])
        for r in rows
    ]  # fmt: skip
    now = clock()
    assert got == [
        ("set-limit", MOD, U, None, {"credit_limit": None}, {"credit_limit": 7}, "regular", now, G),
        ("set-limit", MOD, U, None, {"credit_limit": 7}, {"credit_limit": None}, None, now, G),
        ("ban", MOD, U, None, {"banned": False, "ban_reason": None}, {"banned": True, "ban_reason": "rude"}, "rude",
         now, G),
        ("unban", MOD + 1, U, None, {"banned": True, "ban_reason": "rude"}, {"banned": False, "ban_reason": None},
         None, now, G),
        ("role-limit", MOD, None, 55, {"credit_limit": None}, {"credit_limit": 30}, None, now, G),
        ("role-limit", MOD, None, 55, {"credit_limit": 30}, {"credit_limit": None}, "role gone", now, G),
        ("server-default", MOD, None, None, {"default_limit": None}, {"default_limit": 12}, None, now, G),
        ("grant", MOD, U, None, {"bonus": 0}, {"bonus": 1}, None, now, G),
        ("reset", MOD, U, None, {"period": TODAY, "used": 0}, {"period": TODAY, "used": 0}, None, now, G),
    ]  # fmt: skip


async def test_server_default_keeps_the_other_server_settings(service, db):
    await db.execute(
        """INSERT INTO guild_settings (guild_id, default_model, banned_words, completion_ping, updated_at)
           VALUES (?, 'uni-1', '["foo"]', 0, 1)""",
        (G,),
    )
    await service.set_server_default(G, 4, actor_id=MOD)
    row = await db.fetch_one("SELECT * FROM guild_settings WHERE guild_id = ?", (G,))
    assert (row["default_limit"], row["default_model"], row["banned_words"], row["completion_ping"]) == (
        4,
        "uni-1",
        '["foo"]',
        0,
    )


@pytest.mark.parametrize("bad", [-1, 10**12])
async def test_limits_out_of_range_are_refused(service, bad):
    with pytest.raises(InvalidInput):
        await service.set_member_limit(G, U, bad, actor_id=MOD)
    with pytest.raises(InvalidInput):
        await service.set_role_limit(G, 5, bad, actor_id=MOD)
    with pytest.raises(InvalidInput):
        await service.set_server_default(G, bad, actor_id=MOD)


async def test_an_overlong_reason_is_refused(service, db):
    with pytest.raises(InvalidInput):
        await service.ban(G, U, actor_id=MOD, reason="x" * 501)
    assert await db.fetch_value("SELECT COUNT(*) FROM audit_log") == 0


async def _seed_credits(service, jobs) -> None:
    await service.grant(G, U, 5, actor_id=MOD)
    await jobs.start(cost=2)


ACTIONS = {
    "set_member_limit": lambda s: s.set_member_limit(G, U, 3, actor_id=MOD, reason="r"),
    "grant": lambda s: s.grant(G, U, 4, actor_id=MOD, reason="r"),
    "revoke": lambda s: s.grant(G, U, -4, actor_id=MOD, reason="r"),
    "reset": lambda s: s.reset(G, U, actor_id=MOD, reason="r"),
    "ban": lambda s: s.ban(G, U, actor_id=MOD, reason="r"),
    "unban": lambda s: s.unban(G, U, actor_id=MOD, reason="r"),
    "set_role_limit": lambda s: s.set_role_limit(G, 55, 9, actor_id=MOD, reason="r"),
    "set_server_default": lambda s: s.set_server_default(G, 9, actor_id=MOD, reason="r"),
}

SNAPSHOT_TABLES = ("credit_usage", "credit_bonus", "credit_ledger", "member_quota", "role_limits", "guild_settings",
                   "audit_log")  # fmt: skip


async def snapshot(db) -> dict[str, list[tuple]]:
    return {t: [tuple(r) for r in await db.fetch_all(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in SNAPSHOT_TABLES}


@pytest.mark.parametrize("when", ["audit-fails", "after-audit"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_a_failure_after_the_change_rolls_back_the_change_and_its_audit(
    service, db, jobs, monkeypatch, action, when
):
    await _seed_credits(service, jobs)
    await service.ban(G, U, actor_id=MOD, reason="seed")  # so that unban changes something
    before = await snapshot(db)
    real_write_audit = bot.storage.audit.write_audit

    async def failing_write_audit(conn, entry, *, now):
        if when == "after-audit":
            await real_write_audit(conn, entry, now=now)
            count = await fetch_one(conn, "SELECT COUNT(*) FROM audit_log")
            assert count[0] == len(before["audit_log"]) + 1  # it was written, in this transaction
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bot.storage.audit, "write_audit", failing_write_audit)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await ACTIONS[action](service)
    assert await snapshot(db) == before
    monkeypatch.setattr(bot.storage.audit, "write_audit", real_write_audit)
    await ACTIONS[action](service)  # and it works once the failure is gone
    after = await snapshot(db)
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1


async def test_moderator_actions_in_one_server_never_change_another(service, db, jobs):
    other = 2
    for guild in (G, other):
        await service.grant(guild, U, 5, actor_id=MOD)
        await jobs.start(guild_id=guild, cost=2)
        await service.set_role_limit(guild, 55, 8, actor_id=MOD)
    await service.set_server_default(other, 6, actor_id=MOD)
    await service.set_member_limit(other, U, 9, actor_id=MOD)
    before = await snapshot(db)

    def rows_of(snap, guild):
        return {t: [r for r in rows if r[0] == guild or (t == "credit_ledger" and r[1] == guild)]
                for t, rows in snap.items() if t != "audit_log"}  # fmt: skip

    for action in ACTIONS.values():
        await action(service)
    await service.set_role_limit(G, 55, None, actor_id=MOD)
    await service.set_server_default(G, None, actor_id=MOD)
    after = await snapshot(db)
    assert rows_of(after, other) == rows_of(before, other)
    assert [r for r in after["audit_log"] if r[1] == other] == [r for r in before["audit_log"] if r[1] == other]
    assert rows_of(after, G) != rows_of(before, G)
    status = await service.status(other, U, (55,))
    assert (status.limit, status.limit_source, status.used, status.bonus, status.banned) == (9, "member", 2, 5, False)
    assert await used(db, G, U, TODAY) == 0
    assert await ledger_kinds(db, 1) == ["reserve"]
