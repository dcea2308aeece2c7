"""The preferences repository on both stores: one row per user, every field optional, written whole."""

from __future__ import annotations

from bot.storage.database import Database
from bot.storage.preferences import PreferenceRepository, Preferences


async def test_preferences_are_saved_whole_read_back_and_cleared(database_url):
    async with Database(database_url) as db:
        repo = PreferenceRepository(db)
        assert await repo.get(7) == Preferences(7)
        assert (await repo.get(7)).empty
        await repo.save(Preferences(7, "uni-1", "16:9", False, "--style manga, ink"), now=1.0)
        await repo.save(Preferences(8, private=True), now=1.0)
        assert await repo.get(7) == Preferences(7, "uni-1", "16:9", False, "--style manga, ink")
        await repo.save(Preferences(7, model_key="neta-lumina"), now=2.0)  # the row is replaced, not merged
        assert await repo.get(7) == Preferences(7, model_key="neta-lumina")
        assert await repo.clear(7) is True
        assert await repo.clear(7) is False
        assert await repo.get(7) == Preferences(7)
        assert await repo.get(8) == Preferences(8, private=True)
