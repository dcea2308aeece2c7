"""All configuration, read from the environment and an optional ``.env`` file.

Every field here has a line in ``.env.example`` (a test keeps the two in sync). Nested blocks use ``__``:
``WAVESPEED__API_KEY``. Secrets are ``SecretStr`` and never appear in reprs, logs or errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

NsfwPolicy = Literal["block", "spoiler", "age_restricted"]


class ProviderSettings(BaseModel):
    """One upstream API. The provider's models are offered only when ``api_key`` is set."""

    api_key: SecretStr | None = None
    base_url: str
    max_concurrency: int = Field(4, ge=1, description="upstream jobs running at once; more wait in the bot's queue")
    requests_per_minute: int = Field(60, ge=1, description="submissions and polls per minute")
    first_poll_s: float | None = Field(
        None, gt=0, description="first poll this long after submission; default: 3/4 of the model's typical time"
    )
    poll_interval_s: float = Field(3.0, gt=0, description="then poll this often")
    max_poll_interval_s: float = Field(60.0, gt=0, description="cap of the backoff on transient errors")
    submit_timeout_s: float = Field(60.0, gt=0)
    poll_timeout_s: float = Field(30.0, gt=0)

    @property
    def enabled(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value().strip())


class WaveSpeedSettings(ProviderSettings):
    base_url: str = "https://api.wavespeed.ai"
    max_concurrency: int = Field(3, ge=1)
    requests_per_minute: int = Field(120, ge=1)
    poll_interval_s: float = Field(2.0, gt=0)


class LumaAgentsSettings(ProviderSettings):
    base_url: str = "https://agents.lumalabs.ai/v1"
    max_concurrency: int = Field(4, ge=1)
    poll_interval_s: float = Field(3.0, gt=0)


class LumaResellerSettings(ProviderSettings):
    base_url: str = "https://api.ephone.ai"
    max_concurrency: int = Field(2, ge=1)
    poll_interval_s: float = Field(8.0, gt=0)
    model_name: str | None = Field(None, description="sent as model_name (e.g. ray-v2) when the relay takes one")


class LumozaiSettings(ProviderSettings):
    base_url: str = "https://lumozai.com"
    max_concurrency: int = Field(2, ge=1)
    poll_interval_s: float = Field(5.0, gt=0)
    submit_timeout_s: float = Field(180.0, gt=0)
    check_path: str = "/api/v4/check"


class CostSettings(BaseModel):
    """Credits each model key costs per job."""

    neta_lumina: int = Field(1, ge=0)
    uni_1: int = Field(1, ge=0)
    uni_1_max: int = Field(3, ge=0)
    kawaii_3d: int = Field(1, ge=0)
    luma_video: int = Field(10, ge=0)

    def for_model(self, key: str) -> int:
        return int(getattr(self, key.replace("-", "_")))


class Settings(BaseSettings):
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

    wavespeed: WaveSpeedSettings = WaveSpeedSettings()
    luma_agents: LumaAgentsSettings = LumaAgentsSettings()
    luma_reseller: LumaResellerSettings = LumaResellerSettings()
    lumozai: LumozaiSettings = LumozaiSettings()

    # The job engine
    poll_workers: int = Field(8, ge=1, le=256)
    engine_download_concurrency: int = Field(4, ge=1, le=256)
    engine_discord_concurrency: int = Field(8, ge=1, le=256)
    engine_lease_s: float = Field(30.0, ge=1, le=3600)
    engine_idle_s: float = Field(2.0, gt=0, le=3600)
    engine_sweep_interval_s: float = Field(30.0, gt=0, le=86400)
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

    # What downloads may reach (the fetcher always refuses private, link-local, metadata and reserved addresses)
    allow_loopback_fetch: bool = False  # loopback only, for local set-ups and tests
    attachment_hosts: Annotated[frozenset[str], NoDecode] = frozenset({"cdn.discordapp.com", "media.discordapp.net"})

    @field_validator("attachment_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.lower() for part in value.replace(",", " ").split())
        return value

    @property
    def loopback_fetch_allowed(self) -> bool:
        """ALLOW_LOOPBACK_FETCH, or its deprecated predecessor ALLOW_PRIVATE_NETWORK_FETCH (now loopback only)."""
        return self.allow_loopback_fetch or self.allow_private_network_fetch

    def deprecations(self) -> list[str]:
        """Warnings about settings that still work but changed meaning, for the log at start."""
        if self.allow_private_network_fetch:
            return [
                "ALLOW_PRIVATE_NETWORK_FETCH is deprecated and now allows loopback addresses only (private, "
                "link-local and metadata addresses are always refused); set ALLOW_LOOPBACK_FETCH instead."
            ]
        return []

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
        return {
            "wavespeed": self.wavespeed,
            "luma_agents": self.luma_agents,
            "luma_reseller": self.luma_reseller,
            "lumozai": self.lumozai,
        }
