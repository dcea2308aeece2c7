"""/quota: my credits here (used, left, bonus, when they reset, where my limit comes from) and my jobs now."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bot
from bot.credits.report import build_report
from bot.jobs.requester import member_role_ids, wallet_of
from bot.render.quota import quota_embed
from bot.render.replies import defer_ephemeral


class Quota(commands.Cog):
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(
        name="quota",
        description="Your credits here (the server's or your personal wallet): left, bonus, resets; your jobs",
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def quota(self, interaction: discord.Interaction[Bot]) -> None:
        await defer_ephemeral(interaction)
        services = self.bot.services
        report = await build_report(
            services.quota,
            services.job_records,
            services.engine.steps.position,
            guild_id=wallet_of(interaction),
            user_id=interaction.user.id,
            role_ids=member_role_ids(interaction.user),
            max_running=services.settings.max_running_jobs_per_user,
            jobs_in_scope_only=False,
            here_guild_id=interaction.guild_id or 0,
            with_personal=True,
        )
        await interaction.edit_original_response(embed=quota_embed(report, own=True, locale=interaction.locale))


async def setup(bot: Bot) -> None:
    await bot.add_cog(Quota(bot))
