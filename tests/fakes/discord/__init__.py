"""An in-process fake Discord (REST + gateway + CDN) for driving the real discord.py client in tests.

See ``server.FakeDiscord`` and discord.md §5. Typical use::

    async with FakeDiscord() as fake, running_bot(MyBot(), fake) as bot:
        payload = fake.slash_command("imagine", {"prompt": "a cat"})
        await fake.dispatch(payload)
        final = await fake.wait_for(lambda r: r.method == "PATCH" and bool(r.files))

or the ``fake_discord`` pytest fixture from ``tests.fakes.discord.fixtures``.
"""

from tests.fakes.discord.errors import ApiError
from tests.fakes.discord.gateway import FakeGateway, GatewaySession
from tests.fakes.discord.interactions import (
    ADMINISTRATOR,
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    MANAGE_GUILD,
    ChannelOption,
    RoleOption,
    UserOption,
)
from tests.fakes.discord.limits import Problem
from tests.fakes.discord.openapi import SpecIndex, load_spec
from tests.fakes.discord.recording import RecordedRequest, UploadedFile, WaitTimeout
from tests.fakes.discord.runner import running_bot
from tests.fakes.discord.server import DEFAULT_SPEC_PATH, FailRule, FakeDiscord
from tests.fakes.discord.state import FakeChannel, FakeGuild, InteractionRecord

__all__ = [
    "ADMINISTRATOR",
    "DEFAULT_APP_PERMISSIONS",
    "DEFAULT_MEMBER_PERMISSIONS",
    "DEFAULT_SPEC_PATH",
    "MANAGE_GUILD",
    "ApiError",
    "ChannelOption",
    "FailRule",
    "FakeChannel",
    "FakeDiscord",
    "FakeGateway",
    "FakeGuild",
    "GatewaySession",
    "InteractionRecord",
    "Problem",
    "RecordedRequest",
    "RoleOption",
    "SpecIndex",
    "UploadedFile",
    "UserOption",
    "WaitTimeout",
    "load_spec",
    "running_bot",
]
