"""The buttons on job messages, persistent across restarts: ``gen:<action>:<job id>`` is all a click needs.

Reroll, Edit (a modal for the new prompt), Animate, Extend (a modal for an optional new prompt), Details, Delete,
Cancel and Refresh. Every action that
makes something goes through the same job service as the commands and costs credits the same way, charged to
whoever clicked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bot.app import Bot
from bot.errors import InvalidInput
from bot.i18n import msg, tr
from bot.jobs.access import can_use
from bot.jobs.requester import Requester
from bot.prompting.flags import parse_prompt
from bot.render.details import details_embed
from bot.render.job import CUSTOM_ID_PREFIX
from bot.render.message import message_kwargs
from bot.render.purchase import refusal_view
from bot.render.replies import defer_ephemeral, defer_job_reply, error_text, send_ephemeral

log = logging.getLogger(__name__)

EDIT_PROMPT_MAX = 1500


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(rf"{CUSTOM_ID_PREFIX}:(?P<action>[a-z]+):(?P<job_id>[0-9]+)"),
):
    def __init__(self, action: str, job_id: int) -> None:
        super().__init__(discord.ui.Button(custom_id=f"{CUSTOM_ID_PREFIX}:{action}:{job_id}", label=action.title()))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction[Bot]) -> None:  # type: ignore[override]
        handler = HANDLERS.get(self.action)
        try:
            if handler is None:
                await send_ephemeral(
                    interaction, msg("This button is from an older version of the bot and no longer works.")
                )
                return
            await handler(interaction, self.job_id)
        except Exception as exc:
            await _refuse(interaction, exc, f"button {self.action} of job {self.job_id}")


EDIT_MODAL_ID = re.compile(rf"{CUSTOM_ID_PREFIX}-edit:(?P<job_id>[0-9]+)")
EXTEND_MODAL_ID = re.compile(rf"{CUSTOM_ID_PREFIX}-extend:(?P<job_id>[0-9]+)")


class EditPromptModal(discord.ui.Modal):
    """Asks for the prompt of an image edit of a job's result.

    Sent stopped, so discord.py never keeps it: its submission is handled by ``on_edit_modal_submit`` from the
    custom id alone, like the buttons. That works after a restart, and when two people edit the same result at
    once (discord.py keeps one open modal per custom id, so the second submission would be dropped).
    """

    def __init__(self, job_id: int, prompt: str, *, max_length: int = EDIT_PROMPT_MAX, locale: object = "en") -> None:
        title = tr(locale, "Edit the image of job #{job_id}", job_id=job_id)[:45]
        super().__init__(title=title, custom_id=f"{CUSTOM_ID_PREFIX}-edit:{job_id}")
        self.job_id = job_id
        max_length = max(1, min(max_length, EDIT_PROMPT_MAX))
        self.prompt: discord.ui.TextInput[EditPromptModal] = discord.ui.TextInput(
            label=tr(locale, "What should change?"),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            max_length=max_length,
            default=prompt[:max_length],
            required=True,
        )
        self.add_item(self.prompt)
        self.stop()


class ExtendPromptModal(discord.ui.Modal):
    """Asks for an optional new prompt for the video that extends a job's video (empty: its own prompt). Sent
    stopped and handled by ``on_extend_modal_submit`` from its custom id, like ``EditPromptModal``."""

    def __init__(self, job_id: int, prompt: str, *, max_length: int = EDIT_PROMPT_MAX, locale: object = "en") -> None:
        title = tr(locale, "Extend the video of job #{job_id}", job_id=job_id)[:45]
        super().__init__(title=title, custom_id=f"{CUSTOM_ID_PREFIX}-extend:{job_id}")
        max_length = max(1, min(max_length, EDIT_PROMPT_MAX))
        self.prompt: discord.ui.TextInput[ExtendPromptModal] = discord.ui.TextInput(
            label=tr(locale, "What happens next? (empty: the same prompt)"),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            max_length=max_length,
            placeholder=" ".join(prompt.split())[:100] or None,
            required=False,
        )
        self.add_item(self.prompt)
        self.stop()


def _text_value(components: list[Any]) -> str | None:
    """The value of the first text input in a modal submission (in action rows or labels)."""
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("type") == discord.ComponentType.text_input.value:
            return str(component.get("value") or "")
        nested = component.get("components") or ([component["component"]] if component.get("component") else [])
        found = _text_value(nested)
        if found is not None:
            return found
    return None


def _modal_for(interaction: discord.Interaction[Bot], pattern: re.Pattern[str]) -> tuple[int, str] | None:
    """(job id, text typed) of a not yet answered modal submission whose custom id matches ``pattern``."""
    if interaction.type is not discord.InteractionType.modal_submit or interaction.response.is_done():
        return None
    data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
    match = pattern.fullmatch(str(data.get("custom_id", "")))
    if match is None:
        return None
    return int(match["job_id"]), _text_value(data.get("components") or []) or ""


async def _refuse(interaction: discord.Interaction[Bot], exc: Exception, where: str) -> None:
    """The refusal of a button or a modal, with Discord's purchase buttons when it is for lack of personal credits."""
    text = error_text(exc, where=where)
    await send_ephemeral(interaction, text, view=refusal_view(exc, interaction.client.settings.credit_packs))


