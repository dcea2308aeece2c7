"""Settings: .env.example lists every setting, nested blocks, secrets, and the command line's exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_origin

import pytest
from pydantic import BaseModel

from bot import env_example
from bot.settings import Settings, settings_model
from providers import registry
from tests.toy.provider import SPEC as TOY

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")
NUMBERED_KEY = re.compile(r"__\d+$")


def listed_name(match: re.Match[str]) -> str:
    """A listed setting's name, the key of a dict setting (a number) generalised to ``<ID>``."""
    return NUMBERED_KEY.sub("__<ID>", match.group(1))


def setting_names(model: type[BaseModel] = Settings, prefix: str = "") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_names(annotation, f"{prefix}{name.upper()}__")
        elif get_origin(annotation) is dict:  # one line per key, e.g. CREDIT_PACKS__<sku id>
            names.add(f"{prefix}{name.upper()}__<ID>")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def example_lines() -> list[str]:
    return (ROOT / ".env.example").read_text().splitlines()


def test_env_example_lists_every_setting_and_nothing_else():
    listed = {listed_name(m) for line in example_lines() if (m := ASSIGNMENT.match(line))}
    assert listed == setting_names()


def test_env_example_provider_sections_are_generated_from_the_registry():
    text = "\n".join(example_lines()) + "\n"
    assert env_example.render(text) == text, "run `python -m bot.env_example` to regenerate it"


def test_a_registered_provider_gets_its_env_example_section_with_every_setting():
    with registry.registered(TOY):
        text = env_example.render("\n".join(example_lines()))
        names = setting_names(settings_model())
    listed = {listed_name(m) for line in text.splitlines() if (m := ASSIGNMENT.match(line))}
    assert listed == names
    assert {"TOY__API_KEY", "TOY__CRAYON", "TOY__BASE_URL", "COSTS__TOY_SKETCH"} <= listed
    assert "# TOY__CRAYON=red" in text
    assert "# COSTS__TOY_SKETCH=2" in text
    assert_every_assignment_has_a_comment(text.splitlines())


def test_every_setting_in_env_example_has_a_comment_above_it():
    assert_every_assignment_has_a_comment(example_lines())


