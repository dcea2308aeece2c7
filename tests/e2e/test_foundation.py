"""The bot as an operator runs it: `python -m bot`, `sync`, a rejected token, SIGTERM, and /help."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import bot_running

ROOT = Path(__file__).resolve().parents[2]
DEV_GUILD = 1_200_000_000_000_000_700
OTHER_GUILD = 1_200_000_000_000_000_800


def cli_env(tmp_path: Path, fake_discord, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "WAVESPEED", "LUMA", "LUMOZAI", "DEV_GUILD_ID"))
    }
    env.update(
        {
            "DISCORD_TOKEN": fake_discord.token,
            "DISCORD_API_BASE_URL": fake_discord.api_base,
            "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
            "OUTPUT_DIR": str(tmp_path / "outputs"),
            "LUMA_AGENTS__API_KEY": "luma-api-test-key",
            "LUMA_AGENTS__BASE_URL": "http://127.0.0.1:9/v1",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return env


async def run_cli(tmp_path, fake_discord, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env=cli_env(tmp_path, fake_discord, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, stdout.decode(), stderr.decode()


async def test_sync_registers_a_valid_command_list_on_request(tmp_path, fake_discord):
    guild = 1200000000000000200
    code, out, err = await run_cli(tmp_path, fake_discord, "sync", "--guild", str(guild))
    assert code == 0, err
    assert out.startswith("Synced ")
    names = {command["name"] for command in fake_discord.commands[guild]}
    assert {"help", "imagine", "edit", "video"} <= names
    puts = fake_discord.requests_to("PUT", rf"/applications/\d+/guilds/{guild}/commands")
    assert len(puts) == 1
    imagine = next(c for c in puts[0].json if c["name"] == "imagine")
    options = {o["name"]: o for o in imagine["options"]}
    assert options["prompt"]["required"] is True
    assert options["reference"]["type"] == 11
    assert options["model"]["autocomplete"] is True


async def test_sync_works_while_the_running_bot_holds_the_http_port(tmp_path, fake_discord):
    with socket.socket() as taken:  # the running bot's health, metrics and callbacks
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run_cli(
            tmp_path, fake_discord, "sync", "--guild", "1200000000000000200", HTTP_HOST="127.0.0.1", HTTP_PORT=str(port)
        )
    assert code == 0, err
    assert out.startswith("Synced ")


@pytest.mark.parametrize(
    ("dev_guild", "args", "target"),
    [
        (None, [], None),  # globally
        (DEV_GUILD, [], DEV_GUILD),  # DEV_GUILD_ID: instant, for testing
        (DEV_GUILD, ["--global"], None),
        (DEV_GUILD, ["--guild", str(OTHER_GUILD)], OTHER_GUILD),
    ],
)
async def test_sync_goes_to_dev_guild_id_unless_told_otherwise(tmp_path, fake_discord, dev_guild, args, target):
    env = {"DEV_GUILD_ID": str(dev_guild)} if dev_guild else {}
    code, out, err = await run_cli(tmp_path, fake_discord, "sync", *args, **env)
    assert code == 0, err
    [put] = fake_discord.requests_to("PUT", r"/applications/.*")
    assert re.search(
        rf"/applications/\d+/guilds/{target}/commands$" if target else r"/applications/\d+/commands$", put.path
    )
    assert set(fake_discord.commands) == {target}
    assert {"help", "imagine"} <= {command["name"] for command in fake_discord.commands[target]}
    assert out.startswith("Synced ")
    assert (f"to server {target}" in out) is (target is not None)


async def test_sync_refuses_both_guild_and_global(tmp_path, fake_discord):
    code, _, err = await run_cli(tmp_path, fake_discord, "sync", "--global", "--guild", str(OTHER_GUILD))
    assert code == 2
    assert "not allowed with argument" in err
    assert not fake_discord.requests_to("PUT", r"/applications/.*")


async def test_running_does_not_sync_commands(tmp_path, fake_discord):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=cli_env(tmp_path, fake_discord),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(fake_discord.ready.wait(), timeout=30)
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert "shutting down" in stderr.decode()
    assert not fake_discord.requests_to("PUT", r"/applications/.*")


async def test_a_rejected_token_is_one_line_and_exit_2(tmp_path, fake_discord):
    code, out, err = await run_cli(tmp_path, fake_discord, DISCORD_TOKEN="not-the-token")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("Configuration error: DISCORD_TOKEN was rejected by Discord.")
    assert "Traceback" not in err
    assert "not-the-token" not in out + err
    fake_discord.violations.clear()


async def test_help_is_answered_within_three_seconds_and_lists_the_models(fake_discord, settings):
    async with bot_running(settings, fake_discord):
        record = await fake_discord.dispatch(fake_discord.slash_command("help", {}))
        reply = await fake_discord.wait_for(
            lambda r: r.interaction_token == record.token and r.method == "PATCH", timeout=5
        )
    callback = fake_discord.requests_for(record.token)[0]
    assert callback.json == {"type": 5, "data": {"flags": 64}}
    assert (callback.received_at - record.created_at).total_seconds() < 3
    embed = reply.json["embeds"][0]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert "`neta-lumina`" in fields["Models enabled here"]
    assert "`/imagine`" in fields["Commands"]
    assert "Credits" in fields


async def test_global_sync_offers_the_commands_in_servers_dms_and_user_installs(tmp_path, fake_discord):
    code, _, err = await run_cli(tmp_path, fake_discord, "sync")
    assert code == 0, err
    commands = {command["name"]: command for command in fake_discord.commands[None]}
    for name in ("help", "imagine", "edit", "video", "quota", "history", "job"):
        assert commands[name]["contexts"] == [0, 1, 2]
        assert commands[name]["integration_types"] == [0, 1]
    for name in ("quota-admin", "server-settings"):  # the moderators' commands: servers that installed the bot
        assert commands[name]["contexts"] == [0]
        assert commands[name]["integration_types"] == [0]


async def test_an_unexpected_error_is_an_ephemeral_reference_logged_with_its_traceback(
    fake_discord, settings, caplog, monkeypatch
):
    async with bot_running(settings, fake_discord) as bot:

        async def broken(guild_id):
            raise RuntimeError("database on fire")

        monkeypatch.setattr(bot.services.server_settings, "get", broken)
        with caplog.at_level("ERROR", logger="bot.render.replies"):
            record = await fake_discord.dispatch(fake_discord.slash_command("help", {}))
            reply = await fake_discord.wait_for(
                lambda r: r.interaction_token == record.token and r.method == "PATCH", timeout=5
            )
    text = reply.json["content"]
    assert text.startswith("Something went wrong on our side (ref `")
    ref = text.split("`")[1]
    assert "database on fire" not in text
    logged = [r for r in caplog.records if ref in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None


async def test_no_secret_reaches_the_logs_even_at_debug(fake_discord, fakes, tmp_path, caplog):
    from tests.e2e.harness import delivered, e2e_settings, latest_job_id

    settings = e2e_settings(tmp_path, fake_discord, fakes, log_level="DEBUG")
    secrets = [fake_discord.token, *(fake.api_key for fake in fakes.all())]
    with caplog.at_level("DEBUG"):
        async with bot_running(settings, fake_discord) as bot:
            record = await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat"}))
            await delivered(bot, await latest_job_id(bot))
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("bot", "providers", "cogs")]
    assert ours
    text = "\n".join(r.getMessage() for r in ours)
    for secret in [*secrets, record.token]:
        assert secret not in text
    for item in bot.services.providers.values():
        assert all(secret not in repr(item) for secret in secrets)
    assert fake_discord.token not in repr(settings)