async def on_edit_modal_submit(interaction: discord.Interaction[Bot]) -> None:
    """Listener for every interaction: starts the image edit an Edit modal asked for."""
    submitted = _modal_for(interaction, EDIT_MODAL_ID)
    if submitted is None:
        return
    job_id, typed = submitted
    try:
        await _defer_follow_up(interaction, job_id)
        parsed = parse_prompt(typed)
        if not parsed.prompt:
            await send_ephemeral(interaction, msg("Write what should change in the image."))
            return
        await _start_follow_up(interaction, job_id, "edit", prompt=parsed.prompt, flags=parsed.flags)
    except Exception as exc:
        await _refuse(interaction, exc, f"edit modal of job {job_id}")


async def on_extend_modal_submit(interaction: discord.Interaction[Bot]) -> None:
    """Listener for every interaction: starts the video extension an Extend modal asked for."""
    submitted = _modal_for(interaction, EXTEND_MODAL_ID)
    if submitted is None:
        return
    job_id, typed = submitted
    try:
        await _defer_follow_up(interaction, job_id)
        parsed = parse_prompt(typed)
        await _start_follow_up(interaction, job_id, "extend", prompt=parsed.prompt or None, flags=parsed.flags)
    except Exception as exc:
        await _refuse(interaction, exc, f"extend modal of job {job_id}")


async def _start_follow_up(
    interaction: discord.Interaction[Bot],
    job_id: int,
    origin: str,
    *,
    prompt: str | None = None,
    flags: dict[str, str | bool] | None = None,
) -> None:
    services = interaction.client.services
    requester = Requester.from_interaction(interaction)
    spec = await services.specs.follow_up(job_id, requester, origin=origin, prompt=prompt, flags=flags)
    await services.engine.jobs.start(interaction, spec)


async def _defer_follow_up(interaction: discord.Interaction[Bot], job_id: int) -> None:
    """The new job's message is this interaction's response: private like the job it comes from."""
    parent = await interaction.client.services.job_records.get(job_id)
    await defer_job_reply(interaction, private=parent is None or parent.ephemeral)


async def _reroll(interaction: discord.Interaction[Bot], job_id: int) -> None:
    await _defer_follow_up(interaction, job_id)
    await _start_follow_up(interaction, job_id, "reroll")


async def _animate(interaction: discord.Interaction[Bot], job_id: int) -> None:
    await _defer_follow_up(interaction, job_id)
    await _start_follow_up(interaction, job_id, "animate")


async def _edit(interaction: discord.Interaction[Bot], job_id: int) -> None:
    # A modal must be the first response, so no defer: one read, then the modal.
    job = await interaction.client.services.job_records.get(job_id)
    if job is not None and not can_use(job, Requester.from_interaction(interaction)):
        await send_ephemeral(interaction, msg("Only the person who started this private job can use its buttons."))
        return
    limit = interaction.client.settings.prompt_max_length
    modal = EditPromptModal(job_id, job.prompt if job else "", max_length=limit, locale=interaction.locale)
    await interaction.response.send_modal(modal)


