"""The docker-compose files (no Docker engine needed): the single-process start stays one service; the sharded
deployment has PostgreSQL, two shard processes covering every shard, a worker and the REST proxy, and every
setting it passes is one the bot reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.__main__ import parse_args
from bot.settings import Settings
from tests.test_settings import setting_names

ROOT = Path(__file__).resolve().parents[1]


def compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def bot_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: service for name, service in services.items() if service.get("image") == "genbot:latest"}


def test_the_single_process_start_is_one_service_on_sqlite():
    services = compose("docker-compose.yml")["services"]
    assert list(services) == ["bot"]
    assert "environment" not in services["bot"]  # .env only: DATABASE_PATH on the volume, no shards


def test_the_sharded_deployment_references_existing_settings_and_covers_every_shard():
    services = compose("docker-compose.scale.yml")["services"]
    bots = bot_services(services)
    assert sorted(bots) == ["shard-0", "shard-1", "worker"]
    known = setting_names()
    placeholder = re.compile(r"\$\{(\w+):-([^}]*)\}")
    shards: list[int] = []
    for name, service in bots.items():
        environment = {key: placeholder.sub(r"\2", str(value)) for key, value in service["environment"].items()}
        assert set(environment) <= known, (name, set(environment) - known)
        command = parse_args(service["command"]).command
        assert command == ("worker" if name == "worker" else "run")
        settings = Settings(_env_file=None, discord_token="x", **{k.lower(): v for k, v in environment.items()})  # type: ignore[arg-type]
        assert settings.database_target.startswith("postgresql://")
        assert urlsplit(settings.database_target).hostname in services
        assert services[urlsplit(settings.database_target).hostname]["image"].startswith("postgres:")
        proxy = urlsplit(settings.discord_api_base_url)
        assert proxy.hostname in services
        assert "nirn-proxy" in services[proxy.hostname]["image"]
        assert proxy.path == "/api/v10"
        assert {"postgres", proxy.hostname} <= set(service["depends_on"])
        assert service["volumes"] == ["bot-data:/data"]  # one shared outputs volume
        if command == "run":
            options = settings.shard_options()
            assert options["shard_count"] == 2
            shards += options["shard_ids"]
    assert sorted(shards) == [0, 1]  # every shard connected by exactly one process
