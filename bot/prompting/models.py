"""The one rule for the model of a job, used by the commands, the autocomplete, the buttons and the job service."""

from __future__ import annotations

from bot.catalogue import Catalogue, ModelEntry, default_model_for
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import msg
from bot.server_settings.config import ServerConfig
from providers.base import Kind

KIND_WORDS = {Kind.IMAGE: msg("images"), Kind.IMAGE_EDIT: msg("image edits"), Kind.VIDEO: msg("videos")}


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
            names = ", ".join(m.key for m in offered) or msg("none")
            raise InvalidInput(
                msg("There is no model `{model}` here. Choose one of: {models}.", model=asked, models=names)
            )
        if not entry.does(kind):
            names = ", ".join(m.key for m in offered) or msg("none")
            raise InvalidInput(
                msg(
                    "`{model}` does not make {kind}. Choose one of: {models}.",
                    model=asked,
                    kind=KIND_WORDS[kind],
                    models=names,
                )
            )
        return entry
    for key in (preferred, config.default_model, default_model_for(kind)):
        entry = catalogue.get(key) if key else None
        if entry is not None and entry in offered:
            return entry
    if offered:
        return offered[0]
    raise NotAllowed(msg("No model for {kind} is enabled here.", kind=KIND_WORDS[kind]))
