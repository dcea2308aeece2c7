"""Reading and changing a server's settings. Reads are cached briefly; this service is the only writer of the
settings, so it keeps its cache fresh itself. Every change is audited in its transaction."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bot.clock import shared_clock
from bot.server_settings.config import DM_CONFIG, ServerConfig
from bot.storage.audit import AuditAction, audited_change
from bot.storage.database import Connection, Database
from bot.storage.server_settings import ServerSettingsRepository

CACHE_TTL_S = 30.0


def _changed(before: ServerConfig, after: ServerConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The audit's before and after: only the settings that changed."""
    old, new = before.as_audit_dict(), after.as_audit_dict()
    changed = sorted(k for k in new if old[k] != new[k])
    return {k: old[k] for k in changed}, {k: new[k] for k in changed}


class ServerSettingsService:
    def __init__(self, database: Database, *, clock: Callable[[], float] = shared_clock) -> None:
        self._db = database
        self._repo = ServerSettingsRepository(database)
        self._clock = clock
        self._cache: dict[int, tuple[float, ServerConfig]] = {}

    async def get(self, guild_id: int | None) -> ServerConfig:
        if not guild_id:
            return DM_CONFIG
        cached = self._cache.get(guild_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_TTL_S:
            return cached[1]
        config = await self._repo.get(guild_id)
        self._cache[guild_id] = (now, config)
        return config

    def forget(self, guild_id: int) -> None:
        """Drop a server's cached settings, so the next read sees the database (written by another process)."""
        self._cache.pop(guild_id, None)

    async def update(
        self, guild_id: int, *, actor_id: int, reason: str | None = None, **changes: Any
    ) -> tuple[ServerConfig, ServerConfig]:
        """Apply ``changes`` (ServerConfig field names) and audit them; returns (before, after).

        A change is the new value, or a function of the field's current value that returns the new one (or raises
        to refuse, changing nothing). Functions run inside the write transaction, on the stored settings, so
        changes made at the same time (two moderators adding a channel each) are never lost.
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(ServerConfig)} - {"guild_id"}
        if unknown:
            raise ValueError(f"unknown server settings: {sorted(unknown)}")
        now = self._clock()

        async def read(conn: Connection) -> ServerConfig:
            return await self._repo.get(guild_id, conn=conn)

        async def write(conn: Connection, before: ServerConfig) -> ServerConfig:
            values = {  # no setting's value is callable: a callable is always a change function
                name: change(getattr(before, name)) if callable(change) else change for name, change in changes.items()
            }
            after = dataclasses.replace(before, **values)
            await self._repo.save(conn, after, now=now)
            return after

        action = AuditAction("server-settings", guild_id, actor_id, reason)
        before, after = await audited_change(self._db, action, now=now, read=read, write=write, describe=_changed)
        self._cache[guild_id] = (time.monotonic(), after)
        return before, after

    async def set_default_limit(
        self, guild_id: int, credits: int | None, *, actor_id: int, reason: str | None = None
    ) -> tuple[int | None, int | None]:
        """The server's default daily limit (None: the operator's global default), audited as ``server-default``;
        returns (before, after). Credit rules (the range) are the caller's."""
        now = self._clock()

        async def read(conn: Connection) -> int | None:
            return await self._repo.default_limit(guild_id, conn=conn)

        async def write(conn: Connection, before: int | None) -> int | None:
            await self._repo.set_default_limit(conn, guild_id, credits, now=now)
            return credits

        before, after = await audited_change(
            self._db,
            AuditAction("server-default", guild_id, actor_id, reason),
            now=now,
            read=read,
            write=write,
            describe=lambda old, new: ({"default_limit": old}, {"default_limit": new}),
        )
        self.forget(guild_id)
        return before, after
