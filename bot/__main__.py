"""``python -m bot`` runs the bot; ``python -m bot sync [--guild ID | --global]`` syncs the slash commands (to
DEV_GUILD_ID when it is set, unless told otherwise); ``python -m bot check`` validates the configuration;
``python -m bot migrate`` applies the database migrations; ``python -m bot copy-db --to URL`` copies the database
(DATABASE_URL, else DATABASE_PATH) into another, empty one; ``python -m bot backup PATH`` copies the database;
``python -m bot worker`` runs only the job engine (no gateway connection: it delivers through REST), next to shard
processes (SHARD_COUNT/SHARD_IDS) on one database.
Configuration problems end with one line and exit code 2."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import discord
from pydantic import ValidationError

from bot import log_redaction
from bot.catalogue import configured_model_keys
from bot.errors import ConfigError
from bot.ops.json_logs import JsonFormatter
from bot.settings import Settings
from bot.storage.database import redacted_url

log = logging.getLogger("bot")

EXIT_CONFIG = 2
STOP_TIMEOUT_S = 30.0


def load_settings() -> Settings:
    """Settings from the environment and ``.env``; a ``ConfigError`` naming the setting (never its value)."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = "__".join(str(part) for part in first["loc"]).upper() or "settings"
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ConfigError(setting, f"{first['msg']}{more}") from None


def require_token(settings: Settings) -> str:
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN", "not set. Put your bot token in .env (see .env.example).")
    return settings.discord_token.get_secret_value().strip()


