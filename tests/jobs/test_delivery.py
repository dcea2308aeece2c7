"""Delivery without Discord: coalescing on virtual time, the edit interval, error classification, NSFW modes,
the final-delivery retries and the order of paths, with the Discord calls replaced by recorders."""

from __future__ import annotations

import dataclasses
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import discord
import pytest

from bot.catalogue import Catalogue
from bot.jobs import delivery as delivery_module
from bot.jobs.delivery import FINAL_RETRY_DELAYS_S, Delivery, nsfw_mode
from bot.jobs.delivery_errors import PathFailed, TransientFailure, classify
from bot.jobs.media_store import MediaStore
from bot.server_settings.config import ServerConfig
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRepository, NewJob, OutputRecord
from tests.jobs.jobs_factory import make_job
from tests.jobs.rig import FakeProvider
from tests.jobs.virtual import T0, Driver, VirtualTime


def http_error(status: int, code: int = 0) -> discord.HTTPException:
    return discord.HTTPException(SimpleNamespace(status=status, reason="x"), {"code": code, "message": "nope"})


# ---------------------------------------------------------------------------------------------- pure parts
@pytest.mark.parametrize(
    ("status", "code", "path", "outcome", "gone"),
    [
        (401, 50027, "token", PathFailed, False),  # the token expired
        (401, 0, "token", PathFailed, False),
        (404, 10015, "token", PathFailed, False),  # unknown webhook: the token is no good, the message may be
        (404, 10008, "token", PathFailed, True),  # unknown message
        (404, 10008, "channel", PathFailed, True),
        (403, 50001, "channel", PathFailed, False),  # missing access
        (403, 50013, "channel", PathFailed, False),  # missing permissions
        (403, 50007, "dm", PathFailed, False),  # cannot DM this user
        (404, 10003, "channel", PathFailed, True),  # unknown channel: nothing to edit there
        (404, 0, "token", PathFailed, False),
        (429, 0, "token", TransientFailure, None),
        (500, 0, "channel", TransientFailure, None),
        (503, 0, "token", TransientFailure, None),
        (400, 50035, "token", PathFailed, False),  # invalid form body: another path may still take it
        (413, 40005, "token", PathFailed, False),  # too large for this path
    ],
)
def test_discord_errors_decide_the_next_path(status, code, path, outcome, gone):
    result = classify(http_error(status, code), path)
    assert type(result) is outcome
    if gone is not None:
        assert result.gone is gone


@pytest.mark.parametrize(
    ("status", "code", "path", "dead"),
    [
        (401, 50027, "token", True),  # invalid webhook token
        (401, 0, "token", True),
        (404, 10015, "token", True),  # unknown webhook
        (400, 50035, "token", False),  # a bad body: this attempt failed, the token is fine
        (413, 40005, "token", False),  # files too large: this attempt failed, the token is fine
        (403, 50013, "token", False),
        (404, 10008, "token", False),  # the message is gone, not the token
        (404, 0, "token", False),
        (401, 0, "channel", False),  # no interaction token on that path
    ],
)
def test_only_a_refused_token_counts_as_a_dead_token(status, code, path, dead):
    result = classify(http_error(status, code), path)
    assert isinstance(result, PathFailed)
    assert result.token_dead is dead


@pytest.mark.parametrize(
    ("guild", "policy", "channel_nsfw", "in_dm", "mode"),
    [
        (1, "age_restricted", True, False, "show"),
        (1, "age_restricted", False, False, "withhold"),
        (1, "spoiler", False, False, "spoiler"),
        (1, "spoiler", True, False, "spoiler"),
        (1, "block", True, False, "withhold"),
        (1, None, True, False, "show"),  # the operator's default: age_restricted
        (1, "block", True, True, "spoiler"),  # in a DM it is the user's own: behind a spoiler
        (0, "block", False, False, "spoiler"),  # a job started in DMs
    ],
)
def test_nsfw_mode(guild, policy, channel_nsfw, in_dm, mode):
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    job = make_job(guild_id=guild, channel_nsfw=channel_nsfw)
    assert nsfw_mode(job, ServerConfig(guild_id=guild, nsfw_policy=policy), settings, in_dm=in_dm) == mode


