"""The server settings repository: every statement on ``guild_settings``, one row per server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from bot.server_settings.config import ServerConfig
from bot.storage.database import Connection, Database


def _config(guild_id: int, row: sqlite3.Row | None) -> ServerConfig:
    if row is None:
        return ServerConfig(guild_id=guild_id)
    enabled = json.loads(row["enabled_models"]) if row["enabled_models"] is not None else None
    return ServerConfig(
        guild_id=guild_id,
        default_limit=row["default_limit"],
        default_model=row["default_model"],
        enabled_models=frozenset(enabled) if enabled is not None else None,
        nsfw_policy=row["nsfw_policy"],
        allowed_channels=frozenset(json.loads(row["allowed_channels"])),
        moderator_roles=frozenset(json.loads(row["moderator_roles"])),
        banned_words=tuple(json.loads(row["banned_words"])),
        completion_ping=bool(row["completion_ping"]),
    )


def _sorted_json(values: Iterable[Any] | None) -> str | None:
    return None if values is None else json.dumps(sorted(values))


class ServerSettingsRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, guild_id: int, *, conn: Connection | None = None) -> ServerConfig:
        """The server's settings (the defaults when it has no row)."""
        row = await self._db.fetch_one_in(conn, "SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return _config(guild_id, row)

    async def default_limit(self, guild_id: int, *, conn: Connection | None = None) -> int | None:
        row = await self._db.fetch_one_in(
            conn, "SELECT default_limit FROM guild_settings WHERE guild_id = ?", (guild_id,)
        )
        return int(row[0]) if row is not None and row[0] is not None else None

    async def save(self, conn: Connection, config: ServerConfig, *, now: float) -> None:
        """Write every setting of the server."""
        await conn.execute(
            """
            INSERT INTO guild_settings (guild_id, default_limit, default_model, enabled_models, nsfw_policy,
                allowed_channels, moderator_roles, banned_words, completion_ping, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (guild_id) DO UPDATE SET
                default_limit = excluded.default_limit, default_model = excluded.default_model,
                enabled_models = excluded.enabled_models, nsfw_policy = excluded.nsfw_policy,
                allowed_channels = excluded.allowed_channels, moderator_roles = excluded.moderator_roles,
                banned_words = excluded.banned_words, completion_ping = excluded.completion_ping,
                updated_at = excluded.updated_at
            """,
            (
                config.guild_id,
                config.default_limit,
                config.default_model,
                _sorted_json(config.enabled_models),
                config.nsfw_policy,
                _sorted_json(config.allowed_channels),
                _sorted_json(config.moderator_roles),
                json.dumps(list(config.banned_words)),
                int(config.completion_ping),
                now,
            ),
        )

    async def set_default_limit(self, conn: Connection, guild_id: int, credits: int | None, *, now: float) -> None:
        """Only the default limit, leaving the other settings as they are."""
        await conn.execute(
            """INSERT INTO guild_settings (guild_id, default_limit, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (guild_id) DO UPDATE SET
                   default_limit = excluded.default_limit, updated_at = excluded.updated_at""",
            (guild_id, credits, now),
        )
