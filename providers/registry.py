"""The providers the bot knows, each described by its own module (``SPEC``): its name, its settings block, its
factory and its models. The bot derives its settings, wiring, catalogue and ``.env.example`` from here.

The built-in providers are listed in ``BUILTIN``; anything else (a plugin, a test's toy provider) calls
``register``. Order matters: it is the order of the catalogue, the settings and ``.env.example``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiohttp
from pydantic import BaseModel, Field, SecretStr

from providers._http import AdapterOptions, Timeouts
from providers.base import Capabilities, Kind, Provider

BUILTIN = ("providers.wavespeed", "providers.luma_agents", "providers.lumozai", "providers.luma_reseller")


class ProviderSettings(BaseModel):
    """One upstream API's settings block (``<NAME>__<FIELD>`` in the environment). Each field's description is
    its comment in ``.env.example``. The provider's models are offered only when ``api_key`` is set."""

    api_key: SecretStr | None = Field(None, description="API key. Leave empty to disable the provider's models.")
    base_url: str = Field(description="API base URL.")
    max_concurrency: int = Field(
        4, ge=1, description="Upstream jobs running at once; more wait in the bot's own queue."
    )
    requests_per_minute: int = Field(60, ge=1, description="Submissions and polls per minute.")
    first_poll_s: float | None = Field(
        None,
        gt=0,
        description="Seconds after submission before the first poll, then one every poll_interval_s: a fixed "
        "schedule instead of the learned one (default: learned from the model's past run times).",
    )
    poll_interval_s: float = Field(
        3.0, gt=0, description="Seconds between polls on a fixed schedule, and the first wait after a poll error."
    )
    max_poll_interval_s: float = Field(
        60.0, gt=0, description="Longest wait between polls (backing off after errors, or late in a long job)."
    )
    submit_timeout_s: float = Field(
        60.0, gt=0, description="Seconds to wait for a submission's answer (a timeout is never resubmitted)."
    )
    poll_timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for a poll's answer.")

    @property
    def enabled(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value().strip())

    def adapter_options(self) -> AdapterOptions:
        """What every adapter's constructor takes from its block. Only for an enabled block."""
        if self.api_key is None:
            raise ValueError("the provider has no API key")
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "timeouts": Timeouts(submit_s=self.submit_timeout_s, fetch_s=self.poll_timeout_s),
        }


S = TypeVar("S", bound=ProviderSettings)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model users pick by ``key``. ``cost`` is the default of ``COSTS__<KEY>``, ``price_usd`` that of
    ``PRICE_USD__<KEY>``; ``default_for`` the kinds of job it is the bot's default model for."""

    key: str
    upstream_model: str
    kinds: frozenset[Kind]
    title: str
    blurb: str
    capabilities: Capabilities
    cost: int = 1
    default_for: frozenset[Kind] = frozenset()
    price_usd: float = 0.0  # the default of ``PRICE_USD__<KEY>``: what one job costs the operator upstream


@dataclass(frozen=True, slots=True)
class ProviderSpec(Generic[S]):
    """One provider: ``name`` is its settings block (``WAVESPEED__…``) and its key in the wiring; ``title`` heads
    its section of ``.env.example``. ``upstream`` picks a model's upstream id from the block when settings can
    change it."""

    name: str
    title: str
    settings: type[S]
    factory: Callable[[aiohttp.ClientSession, S], Provider]
    models: tuple[ModelSpec, ...]
    upstream: Callable[[ModelSpec, S], str] | None = field(default=None)

    def upstream_model(self, model: ModelSpec, block: S) -> str:
        return self.upstream(model, block) if self.upstream is not None else model.upstream_model


_registered: dict[str, ProviderSpec[Any]] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module_name in BUILTIN:
        register(importlib.import_module(module_name).SPEC)


def register(spec: ProviderSpec[Any]) -> None:
    """Add a provider after those registered so far. Its name and model keys must be new."""
    _load_builtins()
    if spec.name in _registered:
        raise ValueError(f"provider {spec.name!r} is already registered")
    taken = {model.key for other in _registered.values() for model in other.models}
    if clash := taken & {model.key for model in spec.models}:
        raise ValueError(f"model keys already registered: {sorted(clash)}")
    _registered[spec.name] = spec


def unregister(name: str) -> None:
    _load_builtins()
    del _registered[name]


@contextmanager
def registered(spec: ProviderSpec[Any]) -> Iterator[ProviderSpec[Any]]:
    """``spec`` registered for the duration of the block (tests)."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)


def specs() -> tuple[ProviderSpec[Any], ...]:
    _load_builtins()
    return tuple(_registered.values())


def get(name: str) -> ProviderSpec[Any]:
    _load_builtins()
    return _registered[name]
