"""/video: a short video from a prompt, optionally from a start and an end image (Luma Dream Machine)."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bot
from bot.replies import defer_ephemeral
from cogs._requests import build_spec, ratio_choices
from providers.base import Kind

PROMPT_MAX = 6000


class Video(commands.Cog):
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(name="video", description="Make a short video from a prompt (and images)")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.describe(
        prompt="What happens in the video; inline flags work too, e.g. --ar 16:9 --duration 10s",
        start_image="The first frame",
        end_image="The last frame",
        aspect_ratio="Shape of the video, e.g. 16:9",
        duration="Length of the video",
        resolution="Resolution of the video",
        loop="Make the video loop seamlessly",
        enhance="Let the service improve the prompt",
        private="Only you see the result",
    )
    async def video(
        self,
        interaction: discord.Interaction[Bot],
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        start_image: discord.Attachment | None = None,
        end_image: discord.Attachment | None = None,
        aspect_ratio: str | None = None,
        duration: Literal["5s", "10s"] | None = None,
        resolution: Literal["720p", "1080p"] | None = None,
        loop: bool | None = None,
        enhance: bool | None = None,
        private: bool = False,
    ) -> None:
        await defer_ephemeral(interaction)
        spec = await build_spec(
            self.bot,
            interaction,
            kind=Kind.VIDEO,
            text=prompt,
            slash={"ar": aspect_ratio, "duration": duration, "res": resolution, "loop": loop, "enhance": enhance},
            start_frame=start_image,
            end_frame=end_image,
            private=private,
        )
        await self.bot.services.engine.jobs.start(interaction, spec)

    @video.autocomplete("aspect_ratio")
    async def _ratio(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        return await ratio_choices(self.bot, interaction, Kind.VIDEO, current)


async def setup(bot: Bot) -> None:
    await bot.add_cog(Video(bot))
