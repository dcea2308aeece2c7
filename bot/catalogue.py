"""The model catalogue: the keys users pick, mapped to a provider, an upstream model, the kinds of job it does,
its cost and what it accepts, derived from the providers' registry. A key is offered only when its provider has
an API key configured."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bot.settings import Settings
from providers import registry
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


def model_defs() -> list[ModelDef]:
    """Every registered model, enabled or not, in registry order."""
    return [
        ModelDef(model.key, spec.name, model.upstream_model, model.kinds, model.title, model.blurb)
        for spec in registry.specs()
        for model in spec.models
    ]


def default_model_for(kind: Kind) -> str | None:
    """The model key the bot uses for ``kind`` when neither the user nor the server chose one."""
    for spec in registry.specs():
        for model in spec.models:
            if kind in model.default_for:
                return model.key
    return None


class Catalogue:
    """The enabled models, in catalogue order."""

    def __init__(self, entries: Mapping[str, ModelEntry]) -> None:
        self._entries = dict(entries)

    @classmethod
    def build(cls, settings: Settings, providers: Mapping[str, Provider]) -> Catalogue:
        entries: dict[str, ModelEntry] = {}
        blocks = settings.providers()
        for spec in registry.specs():
            provider, block = providers.get(spec.name), blocks.get(spec.name)
            if provider is None or block is None:
                continue
            for model in spec.models:
                upstream = spec.upstream_model(model, block)
                entries[model.key] = ModelEntry(
                    key=model.key,
                    provider=spec.name,
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
    return [model.key for model in model_defs() if model.provider in enabled]
