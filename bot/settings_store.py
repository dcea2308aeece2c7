"""Per-server settings: default model, enabled models, NSFW policy, allowed channels, moderator roles, banned
words and the completion ping. Reads are cached briefly; every change is audited in the same transaction."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, get_args

from bot.settings import NsfwPolicy
from bot.storage.audit import AuditEntry, write_audit
from bot.storage.database import Database, fetch_one

CACHE_TTL_S = 30.0
NSFW_POLICIES: tuple[str, ...] = get_args(NsfwPolicy)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    guild_id: int
    default_limit: int | None = None
    default_model: str | None = None
    enabled_models: frozenset[str] | None = None  # None: every configured model
    nsfw_policy: NsfwPolicy | None = None  # None: the operator's default
    allowed_channels: frozenset[int] = frozenset()  # empty: everywhere
    moderator_roles: frozenset[int] = frozenset()
    banned_words: tuple[str, ...] = ()
    completion_ping: bool = True

    def allows_model(self, key: str) -> bool:
        return self.enabled_models is None or key in self.enabled_models

    def allows_channel(self, channel_id: int | None, *ancestor_ids: int | None) -> bool:
        """Generating is allowed in the channel: no list, or the list names the channel or one of its ancestors
        (its category; for a thread, its parent channel and that channel's category)."""
        if not self.allowed_channels:
            return True
        return any(place is not None and place in self.allowed_channels for place in (channel_id, *ancestor_ids))

    def banned_word_in(self, text: str) -> str | None:
        """The first banned word that appears in ``text`` as a whole word, ignoring case."""
        for word in self.banned_words:
            if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE):
                return word
        return None

    def as_audit_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("guild_id")
        for key, value in data.items():
            if isinstance(value, frozenset | tuple):
                data[key] = sorted(value)
        return data


DM_CONFIG = ServerConfig(guild_id=0)


def _row_to_config(guild_id: int, row: Any) -> ServerConfig:
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


class ServerSettingsStore:
    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock
        self._cache: dict[int, tuple[float, ServerConfig]] = {}

    async def get(self, guild_id: int | None) -> ServerConfig:
        if not guild_id:
            return DM_CONFIG
        cached = self._cache.get(guild_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_TTL_S:
            return cached[1]
        row = await self._db.fetch_one("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        config = _row_to_config(guild_id, row)
        self._cache[guild_id] = (now, config)
        return config

    def forget(self, guild_id: int) -> None:
        """Drop a server's cached settings after a change written elsewhere (its default limit, by QuotaService)."""
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
        async with self._db.transaction() as conn:
            before = _row_to_config(
                guild_id, await fetch_one(conn, "SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
            )
            values = {  # no setting's value is callable: a callable is always a change function
                name: change(getattr(before, name)) if callable(change) else change for name, change in changes.items()
            }
            after = dataclasses.replace(before, **values)
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
                    guild_id,
                    after.default_limit,
                    after.default_model,
                    _sorted_json(after.enabled_models),
                    after.nsfw_policy,
                    _sorted_json(after.allowed_channels),
                    _sorted_json(after.moderator_roles),
                    json.dumps(list(after.banned_words)),
                    int(after.completion_ping),
                    self._clock(),
                ),
            )
            old, new = before.as_audit_dict(), after.as_audit_dict()
            changed = sorted(k for k in new if old[k] != new[k])
            await write_audit(
                conn,
                AuditEntry(
                    guild_id=guild_id,
                    actor_id=actor_id,
                    action="server-settings",
                    before={k: old[k] for k in changed},
                    after={k: new[k] for k in changed},
                    reason=reason,
                ),
                now=self._clock(),
            )
        self._cache[guild_id] = (time.monotonic(), after)
        return before, after
