"""From a command's text and options to a validated ``JobSpec``: inline flags, slash options, the model to use,
and the attachment checks that need no download. Shared by /imagine, /edit and /video."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import discord

from bot.app import Bot
from bot.catalogue import ModelEntry
from bot.errors import InvalidInput, NotAllowed
from bot.jobs.inputs import check_attachment
from bot.jobs.service import JobSpec
from cogs._options import UnknownFlag, flags_for, model_from, parse_prompt, resolve_options
from providers.base import Kind


async def build_spec(
    bot: Bot,
    interaction: discord.Interaction,
    *,
    kind: Kind,
    text: str,
    slash: Mapping[str, Any],
    slash_model: str | None = None,
    reference_images: Sequence[discord.Attachment] = (),
    source_image: discord.Attachment | None = None,
    start_frame: discord.Attachment | None = None,
    end_frame: discord.Attachment | None = None,
    private: bool = False,
) -> JobSpec:
    settings = bot.settings
    try:
        parsed = parse_prompt(text)
    except UnknownFlag as exc:
        raise await _unknown_flag(bot, interaction.guild_id, kind, exc, slash_model or _model_in(text)) from None
    prompt = parsed.prompt.strip()
    if not prompt:
        raise InvalidInput("Describe what you want in the prompt; it cannot be only flags.")
    entry = await bot.services.engine.jobs.choose_model(
        interaction.guild_id, kind, model_from(parsed.flags, slash_model)
    )
    limit = min(settings.prompt_max_length, entry.capabilities.prompt_max_length or settings.prompt_max_length)
    if len(prompt) > limit:
        raise InvalidInput(
            f"The prompt is {len(prompt)} characters long; `{entry.key}` takes at most {limit}. Shorten it."
        )
    resolved = resolve_options(
        entry, kind, _random_seed_dropped(entry, parsed.flags), _random_seed_dropped(entry, slash)
    )
    max_refs = entry.capabilities.max_reference_images - (1 if kind is Kind.IMAGE_EDIT else 0)
    if reference_images and "reference_images" not in entry.capabilities.fields:
        raise InvalidInput(f"`{entry.key}` does not take reference images. Remove it or choose another model.")
    if len(reference_images) > max(max_refs, 0):
        raise InvalidInput(f"`{entry.key}` takes at most {max_refs} reference images here.")
    for attachment, what in (
        *((a, "reference image") for a in reference_images),
        (source_image, "image to edit"),
        (start_frame, "start image"),
        (end_frame, "end image"),
    ):
        if attachment is not None:
            check_attachment(attachment, settings, what=what)
    return JobSpec(
        kind=kind,
        model_key=entry.key,
        prompt=prompt,
        options=resolved.options,
        size=resolved.size,
        reference_images=tuple(reference_images),
        source_image=source_image,
        start_frame=start_frame,
        end_frame=end_frame,
        private=private,
        notes=resolved.notes,
    )


def _random_seed_dropped(entry: ModelEntry, given: Mapping[str, Any]) -> dict[str, Any]:
    """Seed -1 means "pick one at random" for every model: for one whose seeds start at 0, send no seed rather
    than clamp -1 to a fixed 0."""
    seeds = entry.capabilities.seed_range
    if seeds is None or seeds[0] <= -1 or str(given.get("seed")).strip() != "-1":
        return dict(given)
    return {name: value for name, value in given.items() if name != "seed"}


_MODEL_FLAG_RE = re.compile(r"(?<!\S)(?:--|[—–])model(?:=|[^\S\n]+)(\S+)", re.IGNORECASE)


def _model_in(text: str) -> str | None:
    """The value of a ``--model`` flag in a prompt that could not be parsed as a whole."""
    match = _MODEL_FLAG_RE.search(text)
    return match[1] if match else None


async def _unknown_flag(
    bot: Bot, guild_id: int | None, kind: Kind, exc: UnknownFlag, asked: str | None
) -> InvalidInput:
    """An unknown flag, told with the flags of the model the command would use (product.md §2)."""
    try:
        entry = await bot.services.engine.jobs.choose_model(guild_id, kind, asked.lower() if asked else None)
    except (InvalidInput, NotAllowed):
        return exc
    return InvalidInput(f"`--{exc.name}` is not a flag.{exc.hint} `{entry.key}` takes: {', '.join(flags_for(entry))}.")


async def model_choices(
    bot: Bot, interaction: discord.Interaction, kind: Kind, current: str
) -> list[discord.app_commands.Choice[str]]:
    """Autocomplete: the models enabled and allowed here that do this kind, matching what was typed (≤ 25)."""
    needle = current.lower().strip()
    choices = [
        discord.app_commands.Choice(
            name=f"{m.key}: {m.title} ({m.cost} credit{'s' if m.cost != 1 else ''})"[:100], value=m.key
        )
        for m in await bot.services.engine.jobs.models_offered(interaction.guild_id, kind)
        if needle in m.key or needle in m.title.lower()
    ]
    return choices[:25]


async def ratio_choices(
    bot: Bot, interaction: discord.Interaction, kind: Kind, current: str
) -> list[discord.app_commands.Choice[str]]:
    """Autocomplete: the aspect ratios of the model chosen so far (or the default one), matching what was typed."""
    asked = getattr(interaction.namespace, "model", None)
    try:
        entry = await bot.services.engine.jobs.choose_model(interaction.guild_id, kind, asked or None)
    except (InvalidInput, NotAllowed):
        return []
    needle = current.strip()
    ratios = [r for r in entry.capabilities.aspect_ratios if r.startswith(needle) or needle in r]
    return [discord.app_commands.Choice(name=r, value=r) for r in ratios][:25]