async def _extend(interaction: discord.Interaction[Bot], job_id: int) -> None:
    # Refused before the modal when the job cannot be extended (one read); checked again when the box is sent.
    services = interaction.client.services
    job = await services.job_records.get(job_id)
    if job is None:
        await send_ephemeral(interaction, msg("There is no job #{job_id}.", job_id=job_id))
        return
    if not can_use(job, Requester.from_interaction(interaction)):
        await send_ephemeral(interaction, msg("Only the person who started this private job can use its buttons."))
        return
    try:
        services.specs.check_extendable(job)
    except InvalidInput as exc:
        await send_ephemeral(interaction, exc.user_message)
        return
    limit = interaction.client.settings.prompt_max_length
    await interaction.response.send_modal(
        ExtendPromptModal(job_id, job.prompt, max_length=limit, locale=interaction.locale)
    )


async def _details(interaction: discord.Interaction[Bot], job_id: int) -> None:
    await defer_ephemeral(interaction)
    services = interaction.client.services
    job = await services.job_records.get(job_id)
    if job is None or not can_use(job, Requester.from_interaction(interaction)):
        await send_ephemeral(interaction, msg("There is no job #{job_id} you can see.", job_id=job_id))
        return
    entry = services.catalogue.get(job.model_key)
    title = entry.title if entry else None
    await interaction.edit_original_response(embed=details_embed(job, model_title=title, locale=interaction.locale))


async def _cancel(interaction: discord.Interaction[Bot], job_id: int) -> None:
    await defer_ephemeral(interaction)
    text = await interaction.client.services.engine.jobs.cancel(job_id, Requester.from_interaction(interaction))
    await send_ephemeral(interaction, text)


async def _refresh(interaction: discord.Interaction[Bot], job_id: int) -> None:
    """Show the job's current state on the message the button is on; works in every context. The click's fresh
    15-minute token is stored and the outbox sends the message again: what it sends is read when it sends, so a
    click racing the job's end never leaves an older state over a newer one."""
    await interaction.response.defer()  # type 6: acknowledged; @original is the message the button is on
    services = interaction.client.services
    job = await services.job_records.get(job_id)
    if job is None or not can_use(job, Requester.from_interaction(interaction)):
        await send_ephemeral(interaction, msg("There is no job #{job_id} you can see.", job_id=job_id))
        return
    if await services.engine.jobs.renew_token(job, interaction):
        return
    if not job.finished:
        await send_ephemeral(
            interaction, msg("Job #{job_id} is still under way; its own message shows its progress.", job_id=job.id)
        )
        return
    # A copy of a finished job's result (e.g. in DMs): a final state never goes stale, so it is rendered here.
    rendered = await services.engine.delivery.render(job, upload_limit=interaction.filesize_limit)
    kwargs = message_kwargs(rendered)
    await interaction.edit_original_response(
        content=kwargs["content"], embeds=kwargs["embeds"], attachments=kwargs["attachments"], view=kwargs["view"]
    )


async def _delete(interaction: discord.Interaction[Bot], job_id: int) -> None:
    """Delete the message the button is on: the job's message, or a copy of its result (e.g. in DMs)."""
    await interaction.response.defer()  # type 6: acknowledged; @original is the message the button is on
    services = interaction.client.services
    job = await services.job_records.get(job_id)
    if job is None:
        await send_ephemeral(interaction, msg("There is no job #{job_id}.", job_id=job_id))
        return
    requester = Requester.from_interaction(interaction)
    if not await services.engine.jobs.may_manage(job, requester):
        if job.ephemeral:
            await send_ephemeral(interaction, msg("Only the person who made this private job can delete it."))
        else:
            await send_ephemeral(interaction, msg("Only the person who made this (or a moderator) can delete it."))
        return
    message_id = interaction.message.id if interaction.message is not None else None
    try:
        await services.engine.jobs.delete_message(job, message_id, interaction.delete_original_response)
    except discord.Forbidden:
        await send_ephemeral(
            interaction,
            msg(
                "Discord did not let the bot delete this message; it may lack the permission here. Nothing was changed."
            ),
        )
        return
    log.info("job %s: message %s deleted by %s", job.id, message_id, requester.user_id)


HANDLERS = {
    "reroll": _reroll,
    "edit": _edit,
    "animate": _animate,
    "extend": _extend,
    "details": _details,
    "delete": _delete,
    "cancel": _cancel,
    "refresh": _refresh,
}
