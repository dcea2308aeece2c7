"""/quota-admin end to end: who may use it (checked on the bot's side, whatever the command's visibility), every
subcommand, the audit trail, and a moderator's reach limited to their own server."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.harness import bot_running, e2e_settings
from tests.e2e.moderation_support import (
    GUILD_B,
    admin,
    audit_rows,
    command,
    custom_ids,
    imagine,
    reply,
    seed_jobs,
    text_of,
    used_today,
)
from tests.fakes.discord import ADMINISTRATOR, DEFAULT_MEMBER_PERMISSIONS, RoleOption, UserOption

GUILD = 1_200_000_000_000_000_200
CHANNEL = 1_200_000_000_000_000_300
USER = 1_200_000_000_000_000_100  # the member the moderators act on (and the default invoker of /imagine)
MOD = 1_200_000_000_000_000_500
MEMBER = 1_200_000_000_000_000_600


@pytest.fixture
def people(fake_discord):
    for user_id, name in ((MOD, "mod"), (MEMBER, "member")):
        fake_discord.add_user(name, user_id=user_id)
    fake_discord.add_guild("Guild B", guild_id=GUILD_B)
    fake_discord.add_channel(GUILD_B, "general-b")
    return fake_discord


REFUSED_CASES = [
    ("view", {"user": UserOption(USER)}),
    ("set-limit", {"user": UserOption(USER), "credits": 99}),
    ("grant", {"user": UserOption(USER), "credits": 50}),
    ("reset", {"user": UserOption(USER)}),
    ("ban", {"user": UserOption(USER)}),
    ("unban", {"user": UserOption(USER)}),
    ("server-default", {"credits": 99}),
    ("audit", {}),
    ("history", {"user": UserOption(USER)}),
]


@pytest.mark.parametrize(("subcommand", "options"), REFUSED_CASES, ids=[case[0] for case in REFUSED_CASES])
async def test_a_member_without_the_permission_is_refused_even_if_the_command_is_shown(
    people, settings, subcommand, options
):
    fake_discord = people
    async with bot_running(settings, fake_discord) as bot:
        await bot.services.quota.ban(GUILD, USER, actor_id=MOD)  # so that unban would change something
        before = await bot.services.quota.status(GUILD, USER, ())
        audits = await audit_rows(bot)
        text = await admin(
            fake_discord, subcommand, options, user_id=MEMBER, member_permissions=DEFAULT_MEMBER_PERMISSIONS
        )
        after = await bot.services.quota.status(GUILD, USER, ())
        assert await audit_rows(bot) == audits
    assert text.startswith("Only moderators can use this")
    assert after == before


async def test_role_limit_by_a_non_moderator_is_refused(people, settings):
    role = int(people.add_role(GUILD, "vip")["id"])
    async with bot_running(settings, people) as bot:
        text = await admin(
            people,
            "role-limit",
            {"role": RoleOption(role), "credits": 5},
            user_id=MEMBER,
            member_permissions=DEFAULT_MEMBER_PERMISSIONS,
        )
        assert await audit_rows(bot) == 0
        assert (await bot.services.quota.status(GUILD, USER, [role])).limit_source == "default"
    assert text.startswith("Only moderators can use this")


async def test_the_command_is_hidden_from_members_and_only_in_servers(people, settings):
    async with bot_running(settings, people) as bot:
        payload = {c.name: c.to_dict(bot.tree) for c in bot.tree.get_commands()}
        _, in_dms = await command(people, "quota-admin", {}, subcommand="audit", guild_id=None, user_id=MOD)
        record, _ = await command(people, "help", {})
    for name in ("quota-admin", "server-settings"):
        assert payload[name]["default_member_permissions"] == 32
        assert payload[name]["contexts"] == [0]
    assert "only works in a server" in in_dms
    help_text = text_of((await reply(people, record)).json)
    for listed in ("/quota`", "/history`", "/job show`", "/imagine`"):
        assert listed in help_text
    assert "quota-admin" not in help_text
    assert "server-settings" not in help_text


async def test_a_moderator_role_holder_and_an_administrator_are_allowed(people, settings):
    role = int(people.add_role(GUILD, "moderators")["id"])
    async with bot_running(settings, people) as bot:
        await bot.services.server_settings.update(GUILD, actor_id=1, moderator_roles=frozenset({role}))
        by_role = await admin(
            people,
            "grant",
            {"user": UserOption(USER), "credits": 2},
            user_id=MEMBER,
            roles=[role],
            member_permissions=DEFAULT_MEMBER_PERMISSIONS,
        )
        by_admin = await admin(
            people,
            "grant",
            {"user": UserOption(USER), "credits": 3},
            user_id=MOD,
            member_permissions=DEFAULT_MEMBER_PERMISSIONS | ADMINISTRATOR,
        )
        bonus = (await bot.services.quota.status(GUILD, USER, ())).bonus
    assert f"Bonus credits of <@{USER}>: 0 → **2**." in by_role
    assert f"Bonus credits of <@{USER}>: 2 → **5**." in by_admin
    assert bonus == 5


async def test_an_operator_is_allowed_in_any_server(tmp_path, people, fakes):
    settings = e2e_settings(tmp_path, people, fakes, operator_user_ids=frozenset({MEMBER}))
    async with bot_running(settings, people) as bot:
        for guild in (GUILD, GUILD_B):
            text = await admin(
                people,
                "grant",
                {"user": UserOption(USER), "credits": 4},
                user_id=MEMBER,
                guild_id=guild,
                member_permissions=DEFAULT_MEMBER_PERMISSIONS,
            )
            assert "→ **4**" in text
            assert (await bot.services.quota.status(guild, USER, ())).bonus == 4


async def test_view_shows_their_quota_ledger_and_jobs(people, settings):
    async with bot_running(settings, people) as bot:
        job = await imagine(people, bot, "a lighthouse")
        await seed_jobs(bot, 1, user_id=USER, guild_id=GUILD_B, channel_id=None, prompt="elsewhere")
        await bot.services.quota.grant(GUILD, USER, 5, actor_id=MOD, reason="contest winner")
        text = await admin(people, "view", {"user": UserOption(USER)}, user_id=MOD)
    assert "Credits of Alice in this server" in text
    assert "24 credits left" in text
    assert "their own limit" not in text
    assert "the bot's default" in text
    assert f"**grant** · +5 bonus · by <@{MOD}>: contest winner" in text
    assert f"**reserve** · +1 used · job #{job.id}" in text
    assert f"**commit** · job #{job.id}" in text
    assert f"**#{job.id}** ✅ succeeded" in text
    assert "a lighthouse" in text
    assert "elsewhere" not in text
    assert "Recent jobs (1 in all)" in text


async def test_set_limit_sets_and_clears_a_members_own_limit(people, settings):
    async with bot_running(settings, people) as bot:
        set_text = await admin(people, "set-limit", {"user": UserOption(USER), "credits": 7, "reason": "trial"})
        _, quota = await command(people, "quota")
        clear_text = await admin(people, "set-limit", {"user": UserOption(USER)})
        status = await bot.services.quota.status(GUILD, USER, ())
        entries = await bot.services.database.fetch_all("SELECT * FROM audit_log ORDER BY id")
    assert f"Own daily limit of <@{USER}>: none → **7 credits a day**." in set_text
    assert "Their daily limit is now 7 credits: their own limit" in set_text
    assert "7 credits: your own limit, set by a moderator" in quota
    assert "7 credits a day → **none**" in clear_text
    assert "Their daily limit is now 25 credits: the bot's default" in clear_text
    assert status.limit_source == "default"
    assert [(e["action"], e["actor_id"], e["target_user_id"], e["reason"]) for e in entries] == [
        ("set-limit", MOD, USER, "trial"),
        ("set-limit", MOD, USER, None),
    ]
    assert json.loads(entries[0]["after"]) == {"credit_limit": 7}


async def test_grant_gives_and_takes_bonus_credits(people, settings):
    async with bot_running(settings, people) as bot:
        given = await admin(people, "grant", {"user": UserOption(USER), "credits": 5, "reason": "event"})
        taken = await admin(people, "grant", {"user": UserOption(USER), "credits": -2})
        too_much = await admin(people, "grant", {"user": UserOption(USER), "credits": -10})
        zero = await admin(people, "grant", {"user": UserOption(USER), "credits": 0})
        status = await bot.services.quota.status(GUILD, USER, ())
        actions = [row[0] for row in await bot.services.database.fetch_all("SELECT action FROM audit_log")]
    assert f"Bonus credits of <@{USER}>: 0 → **5**. (+5)" in given
    assert "5 → **3**. (−2)" in taken
    assert "Can't take away 10 bonus credits: this member has only 3 bonus credits." in too_much
    assert "other than 0" in zero
    assert status.bonus == 3
    assert actions == ["grant", "revoke"]


async def test_reset_gives_todays_credits_back(people, settings):
    async with bot_running(settings, people) as bot:
        await imagine(people, bot, "a cat")
        assert await used_today(bot, GUILD, USER) == 1
        text = await admin(people, "reset", {"user": UserOption(USER), "reason": "bad luck"})
        assert await used_today(bot, GUILD, USER) == 0
        row = await bot.services.database.fetch_one("SELECT * FROM audit_log")
    assert f"Credits used today by <@{USER}>: 1 → **0**." in text
    assert (row["action"], row["reason"]) == ("reset", "bad luck")


async def test_ban_refuses_generation_without_charge_and_unban_lifts_it(people, settings):
    async with bot_running(settings, people) as bot:
        banned = await admin(people, "ban", {"user": UserOption(USER), "reason": "spam"})
        again = await admin(people, "ban", {"user": UserOption(USER), "reason": "more spam"})
        record = await people.dispatch(people.slash_command("imagine", {"prompt": "a cat"}))
        refusal = text_of((await reply(people, record)).json)
        assert await used_today(bot, GUILD, USER) == 0
        assert await bot.services.database.fetch_value("SELECT COUNT(*) FROM jobs") == 0
        lifted = await admin(people, "unban", {"user": UserOption(USER)})
        not_banned = await admin(people, "unban", {"user": UserOption(USER)})
        job = await imagine(people, bot, "a cat")
        actions = [row[0] for row in await bot.services.database.fetch_all("SELECT action FROM audit_log")]
    assert f"<@{USER}>: not banned → **banned**" in banned
    assert "already banned; the reason is updated" in again
    assert "banned you from using the bot in this server. Reason: more spam" in refusal
    assert "banned → **not banned**" in lifted
    assert "was not banned; nothing changed" in not_banned
    assert job.status == "succeeded"
    assert actions == ["ban", "ban", "unban", "unban"]


async def test_role_limit_applies_to_members_with_the_role(people, settings):
    role = int(people.add_role(GUILD, "supporters")["id"])
    async with bot_running(settings, people) as bot:
        set_text = await admin(people, "role-limit", {"role": RoleOption(role), "credits": 60})
        _, with_role = await command(people, "quota", roles=[role])
        cleared = await admin(people, "role-limit", {"role": RoleOption(role)})
        _, after = await command(people, "quota", roles=[role])
        row = await bot.services.database.fetch_one("SELECT * FROM audit_log ORDER BY id LIMIT 1")
    assert f"Daily limit of members with <@&{role}>: none → **60 credits a day**." in set_text
    assert "60 credits: from your roles" in with_role
    assert "60 credits a day → **none**" in cleared
    assert "25 credits: the bot's default" in after
    assert (row["action"], row["target_role_id"]) == ("role-limit", role)


async def test_server_default_is_shown_fresh_everywhere(people, settings):
    async with bot_running(settings, people) as bot:
        await admin(people, "show", group="server-settings")  # caches this server's settings
        set_text = await admin(people, "server-default", {"credits": 12, "reason": "busy week"})
        shown = await admin(people, "show", group="server-settings")
        _, quota = await command(people, "quota")
        cleared = await admin(people, "server-default", {})
        shown_after = await admin(people, "show", group="server-settings")
        assert await audit_rows(bot, GUILD) == 2
    assert (
        "Default daily limit in this server: the bot's default (25 credits a day) → **12 credits a day**." in set_text
    )
    assert "Daily credits per member\n12 credits" in shown
    assert "12 credits: this server's default" in quota
    assert "12 credits a day → **the bot's default (25 credits a day)**" in cleared
    assert "Daily credits per member\nthe bot's default (25 credits)" in shown_after


async def test_audit_lists_who_changed_what_when_and_why_with_pages(people, settings):
    async with bot_running(settings, people) as bot:
        await admin(people, "set-limit", {"user": UserOption(USER), "credits": 9, "reason": "testing *limits*"})
        for n in range(11):
            await bot.services.quota.grant(GUILD, MEMBER, 1, actor_id=MOD, reason=f"gift {n}")
        await bot.services.quota.grant(GUILD_B, USER, 1, actor_id=MOD, reason="other server")
        first = await admin(people, "audit", {})
        second = await admin(people, "audit", {"page": 2})
        about_user = await admin(people, "audit", {"user": UserOption(USER)})
    assert first.count("**grant**") == 10
    assert "gift 10" in first
    assert "gift 1”" in first
    assert "Older entries: page 2." in first
    assert "**set-limit**" in second
    assert re.search(
        rf"<t:\d+:f> <@{MOD}> \*\*set-limit\*\* <@{USER}>: credit limit none → 9 \(“testing \\\*limits\\\*”\)", second
    )
    assert "No older entries." in second
    assert "Moderator actions in this server about Alice" in about_user
    assert about_user.count("**") == 2  # one entry
    assert "other server" not in first + second + about_user


async def test_history_of_a_member_pages_for_the_moderator_only(people, settings):
    async with bot_running(settings, people) as bot:
        ids = await seed_jobs(bot, 11, user_id=USER, guild_id=GUILD, channel_id=CHANNEL, prompt="public {n}")
        [private] = await seed_jobs(
            bot, 1, user_id=USER, guild_id=GUILD, channel_id=CHANNEL, prompt="secret", ephemeral=True
        )
        await seed_jobs(bot, 1, user_id=USER, guild_id=GUILD_B, channel_id=None, prompt="server b")
        record, _ = await command(
            people,
            "quota-admin",
            {"user": UserOption(USER)},
            subcommand="history",
            user_id=MOD,
            member_permissions=DEFAULT_MEMBER_PERMISSIONS | (1 << 5),
        )
        first = (await reply(people, record)).json
        message_id = record.original_message_id
        next_id = f"hist:{MOD}:{USER}:2:"
        refused = await people.dispatch(people.button_click(next_id, message_id, user_id=USER))
        refusal = await people.wait_for(lambda r: r.interaction_token == refused.token)
        click = await people.dispatch(
            people.button_click(next_id, message_id, user_id=MOD, member_permissions=DEFAULT_MEMBER_PERMISSIONS | 32)
        )
        second = (await reply(people, click)).json
        back_id = f"hist:{MOD}:{USER}:1:"  # the button now on the message
        demoted = await people.dispatch(people.button_click(back_id, message_id, user_id=MOD))
        demoted_answer = await people.wait_for(
            lambda r: r.interaction_token == demoted.token and r.method == "POST" and "/webhooks/" in r.path
        )
    text = text_of(first)
    assert first["content"] == f"Jobs of <@{USER}>:"
    assert "A member's jobs in this server" in text
    assert f"**#{private}**" in text
    assert "*private job: prompt hidden*" in text
    assert "secret" not in text
    assert "server b" not in text
    assert custom_ids(first) == [next_id]
    assert "Only the person who opened this list" in refusal.json["data"]["content"]
    assert f"**#{ids[0]}**" in text_of(second)
    assert demoted_answer.json["flags"] == 64
    assert demoted_answer.json["content"].startswith("Only moderators can use this")


async def test_a_moderator_cannot_touch_another_servers_data(people, settings):
    async with bot_running(settings, people) as bot:
        quota = bot.services.quota
        await quota.grant(GUILD_B, USER, 3, actor_id=1)
        before_b = await quota.status(GUILD_B, USER, ())
        audits_b = await audit_rows(bot, GUILD_B)
        await imagine(people, bot, "a cat", guild_id=GUILD_B)
        for subcommand, options in (
            ("set-limit", {"user": UserOption(USER), "credits": 1}),
            ("grant", {"user": UserOption(USER), "credits": 50}),
            ("reset", {"user": UserOption(USER)}),
            ("ban", {"user": UserOption(USER)}),
            ("server-default", {"credits": 2}),
        ):
            await admin(people, subcommand, options, user_id=MOD)  # in guild A, the default guild
        after_b = await quota.status(GUILD_B, USER, ())
        view_a = await admin(people, "view", {"user": UserOption(USER)}, user_id=MOD)
        assert await audit_rows(bot, GUILD_B) == audits_b
        assert await audit_rows(bot, GUILD) == 5
        b_settings = await bot.services.server_settings.get(GUILD_B)
    assert after_b.banned is False
    assert after_b.bonus == before_b.bonus == 3
    assert after_b.used == 1
    assert after_b.limit == 25
    assert b_settings.default_limit is None
    assert "This member is banned" in view_a
