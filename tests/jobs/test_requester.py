"""Where a request comes from: a channel's ancestors (its category; a thread's parent channel and, when the parent
is cached, that channel's category), and the allowed-channels rule that accepts the channel or any ancestor."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.jobs.requester import channel_ancestors
from bot.server_settings.config import ServerConfig

CATEGORY, CHANNEL, THREAD = 10, 20, 30


class Guild(SimpleNamespace):
    """The part of discord.Guild a channel or thread looks things up in: its channel cache."""

    def __init__(self) -> None:
        super().__init__(id=1, channels={})

    def get_channel(self, channel_id: int) -> Any:
        return self.channels.get(channel_id)


def text_channel(guild: Guild, channel_id: int, category_id: int | None) -> discord.TextChannel:
    data = {"id": channel_id, "type": 0, "name": "art", "position": 0, "parent_id": category_id, "nsfw": False}
    return discord.TextChannel(state=None, guild=guild, data=data)  # type: ignore[arg-type]


def thread(guild: Guild, parent_id: int) -> discord.Thread:
    data = {
        "id": THREAD,
        "type": 11,
        "name": "cats",
        "parent_id": parent_id,
        "owner_id": 5,
        "message_count": 0,
        "member_count": 1,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-11-21T10:00:00+00:00",
        },
    }
    return discord.Thread(guild=guild, state=None, data=data)  # type: ignore[arg-type]


def test_a_channels_ancestor_is_its_category():
    guild = Guild()
    assert channel_ancestors(text_channel(guild, CHANNEL, CATEGORY)) == (CATEGORY,)
    assert channel_ancestors(text_channel(guild, CHANNEL, None)) == ()


def test_a_threads_ancestors_are_its_parent_and_the_parents_category_when_cached():
    guild = Guild()
    assert channel_ancestors(thread(guild, CHANNEL)) == (CHANNEL,)  # the parent is not in the cache
    guild.channels[CHANNEL] = text_channel(guild, CHANNEL, CATEGORY)
    assert channel_ancestors(thread(guild, CHANNEL)) == (CHANNEL, CATEGORY)
    guild.channels[CHANNEL] = text_channel(guild, CHANNEL, None)
    assert channel_ancestors(thread(guild, CHANNEL)) == (CHANNEL,)


def test_dms_and_unknown_channels_have_no_ancestors():
    assert channel_ancestors(None) == ()
    assert channel_ancestors(discord.PartialMessageable(state=None, id=5)) == ()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("allowed", "where", "expected"),
    [
        (set(), (CHANNEL,), True),  # no list: everywhere
        ({CHANNEL}, (CHANNEL,), True),
        ({CATEGORY}, (CHANNEL, CATEGORY), True),
        ({CATEGORY}, (THREAD, CHANNEL, CATEGORY), True),  # a thread of a channel of an allowed category
        ({CHANNEL}, (THREAD, CHANNEL), True),
        ({CHANNEL}, (THREAD, 99, CATEGORY), False),
        ({CATEGORY}, (CHANNEL,), False),
        ({CATEGORY}, (None,), False),
        ({CATEGORY}, (None, None), False),
    ],
)
def test_a_channel_is_allowed_when_it_or_an_ancestor_is_listed(allowed, where, expected):
    config = ServerConfig(guild_id=1, allowed_channels=frozenset(allowed))
    assert config.allows_channel(*where) is expected
