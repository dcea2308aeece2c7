"""/edit: change an attached image with a prompt (Luma Agents image_edit)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bot
from bot.replies import defer_ephemeral
from cogs._requests import build_spec, model_choices
from providers.base import Kind

PROMPT_MAX = 6000


class Edit(commands.Cog):
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(name="edit", description="Edit an image with a prompt")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.describe(
        image="The image to edit (PNG, JPEG or WebP)",
        prompt="What to change; inline flags work too, e.g. --ar 1:1 --style manga",
        model="Which model to use",
        reference="An image to guide style or content",
        private="Only you see the result",
    )
    async def edit(
        self,
        interaction: discord.Interaction[Bot],
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        model: str | None = None,
        reference: discord.Attachment | None = None,
        private: bool = False,
    ) -> None:
        await defer_ephemeral(interaction)
        spec = await build_spec(
            self.bot,
            interaction,
            kind=Kind.IMAGE_EDIT,
            text=prompt,
            slash_model=model,
            slash={},
            source_image=image,
            reference_images=(reference,) if reference else (),
            private=private,
        )
        await self.bot.services.engine.jobs.start(interaction, spec)

    @edit.autocomplete("model")
    async def _model(self, interaction: discord.Interaction[Bot], current: str) -> list[app_commands.Choice[str]]:
        return await model_choices(self.bot, interaction, Kind.IMAGE_EDIT, current)


async def setup(bot: Bot) -> None:
    await bot.add_cog(Edit(bot))
