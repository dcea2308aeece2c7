"""The one rule for the model of a job, used by the commands, the autocomplete, the buttons and the job service."""

from __future__ import annotations

from bot.catalogue import Catalogue, ModelEntry, default_model_for
from bot.errors import InvalidInput, NotAllowed
from bot.server_settings.config import ServerConfig
from providers.base import Kind

KIND_WORDS = {Kind.IMAGE: "images", Kind.IMAGE_EDIT: "image edits", Kind.VIDEO: "videos"}


def offered_models(catalogue: Catalogue, config: ServerConfig, kind: Kind) -> list[ModelEntry]:
    """The models enabled and allowed here that do this kind, in catalogue order."""
    return [m for m in catalogue.for_kind(kind) if config.allows_model(m.key)]


def pick_model(
    catalogue: Catalogue, config: ServerConfig, kind: Kind, asked: str | None, *, preferred: str | None = None
) -> ModelEntry:
    """The one rule for the model of a job. A model asked for must be enabled and allowed here and do this kind
    (else a refusal that lists the ones that do). Otherwise the first that is allowed here and does the kind of:
    ``preferred`` (e.g. the model of the job being edited), the server's default, the catalogue's default; else
    the first allowed model that does the kind."""
    offered = offered_models(catalogue, config, kind)
    if asked:
        entry = catalogue.get(asked)
        if entry is None or not config.allows_model(asked):
            names = ", ".join(m.key for m in offered) or "none"
            raise InvalidInput(f"There is no model `{asked}` here. Choose one of: {names}.")
        if not entry.does(kind):
            names = ", ".join(m.key for m in offered) or "none"
            raise InvalidInput(f"`{asked}` does not make {KIND_WORDS[kind]}. Choose one of: {names}.")
        return entry
    for key in (preferred, config.default_model, default_model_for(kind)):
        entry = catalogue.get(key) if key else None
        if entry is not None and entry in offered:
            return entry
    if offered:
        return offered[0]
    raise NotAllowed(f"No model for {KIND_WORDS[kind]} is enabled here.")
