"""The preferences repository: every statement on ``user_preferences``, one row per user (not per server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.storage.database import Database


@dataclass(frozen=True, slots=True)
class Preferences:
    """A user's own defaults for /imagine, /edit and /video; None is "not set"."""

    user_id: int
    model_key: str | None = None
    aspect_ratio: str | None = None
    private: bool | None = None
    suffix: str | None = None

    @property
    def empty(self) -> bool:
        return self.model_key is None and self.aspect_ratio is None and self.private is None and not self.suffix


def _preferences(row: Any) -> Preferences:
    return Preferences(
        user_id=int(row["user_id"]),
        model_key=row["model_key"],
        aspect_ratio=row["aspect_ratio"],
        private=None if row["private"] is None else bool(row["private"]),
        suffix=row["suffix"],
    )


class PreferenceRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, user_id: int) -> Preferences:
        row = await self._db.fetch_one("SELECT * FROM user_preferences WHERE user_id = ?", (user_id,))
        return Preferences(user_id=user_id) if row is None else _preferences(row)

    async def save(self, preferences: Preferences, *, now: float) -> None:
        """Write every preference of the user (one row)."""
        private = None if preferences.private is None else int(preferences.private)
        await self._db.execute(
            """
            INSERT INTO user_preferences (user_id, model_key, aspect_ratio, private, suffix, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (user_id) DO UPDATE SET
                model_key = excluded.model_key, aspect_ratio = excluded.aspect_ratio, private = excluded.private,
                suffix = excluded.suffix, updated_at = excluded.updated_at
            """,
            (preferences.user_id, preferences.model_key, preferences.aspect_ratio, private, preferences.suffix, now),
        )

    async def clear(self, user_id: int) -> bool:
        """Forget the user's preferences; False when there were none."""
        return await self._db.execute("DELETE FROM user_preferences WHERE user_id = ?", (user_id,)) > 0
