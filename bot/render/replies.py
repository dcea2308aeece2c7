"""Ephemeral replies and the one mapping from an exception to words a user can act on."""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from bot.errors import BotError
from bot.i18n import msg, render
from providers.errors import ProviderError

log = logging.getLogger(__name__)


def error_text(error: BaseException, *, where: str) -> str:
    """User-facing text for ``error`` (a ``Msg``: ``send_ephemeral`` renders it in the user's language). Unexpected
    errors are logged with a reference id the text mentions."""
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError) and error.__cause__:
        error = error.__cause__
    if isinstance(error, BotError | ProviderError):
        return error.user_message
    if isinstance(error, app_commands.MissingPermissions):
        needed = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return msg("You need the {permissions} permission to use this.", permissions=needed)
    if isinstance(error, app_commands.NoPrivateMessage):
        return msg("This command only works in a server.")
    if isinstance(error, app_commands.CommandOnCooldown):
        return msg("Slow down: try again in {seconds} seconds.", seconds=f"{error.retry_after:.0f}")
    if isinstance(error, app_commands.CheckFailure):
        return msg("You are not allowed to use this command here.")
    if isinstance(error, app_commands.TransformerError):
        return msg("“{value}” is not a valid value for that option.", value=error.value)
    ref = secrets.token_hex(3)
    log.error("unexpected error in %s (ref %s)", where, ref, exc_info=error)
    return msg("Something went wrong on our side (ref `{ref}`). It has been logged; please try again.", ref=ref)


async def send_ephemeral(interaction: discord.Interaction, text: str, *, view: discord.ui.View | None = None) -> None:
    """Tell only the user who acted, in their language (``text`` may be a ``Msg``), whatever state the interaction
    is in. Never raises. After a public defer (the "thinking" message meant to become a job's message), that message
    is deleted first: a refusal is for the user alone, and a followup while it is still loading would turn into an
    edit of it. ``view``: buttons under the text (the premium purchase buttons of an out-of-credits refusal)."""
    text = render(text, interaction.locale)
    buttons: discord.ui.View = view if view is not None else discord.utils.MISSING
    try:
        if interaction.extras.pop("public_ack", False):
            try:
                await interaction.delete_original_response()
            except discord.HTTPException as exc:
                log.info("could not delete the public acknowledgement (interaction %s): %s", interaction.id, exc)
            await interaction.followup.send(text, ephemeral=True, view=buttons)
        elif not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True, view=buttons)
        elif _deferred_ephemeral_original(interaction):
            await interaction.edit_original_response(content=text, embed=None, view=view)
        else:
            await interaction.followup.send(text, ephemeral=True, view=buttons)
    except discord.HTTPException as exc:
        log.warning("could not send an ephemeral reply (interaction %s): %s", interaction.id, exc)


def _deferred_ephemeral_original(interaction: discord.Interaction) -> bool:
    """True when the initial response is our own ephemeral "thinking" message, which we may simply edit."""
    response_type = interaction.response.type
    return response_type == discord.InteractionResponseType.deferred_channel_message and bool(
        interaction.extras.get("ephemeral_ack")
    )


async def defer_ephemeral(interaction: discord.Interaction) -> None:
    """Acknowledge within Discord's 3 seconds with a "thinking…" visible only to the user."""
    interaction.extras["ephemeral_ack"] = True
    await interaction.response.defer(ephemeral=True, thinking=True)


async def defer_job_reply(interaction: discord.Interaction, *, private: bool) -> None:
    """Acknowledge a request that makes a job: the "thinking" message becomes the job's message, public or (for a
    private job) ephemeral. Its id, known from here on, is stored with the job, so the message the user sees is
    the one the job edits, after any restart."""
    interaction.extras["ephemeral_ack" if private else "public_ack"] = True
    response = await interaction.response.defer(ephemeral=private, thinking=True)
    message_id = getattr(response, "message_id", None)
    if message_id is not None:
        interaction.extras["original_message_id"] = int(message_id)
