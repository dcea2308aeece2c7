"""The model catalogue: the keys users pick, mapped to a provider, an upstream model, the kinds of job it does,
its cost and what it accepts. A key is offered only when its provider has an API key configured."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bot.settings import Settings
from providers.base import Capabilities, Kind, Provider


@dataclass(frozen=True, slots=True)
class ModelDef:
    key: str
    provider: str
    upstream_model: str
    kinds: frozenset[Kind]
    title: str
    blurb: str


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model that is configured and usable here."""

    key: str
    provider: str
    upstream_model: str
    kinds: frozenset[Kind]
    title: str
    blurb: str
    cost: int
    capabilities: Capabilities

    def does(self, kind: Kind) -> bool:
        return kind in self.kinds and kind in self.capabilities.kinds


MODELS: tuple[ModelDef, ...] = (
    ModelDef(
        "neta-lumina",
        "wavespeed",
        "wavespeed-ai/neta-lumina",
        frozenset({Kind.IMAGE}),
        "Neta Lumina",
        "anime illustration; danbooru tags and Chinese, English or Japanese prompts work",
    ),
    ModelDef(
        "uni-1",
        "luma_agents",
        "uni-1",
        frozenset({Kind.IMAGE, Kind.IMAGE_EDIT}),
        "Luma uni-1",
        "images and image edits, with up to 9 reference images",
    ),
    ModelDef(
        "uni-1-max",
        "luma_agents",
        "uni-1-max",
        frozenset({Kind.IMAGE, Kind.IMAGE_EDIT}),
        "Luma uni-1 max",
        "like uni-1, at higher quality",
    ),
    ModelDef(
        "kawaii-3d",
        "lumozai",
        "flux-cute-3d-kawaii",
        frozenset({Kind.IMAGE}),
        "Cute 3D Kawaii",
        "cute 3D figures (FLUX with a kawaii LoRA)",
    ),
    ModelDef(
        "luma-video",
        "luma_reseller",
        "luma",
        frozenset({Kind.VIDEO}),
        "Luma Dream Machine",
        "5 or 10 second videos from text, or from a start and end image",
    ),
)

DEFAULT_MODEL_FOR_KIND = {Kind.IMAGE: "neta-lumina", Kind.IMAGE_EDIT: "uni-1", Kind.VIDEO: "luma-video"}


class Catalogue:
    """The enabled models, in catalogue order."""

    def __init__(self, entries: Mapping[str, ModelEntry]) -> None:
        self._entries = dict(entries)

    @classmethod
    def build(cls, settings: Settings, providers: Mapping[str, Provider]) -> Catalogue:
        entries: dict[str, ModelEntry] = {}
        for model in MODELS:
            provider = providers.get(model.provider)
            if provider is None:
                continue
            upstream = model.upstream_model
            if model.provider == "luma_reseller" and settings.luma_reseller.model_name:
                upstream = settings.luma_reseller.model_name
            entries[model.key] = ModelEntry(
                key=model.key,
                provider=model.provider,
                upstream_model=upstream,
                kinds=model.kinds,
                title=model.title,
                blurb=model.blurb,
                cost=settings.costs.for_model(model.key),
                capabilities=provider.capabilities(upstream),
            )
        return cls(entries)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> ModelEntry | None:
        return self._entries.get(key)

    def for_kind(self, kind: Kind) -> list[ModelEntry]:
        return [entry for entry in self if entry.does(kind)]


def configured_model_keys(settings: Settings) -> list[str]:
    """The model keys whose provider has an API key, without building any provider (for ``check`` and ``/help``)."""
    enabled = {name for name, block in settings.providers().items() if block.enabled}
    return [model.key for model in MODELS if model.provider in enabled]
