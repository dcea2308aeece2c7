"""/server-settings: a server's default model, enabled models, NSFW policy, channels where generation is allowed,
moderator roles, banned words and the completion ping.

The same permission model as /quota-admin: hidden by default from members without Manage Server, and checked again
for every subcommand by the group's ``interaction_check``. Every change goes through ``ServerSettingsService.update``,
which audits it in the same transaction; the job engine reads these settings for every job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import discord
from discord import app_commands

from bot.app import Bot
from bot.errors import InvalidInput
from bot.i18n import msg, render, tr
from bot.render.moderation import change_text
from bot.render.server_settings import (
    NSFW_WORDS,
    banned_words_text,
    channels_text,
    default_model_text,
    models_text,
    nsfw_text,
    roles_text,
    settings_embed,
)
from bot.server_settings.config import ServerConfig
from cogs._moderator import ModeratorGroup

MAX_CHANNELS = 100
MAX_MODERATOR_ROLES = 25
MAX_BANNED_WORDS = 500
MAX_WORD_LENGTH = 60

T = TypeVar("T")
# A setting's new value, or a function of its stored value (run inside the update's transaction).
Change: TypeAlias = T | Callable[[T], T]


class PlaceOption(app_commands.Transformer):
    """A channel option for the places where members generate: text, announcement, forum, voice and stage channels,
    and categories (allowing a category allows its channels). The resolved channel from the interaction is used as
    is, so it works without the guild in the cache."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        kinds = discord.ChannelType
        return [kinds.text, kinds.news, kinds.forum, kinds.voice, kinds.stage_voice, kinds.category]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> app_commands.AppCommandChannel:
        if not isinstance(value, app_commands.AppCommandChannel):
            raise app_commands.TransformerError(value, self.type, self)
        return value


Place = app_commands.Transform[app_commands.AppCommandChannel, PlaceOption]


def _split(text: str) -> list[str]:
    """Items of a comma-separated list, trimmed, in order, without repeats (case-insensitive)."""
    seen: dict[str, str] = {}
    for item in re.split(r"[,\n]", text):
        item = " ".join(item.split())
        if item and item.lower() not in seen:
            seen[item.lower()] = item
    return list(seen.values())


