"""/server-settings end to end: each setting changes what the job engine does, every change is audited, and only
moderators (Manage Server, a moderator role, an operator) can change anything."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.harness import bot_running, e2e_settings, job_when
from tests.e2e.moderation_support import (
    MODERATOR_ID,
    MODERATOR_PERMISSIONS,
    admin,
    audit_rows,
    imagine,
    reply,
    text_of,
    used_today,
)
from tests.fakes.discord import DEFAULT_MEMBER_PERMISSIONS, ChannelOption, RoleOption
from tests.fakes.providers._server import Outcome, Timing

GUILD = 1_200_000_000_000_000_200
CHANNEL = 1_200_000_000_000_000_300
USER = 1_200_000_000_000_000_100
MEMBER = 1_200_000_000_000_000_600


async def settings_cmd(fake, subcommand, options=None, *, group=None, **context):
    """``/server-settings [group] subcommand`` by a moderator unless told otherwise."""
    if group is not None:
        context["subcommand_group"] = group
    return await admin(fake, subcommand, options, group="server-settings", **context)


async def imagine_refusal(fake, prompt="a cat", **context):
    """The ephemeral answer to an /imagine that starts no job."""
    record = await fake.dispatch(
        fake.slash_command("imagine", {"prompt": prompt, **context.pop("options", {})}, **context)
    )
    return text_of((await reply(fake, record)).json)


async def model_choices(fake, command="imagine", **context):
    record = await fake.dispatch(fake.autocomplete(command, {"prompt": "a cat", "model": ""}, "model", **context))
    answer = await fake.wait_for(lambda r: r.interaction_token == record.token)
    return [choice["value"] for choice in answer.json["data"]["choices"]]


async def last_audit(bot):
    row = await bot.services.database.fetch_one("SELECT * FROM audit_log ORDER BY id DESC LIMIT 1")
    return row["action"], row["actor_id"], json.loads(row["before"]), json.loads(row["after"])


async def test_show_lists_every_setting(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        await bot.services.server_settings.update(
            GUILD,
            actor_id=1,
            default_model="uni-1",
            allowed_channels=frozenset({CHANNEL}),
            banned_words=("gore", "blood"),
            nsfw_policy="block",
        )
        text = await settings_cmd(fake_discord, "show")
    assert "Default model\n`uni-1`" in text
    assert "Daily credits per member\nthe bot's default (25 credits)" in text
    assert "Enabled models\nall: `neta-lumina`" in text
    assert "NSFW results\nblock: results flagged NSFW are never shown" in text
    assert f"Generation allowed in\n<#{CHANNEL}>" in text
    assert "Moderator roles\nnone (Manage Server only)" in text
    assert "Banned words\n2 (see `/server-settings banned-words list`)" in text
    assert "Completion ping\non" in text


@pytest.mark.parametrize(
    ("subcommand", "group", "options"),
    [
        ("show", None, {}),
        ("default-model", None, {"model": "uni-1"}),
        ("nsfw", None, {"policy": "block"}),
        ("completion-ping", None, {"enabled": False}),
        ("disable", "models", {"model": "neta-lumina"}),
        ("clear", "channels", {}),
        ("add", "banned-words", {"words": "cat"}),
        ("list", "banned-words", {}),
    ],
)
async def test_a_member_without_the_permission_changes_nothing(fake_discord, settings, subcommand, group, options):
    async with bot_running(settings, fake_discord) as bot:
        before = await bot.services.server_settings.get(GUILD)
        text = await settings_cmd(
            fake_discord,
            subcommand,
            options,
            group=group,
            user_id=MEMBER,
            member_permissions=DEFAULT_MEMBER_PERMISSIONS,
        )
        bot.services.server_settings.forget(GUILD)
        assert await bot.services.server_settings.get(GUILD) == before
        assert await audit_rows(bot) == 0
    assert text.startswith("Only moderators can use this")


async def test_default_model_is_used_when_none_is_picked(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        choices = await model_choices(fake_discord, "server-settings", subcommand="default-model")
        text = await settings_cmd(fake_discord, "default-model", {"model": "kawaii-3d"})
        job = await imagine(fake_discord, bot, "a cat")
        unknown = await settings_cmd(fake_discord, "default-model", {"model": "dall-e"})
        cleared = await settings_cmd(fake_discord, "default-model", {})
        again = await imagine(fake_discord, bot, "a cat")
        assert await audit_rows(bot) == 2
    assert "kawaii-3d" in choices
    assert "Default model: the bot's default for each kind → **`kawaii-3d`**." in text
    assert job.model_key == "kawaii-3d"
    assert "There is no model `dall-e`" in unknown
    assert "`kawaii-3d` → **the bot's default for each kind**" in cleared
    assert again.model_key == "neta-lumina"


async def test_a_disabled_model_leaves_autocomplete_and_is_refused_without_charge(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        disabled = await settings_cmd(fake_discord, "disable", {"model": "neta-lumina"}, group="models")
        offered = await model_choices(fake_discord)
        refusal = await imagine_refusal(fake_discord, options={"model": "neta-lumina"})
        default_job = await imagine(fake_discord, bot, "a cat")  # the default moves to an enabled model
        assert await used_today(bot, GUILD, USER) == 1
        enable_choices = await model_choices(
            fake_discord, "server-settings", subcommand="enable", subcommand_group="models"
        )
        enabled = await settings_cmd(fake_discord, "enable", {"model": "neta-lumina"}, group="models")
        offered_again = await model_choices(fake_discord)
        only = await settings_cmd(fake_discord, "only", {"models": "uni-1, kawaii-3d"}, group="models")
        offered_only = await model_choices(fake_discord)
        every = await settings_cmd(fake_discord, "all", group="models")
        config = await bot.services.server_settings.get(GUILD)
        assert await audit_rows(bot) == 4
        in_dms = await model_choices(fake_discord, guild_id=None)
    assert "Enabled models: all: `neta-lumina`" in disabled
    assert "→ **`kawaii-3d`, `luma-video`, `uni-1`, `uni-1-max`**" in disabled
    assert "neta-lumina" not in offered
    assert "There is no model `neta-lumina` here" in refusal
    assert default_job.model_key != "neta-lumina"
    assert enable_choices == ["neta-lumina"]
    assert "→ **all: `neta-lumina`" in enabled
    assert "neta-lumina" in offered_again
    assert "→ **`kawaii-3d`, `uni-1`**" in only
    assert offered_only == ["uni-1", "kawaii-3d"]
    assert "→ **all:" in every
    assert config.enabled_models is None
    assert "neta-lumina" in in_dms  # DMs have their own (default) settings


async def test_generation_only_in_allowed_channels(fake_discord, settings):
    art = fake_discord.add_channel(GUILD, "art").id
    async with bot_running(settings, fake_discord) as bot:
        added = await settings_cmd(fake_discord, "add", {"channel": ChannelOption(art)}, group="channels")
        refusal = await imagine_refusal(fake_discord)  # in the default channel
        assert await used_today(bot, GUILD, USER) == 0
        job = await imagine(fake_discord, bot, "a cat", channel_id=art)
        removed = await settings_cmd(fake_discord, "remove", {"channel": ChannelOption(art)}, group="channels")
        not_listed = await settings_cmd(fake_discord, "remove", {"channel": ChannelOption(art)}, group="channels")
        await settings_cmd(fake_discord, "add", {"channel": ChannelOption(art)}, group="channels")
        cleared = await settings_cmd(fake_discord, "clear", group="channels")
        anywhere = await imagine(fake_discord, bot, "a cat")
        assert await audit_rows(bot) == 4
    assert f"Generating allowed in: every channel → **<#{art}>**." in added
    assert f"Generation is not allowed in this channel. Use one of: <#{art}>." in refusal
    assert job.status == "succeeded"
    assert f"<#{art}> → **every channel**" in removed
    assert "is not in the list" in not_listed
    assert f"<#{art}> → **every channel**" in cleared
    assert anywhere.status == "succeeded"


async def test_moderator_roles_give_and_take_the_moderator_commands(fake_discord, settings):
    role = int(fake_discord.add_role(GUILD, "helpers")["id"])
    as_helper = {"user_id": MEMBER, "roles": [role], "member_permissions": DEFAULT_MEMBER_PERMISSIONS}
    async with bot_running(settings, fake_discord) as bot:
        before = await settings_cmd(fake_discord, "show", **as_helper)
        added = await settings_cmd(fake_discord, "add", {"role": RoleOption(role)}, group="moderator-roles")
        allowed = await settings_cmd(fake_discord, "show", **as_helper)
        removed = await settings_cmd(fake_discord, "remove", {"role": RoleOption(role)}, group="moderator-roles")
        after = await settings_cmd(fake_discord, "show", **as_helper)
        assert await audit_rows(bot) == 2
    assert before.startswith("Only moderators")
    assert f"Moderator roles: none (Manage Server only) → **<@&{role}>**." in added
    assert "Settings of this server" in allowed
    assert f"<@&{role}> → **none (Manage Server only)**" in removed
    assert after.startswith("Only moderators")


async def test_banned_words_refuse_prompts_without_charge(fake_discord, settings):
    async with bot_running(settings, fake_discord) as bot:
        added = await settings_cmd(fake_discord, "add", {"words": "Gore, blood bath, gore"}, group="banned-words")
        again = await settings_cmd(fake_discord, "add", {"words": "GORE"}, group="banned-words")
        listed = await settings_cmd(fake_discord, "list", group="banned-words")
        refusal = await imagine_refusal(fake_discord, "so much GORE here")
        phrase = await imagine_refusal(fake_discord, "a Blood Bath scene")
        assert await used_today(bot, GUILD, USER) == 0
        assert await bot.services.database.fetch_value("SELECT COUNT(*) FROM jobs") == 0
        whole_word = await imagine(fake_discord, bot, "gorey? no: gorgeous")
        removed = await settings_cmd(fake_discord, "remove", {"words": "gore"}, group="banned-words")
        allowed = await imagine(fake_discord, bot, "gore")
        assert await audit_rows(bot) == 3
        action, _, before, after = await last_audit(bot)
    assert "Banned words: 0 → **2**." in added
    assert "Added: `gore`, `blood bath`" in added
    assert "Those words were already banned." in again
    assert "`gore`, `blood bath`" in listed
    assert "contains a word this server does not allow (“gore”)" in refusal
    assert "(“blood bath”)" in phrase
    assert whole_word.status == "succeeded"
    assert "Removed: `gore`" in removed
    assert allowed.status == "succeeded"
    assert (action, before, after) == (
        "server-settings",
        {"banned_words": ["blood bath", "gore"]},
        {"banned_words": ["blood bath"]},
    )


async def test_nsfw_block_withholds_and_spoiler_hides_a_flagged_result(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        blocked = await settings_cmd(fake_discord, "nsfw", {"policy": "block"})
        fakes.wavespeed.next_outcome(Outcome(nsfw=True))
        withheld = await imagine(fake_discord, bot, "a cat", nsfw_channel=True)
        withheld_message = fake_discord.messages[withheld.message_id]
        await settings_cmd(fake_discord, "nsfw", {"policy": "spoiler"})
        fakes.wavespeed.next_outcome(Outcome(nsfw=True))
        spoilered = await imagine(fake_discord, bot, "a cat")
        spoilered_message = fake_discord.messages[spoilered.message_id]
        default = await settings_cmd(fake_discord, "nsfw", {})
        assert await audit_rows(bot) == 3
    assert "NSFW results: the bot's default (age-restricted: " in blocked
    assert "→ **block: results flagged NSFW are never shown**." in blocked
    assert withheld.outputs[0].nsfw
    assert withheld_message["attachments"] == []
    assert "flagged as NSFW" in withheld_message["content"]
    assert [a["filename"].split(".")[0] for a in spoilered_message["attachments"]] == [f"SPOILER_job{spoilered.id}_0"]
    assert "→ **the bot's default" in default


async def test_completion_ping_can_be_turned_off(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, completion_ping_after_s=0.2)
    fakes.wavespeed.timing = Timing(queued_s=0, processing_s=0.4)
    async with bot_running(settings, fake_discord) as bot:
        off = await settings_cmd(fake_discord, "completion-ping", {"enabled": False})
        quiet = await imagine(fake_discord, bot, "a cat")
        await asyncio.sleep(0.2)
        quiet = await bot.services.job_records.get(quiet.id)
        on = await settings_cmd(fake_discord, "completion-ping", {"enabled": True})
        loud = await imagine(fake_discord, bot, "a cat")
        loud = await job_when(bot, loud.id, lambda j: j.ping_sent_at is not None)
        assert await audit_rows(bot) == 2
    assert "Completion ping: on → **off**." in off
    assert quiet is not None
    assert quiet.ping_sent_at is None
    assert "Completion ping: off → **on**." in on
    assert loud.ping_sent_at is not None


async def test_two_moderators_changing_lists_at_once_lose_nothing(fake_discord, settings):
    art, memes = fake_discord.add_channel(GUILD, "art").id, fake_discord.add_channel(GUILD, "memes").id
    helpers, mods = (int(fake_discord.add_role(GUILD, name)["id"]) for name in ("helpers", "mods"))
    moderators = [
        {"user_id": MEMBER, "member_permissions": MODERATOR_PERMISSIONS},
        {"user_id": MODERATOR_ID, "member_permissions": MODERATOR_PERMISSIONS},
    ]
    changes = [
        ("channels", "add", [{"channel": ChannelOption(art)}, {"channel": ChannelOption(memes)}]),
        ("moderator-roles", "add", [{"role": RoleOption(helpers)}, {"role": RoleOption(mods)}]),
        ("banned-words", "add", [{"words": "gore"}, {"words": "blood"}]),
        ("models", "disable", [{"model": "uni-1"}, {"model": "kawaii-3d"}]),
    ]
    async with bot_running(settings, fake_discord) as bot:
        await settings_cmd(fake_discord, "show")  # the settings are cached now
        for group, subcommand, options in changes:
            payloads = [
                fake_discord.slash_command(
                    "server-settings", options[n], subcommand=subcommand, subcommand_group=group, **moderators[n]
                )
                for n in range(2)
            ]
            records = await asyncio.gather(*(fake_discord.dispatch(payload) for payload in payloads))
            for record in records:
                assert "→" in text_of((await reply(fake_discord, record)).json)
        bot.services.server_settings.forget(GUILD)
        config = await bot.services.server_settings.get(GUILD)
        assert await audit_rows(bot) == 8
    assert config.allowed_channels == {art, memes}
    assert config.moderator_roles == {helpers, mods}
    assert sorted(config.banned_words) == ["blood", "gore"]
    assert config.enabled_models is not None
    assert not {"uni-1", "kawaii-3d"} & config.enabled_models
    assert "neta-lumina" in config.enabled_models


CATEGORY_CHANNEL, PUBLIC_THREAD = 4, 11


def thread_fields(parent_id: int) -> dict[str, object]:
    """What Discord sends as the interaction's channel for a public thread of ``parent_id``."""
    return {
        "type": PUBLIC_THREAD,
        "parent_id": str(parent_id),
        "owner_id": str(USER),
        "message_count": 0,
        "member_count": 1,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-11-21T10:00:00+00:00",
            "locked": False,
        },
    }


