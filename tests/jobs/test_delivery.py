"""The outbox without Discord: message steps on the discord lane on virtual time, coalescing, the edit interval,
error classification, NSFW modes, retries without a time limit and the order of paths, with the Discord calls
replaced by recorders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.jobs.delivery import DISCORD_LANE, RETRY_CAP_S, nonce_for, nsfw_mode
from bot.jobs.delivery_errors import PathFailed, TransientFailure, classify
from bot.server_settings.config import ServerConfig
from bot.settings import Settings
from bot.storage.jobs import OutputRecord
from tests.jobs.jobs_factory import make_job
from tests.jobs.outbox_rig import Setup, http_error, outbox_setup
from tests.jobs.virtual import T0


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
@pytest.fixture
async def setup(tmp_path) -> AsyncIterator[Setup]:
    async with outbox_setup(tmp_path) as ready:
        yield ready


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


async def test_a_final_state_right_after_an_edit_goes_out_at_once(setup):
    job_id = await setup.add()
    await setup.notify(job_id)
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    await setup.notify(job_id)
    assert setup.times() == [0, 0]  # results have no minimum interval
    await setup.driver.advance(5)
    assert setup.times() == [0, 0]


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
    await setup.notify(job_id)  # ... but a result does not wait for it
    assert setup.times() == [0, 1]
    await setup.driver.advance(10)
    assert setup.times() == [0, 1]
    assert setup.contents()[-1].endswith("❌ Refused. Your 1 credit was refunded.")


async def test_each_job_has_its_own_interval(setup):
    first, second = await setup.add(), await setup.add()
    await setup.notify(first)
    await setup.notify(second)
    assert setup.times() == [0, 0]


async def test_a_final_result_is_retried_with_capped_backoff_and_no_time_limit(setup):
    job_id = await setup.add(token_expires_at=T0 + 10**6)  # (a shorter token would fall back to a channel edit)
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].extend(http_error(503) for _ in range(20))
    await setup.notify(job_id)
    await setup.driver.advance(4 * 3600)

    delays = [b - a for a, b in zip(setup.times(), setup.times()[1:], strict=False)]
    assert len(setup.sent) == 21  # 20 refusals over more than an hour, then delivered
    for attempt, delay in enumerate(delays, start=1):
        base = min(RETRY_CAP_S, 2.0 * 2 ** (attempt - 1))
        assert min(0.8 * base, RETRY_CAP_S) - 1e-6 <= delay <= RETRY_CAP_S + 1e-6, (attempt, delay)
    assert delays[0] < delays[1] < delays[2] < delays[3]
    assert len({round(d, 6) for d in delays[:6]}) == 6  # jittered
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.delivered_at, job.delivery_path) == (T0 + setup.times()[-1], "token")
    assert job.delivery_error is None


async def test_a_transient_failure_then_success_delivers_once(setup):
    job_id = await setup.add()
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].extend([http_error(500), http_error(429)])
    await setup.notify(job_id)
    await setup.driver.advance(600)
    times = setup.times()
    assert len(times) == 3
    assert 1.6 <= times[1] <= 2.4
    assert 3.2 <= times[2] - times[1] <= 4.8
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.delivered_at, job.delivery_path) == (T0 + times[2], "token")


async def test_a_failed_progress_edit_is_retried_and_the_next_change_goes_out(setup):
    job_id = await setup.add()
    setup.client.errors["token"].append(http_error(503))
    await setup.notify(job_id)
    await setup.driver.advance(60)
    assert len(setup.times()) == 2  # retried after a backoff
    await setup.update(job_id, status="running", submitted_at=T0 + 60)
    await setup.notify(job_id)
    assert setup.times()[-1] == 60


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
    assert setup.sent[-1][2]["nonce"] == nonce_for(job_id)  # a resend after a crash posts nothing twice
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
    assert "dm: forbidden (50007)" in (job.delivery_error or "")  # shown in /job show


# ---------------------------------------------------------------------------------------------- issue 10
@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset"), aiohttp.ClientConnectionError("refused")])
async def test_a_network_error_on_the_job_message_is_retried_not_dropped(setup, error):
    job_id = await setup.add()
    setup.client.errors["token"].append(error)
    await setup.notify(job_id)
    await setup.driver.advance(10)
    assert [p for _, p, _ in setup.sent] == ["token", "token"]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.shown_version == job.version  # shown in the end


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset"), aiohttp.ClientConnectionError("refused")])
async def test_a_network_error_on_the_new_message_path_is_retried_and_posts_once(setup, error):
    job_id = await setup.add()
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].extend([http_error(404, 10008), http_error(404, 10008)])
    setup.client.errors["new_message"].append(error)
    await setup.notify(job_id)
    await setup.driver.advance(60)
    assert [p for _, p, _ in setup.sent] == ["token", "new_message", "token", "new_message"]
    assert setup.client.created == [("new_message", 777)]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert (job.delivery_path, job.message_id, job.delivery_error) == ("new_message", 777, None)


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset"), aiohttp.ClientConnectionError("refused")])
async def test_a_network_error_on_the_dm_path_is_retried(setup, error):
    job_id = await setup.add(ephemeral=True, token_edits_original=True, token_expires_at=T0 + 10)
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["dm"].append(error)
    await setup.notify(job_id)
    await setup.driver.advance(60)
    assert [p for _, p, _ in setup.sent] == ["dm", "dm"]
    assert setup.client.created == [("dm", 777)]
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.delivery_path == "dm"


async def test_a_state_that_changes_while_an_older_one_is_being_sent_is_shown_after_it(setup):
    """The race of a Refresh (or any progress edit) with the job's end: the older state never stays."""
    job_id = await setup.add()
    finished = False

    async def finish_meanwhile(path: str, kwargs: dict[str, Any]) -> None:
        nonlocal finished
        if not finished:
            finished = True  # the job ends while Discord is taking the "waiting" edit
            await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
            now = setup.clock()
            async with setup.db.transaction() as conn:
                await setup.steps.want(conn, job_id, "message", DISCORD_LANE, due_at=now, now=now, priority=1)

    setup.client.after = finish_meanwhile
    await setup.notify(job_id)
    await setup.driver.advance(60)
    contents = setup.contents()
    assert len(contents) == 2
    assert "Waiting to start" in contents[0]
    assert contents[-1].endswith("❌ Refused. Your 1 credit was refunded.")
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.delivered_at is not None
    assert job.shown_version == job.version