def configure_logging(level: str, secrets: Sequence[str] = (), log_format: str = "text") -> None:
    """Log to stderr at ``level`` (as text, or one JSON object per line), with the noisy third-party loggers capped
    and ``secrets`` and tokens masked."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    log_redaction.install(secrets)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (the default): the gateway shards SHARD_IDS of SHARD_COUNT, and jobs")
    sub.add_parser("worker", help="run jobs and deliver them through REST, without a gateway connection")
    sync = sub.add_parser(
        "sync",
        help="register the slash commands with Discord, then exit",
        description="Register the slash commands: in DEV_GUILD_ID when it is set, else globally.",
    )
    where = sync.add_mutually_exclusive_group()
    where.add_argument("--guild", type=int, metavar="ID", help="sync to this server only (instant; for testing)")
    where.add_argument(
        "--global",
        dest="global_sync",
        action="store_true",
        help="sync globally (every server and DM) even when DEV_GUILD_ID is set",
    )
    sub.add_parser("check", help="validate the configuration and list the enabled models")
    sub.add_parser("migrate", help="apply the database migrations, then exit (the bot is not started)")
    copy = sub.add_parser(
        "copy-db",
        help="copy every row of the database into another, empty one (e.g. SQLite to PostgreSQL)",
        description="Copy jobs, outputs, steps, credits, ledger, limits, settings and audit into an empty database.",
    )
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://… or a SQLite path / sqlite:///…")
    copy.add_argument("--from", dest="source", metavar="URL", help="the source (default: DATABASE_URL/PATH)")
    backup = sub.add_parser(
        "backup",
        help="copy the SQLite database to PATH, safely while the bot runs",
        description="A consistent copy of DATABASE_PATH (SQLite's online backup). Restore: stop the bot, put the "
        "copy at DATABASE_PATH (remove any -wal and -shm files next to it), start the bot.",
    )
    backup.add_argument("path", help="where to write the copy (replaced if it exists)")
    return parser.parse_args(argv)


def sync_target(args: argparse.Namespace, settings: Settings) -> int | None:
    """The server ``sync`` registers the commands in (None: globally): ``--guild``, else globally with
    ``--global``, else DEV_GUILD_ID when set."""
    if getattr(args, "guild", None) is not None:
        return int(args.guild)
    if getattr(args, "global_sync", False):
        return None
    return settings.dev_guild_id


def check(settings: Settings) -> int:
    print("Configuration is valid.")
    print(f"  Discord API:   {settings.discord_api_base_url}")
    print(f"  Database:      {redacted_url(settings.database_target)}")
    print(f"  Bot token:     {'set' if settings.discord_token else 'MISSING (set DISCORD_TOKEN)'}")
    for name, block in settings.providers().items():
        state = "enabled" if block.enabled else "disabled (no API key)"
        print(f"  {name + ':':<15}{state}, {block.base_url}")
    print(f"  Callbacks:     {callbacks_line(settings)}")
    keys = configured_model_keys(settings)
    print(f"  Models:        {', '.join(keys) if keys else 'none: set at least one provider API key'}")
    packs = ", ".join(f"SKU {sku} = {credits}" for sku, credits in sorted(settings.credit_packs.items()))
    print(f"  Personal:      {settings.personal_daily_limit} credits a day")
    print(f"  Credit packs:  {packs or 'none'}")
    return 0 if settings.discord_token and keys else EXIT_CONFIG


def callbacks_line(settings: Settings) -> str:
    if settings.webhook_public_url is None:
        return "off: every job is polled (set WEBHOOK_PUBLIC_URL to receive providers' callbacks)"
    unsigned = [
        name.upper()
        for name, block in settings.providers().items()
        if block.enabled and "webhook_secret" in type(block).model_fields and not getattr(block, "webhook_secret", None)
    ]
    note = "".join(f"; {name} polled until {name}__WEBHOOK_SECRET is set" for name in unsigned)
    return f"{settings.webhook_public_url}/callbacks/... (HTTP_PORT {settings.http_port}){note}"


async def migrate(settings: Settings) -> int:
    from bot.storage.database import Database

    target = settings.database_target
    async with Database(target, pool_size=2) as database:
        print(f"Database {redacted_url(target)} is at migration {await database.schema_version()}.")
    return 0


async def copy_db(settings: Settings, to: str, source: str | None) -> int:
    from bot.storage.copy import TargetNotEmpty, copy_database
    from bot.storage.database import Database

    origin = source or settings.database_target
    async with Database(origin, pool_size=2) as src, Database(to, pool_size=2) as dst:
        try:
            copied = await copy_database(src, dst)
        except TargetNotEmpty as exc:
            print(f"copy-db refused: {exc}", file=sys.stderr)
            return 1
    print(f"Copied {redacted_url(origin)} to {redacted_url(to)}:")
    for table, count in copied.items():
        print(f"  {table:<15}{count}")
    return 0


def take_backup(settings: Settings, path: str) -> int:
    from bot.storage.backup import BackupError, backup
    from bot.storage.database import is_postgres, sqlite_path

    if is_postgres(settings.database_target):
        print("Backup failed: DATABASE_URL is a PostgreSQL database; back it up with pg_dump.", file=sys.stderr)
        return 1
    source = sqlite_path(settings.database_target)
    try:
        jobs = backup(source, Path(path))
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"Backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"Backed up {source} to {path} ({jobs} jobs).")
    return 0


async def run_bot(settings: Settings, *, sync: bool = False, guild_id: int | None = None, worker: bool = False) -> int:
    from bot.app import Bot
    from bot.runtime import open_services

    token = require_token(settings)
    # A one-off sync serves no health, metrics or callbacks: the running bot may hold HTTP_PORT.
    async with open_services(settings, serve_http=not sync) as services:
        bot = Bot(services, run_engine=not sync, **({} if sync or worker else settings.shard_options()))
        async with bot:
            if sync:
                await bot.login(token)
                return await sync_commands(bot, guild_id)
            if worker:
                # login() runs the setup hook (the engine starts); without connect() there is no gateway session.
                await bot.login(token)
                log.info("worker running: jobs only, no gateway connection")
                await _signalled().wait()
                log.info("shutting down")
                await bot.close()
                return 0
            return await _run_until_signal(bot, token)


async def sync_commands(bot: discord.Client, guild_id: int | None) -> int:
    tree = bot.tree  # type: ignore[attr-defined]
    if guild_id is None:
        synced = await tree.sync()
        print(f"Synced {len(synced)} global commands (they can take a while to appear everywhere).")
    else:
        guild = discord.Object(id=guild_id)
        tree.copy_global_to(guild=guild)
        for command in tree.get_commands(guild=guild):
            # Discord takes contexts and install types on global commands only.
            command.allowed_contexts = None
            command.allowed_installs = None
        synced = await tree.sync(guild=guild)
        print(f"Synced {len(synced)} commands to server {guild_id} (only there; `sync --global` for everywhere).")
    return 0


def _signalled() -> asyncio.Event:
    """Set on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _run_until_signal(bot: discord.Client, token: str) -> int:
    stop = _signalled()
    runner = asyncio.create_task(bot.start(token))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        log.info("shutting down")
        await bot.close()
        try:
            # A gateway connection stuck reconnecting may not notice the close: it does not hold the exit.
            await asyncio.wait_for(runner, timeout=STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the gateway connection did not stop within %.0f s; stopped it", STOP_TIMEOUT_S)
        return 0
    stopper.cancel()
    await runner
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, log_redaction.configured_secrets(settings), settings.log_format)
        for warning in settings.deprecations():
            log.warning("%s", warning)
        if args.command == "check":
            return check(settings)
        if args.command == "migrate":
            return asyncio.run(migrate(settings))
        if args.command == "copy-db":
            return asyncio.run(copy_db(settings, args.to, args.source))
        if args.command == "backup":
            return take_backup(settings, args.path)
        require_token(settings)
        sync = args.command == "sync"
        target = sync_target(args, settings) if sync else None
        return asyncio.run(run_bot(settings, sync=sync, guild_id=target, worker=args.command == "worker"))
    except ConfigError as exc:
        print(f"Configuration error: {exc.setting}: {exc.problem}", file=sys.stderr)
        return EXIT_CONFIG
    except discord.LoginFailure:
        print(
            "Configuration error: DISCORD_TOKEN was rejected by Discord. "
            "Copy a fresh token from the Developer Portal (Bot → Reset Token) into .env.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