async def imagine_in(fake, channel_id: int, **channel_fields: object) -> str:
    """/imagine from ``channel_id``, whose interaction channel object also has ``channel_fields``; the answer."""
    payload = fake.slash_command("imagine", {"prompt": "a cat"}, channel_id=channel_id)
    payload["channel"].update(channel_fields)
    return text_of((await reply(fake, await fake.dispatch(payload))).json)


async def test_allowing_a_category_allows_its_channels_and_their_threads(fake_discord, settings):
    studio = fake_discord.add_channel(GUILD, "Studio", channel_type=CATEGORY_CHANNEL).id
    lobby = fake_discord.add_channel(GUILD, "Lobby", channel_type=CATEGORY_CHANNEL).id
    art, chat = fake_discord.add_channel(GUILD, "art").id, fake_discord.add_channel(GUILD, "chat").id
    art_thread = fake_discord.add_channel(GUILD, "cats", channel_type=PUBLIC_THREAD).id
    chat_thread = fake_discord.add_channel(GUILD, "dogs", channel_type=PUBLIC_THREAD).id
    async with bot_running(settings, fake_discord) as bot:
        added = await settings_cmd(fake_discord, "add", {"channel": ChannelOption(studio)}, group="channels")
        in_category = await imagine_in(fake_discord, art, parent_id=str(studio))
        elsewhere = await imagine_in(fake_discord, chat, parent_id=str(lobby))
        top_level = await imagine_in(fake_discord, chat)
        await settings_cmd(fake_discord, "clear", group="channels")
        await settings_cmd(fake_discord, "add", {"channel": ChannelOption(art)}, group="channels")
        in_thread = await imagine_in(fake_discord, art_thread, **thread_fields(art))
        in_other_thread = await imagine_in(fake_discord, chat_thread, **thread_fields(chat))
        started = await bot.services.database.fetch_all("SELECT channel_id FROM jobs ORDER BY id")
    assert f"→ **<#{studio}>**" in added
    assert "Job #1 · 1 credit" in in_category  # the job's message: the answer
    refusal = "Generation is not allowed in this channel. Use one of: <#{}>."
    assert refusal.format(studio) in elsewhere
    assert refusal.format(studio) in top_level
    assert "Job #2 · 1 credit" in in_thread
    assert refusal.format(art) in in_other_thread
    assert [row[0] for row in started] == [art, art_thread]
