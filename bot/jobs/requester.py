"""Who asked for a job, from where, and how the bot can reach them later: taken from the interaction once."""

from __future__ import annotations

from dataclasses import dataclass, field

import discord

from bot.credits.wallets import wallet_for
from bot.server_settings.config import ServerConfig
from bot.settings import Settings

INTERACTION_TOKEN_LIFETIME_S = 15 * 60


@dataclass(frozen=True, slots=True)
class Requester:
    user_id: int
    guild_id: int  # 0 in DMs
    channel_id: int | None
    ancestor_ids: tuple[int, ...]  # where the channel is, nearest first: see channel_ancestors
    role_ids: frozenset[int]
    channel_nsfw: bool
    application_id: int
    interaction_id: int
    token: str = field(repr=False)
    token_expires_at: float
    context: int | None
    guild_installed: bool
    attachment_size_limit: int
    manage_guild: bool = False  # Manage Server or Administrator
    locale: str | None = None  # the user's Discord locale (bot.i18n): texts addressed to them
    guild_locale: str | None = None  # the server's: texts posted publicly there

    @classmethod
    def from_interaction(cls, interaction: discord.Interaction) -> Requester:
        channel = interaction.channel
        nsfw = bool(getattr(channel, "nsfw", False))
        if not nsfw and isinstance(channel, discord.Thread) and channel.parent is not None:
            nsfw = bool(getattr(channel.parent, "nsfw", False))
        created = discord.utils.snowflake_time(interaction.id).timestamp()
        return cls(
            user_id=interaction.user.id,
            guild_id=interaction.guild_id or 0,
            channel_id=interaction.channel_id,
            ancestor_ids=channel_ancestors(channel),
            role_ids=member_role_ids(interaction.user),
            channel_nsfw=nsfw,
            application_id=interaction.application_id,
            interaction_id=interaction.id,
            token=interaction.token,
            token_expires_at=created + INTERACTION_TOKEN_LIFETIME_S,
            context=_context_type(interaction),
            guild_installed=guild_installed(interaction),
            attachment_size_limit=interaction.filesize_limit,
            manage_guild=interaction.permissions.manage_guild or interaction.permissions.administrator,
            locale=str(getattr(interaction.locale, "value", interaction.locale)),
            guild_locale=str(getattr(interaction.guild_locale, "value", "")) or None,
        )

    @property
    def wallet_id(self) -> int:
        """The credit scope this request draws on: the server's, or the personal wallet (``bot/credits/wallets``)."""
        return wallet_for(self.guild_id, guild_installed=self.guild_installed)

    def is_moderator(self, config: ServerConfig, settings: Settings) -> bool:
        """Manage Server, a moderator role of this server, or an operator from the settings."""
        if self.user_id in settings.operator_user_ids:
            return True
        if not self.guild_id:
            return False
        return self.manage_guild or bool(self.role_ids & config.moderator_roles)


def guild_installed(interaction: discord.Interaction) -> bool:
    """Outside servers, or in a server that installed the bot itself (not only the user's own install)."""
    return interaction.guild_id is None or interaction.is_guild_integration()


def wallet_of(interaction: discord.Interaction) -> int:
    """The credit scope an interaction's jobs draw on."""
    return wallet_for(interaction.guild_id or 0, guild_installed=guild_installed(interaction))


def channel_ancestors(channel: object) -> tuple[int, ...]:
    """The ids of what contains a channel, nearest first: a thread's parent channel, then that channel's category
    when the parent is in the cache; a channel's category. Discord sends a thread's parent id with the interaction,
    but not the parent's category, so without a guild cache a thread's ancestors are its parent channel alone."""
    if isinstance(channel, discord.Thread):
        parent_category = getattr(channel.parent, "category_id", None)
        return (channel.parent_id, parent_category) if parent_category else (channel.parent_id,)
    category_id = getattr(channel, "category_id", None)  # guild channels; None at the top level and in DMs
    return (category_id,) if isinstance(category_id, int) else ()


def member_role_ids(user: discord.abc.User) -> frozenset[int]:
    """The role ids Discord sent with the member. ``Member.roles`` lists only roles found in the guild cache, which
    is empty before GUILD_CREATE and in servers where the bot is only user-installed; the ids are always there."""
    raw = getattr(user, "_roles", None)
    return frozenset(int(role_id) for role_id in raw) if raw is not None else frozenset()


def _context_type(interaction: discord.Interaction) -> int | None:
    """Discord's interaction context type: 0 a server, 1 the bot's DM, 2 another DM or group DM."""
    context = interaction.context
    if context.guild:
        return 0
    if context.dm_channel:
        return 1
    if context.private_channel:
        return 2
    return None
