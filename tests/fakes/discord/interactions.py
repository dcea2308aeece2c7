"""INTERACTION_CREATE payloads exactly as Discord sends them over the gateway (discord.md §5.3).

Keys discord.py requires (a missing one raises inside its parser and stops the client): ``id, application_id,
type, token, version, attachment_size_limit, data``; guild invocations need ``guild_id``, ``channel{id,type}``
and ``member{user, roles, flags, permissions, joined_at}``; DMs need ``user`` and ``channel{id, type: 1}``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from typing_extensions import Unpack

from tests.fakes.discord.state import (
    DEFAULT_FILE_SIZE_LIMIT,
    DM_CHANNEL,
    GROUP_DM_CHANNEL,
    TEXT_CHANNEL,
    FakeState,
)

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
GUILD_CONTEXT, BOT_DM_CONTEXT, PRIVATE_CHANNEL_CONTEXT = 0, 1, 2
# VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY, ADD_REACTIONS,
# USE_EXTERNAL_EMOJIS, USE_APPLICATION_COMMANDS: a plain member without moderator rights.
DEFAULT_MEMBER_PERMISSIONS = (
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 18) | (1 << 31)
)
# What a bot with a usual invite has in a channel, plus MANAGE_MESSAGES (1 << 13).
DEFAULT_APP_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS | (1 << 13)
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3


@dataclass(frozen=True)
class UserOption:
    """An option value of type USER (6); the user must exist in the fake (``add_user``)."""

    id: int


@dataclass(frozen=True)
class RoleOption:
    """An option value of type ROLE (8); the role must exist in the invoking guild (``add_role``)."""

    id: int


@dataclass(frozen=True)
class ChannelOption:
    """An option value of type CHANNEL (7); the channel must exist in the fake (``add_channel``)."""

    id: int


@dataclass(frozen=True)
class Invocation:
    """Who invokes where. ``guild_id=None`` is a DM with the bot (context 1) unless ``context=2`` is given."""

    user_id: int
    guild_id: int | None
    channel_id: int | None = None
    member_permissions: int = DEFAULT_MEMBER_PERMISSIONS
    roles: Sequence[int] = ()
    created_at: datetime | None = None
    context: int | None = None
    channel_type: int | None = None
    nsfw_channel: bool = False
    attachment_size_limit: int = DEFAULT_FILE_SIZE_LIMIT
    locale: str = "en-US"
    app_permissions: int = DEFAULT_APP_PERMISSIONS


class InvocationKwargs(TypedDict, total=False):
    """Keywords every payload builder accepts; see ``Invocation``. Leaving ``guild_id`` out means the guild of
    ``channel_id`` (or the default guild); ``guild_id=None`` means a DM."""

    user_id: int
    guild_id: int | None
    channel_id: int
    member_permissions: int
    roles: Sequence[int]
    created_at: datetime
    context: int
    channel_type: int
    nsfw_channel: bool
    attachment_size_limit: int
    locale: str
    app_permissions: int


def is_attachment(value: Any) -> bool:
    return isinstance(value, Mapping) and "filename" in value and "url" in value and "id" in value


class InteractionBuilder:
    """Builds interaction payloads against the fake's state (users, guilds, channels, messages, commands)."""

    def __init__(self, state: FakeState, *, default_user_id: int, default_guild_id: int) -> None:
        self.state = state
        self.default_user_id = default_user_id
        self.default_guild_id = default_guild_id
        self._unsynced_command_ids: dict[str, int] = {}

    # ----------------------------------------------------------------------------------------- invocations
    def invocation(self, **kwargs: Unpack[InvocationKwargs]) -> Invocation:
        """Resolve the keywords every payload builder accepts against the fake's defaults."""
        channel_id = kwargs.get("channel_id")
        if "guild_id" in kwargs:
            guild_id = kwargs["guild_id"]
        else:
            channel = self.state.channels.get(channel_id) if channel_id else None
            guild_id = channel.guild_id if channel else self.default_guild_id
        return Invocation(
            user_id=kwargs.get("user_id") or self.default_user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            member_permissions=kwargs.get("member_permissions", DEFAULT_MEMBER_PERMISSIONS),
            roles=tuple(kwargs.get("roles", ())),
            created_at=kwargs.get("created_at"),
            context=kwargs.get("context"),
            channel_type=kwargs.get("channel_type"),
            nsfw_channel=kwargs.get("nsfw_channel", False),
            attachment_size_limit=kwargs.get("attachment_size_limit", DEFAULT_FILE_SIZE_LIMIT),
            locale=kwargs.get("locale", "en-US"),
            app_permissions=kwargs.get("app_permissions", DEFAULT_APP_PERMISSIONS),
        )

    def envelope(self, kind: int, data: dict[str, Any], how: Invocation) -> dict[str, Any]:
        """The parts every interaction shares: ids, token, limits, and where/who it comes from."""
        interaction_id = self.state.new_id(how.created_at)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.state.application_id),
            "type": kind,
            "token": f"aW50ZXJhY3Rpb246{interaction_id}_{secrets.token_urlsafe(24)}",
            "version": 1,
            "locale": how.locale,
            "app_permissions": str(how.app_permissions),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": how.attachment_size_limit,
            "data": data,
        }
        if how.guild_id is not None:
            payload.update(self._guild_part(how))
        else:
            payload.update(self._private_part(how))
        return payload

    def _guild_part(self, how: Invocation) -> dict[str, Any]:
        assert how.guild_id is not None
        state = self.state
        guild = state.guilds.get(how.guild_id) or state.add_guild("Guild", guild_id=how.guild_id)
        channel_id = how.channel_id or self._default_channel(how.guild_id)
        channel = state.channels.get(channel_id) or state.add_channel(
            how.guild_id, "general", channel_id=channel_id, channel_type=how.channel_type or TEXT_CHANNEL
        )
        if how.nsfw_channel:
            channel.nsfw = True
        user = self._user(how.user_id)
        owners = {"0": str(guild.id)} if guild.bot_member else {"1": str(how.user_id)}
        return {
            "guild_id": str(guild.id),
            "guild": guild.partial(),
            "guild_locale": guild.locale,
            "channel_id": str(channel.id),
            "channel": state.channel_dict(channel.id),
            "member": self._member(user, how),
            "authorizing_integration_owners": owners,
            "context": GUILD_CONTEXT if how.context is None else how.context,
        }

    def _private_part(self, how: Invocation) -> dict[str, Any]:
        state = self.state
        user = self._user(how.user_id)
        context = BOT_DM_CONTEXT if how.context is None else how.context
        if how.channel_id and how.channel_id in state.channels:
            channel = state.channels[how.channel_id]
        elif context == BOT_DM_CONTEXT:
            channel = state.dm_channel(how.user_id)
        else:
            other = state.add_user("someone-else")
            recipients = [how.user_id, int(other["id"])]
            channel = state.add_channel(
                None,
                "group" if how.channel_type == GROUP_DM_CHANNEL else None,
                channel_id=how.channel_id,
                channel_type=how.channel_type or DM_CHANNEL,
                recipient_ids=recipients,
                bot_access=False,
            )
        owners = {"0": "0"} if context == BOT_DM_CONTEXT else {"1": str(how.user_id)}
        return {
            "channel_id": str(channel.id),
            "channel": state.channel_dict(channel.id),
            "user": user,
            "authorizing_integration_owners": owners,
            "context": context,
        }

    def _default_channel(self, guild_id: int) -> int:
        for channel in self.state.channels.values():
            if channel.guild_id == guild_id:
                return channel.id
        return self.state.add_channel(guild_id, "general").id

    def _user(self, user_id: int) -> dict[str, Any]:
        return self.state.users.get(user_id) or self.state.add_user(f"user{user_id}", user_id=user_id)

    def _member(self, user: dict[str, Any], how: Invocation, *, with_user: bool = True) -> dict[str, Any]:
        member: dict[str, Any] = {
            "roles": [str(r) for r in how.roles],
            "joined_at": "2025-01-01T00:00:00.000000+00:00",
            "flags": 0,
            "permissions": str(how.member_permissions),
            "nick": None,
            "avatar": None,
            "banner": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = user
        return member

    # ---------------------------------------------------------------------------------------------- data
    def command_data(
        self,
        name: str,
        options: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        how: Invocation,
        *,
        attachments: Sequence[Mapping[str, Any]] = (),
        subcommand: str | None = None,
        subcommand_group: str | None = None,
        focused: str | None = None,
    ) -> dict[str, Any]:
        """``data`` of an APPLICATION_COMMAND / AUTOCOMPLETE interaction, with typed options and ``resolved``."""
        resolved: dict[str, dict[str, Any]] = {}
        for attachment in attachments:
            resolved.setdefault("attachments", {})[str(attachment["id"])] = dict(attachment)
        if isinstance(options, Mapping):
            typed = [self._typed_option(k, v, how, resolved, focused=k == focused) for k, v in options.items()]
        else:
            typed = [dict(option) for option in options]
        if focused is not None and not any(o.get("focused") for o in typed):
            typed.append({"name": focused, "type": 3, "value": "", "focused": True})
        if subcommand is not None:
            typed = [{"name": subcommand, "type": 1, "options": typed}]
        if subcommand_group is not None:
            typed = [{"name": subcommand_group, "type": 2, "options": typed}]
        command_id, command_guild_id = self._command_id(name, how.guild_id)
        data: dict[str, Any] = {"id": str(command_id), "name": name, "type": 1, "options": typed}
        if resolved:
            data["resolved"] = resolved
        if command_guild_id is not None:
            data["guild_id"] = str(command_guild_id)
        return data

    def _command_id(self, name: str, guild_id: int | None) -> tuple[int, int | None]:
        """The synced command's id (and its guild for guild commands); a stable made-up id if never synced."""
        for scope in (guild_id, None) if guild_id is not None else (None,):
            for command in self.state.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return int(command["id"]), scope
        if name not in self._unsynced_command_ids:
            self._unsynced_command_ids[name] = self.state.new_id()
        return self._unsynced_command_ids[name], None

    def _typed_option(
        self, name: str, value: Any, how: Invocation, resolved: dict[str, dict[str, Any]], *, focused: bool
    ) -> dict[str, Any]:
        option: dict[str, Any] = {"name": name}
        if focused:
            option.update(type=3 if isinstance(value, str) else self._option_type(value), value=str(value))
            option["focused"] = True
            return option
        if is_attachment(value):
            resolved.setdefault("attachments", {})[str(value["id"])] = dict(value)
            return {**option, "type": 11, "value": str(value["id"])}
        if isinstance(value, UserOption):
            user = self._user(value.id)
            resolved.setdefault("users", {})[str(value.id)] = user
            if how.guild_id is not None:
                member = self._member(user, self.invocation(user_id=value.id, guild_id=how.guild_id), with_user=False)
                resolved.setdefault("members", {})[str(value.id)] = member
            return {**option, "type": 6, "value": str(value.id)}
        if isinstance(value, RoleOption):
            assert how.guild_id is not None, "role options need a guild"
            resolved.setdefault("roles", {})[str(value.id)] = self.state.guilds[how.guild_id].roles[value.id]
            return {**option, "type": 8, "value": str(value.id)}
        if isinstance(value, ChannelOption):
            channel = self.state.channels[value.id]
            partial = {"id": str(channel.id), "name": channel.name, "type": channel.type, "permissions": "0"}
            resolved.setdefault("channels", {})[str(value.id)] = partial
            return {**option, "type": 7, "value": str(value.id)}
        return {**option, "type": self._option_type(value), "value": value}

    @staticmethod
    def _option_type(value: Any) -> int:
        if isinstance(value, bool):
            return 5
        if isinstance(value, int):
            return 4
        if isinstance(value, float):
            return 10
        if isinstance(value, str):
            return 3
        raise TypeError(f"cannot infer an option type for {value!r}; pass a raw list of option dicts")

    def component_data(self, custom_id: str, component_type: int, values: Sequence[str] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        return data

    @staticmethod
    def modal_data(custom_id: str, values: Mapping[str, str]) -> dict[str, Any]:
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in values.items()]
        return {"custom_id": custom_id, "components": rows}

    def message_for(self, message_id: int) -> dict[str, Any]:
        try:
            return self.state.messages[message_id]
        except KeyError:
            known = ", ".join(str(m) for m in self.state.messages) or "none"
            raise KeyError(f"message {message_id} is not in the fake (known: {known})") from None
