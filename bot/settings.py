"""All configuration, read from the environment and an optional ``.env`` file.

Every field here has a line in ``.env.example`` (a test keeps the two in sync). Nested blocks use ``__``:
``WAVESPEED__API_KEY``. Secrets are ``SecretStr`` and never appear in reprs, logs or errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, create_model, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from providers import registry
from providers.registry import ProviderSettings, ProviderSpec

__all__ = ["CoreSettings", "CostSettings", "NsfwPolicy", "ProviderSettings", "Settings", "settings_model"]

NsfwPolicy = Literal["block", "spoiler", "age_restricted"]


class CostSettings(BaseModel):
    """Credits each model key costs per job: one field per registered model (``COSTS__NETA_LUMINA``)."""

    def for_model(self, key: str) -> int:
        return int(getattr(self, key.replace("-", "_")))


class CoreSettings(BaseSettings):
    """Everything but the providers' blocks and the costs, which ``settings_model`` adds from the registry."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    discord_token: SecretStr | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    database_path: Path = Path("data/bot.sqlite3")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    dev_guild_id: int | None = None  # `python -m bot sync` registers the commands only here (instant), unless --global
    operator_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    # The job engine
    poll_workers: int = Field(8, ge=1, le=256)
    image_deadline_s: float = Field(600.0, gt=0)
    video_deadline_s: float = Field(2700.0, gt=0)
    edit_min_interval_s: float = Field(2.0, ge=0)
    queue_edit_interval_s: float = Field(10.0, ge=0)
    token_margin_s: float = Field(60.0, ge=0, le=600)
    completion_ping_after_s: float = Field(60.0, ge=0)
    output_dir: Path = Path("data/outputs")
    output_retention_days: float = Field(7.0, gt=0)
    fetch_max_bytes: int = Field(200 * 1024 * 1024, gt=0)
    fetch_timeout_s: float = Field(120.0, gt=0)
    allow_private_network_fetch: bool = False
    attachment_max_bytes: int = Field(20 * 1024 * 1024, gt=0)
    attachment_max_side_px: int = Field(8192, gt=0)
    prompt_max_length: int = Field(1500, ge=1, le=6000)

    # Credits
    daily_credits: int = Field(25, ge=0)
    quota_reset_hour_utc: int = Field(0, ge=0, le=23)
    max_running_jobs_per_user: int = Field(3, ge=1)
    costs: CostSettings = CostSettings()
    default_nsfw_policy: NsfwPolicy = "age_restricted"

    @field_validator("operator_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(",", " ").split())
        return value

    @field_validator("discord_token", mode="before")
    @classmethod
    def _blank_token_is_missing(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("discord_api_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def providers(self) -> dict[str, ProviderSettings]:
        """Each provider's block by name, in registry order."""
        return {name: value for name, value in self if isinstance(value, ProviderSettings)}


def settings_model(specs: Iterable[ProviderSpec[Any]] | None = None) -> type[CoreSettings]:
    """The settings class for these providers (default: those registered now): the core settings, one nested
    block per provider (``WAVESPEED__API_KEY``) and one cost per model (``COSTS__NETA_LUMINA``)."""
    chosen = tuple(registry.specs() if specs is None else specs)
    per_model: dict[str, Any] = {
        model.key.replace("-", "_"): (int, Field(model.cost, ge=0)) for spec in chosen for model in spec.models
    }
    costs = create_model("CostSettings", __base__=CostSettings, __module__=__name__, **per_model)
    blocks: dict[str, Any] = {spec.name: (spec.settings, Field(default_factory=spec.settings)) for spec in chosen}
    return create_model(
        "Settings", __base__=CoreSettings, __module__=__name__, costs=(costs, Field(default_factory=costs)), **blocks
    )


if TYPE_CHECKING:
    Settings = CoreSettings
else:
    Settings = settings_model()
