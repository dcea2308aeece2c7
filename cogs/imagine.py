"""/imagine: an image from a text prompt."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bot
from bot.replies import defer_ephemeral
from cogs._requests import build_spec, model_choices, ratio_choices
from providers.base import Kind

PROMPT_MAX = 6000


class Imagine(commands.Cog):
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Make an image from a text prompt")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.describe(
        prompt="What to make; inline flags work too, e.g. --ar 16:9 --seed 42",
        model="Which model to use (default: this server's default)",
        aspect_ratio="Shape of the image, e.g. 16:9",
        seed="Same seed + same prompt = the same image (models that take a seed)",
        style="A style preset (uni-1 models)",
        format="File format of the result",
        reference="An image to guide style or content (uni-1 models)",
        private="Only you see the result",
    )
    async def imagine(
        self,
        interaction: discord.Interaction[Bot],
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        model: str | None = None,
        aspect_ratio: str | None = None,
        seed: app_commands.Range[int, -1, 2147483647] | None = None,
        style: Literal["auto", "manga"] | None = None,
        format: Literal["png", "jpeg", "webp"] | None = None,
        reference: discord.Attachment | None = None,
        private: bool = False,
    ) -> None:
        await defer_ephemeral(interaction)
        spec = await build_spec(
            self.bot,
            interaction,
            kind=Kind.IMAGE,
            text=prompt,
            slash_model=model,
            slash={"ar": aspect_ratio, "seed": seed, "style": style, "format": format},
            reference_images=(reference,) if reference else (),
            private=private,
        )
        await self.bot.services.engine.jobs.start(interaction, spec)

    @imagine.autocomplete("model")
    async def _model(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        return await model_choices(self.bot, interaction, Kind.IMAGE, current)

    @imagine.autocomplete("aspect_ratio")
    async def _ratio(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        return await ratio_choices(self.bot, interaction, Kind.IMAGE, current)


async def setup(bot: Bot) -> None:
    await bot.add_cog(Imagine(bot))