@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
@app_commands.allowed_installs(guilds=True, users=False)
class ServerSettings(ModeratorGroup, name="server-settings", description="Moderators: this server's bot settings"):
    models = app_commands.Group(name="models", description="Which models members can use here")
    channels = app_commands.Group(name="channels", description="Channels where generating is allowed")
    moderator_roles = app_commands.Group(name="moderator-roles", description="Roles that can use moderator commands")
    banned_words = app_commands.Group(name="banned-words", description="Words refused in prompts")

    # ------------------------------------------------------------------ helpers
    async def _config(self, interaction: discord.Interaction[Bot]) -> ServerConfig:
        return await self.bot.services.server_settings.get(self.guild_id(interaction))

    async def _update(self, interaction: discord.Interaction[Bot], **changes: Any) -> tuple[ServerConfig, ServerConfig]:
        return await self.bot.services.server_settings.update(
            self.guild_id(interaction), actor_id=interaction.user.id, **changes
        )

    async def _reply(self, interaction: discord.Interaction[Bot], *lines: str) -> None:
        text = "\n".join(render(line, interaction.locale) for line in lines)
        await interaction.edit_original_response(content=text[:2000])

    def _model_key(self, model: str, config: ServerConfig | None = None) -> str:
        catalogue = self.bot.services.catalogue
        key = model.strip()
        if catalogue.get(key) is None:
            offered = ", ".join(f"`{m.key}`" for m in catalogue) or msg("none")
            shown = discord.utils.escape_markdown(key)
            raise InvalidInput(
                msg("There is no model `{model}`. The models are: {models}.", model=shown, models=offered)
            )
        if config is not None and not config.allows_model(key):
            raise InvalidInput(
                msg("`{model}` is not enabled here. Enable it first with `/server-settings models enable`.", model=key)
            )
        return key

    def _all_keys(self) -> frozenset[str]:
        return frozenset(m.key for m in self.bot.services.catalogue)

    async def _model_choices(
        self, interaction: discord.Interaction[Bot], current: str, *, enabled: bool
    ) -> list[app_commands.Choice[str]]:
        config = await self.bot.services.server_settings.get(interaction.guild_id)
        needle = current.lower().strip()
        return [
            app_commands.Choice(name=f"{m.key}: {m.title}"[:100], value=m.key)
            for m in self.bot.services.catalogue
            if config.allows_model(m.key) == enabled and (needle in m.key or needle in m.title.lower())
        ][:25]

    # ------------------------------------------------------------------ show, default model, NSFW, ping
    @app_commands.command(name="show", description="Every setting of the bot in this server")
    async def show(self, interaction: discord.Interaction[Bot]) -> None:
        services = self.bot.services
        embed = settings_embed(
            await self._config(interaction),
            catalogue=services.catalogue,
            settings=services.settings,
            locale=interaction.locale,
        )
        await interaction.edit_original_response(embed=embed)

    @app_commands.command(name="default-model", description="The model used when a member picks none")
    @app_commands.describe(model="An enabled model; leave out to use the bot's default")
    async def default_model(self, interaction: discord.Interaction[Bot], model: str | None = None) -> None:
        key = self._model_key(model, await self._config(interaction)) if model else None
        before, after = await self._update(interaction, default_model=key)
        await self._reply(
            interaction,
            change_text(
                msg("Default model"), default_model_text(before.default_model), default_model_text(after.default_model)
            ),
        )

    @default_model.autocomplete("model")
    async def _default_model_choices(
        self, interaction: discord.Interaction[Bot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._model_choices(interaction, current, enabled=True)

    @app_commands.command(name="nsfw", description="What happens to results flagged NSFW")
    @app_commands.describe(policy="Leave out to use the bot's default")
    @app_commands.choices(
        policy=[app_commands.Choice(name=text[:100], value=value) for value, text in NSFW_WORDS.items()]
    )
    async def nsfw_policy(self, interaction: discord.Interaction[Bot], policy: str | None = None) -> None:
        settings = self.bot.services.settings
        before, after = await self._update(interaction, nsfw_policy=policy)
        await self._reply(
            interaction,
            change_text(
                msg("NSFW results"), nsfw_text(before.nsfw_policy, settings), nsfw_text(after.nsfw_policy, settings)
            ),
        )

    @app_commands.command(name="completion-ping", description="Mention members when their long job is done")
    @app_commands.describe(enabled="On: mention the member in a short follow-up when a long job finishes")
    async def completion_ping(self, interaction: discord.Interaction[Bot], enabled: bool) -> None:
        before, after = await self._update(interaction, completion_ping=enabled)
        words = {True: msg("on"), False: msg("off")}
        await self._reply(
            interaction,
            change_text(msg("Completion ping"), words[before.completion_ping], words[after.completion_ping]),
        )

    # ------------------------------------------------------------------ models
    # Additions and removals are functions of the stored value, applied in the update's transaction: computed from
    # the cached settings instead, two moderators changing a list at once would lose one change.
    @models.command(name="enable", description="Let members use a model here")
    @app_commands.describe(model="The model")
    async def models_enable(self, interaction: discord.Interaction[Bot], model: str) -> None:
        key = self._model_key(model)
        every = self._all_keys()

        def enable(enabled: frozenset[str] | None) -> frozenset[str] | None:
            if enabled is None or enabled | {key} >= every:
                return None  # every model: also the ones configured later
            return enabled | {key}

        await self._models_changed(interaction, enable)

    @models_enable.autocomplete("model")
    async def _enable_choices(
        self, interaction: discord.Interaction[Bot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._model_choices(interaction, current, enabled=False)

    @models.command(name="disable", description="Stop members using a model here")
    @app_commands.describe(model="The model")
    async def models_disable(self, interaction: discord.Interaction[Bot], model: str) -> None:
        key = self._model_key(model)
        every = self._all_keys()

        def disable(enabled: frozenset[str] | None) -> frozenset[str] | None:
            return (every if enabled is None else enabled) - {key}

        await self._models_changed(interaction, disable)

    @models_disable.autocomplete("model")
    async def _disable_choices(
        self, interaction: discord.Interaction[Bot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._model_choices(interaction, current, enabled=True)

    @models.command(name="only", description="Enable exactly these models (comma-separated)")
    @app_commands.describe(models="e.g. neta-lumina, uni-1")
    async def models_only(self, interaction: discord.Interaction[Bot], models: app_commands.Range[str, 1, 500]) -> None:
        keys = frozenset(self._model_key(item) for item in _split(models))
        await self._models_changed(interaction, keys)

    @models.command(name="all", description="Enable every model the bot offers")
    async def models_all(self, interaction: discord.Interaction[Bot]) -> None:
        await self._models_changed(interaction, None)

    async def _models_changed(
        self, interaction: discord.Interaction[Bot], enabled: Change[frozenset[str] | None]
    ) -> None:
        catalogue = self.bot.services.catalogue
        before, after = await self._update(interaction, enabled_models=enabled)
        lines = [
            change_text(
                msg("Enabled models"),
                models_text(before.enabled_models, catalogue),
                models_text(after.enabled_models, catalogue),
            )
        ]
        if after.enabled_models is not None and not after.enabled_models:
            lines.append(msg("⚠️ No model is enabled: members cannot generate here until you enable one."))
        if after.default_model and not after.allows_model(after.default_model):
            default = after.default_model
            lines.append(
                msg("The default model `{model}` is disabled, so another enabled model is used.", model=default)
            )
        await self._reply(interaction, *lines)

    # ------------------------------------------------------------------ channels
    @channels.command(name="add", description="Allow generating in a channel (or every channel of a category)")
    @app_commands.describe(channel="The channel or category")
    async def channels_add(self, interaction: discord.Interaction[Bot], channel: Place) -> None:
        def add(channels: frozenset[int]) -> frozenset[int]:
            if len(channels | {channel.id}) > MAX_CHANNELS:
                raise InvalidInput(msg("At most {count} channels can be listed. Remove one first.", count=MAX_CHANNELS))
            return channels | {channel.id}

        await self._channels_changed(interaction, add)

    @channels.command(name="remove", description="Stop allowing generating in a channel")
    @app_commands.describe(channel="The channel or category")
    async def channels_remove(self, interaction: discord.Interaction[Bot], channel: Place) -> None:
        def remove(channels: frozenset[int]) -> frozenset[int]:
            if channel.id not in channels:
                listed = channels_text(channels)
                raise InvalidInput(
                    msg("{channel} is not in the list. It is: {channels}.", channel=f"<#{channel.id}>", channels=listed)
                )
            return channels - {channel.id}

        await self._channels_changed(interaction, remove)

    @channels.command(name="clear", description="Allow generating in every channel")
    async def channels_clear(self, interaction: discord.Interaction[Bot]) -> None:
        await self._channels_changed(interaction, frozenset())

    async def _channels_changed(self, interaction: discord.Interaction[Bot], channels: Change[frozenset[int]]) -> None:
        before, after = await self._update(interaction, allowed_channels=channels)
        await self._reply(
            interaction,
            change_text(
                msg("Generating allowed in"),
                channels_text(before.allowed_channels),
                channels_text(after.allowed_channels),
            ),
        )

    # ------------------------------------------------------------------ moderator roles
    @moderator_roles.command(name="add", description="Members with this role can use the moderator commands")
    @app_commands.describe(role="The role")
    async def moderator_roles_add(self, interaction: discord.Interaction[Bot], role: discord.Role) -> None:
        def add(roles: frozenset[int]) -> frozenset[int]:
            if len(roles | {role.id}) > MAX_MODERATOR_ROLES:
                raise InvalidInput(msg("At most {count} moderator roles. Remove one first.", count=MAX_MODERATOR_ROLES))
            return roles | {role.id}

        await self._roles_changed(interaction, add)

    @moderator_roles.command(name="remove", description="This role no longer gives the moderator commands")
    @app_commands.describe(role="The role")
    async def moderator_roles_remove(self, interaction: discord.Interaction[Bot], role: discord.Role) -> None:
        def remove(roles: frozenset[int]) -> frozenset[int]:
            if role.id not in roles:
                listed = roles_text(roles)
                raise InvalidInput(
                    msg("{role} is not a moderator role. They are: {roles}.", role=f"<@&{role.id}>", roles=listed)
                )
            return roles - {role.id}

        await self._roles_changed(interaction, remove)

    async def _roles_changed(self, interaction: discord.Interaction[Bot], roles: Change[frozenset[int]]) -> None:
        before, after = await self._update(interaction, moderator_roles=roles)
        await self._reply(
            interaction,
            change_text(msg("Moderator roles"), roles_text(before.moderator_roles), roles_text(after.moderator_roles)),
        )

    # ------------------------------------------------------------------ banned words
    @banned_words.command(name="add", description="Refuse prompts with these words (comma-separated)")
    @app_commands.describe(words="Whole words or phrases, any case, e.g. gore, blood")
    async def banned_words_add(
        self, interaction: discord.Interaction[Bot], words: app_commands.Range[str, 1, 1000]
    ) -> None:
        new = [w.lower() for w in _split(words)]
        too_long = [w for w in new if len(w) > MAX_WORD_LENGTH]
        if too_long:
            raise InvalidInput(msg("Keep each word or phrase under {limit} characters.", limit=MAX_WORD_LENGTH))

        def add(words: tuple[str, ...]) -> tuple[str, ...]:
            known = {w.lower() for w in words}
            added = [w for w in new if w not in known]
            if len(words) + len(added) > MAX_BANNED_WORDS:
                raise InvalidInput(msg("At most {count} banned words. Remove some first.", count=MAX_BANNED_WORDS))
            return (*words, *added)

        await self._words_changed(interaction, add, adding=True)

    @banned_words.command(name="remove", description="Allow these words again (comma-separated)")
    @app_commands.describe(words="Words or phrases to remove")
    async def banned_words_remove(
        self, interaction: discord.Interaction[Bot], words: app_commands.Range[str, 1, 1000]
    ) -> None:
        gone = {w.lower() for w in _split(words)}

        def remove(banned: tuple[str, ...]) -> tuple[str, ...]:
            kept = tuple(w for w in banned if w.lower() not in gone)
            if len(kept) == len(banned):
                raise InvalidInput(
                    msg("None of those words is banned here. `/server-settings banned-words list` shows them.")
                )
            return kept

        await self._words_changed(interaction, remove, adding=False)

    @banned_words.command(name="list", description="The words refused in prompts here")
    async def banned_words_list(self, interaction: discord.Interaction[Bot]) -> None:
        config = await self._config(interaction)
        lang = interaction.locale
        embed = discord.Embed(
            title=tr(lang, "Banned words in this server ({count})", count=len(config.banned_words)),
            description=render(banned_words_text(config.banned_words, limit=4000), lang),
        )
        embed.set_footer(text=tr(lang, "Matched as whole words, ignoring case."))
        await interaction.edit_original_response(embed=embed)

    async def _words_changed(
        self, interaction: discord.Interaction[Bot], words: Change[tuple[str, ...]], *, adding: bool
    ) -> None:
        before, after = await self._update(interaction, banned_words=words)
        lines = [
            msg("Banned words: {before} → **{after}**.", before=len(before.banned_words), after=len(after.banned_words))
        ]
        if adding:
            added = [w for w in after.banned_words if w not in set(before.banned_words)]
            lines.append(
                msg("Added: {words}", words=banned_words_text(added, limit=900))
                if added
                else msg("Those words were already banned.")
            )
        else:
            removed = [w for w in before.banned_words if w not in set(after.banned_words)]
            lines.append(msg("Removed: {words}", words=banned_words_text(removed, limit=900)))
        await self._reply(interaction, *lines)


async def setup(bot: Bot) -> None:
    bot.tree.add_command(ServerSettings(bot))


async def teardown(bot: Bot) -> None:
    bot.tree.remove_command("server-settings")
