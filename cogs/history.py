"""/history (my past jobs, paged with persistent buttons) and /job show (one job's details and its result again).

The Previous/Next buttons carry everything a click needs in their custom id (``hist:<viewer>:<subject>:<page>:
<model>``), so they keep working after a restart. Only the viewer who opened the list can page it; when the viewer
is a moderator looking at a member's jobs (``/quota-admin history``), each click checks again that they still are.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bot
from bot.errors import NotFound
from bot.history import Here, clean_model_filter, history_page, job_show
from bot.i18n import msg
from bot.jobs.requester import Requester
from bot.moderator_access import require_moderator
from bot.render.history import HISTORY_TEMPLATE, MAX_PAGE, history_custom_id, history_message
from bot.render.message import message_kwargs
from bot.render.replies import defer_ephemeral, error_text, send_ephemeral

log = logging.getLogger(__name__)

MAX_JOB_ID = 2**53 - 1  # Discord's largest integer option value


async def show_history_page(
    interaction: discord.Interaction[Bot],
    *,
    viewer_id: int,
    subject_id: int,
    model_key: str | None,
    page: int,
) -> None:
    """Edit the interaction's original response (a deferred command, or the message a button is on) into ``page``
    of the subject's jobs in the interaction's scope."""
    services = interaction.client.services
    found = await history_page(
        services.job_records,
        subject_id=subject_id,
        guild_id=interaction.guild_id or 0,
        model_key=model_key,
        page=page,
    )
    kwargs = message_kwargs(history_message(found, viewer_id=viewer_id, locale=interaction.locale))
    await interaction.edit_original_response(
        content=kwargs["content"] or None, embeds=kwargs["embeds"], view=kwargs["view"]
    )


class HistoryButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=HISTORY_TEMPLATE):
    def __init__(self, viewer_id: int, subject_id: int, page: int, model_key: str | None) -> None:
        super().__init__(
            discord.ui.Button(custom_id=history_custom_id(viewer_id, subject_id, page, model_key), label="…")
        )
        self.viewer_id = viewer_id
        self.subject_id = subject_id
        self.page = page
        self.model_key = model_key

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> HistoryButton:
        return cls(int(match["viewer"]), int(match["subject"]), int(match["page"]), match["model"] or None)

    async def callback(self, interaction: discord.Interaction[Bot]) -> None:  # type: ignore[override]
        if interaction.user.id != self.viewer_id:
            await send_ephemeral(
                interaction, msg("Only the person who opened this list can page through it. Use `/history` for yours.")
            )
            return
        try:
            await interaction.response.defer()
            if self.subject_id != self.viewer_id:
                services = interaction.client.services
                await require_moderator(interaction, services.server_settings, services.settings)
            await show_history_page(
                interaction,
                viewer_id=self.viewer_id,
                subject_id=self.subject_id,
                model_key=self.model_key,
                page=self.page,
            )
        except Exception as exc:
            await send_ephemeral(interaction, error_text(exc, where=f"history button {self.item.custom_id}"))


class JobCommands(app_commands.Group):
    """``/job show``: one job, for its requester (or a moderator of its server)."""

    def __init__(self, bot: Bot) -> None:
        super().__init__(
            name="job",
            description="One of your jobs",
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
        )
        self.bot = bot

    @app_commands.command(name="show", description="A job's details and its result, posted again")
    @app_commands.rename(job_id="id")
    @app_commands.describe(job_id="The job number, e.g. 42 (see /history)")
    async def show(self, interaction: discord.Interaction[Bot], job_id: app_commands.Range[int, 1, MAX_JOB_ID]) -> None:
        await defer_ephemeral(interaction)
        services = self.bot.services
        job = await services.job_records.get(job_id)
        here_guild = interaction.guild_id or 0
        if job is None or not await services.engine.jobs.may_view(job, Requester.from_interaction(interaction)):
            raise NotFound(msg("There is no job #{job_id} you can see. `/history` lists yours.", job_id=job_id))
        channel = interaction.channel
        nsfw = bool(getattr(channel, "nsfw", False)) or bool(getattr(getattr(channel, "parent", None), "nsfw", False))
        entry = services.catalogue.get(job.model_key)
        rendered = await job_show(
            services.engine.delivery,
            job,
            Here(
                guild_id=here_guild,
                channel_nsfw=nsfw,
                upload_limit=interaction.filesize_limit,
                locale=interaction.locale.value,
            ),
            model_title=entry.title if entry else None,
            extended_by=await services.chains.extensions_of(job.id, viewer_id=interaction.user.id),
        )
        kwargs = message_kwargs(rendered)
        await interaction.edit_original_response(
            content=kwargs["content"], embeds=kwargs["embeds"], attachments=kwargs["attachments"], view=None
        )
        log.info("job %s shown to %s", job.id, interaction.user.id)


class History(commands.Cog):
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(name="history", description="Your past jobs here, newest first, with links to them")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.describe(page="Which page (10 jobs a page)", model="Only jobs of this model")
    async def history(
        self,
        interaction: discord.Interaction[Bot],
        page: app_commands.Range[int, 1, MAX_PAGE] = 1,
        model: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        await defer_ephemeral(interaction)
        await show_history_page(
            interaction,
            viewer_id=interaction.user.id,
            subject_id=interaction.user.id,
            model_key=clean_model_filter(model),
            page=page,
        )

    @history.autocomplete("model")
    async def _model(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        needle = current.lower().strip()
        return [
            app_commands.Choice(name=f"{m.key}: {m.title}"[:100], value=m.key)
            for m in self.bot.services.catalogue
            if needle in m.key or needle in m.title.lower()
        ][:25]


async def setup(bot: Bot) -> None:
    await bot.add_cog(History(bot))
    bot.tree.add_command(JobCommands(bot))
    bot.add_dynamic_items(HistoryButton)


async def teardown(bot: Bot) -> None:
    bot.remove_dynamic_items(HistoryButton)
    bot.tree.remove_command("job")
