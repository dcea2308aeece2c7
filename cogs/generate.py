"""/imagine, /edit and /video: the commands that make something. Each acknowledges at once, turns its options
and inline flags into a job, and hands it to the job service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bot
from bot.render.replies import defer_job_reply
from cogs._autocomplete import model_choices, ratio_choices
from providers.base import Kind

PROMPT_MAX = 6000
Prompt = app_commands.Range[str, 1, PROMPT_MAX]
F = TypeVar("F", bound=Callable[..., Any])


def everywhere(command: F) -> F:
    """Offered in servers, the bot's DMs and other DMs, for server and user installs."""
    command = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)(command)
    return app_commands.allowed_installs(guilds=True, users=True)(command)


class Generate(commands.Cog):
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def _start(self, interaction: discord.Interaction[Bot], *, private: bool | None, **request: Any) -> None:
        services = self.bot.services
        if private is None:  # the member's preference decides how the command is acknowledged
            private = await services.preferences.private_before_ack(interaction.user.id)
        await defer_job_reply(interaction, private=private)
        preferences = await services.preferences.get(interaction.user.id)
        spec = await services.specs.for_command(
            guild_id=interaction.guild_id, private=private, preferences=preferences, **request
        )
        await self.bot.services.engine.jobs.start(interaction, spec)

    @app_commands.command(name="imagine", description="Make an image from a text prompt")
    @everywhere
    @app_commands.describe(
        prompt="What to make; inline flags work too, e.g. --ar 16:9 --seed 42",
        model="Which model to use (default: this server's default)",
        aspect_ratio="Shape of the image, e.g. 16:9",
        seed="Same seed + same prompt = the same image (models that take a seed)",
        style="A style preset (uni-1 models)",
        format="File format of the result",
        reference="An image to guide style or content (uni-1 models)",
        private="Only you see the result (default: your /prefer setting, else no)",
    )
    async def imagine(
        self,
        interaction: discord.Interaction[Bot],
        prompt: Prompt,
        model: str | None = None,
        aspect_ratio: str | None = None,
        seed: app_commands.Range[int, -1, 2147483647] | None = None,
        style: Literal["auto", "manga"] | None = None,
        format: Literal["png", "jpeg", "webp"] | None = None,
        reference: discord.Attachment | None = None,
        private: bool | None = None,
    ) -> None:
        await self._start(
            interaction,
            kind=Kind.IMAGE,
            text=prompt,
            slash_model=model,
            slash={"ar": aspect_ratio, "seed": seed, "style": style, "format": format},
            reference_images=(reference,) if reference else (),
            private=private,
        )

    @app_commands.command(name="edit", description="Edit an image with a prompt")
    @everywhere
    @app_commands.describe(
        image="The image to edit (PNG, JPEG or WebP)",
        prompt="What to change; inline flags work too, e.g. --ar 1:1 --style manga",
        model="Which model to use",
        reference="An image to guide style or content",
        private="Only you see the result (default: your /prefer setting, else no)",
    )
    async def edit(
        self,
        interaction: discord.Interaction[Bot],
        image: discord.Attachment,
        prompt: Prompt,
        model: str | None = None,
        reference: discord.Attachment | None = None,
        private: bool | None = None,
    ) -> None:
        await self._start(
            interaction,
            kind=Kind.IMAGE_EDIT,
            text=prompt,
            slash_model=model,
            slash={},
            source_image=image,
            reference_images=(reference,) if reference else (),
            private=private,
        )

    @app_commands.command(name="video", description="Make a short video from a prompt (and images)")
    @everywhere
    @app_commands.describe(
        prompt="What happens in the video; inline flags work too, e.g. --ar 16:9 --duration 10s",
        start_image="The first frame",
        end_image="The last frame",
        aspect_ratio="Shape of the video, e.g. 16:9",
        duration="Length of the video",
        resolution="Resolution of the video",
        loop="Make the video loop seamlessly",
        enhance="Let the service improve the prompt",
        private="Only you see the result (default: your /prefer setting, else no)",
    )
    async def video(
        self,
        interaction: discord.Interaction[Bot],
        prompt: Prompt,
        start_image: discord.Attachment | None = None,
        end_image: discord.Attachment | None = None,
        aspect_ratio: str | None = None,
        duration: Literal["5s", "10s"] | None = None,
        resolution: Literal["720p", "1080p"] | None = None,
        loop: bool | None = None,
        enhance: bool | None = None,
        private: bool | None = None,
    ) -> None:
        await self._start(
            interaction,
            kind=Kind.VIDEO,
            text=prompt,
            slash={"ar": aspect_ratio, "duration": duration, "res": resolution, "loop": loop, "enhance": enhance},
            start_frame=start_image,
            end_frame=end_image,
            private=private,
        )

    @imagine.autocomplete("model")
    async def _imagine_model(
        self, interaction: discord.Interaction[Bot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await model_choices(self.bot, interaction, Kind.IMAGE, current)

    @imagine.autocomplete("aspect_ratio")
    async def _imagine_ratio(
        self, interaction: discord.Interaction[Bot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await ratio_choices(self.bot, interaction, Kind.IMAGE, current)

    @edit.autocomplete("model")
    async def _edit_model(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        return await model_choices(self.bot, interaction, Kind.IMAGE_EDIT, current)

    @video.autocomplete("aspect_ratio")
    async def _video_ratio(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        return await ratio_choices(self.bot, interaction, Kind.VIDEO, current)


async def setup(bot: Bot) -> None:
    await bot.add_cog(Generate(bot))