# ---------------------------------------------------------------------------------------------- on virtual time
class StubClient:
    """Just what Delivery touches on a discord.Client for the bot-token paths; every call is recorded."""

    allowed_mentions = discord.AllowedMentions.none()

    def __init__(self, sent: list[tuple[float, str, dict[str, Any]]], clock: VirtualTime) -> None:
        self.sent = sent
        self.clock = clock
        self.errors: dict[str, deque[Exception]] = defaultdict(deque)

    def get_guild(self, guild_id: int) -> None:
        return None

    def get_partial_messageable(self, channel_id: int) -> Any:
        return SimpleNamespace(
            get_partial_message=lambda message_id: SimpleNamespace(edit=self._recorder("channel")),
            send=self._recorder("new_message"),
        )

    async def create_dm(self, user: Any) -> Any:
        return SimpleNamespace(send=self._recorder("dm"))

    def _recorder(self, path: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.sent.append((self.clock(), path, kwargs))
            if self.errors[path]:
                raise self.errors[path].popleft()
            return SimpleNamespace(id=777)

        return call


@dataclasses.dataclass
class Setup:
    delivery: Delivery
    jobs: JobRepository
    db: Database
    driver: Driver
    clock: VirtualTime
    client: StubClient
    sent: list[tuple[float, str, dict[str, Any]]]
    positions: dict[int, int]

    def contents(self, path: str | None = None) -> list[str]:
        return [kwargs["content"] for _, p, kwargs in self.sent if path is None or p == path]

    def times(self) -> list[float]:
        return [at - T0 for at, _, _ in self.sent]

    async def add(self, **changes: Any) -> int:
        values: dict[str, Any] = {
            "user_id": 111_111_111_111_111_111,
            "guild_id": 222_222_222_222_222_222,
            "channel_id": 333,
            "model_key": "neta-lumina",
            "provider": "wavespeed",
            "kind": "image",
            "prompt": "a cat",
            "params": {"model": "wavespeed-ai/neta-lumina"},
            "cost": 1,
            "created_at": T0,
            "deadline_at": T0 + 600,
            "application_id": 99,
            "interaction_token": "tok",
            "token_expires_at": T0 + 900,
            **changes,
        }
        async with self.db.transaction() as conn:
            job_id = await self.jobs.insert(conn, NewJob(**values))
        await self.jobs.set_message(job_id, 5000 + job_id)
        return job_id

    async def update(self, job_id: int, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        await self.db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*columns.values(), job_id))

    async def notify(self, job_id: int) -> None:
        self.delivery.notify(job_id)
        await self.driver.settle()


@pytest.fixture
async def setup(tmp_path) -> AsyncIterator[Setup]:
    clock = VirtualTime()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, edit_min_interval_s=2.0, queue_edit_interval_s=10.0, completion_ping_after_s=1e9
    )
    sent: list[tuple[float, str, dict[str, Any]]] = []
    client = StubClient(sent, clock)
    positions: dict[int, int] = {}
    async with Database(tmp_path / "bot.sqlite3") as db:
        jobs = JobRepository(db)
        delivery = Delivery(
            client=client,  # type: ignore[arg-type]
            jobs=jobs,
            media=MediaStore(tmp_path / "media"),
            settings=settings,
            catalogue=Catalogue.build(settings, {"wavespeed": FakeProvider(clock)}),  # type: ignore[dict-item]
            server_settings=ServerSettingsService(db, clock=clock),
            position=positions.get,
            clock=clock,
            sleep=clock.sleep,
        )

        async def edit_with_token(job: Any, kwargs: dict[str, Any]) -> None:
            await client._recorder("token")(**kwargs)

        delivery._edit_with_token = edit_with_token  # type: ignore[method-assign]

        def quiet() -> bool:
            parked = clock.waiting()
            return all(t.done() or t._fut_waiter in parked for t in delivery._tasks.values())  # type: ignore[attr-defined]

        yield Setup(delivery, jobs, db, Driver(clock, quiet), clock, client, sent, positions)
        with mock.patch.object(delivery_module, "STOP_GRACE_S", 0.2):  # a task parked on a virtual timer
            await delivery.stop()


