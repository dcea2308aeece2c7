"""Several bot processes on one database, in one test process: two gateway shard groups (SHARD_COUNT=2, one shard
each) and a worker (``python -m bot worker``: logged in, no gateway). Buttons of a job work whichever shard
receives the click, and the worker connects no gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bot.app import Bot
from bot.runtime import open_services
from bot.settings import Settings
from tests.e2e.commands_support import ack_text, ledger, new_job_id
from tests.e2e.harness import delivered, e2e_settings, job_when
from tests.fakes.discord.runner import running_bot
from tests.fakes.discord.server import FakeDiscord
from tests.fakes.providers._server import Timing


def shard_of(guild_id: int, count: int = 2) -> int:
    return (guild_id >> 22) % count


@contextlib.asynccontextmanager
async def shard_process(settings: Settings, fake: FakeDiscord, shard: int) -> AsyncIterator[Bot]:
    shards = settings.model_copy(update={"shard_count": 2, "shard_ids": (shard,)})
    async with open_services(shards) as services:
        bot = Bot(services, **shards.shard_options())
        async with running_bot(bot, fake):
            yield bot


@contextlib.asynccontextmanager
async def worker_process(settings: Settings, fake: FakeDiscord) -> AsyncIterator[Bot]:
    """What ``python -m bot worker`` runs: login (the engine starts in the setup hook), no connect."""
    async with open_services(settings) as services:
        bot = Bot(services)
        async with bot:
            await bot.login(fake.token)
            try:
                yield bot
            finally:
                await bot.close()


async def click_on_shard(fake: FakeDiscord, shard_guild: int, custom_id: str, message_id: int, **context: Any):
    """A click on the job's message, received by the shard that owns ``shard_guild`` (not necessarily the one
    that made the job: after resharding, or in DMs and user-installed contexts)."""
    payload = fake.button_click(custom_id, message_id, **context)
    record = fake.state.register_interaction(payload)
    session = fake.gateway.session_for(shard_guild)
    await session.send_dispatch("INTERACTION_CREATE", payload)
    return record, session


async def test_buttons_work_whichever_shard_receives_the_click_and_the_worker_has_no_gateway(
    tmp_path, fake_discord, fakes, database_url
):
    settings = e2e_settings(tmp_path, fake_discord, fakes, database_url=database_url)
    home = fake_discord.default_guild_id
    other = next(g for g in range(home + (1 << 22), home + (8 << 22), 1 << 22) if shard_of(g) != shard_of(home))
    fake_discord.add_guild("Other shard", guild_id=other)
    fakes.luma_agents.timing = Timing(queued_s=0, processing_s=30)
    async with (
        shard_process(settings, fake_discord, 0) as first,
        shard_process(settings, fake_discord, 1) as second,
        worker_process(settings, fake_discord),
    ):
        assert sorted(s.shard for s in fake_discord.gateway.live_sessions()) == [(0, 2), (1, 2)]
        maker, elsewhere = (first, second) if shard_of(home) == 0 else (second, first)

        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "a cat"}))
        made = await delivered(maker, await new_job_id(maker, 0))
        assert made.status == "succeeded"

        # Reroll received by the other shard's process: a new job charged to the clicker.
        record, session = await click_on_shard(fake_discord, other, f"gen:reroll:{made.id}", made.message_id or 0)
        assert session.shard[0] == shard_of(other)
        await fake_discord.wait_for(lambda r: r.interaction_token == record.token and "/callback" in r.path)
        reroll = await delivered(elsewhere, await new_job_id(elsewhere, made.id))
        assert (reroll.origin, reroll.parent_job_id, reroll.user_id, reroll.status) == (
            "reroll",
            made.id,
            fake_discord.default_user_id,
            "succeeded",
        )

        # Cancel of a running job, received by the other shard's process.
        await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": "slow", "model": "uni-1"}))
        slow_id = await new_job_id(maker, reroll.id)
        slow = await job_when(maker, slow_id, lambda j: j.status == "running" and j.message_id is not None)
        record, _ = await click_on_shard(fake_discord, other, f"gen:cancel:{slow.id}", slow.message_id or 0)
        assert (await ack_text(fake_discord, record)).startswith(f"Job #{slow.id} is cancelled")
        assert (await delivered(elsewhere, slow.id)).status == "cancelled"
        user = fake_discord.default_user_id
        assert await ledger(maker, reroll.id) == [("reserve", user), ("commit", user)]

    # Two shard sessions were identified; the worker never opened one.
    assert sorted(s.shard for s in fake_discord.gateway.sessions.values()) == [(0, 2), (1, 2)]
    assert len(fake_discord.gateway.connections) == 2