async def test_a_discord_outage_of_an_hour_ends_with_every_result_delivered_once(setup):
    setup.client.down_until = T0 + 3600
    setup.client.down_errors = [http_error(503), aiohttp.ClientConnectionError("connection refused")]
    jobs = [await setup.add(prompt=f"cat {n}", token_expires_at=T0 + 10**6) for n in range(5)]
    for job_id in jobs:
        await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
        await setup.notify(job_id)
    await setup.driver.advance(2 * 3600)
    delivered_calls = [kwargs for at, _, kwargs in setup.sent if at >= T0 + 3600]
    assert len(delivered_calls) == 5  # once each, after the outage
    assert len({kwargs["content"] for kwargs in delivered_calls}) == 5  # one for each job
    for job_id in jobs:
        job = await setup.jobs.get(job_id)
        assert job is not None
        assert (job.delivery_path, job.delivery_error) == ("token", None)
        assert T0 + 3600 <= job.delivered_at <= T0 + 3600 + 300 * 1.2  # within one capped backoff of the end


async def test_a_final_result_whose_every_path_is_refused_for_good_says_why(setup):
    job_id = await setup.add()
    await setup.update(job_id, status="failed", finished_at=T0, error_message="Refused.")
    setup.client.errors["token"].append(http_error(404, 10008))
    setup.client.errors["new_message"].append(http_error(404, 10003))  # the channel was deleted
    setup.client.errors["dm"].append(http_error(403, 50007))  # and DMs are closed
    await setup.notify(job_id)
    await setup.driver.advance(600)
    assert [p for _, p, _ in setup.sent] == ["token", "new_message", "dm"]  # not retried: permanent
    job = await setup.jobs.get(job_id)
    assert job is not None
    assert job.delivery_path == "undeliverable"
    assert "new_message" in (job.delivery_error or "")
    assert "dm: forbidden" in (job.delivery_error or "")
