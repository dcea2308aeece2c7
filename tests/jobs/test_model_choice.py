"""The one rule for a job's model (bot/prompting/models.py ``pick_model``), used by the commands, the autocomplete,
the buttons' follow-up jobs and the final check before a job starts."""

from __future__ import annotations

import pytest

from bot.catalogue import Catalogue, ModelEntry
from bot.errors import InvalidInput, NotAllowed
from bot.prompting.models import offered_models, pick_model
from bot.server_settings.config import ServerConfig
from providers.base import Capabilities, Kind

IMG, EDIT, VID = Kind.IMAGE, Kind.IMAGE_EDIT, Kind.VIDEO


def entry(key: str, *kinds: Kind) -> ModelEntry:
    return ModelEntry(
        key=key,
        provider="p",
        upstream_model=key,
        kinds=frozenset(kinds),
        title=key,
        blurb="",
        cost=1,
        capabilities=Capabilities(kinds=frozenset(kinds), fields=frozenset()),
    )


# Catalogue order; the catalogue defaults are neta-lumina (images), uni-1 (edits), luma-video (videos).
CATALOGUE = Catalogue(
    {
        e.key: e
        for e in (
            entry("kawaii-3d", IMG),
            entry("neta-lumina", IMG),
            entry("uni-1", IMG, EDIT),
            entry("uni-1-max", IMG, EDIT),
            entry("luma-video", VID),
        )
    }
)


def config(*, default: str | None = None, enabled: set[str] | None = None) -> ServerConfig:
    return ServerConfig(
        guild_id=1, default_model=default, enabled_models=None if enabled is None else frozenset(enabled)
    )


@pytest.mark.parametrize(
    ("server", "kind", "preferred", "chosen"),
    [
        (config(), IMG, None, "neta-lumina"),  # the catalogue's default
        (config(default="uni-1-max"), IMG, None, "uni-1-max"),  # the server's default
        (config(default="uni-1-max"), EDIT, None, "uni-1-max"),
        (config(default="luma-video"), IMG, None, "neta-lumina"),  # the server's default does not make images
        (config(default="uni-1-max", enabled={"uni-1", "kawaii-3d"}), IMG, None, "kawaii-3d"),  # first allowed
        (config(enabled={"uni-1"}), IMG, None, "uni-1"),
        (config(), EDIT, "uni-1-max", "uni-1-max"),  # the model of the job being edited
        (config(default="uni-1-max"), EDIT, "neta-lumina", "uni-1-max"),  # it cannot edit: the server's default
        (config(enabled={"uni-1", "neta-lumina"}), EDIT, "uni-1-max", "uni-1"),  # it is not allowed here
        (config(), VID, None, "luma-video"),
    ],
)
def test_without_a_model_asked_for(server, kind, preferred, chosen):
    assert pick_model(CATALOGUE, server, kind, None, preferred=preferred).key == chosen


def test_a_model_asked_for_must_be_allowed_here_and_do_the_kind():
    assert pick_model(CATALOGUE, config(default="uni-1"), IMG, "kawaii-3d").key == "kawaii-3d"
    with pytest.raises(InvalidInput) as unknown:
        pick_model(CATALOGUE, config(), IMG, "dall-e")
    assert unknown.value.user_message == (
        "There is no model `dall-e` here. Choose one of: kawaii-3d, neta-lumina, uni-1, uni-1-max."
    )
    with pytest.raises(InvalidInput) as disabled:
        pick_model(CATALOGUE, config(enabled={"uni-1"}), IMG, "neta-lumina")
    assert disabled.value.user_message == "There is no model `neta-lumina` here. Choose one of: uni-1."
    with pytest.raises(InvalidInput) as wrong_kind:
        pick_model(CATALOGUE, config(), EDIT, "neta-lumina")
    assert wrong_kind.value.user_message == "`neta-lumina` does not make image edits. Choose one of: uni-1, uni-1-max."


def test_nothing_allowed_for_the_kind():
    with pytest.raises(NotAllowed) as refused:
        pick_model(CATALOGUE, config(enabled={"neta-lumina"}), VID, None)
    assert refused.value.user_message == "No model for videos is enabled here."
    assert offered_models(CATALOGUE, config(enabled={"neta-lumina", "uni-1"}), IMG) == [
        CATALOGUE.get("neta-lumina"),
        CATALOGUE.get("uni-1"),
    ]