async def test_edits_are_coalesced_latest_state_wins_and_only_visible_changes_are_sent(setup):
    job_id = await setup.add()
    await setup.notify(job_id)
    assert setup.times() == [0]
    assert "Waiting to start" in setup.contents()[0]

    await setup.update(job_id, status="submitting")
    await setup.notify(job_id)
    await setup.update(job_id, status="running", submitted_at=T0)
    await setup.notify(job_id)
    assert len(setup.sent) == 1  # within edit_min_interval_s of the last edit
    await setup.driver.advance(2)
    assert setup.times() == [0, 2]
    assert "Making your image" in setup.contents()[1]
    assert not any("Sending" in content for content in setup.contents())  # superseded before it was shown

    await setup.update(job_id, upstream_status="processing", poll_errors=1)  # nothing a person sees
    await setup.notify(job_id)
    await setup.driver.advance(30)
    assert setup.times() == [0, 2]

    await setup.update(job_id, status="failed", finished_at=T0 + 32, error_message="Refused.")
    await setup.notify(job_id)
    assert setup.times() == [0, 2, 32]
    assert setup.contents()[-1].endswith("❌ Refused. Your 1 credit was refunded.")
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.delivered_at, job.delivery_path) == (T0 + 32, "token")

    await setup.notify(job_id)
    await setup.driver.advance(60)
    assert len(setup.sent) == 3  # delivered: never edited again


async def test_a_final_state_right_after_an_edit_waits_out_the_interval(setup):
    job_id = await setup.add()
    await setup.notify(job_id)
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    await setup.notify(job_id)
    assert setup.times() == [0]
    await setup.driver.advance(5)
    assert setup.times() == [0, 2]


async def test_a_waiting_jobs_place_in_line_is_edited_at_the_slower_queue_interval(setup):
    job_id = await setup.add()
    setup.positions[job_id] = 5
    await setup.notify(job_id)
    setup.positions[job_id] = 4
    await setup.notify(job_id)
    await setup.driver.advance(9)
    assert setup.times() == [0]
    await setup.driver.advance(1)
    assert setup.times() == [0, 10]
    assert ["(position 5)" in c for c in setup.contents()] == [True, False]
    assert "(position 4)" in setup.contents()[1]

    await setup.update(job_id, status="running", submitted_at=T0 + 10)  # a change of state: the normal interval
    await setup.notify(job_id)
    await setup.driver.advance(2)
    assert setup.times() == [0, 10, 12]


async def test_a_job_leaving_the_queue_during_a_queue_interval_is_shown_at_the_normal_pace(setup):
    job_id = await setup.add()
    setup.positions[job_id] = 5
    await setup.notify(job_id)
    setup.positions[job_id] = 4
    await setup.notify(job_id)  # waits out the queue interval (10 s) ...
    await setup.driver.advance(1)
    await setup.update(job_id, status="failed", finished_at=T0 + 1, error_message="Refused.")
    await setup.notify(job_id)  # ... but a change of state needs only edit_min_interval_s
    await setup.driver.advance(1)
    assert setup.times() == [0, 2]
    assert setup.contents()[-1].endswith("❌ Refused. Your 1 credit was refunded.")


async def test_each_job_has_its_own_interval(setup):
    first, second = await setup.add(), await setup.add()
    await setup.notify(first)
    await setup.notify(second)
    assert setup.times() == [0, 0]


async def test_a_final_result_is_retried_with_backoff_then_marked_undeliverable(setup, caplog):
    job_id = await setup.add()
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].extend(http_error(503) for _ in range(20))
    await setup.notify(job_id)
    await setup.driver.advance(3600)

    expected, at = [0.0], 0.0
    for delay in FINAL_RETRY_DELAYS_S:
        at += delay
        expected.append(at)
    assert setup.times() == expected  # 0, 2, 7, 22, 52, 112, 232
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.delivered_at, job.delivery_path) == (T0 + expected[-1], "undeliverable")
    assert "giving up delivering" in caplog.text


async def test_a_transient_failure_then_success_delivers_once(setup):
    job_id = await setup.add()
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].extend([http_error(500), http_error(429)])
    await setup.notify(job_id)
    await setup.driver.advance(600)
    assert setup.times() == [0, 2, 7]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.delivered_at, job.delivery_path) == (T0 + 7, "token")


async def test_a_dropped_progress_edit_is_not_retried_but_the_next_change_goes_out(setup):
    job_id = await setup.add()
    setup.client.errors["token"].append(http_error(503))
    await setup.notify(job_id)
    await setup.driver.advance(60)
    assert setup.times() == [0]
    await setup.update(job_id, status="running", submitted_at=T0 + 60)
    await setup.notify(job_id)
    assert setup.times() == [0, 60]


