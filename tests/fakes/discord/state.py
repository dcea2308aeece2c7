"""The fake's world: users, guilds, roles, channels, messages, synced commands, interactions and CDN files."""

from __future__ import annotations

import io
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from PIL import Image, UnidentifiedImageError

from tests.fakes.discord.monetization import Monetization
from tests.fakes.discord.snowflakes import SnowflakeFactory, iso, snowflake_time

DEFAULT_FILE_SIZE_LIMIT = 10 * 1024 * 1024
PREMIUM_FILE_SIZE_LIMITS = {0: DEFAULT_FILE_SIZE_LIMIT, 1: DEFAULT_FILE_SIZE_LIMIT, 2: 50 * 1024**2, 3: 100 * 1024**2}
TEXT_CHANNEL, DM_CHANNEL, GROUP_DM_CHANNEL = 0, 1, 3


@dataclass
class FakeGuild:
    """A guild. ``bot_member=False`` models a user-installed app: the bot user is not in it."""

    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    bot_member: bool = True
    locale: str = "en-US"
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def filesize_limit(self) -> int:
        return PREMIUM_FILE_SIZE_LIMITS.get(self.premium_tier, DEFAULT_FILE_SIZE_LIMIT)

    def partial(self) -> dict[str, Any]:
        """The partial guild Discord puts in interactions."""
        return {"id": str(self.id), "locale": self.locale, "features": []}