def assert_every_assignment_has_a_comment(lines: list[str]) -> None:
    for i, line in enumerate(lines):
        if ASSIGNMENT.match(line):
            above = lines[i - 1]
            assert above.startswith("# "), f"no comment above {line!r}"
            assert not ASSIGNMENT.match(above), f"no comment above {line!r}"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not ASSIGNMENT.match(f"{k.upper()}=")}
    env.update(extra)
    return env


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nested_provider_settings_and_secret_reprs(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WAVESPEED__API_KEY", "ws-secret-key")
    monkeypatch.setenv("LUMA_AGENTS__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DISCORD_TOKEN", "tok.en.secret")
    monkeypatch.setenv("OPERATOR_USER_IDS", "1, 2 3")
    monkeypatch.setenv("COSTS__UNI_1_MAX", "5")
    settings = Settings()
    assert settings.wavespeed.api_key is not None
    assert settings.wavespeed.api_key.get_secret_value() == "ws-secret-key"
    assert settings.wavespeed.enabled
    assert not settings.lumozai.enabled
    assert settings.luma_agents.base_url == "http://127.0.0.1:9/v1"
    assert settings.operator_user_ids == {1, 2, 3}
    assert settings.costs.for_model("uni-1-max") == 5
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "ws-secret-key" not in text
        assert "tok.en.secret" not in text


def test_shard_settings_become_the_auto_sharded_bot_keywords(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Settings(_env_file=None).shard_options() == {}  # type: ignore[call-arg]
    monkeypatch.setenv("SHARD_COUNT", "4")
    assert Settings(_env_file=None).shard_options() == {"shard_count": 4, "shard_ids": [0, 1, 2, 3]}  # type: ignore[call-arg]
    monkeypatch.setenv("SHARD_IDS", "3, 1")
    assert Settings(_env_file=None).shard_options() == {"shard_count": 4, "shard_ids": [1, 3]}  # type: ignore[call-arg]


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("DISCORD_TOKEN=abc\nLUMOZAI__API_KEY=lz\nQUOTA_RESET_HOUR_UTC=6\n")
    settings = Settings()
    assert settings.lumozai.enabled
    assert settings.quota_reset_hour_utc == 6


def test_no_token_is_one_clear_line_and_exit_2(tmp_path):
    result = run_cli(tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DISCORD_TOKEN: not set. Put your bot token in .env (see .env.example)."
    ]


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"WAVESPEED__MAX_CONCURRENCY": "0"}, "WAVESPEED__MAX_CONCURRENCY"),
        ({"QUOTA_RESET_HOUR_UTC": "25"}, "QUOTA_RESET_HOUR_UTC"),
        ({"DISCORD_API_BASE_URL": "discord.com"}, "DISCORD_API_BASE_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"SHARD_IDS": "0,1"}, "SHARD_IDS"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "2"}, "SHARD_IDS"),
        ({"CREDIT_PACKS__1234567890123456789": "-5"}, "CREDIT_PACKS__1234567890123456789"),
        ({"CREDIT_PACKS__1234567890123456789": "many"}, "CREDIT_PACKS__1234567890123456789"),
        ({"PERSONAL_DAILY_LIMIT": "-1"}, "PERSONAL_DAILY_LIMIT"),
        ({"WEBHOOK_PUBLIC_URL": "http://bot.example.com", "HTTP_PORT": "8080"}, "WEBHOOK_PUBLIC_URL"),
        ({"WEBHOOK_PUBLIC_URL": "https://bot.example.com"}, "WEBHOOK_PUBLIC_URL"),
        ({"WEBHOOK_PUBLIC_URL": "https://bot.example.com/?k=v", "HTTP_PORT": "8080"}, "WEBHOOK_PUBLIC_URL"),
    ],
)
def test_bad_setting_names_the_setting_without_values_or_traceback(tmp_path, env, setting):
    result = run_cli(tmp_path, DISCORD_TOKEN="super-secret-token", WAVESPEED__API_KEY="sk-hidden", **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Configuration error: {setting}: ")
    assert "Traceback" not in result.stderr
    for secret in ("super-secret-token", "sk-hidden", *env.values()):
        assert secret not in result.stderr + result.stdout


def test_check_lists_models_without_secrets(tmp_path):
    result = run_cli(tmp_path, "check", DISCORD_TOKEN="super-secret-token", LUMA_AGENTS__API_KEY="luma-api-hidden")
    assert result.returncode == 0, result.stderr
    assert "Models:        uni-1, uni-1-max" in result.stdout
    assert "Credit packs:  none" in result.stdout
    assert "super-secret-token" not in result.stdout + result.stderr
    assert "luma-api-hidden" not in result.stdout + result.stderr


def test_check_says_where_callbacks_go_and_which_provider_is_still_polled(tmp_path):
    env = {"DISCORD_TOKEN": "t", "WAVESPEED__API_KEY": "k", "HTTP_PORT": "8080"}
    off = run_cli(tmp_path, "check", **env)
    assert "Callbacks:     off: every job is polled" in off.stdout
    on = run_cli(tmp_path, "check", WEBHOOK_PUBLIC_URL="https://bot.example.com/", **env)
    assert on.returncode == 0, on.stderr
    assert "Callbacks:     https://bot.example.com/callbacks/... (HTTP_PORT 8080)" in on.stdout
    assert "WAVESPEED polled until WAVESPEED__WEBHOOK_SECRET is set" in on.stdout
    signed = run_cli(
        tmp_path, "check", WEBHOOK_PUBLIC_URL="https://bot.example.com", WAVESPEED__WEBHOOK_SECRET="whsec_hidden", **env
    )
    assert "polled until" not in signed.stdout
    assert "whsec_hidden" not in signed.stdout + signed.stderr
    local = run_cli(tmp_path, "check", WEBHOOK_PUBLIC_URL="http://127.0.0.1:8080", **env)
    assert local.returncode == 0, local.stderr


def test_check_without_any_model_fails(tmp_path):
    result = run_cli(tmp_path, "check", DISCORD_TOKEN="t")
    assert result.returncode == 2
    assert "none: set at least one provider API key" in result.stdout


def test_check_lists_the_credit_packs(tmp_path):
    result = run_cli(
        tmp_path,
        "check",
        DISCORD_TOKEN="super-secret-token",
        LUMA_AGENTS__API_KEY="luma-api-hidden",
        CREDIT_PACKS__1234567890123456789="500",
        PERSONAL_DAILY_LIMIT="7",
    )
    assert result.returncode == 0, result.stderr
    assert "Personal:      7 credits a day" in result.stdout
    assert "Credit packs:  SKU 1234567890123456789 = 500" in result.stdout