# ---------------------------------------------------------------------------------------------- the paths
async def test_an_expired_token_falls_back_to_a_channel_edit_and_is_not_tried_again(setup):
    job_id = await setup.add()
    setup.client.errors["token"].append(http_error(401, 50027))
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["token", "channel"]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.token_expires_at == 0
    assert job.delivery_path == "channel"
    await setup.update(job_id, status="failed", finished_at=T0 + 5, error_message="Refused.")
    await setup.driver.advance(5)
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["token", "channel", "channel"]


@pytest.mark.parametrize(("status", "code"), [(400, 50035), (413, 40005)])
async def test_a_rejected_edit_falls_through_without_expiring_a_valid_token(setup, status, code):
    job_id = await setup.add()
    setup.client.errors["token"].append(http_error(status, code))
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["token", "channel"]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.token_expires_at == T0 + 900  # still usable
    await setup.update(job_id, status="failed", finished_at=T0 + 5, error_message="Refused.")
    await setup.driver.advance(5)
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["token", "channel", "token"]  # tried again next time


async def test_a_token_within_its_margin_is_not_used(setup):
    job_id = await setup.add(token_expires_at=T0 + 30)  # token_margin_s is 60
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["channel"]


async def test_a_deleted_message_gets_the_result_as_a_new_message(setup):
    job_id = await setup.add()
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].append(http_error(404, 10008))
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["token", "new_message"]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.message_id, job.delivery_path) == (777, "new_message")
    assert job.token_expires_at == T0 + 900  # the token itself was fine


async def test_a_private_job_whose_token_died_goes_to_dms(setup):
    job_id = await setup.add(ephemeral=True, token_edits_original=True)
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].append(http_error(401, 50027))
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["token", "dm"]
    assert setup.contents("dm")[0].startswith(f"Your job #{job_id} (from <#333>) did not work out:\n")
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.delivery_path == "dm"


async def succeed_with_outputs(setup: Setup, job_id: int, *, stored: bool) -> None:
    """Finish the job with one PNG output, its file on disk or not (purged, or lost)."""
    relative = f"outputs/{job_id}/0.png"
    if stored:
        await setup.delivery._media.save_output(job_id, 0, b"\x89PNG fake", "image/png")
    async with setup.db.transaction() as conn:
        await setup.jobs.add_outputs(conn, [OutputRecord(job_id, 0, relative, "image/png", 10, 64, 64)])
    await setup.update(job_id, status="succeeded", submitted_at=T0, finished_at=T0 + 1)


async def test_a_result_sent_to_dms_says_which_job_and_where_it_was_asked_for(setup):
    job_id = await setup.add(ephemeral=True, token_edits_original=True, token_expires_at=T0 + 10)
    await succeed_with_outputs(setup, job_id, stored=True)
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["dm"]
    assert setup.contents("dm")[0].startswith(f"Here is the result of your job #{job_id} (from <#333>):\n")
    [(_, _, kwargs)] = setup.sent
    assert [f.filename for f in kwargs["files"]] == [f"job{job_id}_0.png"]


async def test_a_dm_job_sent_to_dms_names_no_channel(setup):
    job_id = await setup.add(guild_id=0, ephemeral=True, token_edits_original=True, token_expires_at=T0 + 10)
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    await setup.notify(job_id)
    assert setup.contents("dm")[0].startswith(f"Your job #{job_id} did not work out:\n")


@pytest.mark.parametrize("purged", [True, False])
async def test_a_result_whose_files_are_gone_is_delivered_without_them(setup, purged):
    job_id = await setup.add()
    await succeed_with_outputs(setup, job_id, stored=False)
    if purged:
        await setup.update(job_id, outputs_purged_at=T0 + 2)
    await setup.notify(job_id)
    [(_, path, kwargs)] = setup.sent
    assert path == "token"
    assert kwargs["attachments"] == []
    assert "🗑️ The result is no longer stored (results are kept for 7 days)." in kwargs["content"]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.delivered_at, job.delivery_path) == (T0, "token")


async def test_a_progress_edit_with_no_path_left_is_dropped_quietly(setup):
    job_id = await setup.add(ephemeral=True, token_edits_original=True, token_expires_at=T0 + 10)
    await setup.notify(job_id)
    assert setup.sent == []
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.delivered_at is None


async def test_nowhere_to_deliver_marks_the_result_undeliverable(setup):
    job_id = await setup.add(ephemeral=True, token_edits_original=True, token_expires_at=T0 + 10)
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["dm"].append(http_error(403, 50007))
    await setup.notify(job_id)
    assert [p for _, p, _ in setup.sent] == ["dm"]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.delivery_path == "undeliverable"
    assert job.delivered_at == T0