@dataclass
class FakeChannel:
    """A channel. ``bot_access=False`` makes bot-token channel routes answer 403 50001 (Missing Access)."""

    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    nsfw: bool = False
    recipient_ids: list[int] = field(default_factory=list)
    bot_access: bool = True

    def to_dict(self, users: dict[int, dict[str, Any]]) -> dict[str, Any]:
        if self.guild_id is None:
            return {
                "id": str(self.id),
                "type": self.type,
                "last_message_id": None,
                "flags": 0,
                "recipients": [users[uid] for uid in self.recipient_ids if uid in users],
                **(
                    {"name": self.name, "owner_id": str(self.recipient_ids[0])} if self.type == GROUP_DM_CHANNEL else {}
                ),
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": self.nsfw,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass
class CdnFile:
    data: bytes
    content_type: str


@dataclass
class InteractionRecord:
    """A dispatched interaction: its token's lifetime and the messages created through it."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    channel_id: int
    guild_id: int | None
    attachment_size_limit: int
    component_message_id: int | None = None
    callback_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    expired: bool = False

    @property
    def created_at(self) -> datetime:
        return snowflake_time(self.id)

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(minutes=15)

    def owns(self, message_id: int) -> bool:
        return message_id == self.original_message_id or message_id in self.followup_ids


def user_object(user_id: int, username: str, *, global_name: str | None = None, bot: bool = False) -> dict[str, Any]:
    """A user object with every key Discord's ``UserResponse`` requires."""
    user: dict[str, Any] = {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": None,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }
    if bot:
        user["bot"] = True
    return user


def sniff_content_type(filename: str, data: bytes) -> tuple[str, tuple[int, int] | None]:
    """Content type (by extension, else by Pillow) and the pixel size when ``data`` is an image."""
    guessed = mimetypes.guess_type(filename)[0]
    try:
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
            mime = Image.MIME.get(image.format or "", None)
    except (UnidentifiedImageError, OSError, ValueError):
        return guessed or "application/octet-stream", None
    return guessed or mime or "application/octet-stream", size


class FakeState:
    """Everything the REST routes and payload builders read and change."""

    def __init__(self, *, application_id: int, bot_user_id: int, clock: Callable[[], datetime]) -> None:
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.clock = clock
        self.snowflakes = SnowflakeFactory()
        self.root_url = ""
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.expired_tokens: set[str] = set()
        self.nonces: dict[tuple[int, str], tuple[int, float]] = {}  # (channel, nonce) -> (message id, when)
        self.cdn: dict[int, CdnFile] = {}
        self.bot_user = user_object(bot_user_id, "GenBot", bot=True)
        self.users[bot_user_id] = self.bot_user
        self.monetization = Monetization(application_id, self.new_id)

    def new_id(self, at: datetime | None = None) -> int:
        return self.snowflakes.new(at or self.clock())

    # ------------------------------------------------------------------------------------------ entities
    def add_user(
        self, username: str, *, user_id: int | None = None, global_name: str | None = None, bot: bool = False
    ) -> dict[str, Any]:
        user_id = user_id or self.new_id()
        user = user_object(user_id, username, global_name=global_name, bot=bot)
        self.users[user_id] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        owner_id: int | None = None,
        premium_tier: int = 0,
        bot_member: bool = True,
    ) -> FakeGuild:
        guild_id = guild_id or self.new_id()
        guild = FakeGuild(guild_id, name, owner_id or self.bot_user_id, premium_tier, bot_member)
        guild.roles[guild_id] = self.role_object(guild_id, "@everyone", position=0)
        self.guilds[guild_id] = guild
        return guild

    @staticmethod
    def role_object(role_id: int, name: str, *, permissions: int = 0, position: int = 1) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def add_role(self, guild_id: int, name: str, *, role_id: int | None = None, permissions: int = 0) -> dict[str, Any]:
        role_id = role_id or self.new_id()
        role = self.role_object(role_id, name, permissions=permissions)
        self.guilds[guild_id].roles[role_id] = role
        return role

    def add_channel(
        self,
        guild_id: int | None,
        name: str | None = None,
        *,
        channel_id: int | None = None,
        channel_type: int = TEXT_CHANNEL,
        nsfw: bool = False,
        recipient_ids: list[int] | None = None,
        bot_access: bool = True,
    ) -> FakeChannel:
        channel_id = channel_id or self.new_id()
        channel = FakeChannel(channel_id, channel_type, name, guild_id, nsfw, list(recipient_ids or []), bot_access)
        self.channels[channel_id] = channel
        return channel

    def dm_channel(self, user_id: int) -> FakeChannel:
        """The bot's DM channel with ``user_id`` (created on first use)."""
        for channel in self.channels.values():
            if channel.type == DM_CHANNEL and channel.recipient_ids == [user_id] and channel.bot_access:
                return channel
        return self.add_channel(None, channel_type=DM_CHANNEL, recipient_ids=[user_id])

    def channel_dict(self, channel_id: int) -> dict[str, Any]:
        return self.channels[channel_id].to_dict(self.users)

    def filesize_limit_for(self, channel_id: int) -> int:
        channel = self.channels.get(channel_id)
        guild = self.guilds.get(channel.guild_id) if channel and channel.guild_id else None
        return guild.filesize_limit if guild else DEFAULT_FILE_SIZE_LIMIT

    # ------------------------------------------------------------------------------------------ CDN
    def store_file(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        folder: str,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """Serve ``data`` from the CDN and return the attachment object describing it."""
        attachment_id = self.new_id()
        sniffed, size = sniff_content_type(filename, data)
        content_type = content_type or sniffed
        self.cdn[attachment_id] = CdnFile(data, content_type)
        expires = int((self.clock() + timedelta(hours=24)).timestamp())
        signature = f"?ex={expires:x}&is={int(self.clock().timestamp()):x}&hm={attachment_id:x}&"
        path = f"{folder}/{attachment_id}/{filename}{signature}"
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": f"{self.root_url}/cdn/{path}",
            "proxy_url": f"{self.root_url}/media/{path}",
            "content_type": content_type,
        }
        if size is not None:
            attachment["width"], attachment["height"] = size
        if ephemeral:
            attachment["ephemeral"] = True
        return attachment

    # ------------------------------------------------------------------------------------------ interactions
    def register_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        message = payload.get("message") or {}
        record = InteractionRecord(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            payload=payload,
            channel_id=int(payload["channel"]["id"]),
            guild_id=int(payload["guild_id"]) if payload.get("guild_id") else None,
            attachment_size_limit=payload["attachment_size_limit"],
            component_message_id=int(message["id"]) if message.get("id") else None,
            expired=payload["token"] in self.expired_tokens,
        )
        self.interactions[record.token] = record
        return record

    def interaction_by_id(self, interaction_id: int) -> InteractionRecord | None:
        for record in self.interactions.values():
            if record.id == interaction_id:
                return record
        return None

    def now_iso(self) -> str:
        return iso(self.clock())
