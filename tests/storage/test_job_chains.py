"""Chains of video extensions as /job show lists them: oldest first, without other members' private ones."""

from __future__ import annotations

import pytest

from bot.storage.database import Database
from bot.storage.job_chains import JobChains
from bot.storage.jobs import JobRepository, NewJob

OWNER, OTHER = 100, 200


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


def video(user_id: int, *, parent: int | None = None, ephemeral: bool = False) -> NewJob:
    return NewJob(
        user_id=user_id,
        guild_id=1,
        channel_id=2,
        model_key="luma-video",
        provider="luma_reseller",
        kind="video",
        prompt="a boat",
        params={},
        cost=10,
        created_at=0.0,
        deadline_at=3600.0,
        origin="extend" if parent else "command",
        parent_job_id=parent,
        ephemeral=ephemeral,
    )


async def test_other_members_private_extensions_are_left_out(db):
    jobs = JobRepository(db)
    async with db.transaction() as conn:
        first = await jobs.insert(conn, video(OWNER))
        public = await jobs.insert(conn, video(OTHER, parent=first.id))
        private = await jobs.insert(conn, video(OTHER, parent=first.id, ephemeral=True))
        mine = await jobs.insert(conn, video(OWNER, parent=first.id, ephemeral=True))
    chains = JobChains(db)
    assert await chains.extensions_of(first.id, viewer_id=OWNER) == (public.id, mine.id)
    assert await chains.extensions_of(first.id, viewer_id=OTHER) == (public.id, private.id)
