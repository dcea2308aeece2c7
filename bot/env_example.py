"""``.env.example``: the core settings are written by hand above ``MARKER``; everything below it (one section
per provider, then the model costs) is generated from the providers' registry. ``python -m bot.env_example``
rewrites that part; a test fails while the file is out of date."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from providers import registry
from providers.registry import ProviderSettings, ProviderSpec

MARKER = "# ================ Generated from the provider modules by `python -m bot.env_example`: edit those, not this."
_RULE = "# ----------------------------------------------------------------"


def render(text: str, specs: Iterable[ProviderSpec[Any]] | None = None) -> str:
    """``text`` (an ``.env.example``) with its generated part replaced; appended when it has none yet."""
    chosen = tuple(registry.specs() if specs is None else specs)
    head = text.split(MARKER, 1)[0].rstrip("\n")
    sections = [_provider_section(spec) for spec in chosen] + [_cost_section(chosen), _spending_section(chosen)]
    return "\n\n".join([head, MARKER, *sections]) + "\n"


def _provider_section(spec: ProviderSpec[Any]) -> str:
    keys = ", ".join(model.key for model in spec.models)
    lines = [f"{_RULE} {spec.title} ({keys})"]
    for name, field in _ordered_fields(spec.settings):
        description = field.description or ProviderSettings.model_fields[name].description
        if not description:
            raise ValueError(f"{spec.settings.__name__}.{name} needs a description: it is its .env.example comment")
        setting = f"{spec.name}__{name}".upper()
        if field.annotation is not None and SecretStr in getattr(field.annotation, "__args__", (field.annotation,)):
            assignment = f"{setting}="
        else:
            assignment = f"# {setting}={_value(field.default)}"
        lines += [f"# {description}", assignment]
    return "\n".join(lines)


def _ordered_fields(settings: type[ProviderSettings]) -> list[tuple[str, FieldInfo]]:
    """The key and base URL first, then the provider's own fields, then the ones every provider has."""
    fields = settings.model_fields
    first = ["api_key", "base_url"]
    own = [name for name in fields if name not in ProviderSettings.model_fields]
    shared = [name for name in fields if name not in first and name not in own]
    return [(name, fields[name]) for name in (*first, *own, *shared)]


def _cost_section(specs: Iterable[ProviderSpec[Any]]) -> str:
    lines = [f"{_RULE} Credits per job of each model"]
    for spec in specs:
        for model in spec.models:
            lines += [f"# Credits per {model.key} job.", f"# COSTS__{model.key.replace('-', '_').upper()}={model.cost}"]
    return "\n".join(lines)


def _spending_section(specs: Iterable[ProviderSpec[Any]]) -> str:
    lines = [f"{_RULE} Spending: each model's price upstream (USD per job) and each provider's daily cap"]
    for spec in specs:
        for model in spec.models:
            key = model.key.replace("-", "_").upper()
            lines += [f"# USD one {model.key} job costs upstream.", f"# PRICE_USD__{key}={_value(model.price_usd)}"]
    for spec in specs:
        lines += [
            f"# Daily cap in USD (UTC day) on {spec.title}: its new jobs are refused once reached. Unset: no cap.",
            f"# BUDGET_USD_PER_DAY__{spec.name.upper()}=",
        ]
    return "\n".join(lines)


def _value(default: object) -> str:
    if default is None:
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else ".env.example")
    path.write_text(render(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
