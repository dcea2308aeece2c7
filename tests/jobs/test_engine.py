"""The job engine on virtual time, against in-process fake providers and a real SQLite database: the schedule,
deadlines, the line, outcomes, restarts and cancels (ported from the in-memory scheduler it replaced)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.fetch import FetchError
from bot.jobs.lanes import RETRY_AFTER_ERROR_S
from bot.jobs.outcomes import (
    DOWNLOAD_FAILED,
    GENERIC_FAILURE,
    LOST_UPSTREAM,
    QUEUE_TIMEOUT,
    RESTARTED_WHILE_SUBMITTING,
    RUN_TIMEOUT,
)
from bot.jobs.poll_schedule import LOW_Q, RunTimes
from bot.render.job import queue_place
from providers.base import JobState, JobStatus, Output
from providers.errors import (
    AmbiguousSubmitError,
    AuthError,
    InvalidRequestError,
    ModeratedError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
)
from tests.jobs.rig import FakeProvider, RemoteJob, rig
from tests.jobs.virtual import T0, VirtualTime


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def prompts(submits: list[tuple[float, str]]) -> list[str]:
    return [prompt for _, prompt in submits]


# ---------------------------------------------------------------------------------------------- the schedule
async def test_first_poll_one_target_after_the_priors_low_quantile_then_every_target_latency(tmp_path):
    async with rig(tmp_path) as r:  # typical 40 s, no history: the prior; target latency 2 s
        job = await r.add()
        await r.run_until_finished(job.id)
        done = await r.job(job.id)
        ledger = await r.ledger(job.id)
        seen = [tuple(row) for row in await r.db.fetch_all("SELECT seen_running_s, done_s FROM job_run_times")]
    polls = r.provider.poll_times("r1")
    first = RunTimes.prior(40.0).quantile(LOW_Q) + 2.0

    assert r.provider.submits == [(T0, "a cat")]
    assert polls[0] - T0 == pytest.approx(first)
    assert 19 < first < 24  # nothing is asked while completion is unlikely
    assert gaps(polls) == pytest.approx([2.0] * (len(polls) - 1))  # ... until done at 40 s
    assert polls[-1] - T0 >= 40 > polls[-2] - T0
    # What the job showed of its run time, for the next fits: running at the poll before, done at the last one.
    assert seen == [(pytest.approx(polls[-2] - T0), pytest.approx(polls[-1] - T0))]
    assert done.status == "succeeded"
    assert done.submitted_at == T0
    assert done.finished_at == polls[-1]
    assert [o.media_type for o in done.outputs] == ["image/png"]
    assert (r.media.root / done.outputs[0].path).read_bytes()[:4] == b"\x89PNG"
    assert ledger == ["reserve", "commit"]
    assert r.notified_ids().count(job.id) >= 2  # running, then succeeded


async def test_first_poll_s_overrides_the_typical_duration(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        job = await r.add()
        await r.run_until_finished(job.id)
    polls = r.provider.poll_times("r1")
    assert polls[0] - T0 == pytest.approx(5.0)
    assert gaps(polls) == pytest.approx([2.0] * 18)  # 5, 7, ... 41


async def test_a_short_typical_duration_still_waits_one_target_latency(tmp_path):
    async with rig(tmp_path, provider=FakeProvider(VirtualTime(), typical_s=1.0), poll_interval_s=3.0) as r:
        r.provider.duration_s = 0
        job = await r.add()
        await r.run_until_finished(job.id)
    assert r.provider.poll_times("r1") == [pytest.approx(T0 + RunTimes.prior(1.0).quantile(LOW_Q) + 2.0)]


@pytest.mark.parametrize(("hint", "expected"), [(7.0, 7.0), (0.5, 2.0), (500.0, 10.0)])
async def test_the_providers_poll_hint_is_kept_between_the_interval_and_the_cap(tmp_path, hint, expected):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        r.provider.poll_after_s = hint
        r.provider.duration_s = 60
        job = await r.add()
        await r.run_until_finished(job.id)
    polls = r.provider.poll_times("r1")
    assert gaps(polls)[:-1] == pytest.approx([expected] * (len(polls) - 2))


async def test_transient_poll_errors_back_off_exponentially_with_jitter_within_the_cap(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:  # interval 2 s, cap 10 s
        r.provider.duration_s = 0
        r.provider.poll_errors.extend(UnavailableError("503", provider="wavespeed", status=503) for _ in range(8))
        job = await r.add()
        await r.driver.advance(5)
        assert (await r.job(job.id)).poll_errors == 1
        await r.run_until_finished(job.id)
        done = await r.job(job.id)
        ledger = await r.ledger(job.id)

    delays = gaps(r.provider.poll_times("r1"))
    assert len(delays) == 8
    for errors, delay in enumerate(delays, start=1):
        base = min(10.0, 2.0 * 2 ** (errors - 1))
        assert 0.8 * base - 1e-9 <= delay <= 10.0 + 1e-9, (errors, delay)
    assert delays[0] < delays[1] < delays[2]  # 2, 4, 8 (± 20 %)
    assert len({round(d, 6) for d in delays}) > 4  # jittered, so jobs failing together do not retry in lockstep
    assert done.status == "succeeded"
    assert ledger == ["reserve", "commit"]


async def test_retry_after_is_honoured_even_past_the_cap_and_a_good_poll_resets_the_errors(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        r.provider.duration_s = 100
        r.provider.poll_errors.append(RateLimitedError("429", provider="wavespeed", status=429, retry_after_s=45))
        r.provider.poll_errors.append(UnavailableError("503", provider="wavespeed", status=503, retry_after_s=7))
        job = await r.add()
        await r.driver.advance(5)
        assert (await r.job(job.id)).poll_errors == 1
        await r.driver.advance(45)
        assert (await r.job(job.id)).poll_errors == 2
        await r.driver.advance(7)
        assert (await r.job(job.id)).poll_errors == 0
        await r.run_until_finished(job.id)
    polls = r.provider.poll_times("r1")
    assert polls[:4] == pytest.approx([T0 + 5, T0 + 50, T0 + 57, T0 + 59])


# ---------------------------------------------------------------------------------------------- deadlines
async def test_a_job_running_past_its_deadline_fails_once_and_is_refunded_once(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0, poll_interval_s=10.0, max_poll_interval_s=30.0) as r:
        r.provider.duration_s = 1e9
        job = await r.add()
        await r.run_until_finished(job.id)
        failed = await r.job(job.id)
        polls = len(r.provider.polls)
        await r.driver.advance(3600)
        assert len(r.provider.polls) == polls  # never polled again
        assert await r.ledger(job.id) == ["reserve", "refund"]

    assert failed.status == "failed"
    assert failed.error_code == "timeout"
    assert failed.error_message == RUN_TIMEOUT
    assert T0 + 600 <= failed.finished_at <= T0 + 610
    assert (failed.finished_at, job.id) in r.notified


async def test_a_job_waiting_in_line_past_its_deadline_fails_unsent_with_one_refund(tmp_path):
    async with rig(tmp_path, max_concurrency=1, poll_interval_s=10.0, max_poll_interval_s=30.0) as r:
        r.provider.duration_s = 1e9
        first = await r.add("first")
        second = await r.add("second")
        await r.driver.settle()
        assert await r.position(second.id) == 1
        await r.run_until_finished(second.id)
        failed = await r.job(second.id)
        assert await r.position(second.id) is None
        await r.driver.advance(3600)
        assert await r.ledger(second.id) == ["reserve", "refund"]
        assert await r.ledger(first.id) == ["reserve", "refund"]

    assert failed.error_code == "queue_timeout"
    assert failed.error_message == QUEUE_TIMEOUT
    assert failed.finished_at == T0 + 600
    assert failed.submitted_at is None
    assert prompts(r.provider.submits) == ["first"]


async def test_a_deadline_passing_during_a_submit_that_is_then_refused_for_now_fails_the_job(tmp_path):
    async with rig(tmp_path, max_concurrency=1) as r:
        r.provider.submit_delay_s = 700  # e.g. connection attempts timing out while the provider is down
        r.provider.submit_errors.append(UnavailableError("connection refused", provider="wavespeed"))
        job = await r.add()
        await r.driver.advance(800)
        failed = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert (failed.status, failed.error_code) == ("failed", "queue_timeout")
    assert failed.finished_at == T0 + 700
    assert len(r.provider.submits) == 1  # not sent again after its deadline


# ---------------------------------------------------------------------------------------------- the line
async def test_never_more_than_max_concurrency_upstream_and_jobs_start_in_fifo_order(tmp_path):
    async with rig(tmp_path, max_concurrency=3, first_poll_s=5.0) as r:
        r.provider.durations = {f"job {n}": 5 + (n % 4) * 7 for n in range(12)}
        jobs = [await r.add(f"job {n}") for n in range(12)]
        await r.driver.settle()
        assert [await r.position(job.id) for job in jobs] == [None] * 3 + list(range(1, 10))
        assert await r.jobs.queue_position(10**9, "wavespeed") == 10  # where a new job would wait
        await r.run_until_finished(*(job.id for job in jobs))
        finished = [await r.job(job.id) for job in jobs]
        ledgers = [await r.ledger(job.id) for job in jobs]
        assert await r.jobs.queue_position(10**9, "wavespeed") == 1  # nobody waits any more

    assert r.provider.peak_live == 3
    started = {prompt: at for at, prompt in r.provider.submits}
    assert len(r.provider.submits) == 12
    assert [started[f"job {n}"] for n in range(12)] == sorted(started.values())  # no job overtakes an earlier one
    assert {job.status for job in finished} == {"succeeded"}
    assert ledgers == [["reserve", "commit"]] * 12


async def test_moving_up_the_line_notifies_only_jobs_whose_shown_place_changes(tmp_path):
    # Each waiting job's message is asked for once its last edit is queue_edit_interval_s old (here: at T0 + 5).
    async with rig(tmp_path, max_concurrency=1, first_poll_s=5.0, extra={"queue_edit_interval_s": 5.0}) as r:
        r.provider.duration_s = 5
        jobs = [await r.add(f"job {n}") for n in range(25)]
        await r.driver.settle()
        waiting = {await r.position(job.id): job.id for job in jobs[1:]}
        assert sorted(waiting) == list(range(1, 25))
        r.notified.clear()
        await r.driver.advance(5)  # the first job finishes, the next one starts, everyone moves up one place
        moved = set(r.notified_ids()) - {jobs[0].id, jobs[1].id}

    expected = {waiting[p] for p in range(2, 25) if queue_place(p) != queue_place(p - 1)}
    assert expected == {waiting[p] for p in [*range(2, 12), 21]}
    assert moved == expected


async def test_a_429_on_submit_puts_the_job_back_at_the_head_and_pauses_the_provider(tmp_path):
    async with rig(tmp_path, max_concurrency=3, first_poll_s=5.0) as r:
        r.provider.duration_s = 100
        r.provider.submit_errors.append(RateLimitedError("429", provider="wavespeed", status=429, retry_after_s=30))
        a = await r.add("a")
        await r.driver.settle()
        assert (await r.job(a.id)).status == "queued"
        assert await r.position(a.id) == 1
        assert a.id in r.notified_ids()
        await r.driver.advance(10)
        b = await r.add("b")  # a slot is free, but the provider is paused and a is first in line
        await r.driver.advance(19)
        assert len(r.provider.submits) == 1
        assert await r.position(b.id) == 2
        await r.driver.advance(1)
        assert r.provider.submits == [(T0, "a"), (T0 + 30, "a"), (T0 + 30, "b")]
        await r.run_until_finished(a.id, b.id)
        assert await r.ledger(a.id) == ["reserve", "commit"]
        assert (await r.job(b.id)).status == "succeeded"


async def test_a_retry_after_less_429_waits_one_poll_interval(tmp_path):
    async with rig(tmp_path, max_concurrency=1, first_poll_s=5.0, poll_interval_s=4.0) as r:
        r.provider.duration_s = 0
        r.provider.submit_errors.append(UnavailableError("connection refused", provider="wavespeed"))
        a = await r.add("a")
        await r.run_until_finished(a.id)
    assert [at for at, _ in r.provider.submits] == [T0, T0 + 4]


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            InvalidRequestError("bad size", provider="wavespeed", status=400, code="bad_size", user_message="Too big."),
            "bad_size",
            "Too big.",
        ),
        (ModeratedError("flagged", provider="wavespeed"), "ModeratedError", ModeratedError.default_user_message),
        (AuthError("401", provider="wavespeed", status=401), "AuthError", AuthError.default_user_message),
        (RuntimeError("adapter bug"), "internal_error", GENERIC_FAILURE),
    ],
)
async def test_a_refused_submit_fails_with_the_providers_message_and_a_refund(tmp_path, error, code, message):
    async with rig(tmp_path, max_concurrency=1) as r:
        r.provider.submit_errors.append(error)
        job = await r.add("refused")
        after = await r.add("next")
        await r.run_until_finished(job.id, after.id)
        failed, ok = await r.job(job.id), await r.job(after.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert failed.status == "failed"
    assert failed.error_code == code
    assert failed.error_message == message
    assert ok.status == "succeeded"  # the slot was given back
    assert prompts(r.provider.submits) == ["refused", "next"]


async def test_an_ambiguous_submit_is_never_sent_again(tmp_path):
    async with rig(tmp_path) as r:
        r.provider.submit_errors.append(AmbiguousSubmitError("timed out after sending", provider="wavespeed"))
        job = await r.add()
        await r.run_until_finished(job.id)
        await r.driver.advance(7200)
        failed = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert r.provider.submits == [(T0, "a cat")]
    assert failed.error_message == AmbiguousSubmitError.default_user_message
    assert r.provider.polls == []


# ---------------------------------------------------------------------------------------------- outcomes
async def test_a_job_done_at_submission_is_collected_without_a_poll(tmp_path):
    async with rig(tmp_path) as r:
        r.provider.submit_answers_done = True
        r.provider.duration_s = 0
        job = await r.add()
        await r.run_until_finished(job.id)
        assert (await r.job(job.id)).status == "succeeded"
    assert r.provider.polls == []


async def test_an_upstream_failure_keeps_its_message_and_refunds(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        r.provider.duration_s = 0
        job = await r.add()
        await r.driver.settle()
        r.provider.jobs["r1"].outcome = JobState(
            "r1", JobStatus.FAILED, failure_code="nsfw", failure_message="Refused by the filter.", upstream_status="x"
        )
        await r.run_until_finished(job.id)
        failed = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert (failed.error_code, failed.error_message, failed.upstream_status) == ("nsfw", "Refused by the filter.", "x")


async def test_a_job_the_provider_forgot_fails_and_refunds(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        job = await r.add()
        await r.driver.settle()
        r.provider.poll_errors.append(NotFoundError("gone", provider="wavespeed", status=404))
        await r.run_until_finished(job.id)
        failed = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert (failed.error_code, failed.error_message) == ("not_found", LOST_UPSTREAM)


async def test_a_result_whose_download_fails_retryably_is_polled_again(tmp_path):
    url = "https://cdn.example/out.png?X-Amz-Date=20261121T100000Z&X-Amz-Expires=3600&X-Amz-Signature=s"
    async with rig(tmp_path, first_poll_s=5.0) as r:
        r.provider.duration_s = 0
        r.provider.outputs = lambda job: (Output("image/png", url=url),)
        r.fetcher.errors.append(FetchError("expired", reason="expired", retryable=True, status=403))
        job = await r.add()
        await r.run_until_finished(job.id)
        done = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "commit"]
    assert len(r.provider.poll_times("r1")) == 2
    assert r.fetcher.urls == [url, url]
    assert done.status == "succeeded"
    assert done.outputs[0].source_url == url
    assert done.outputs[0].url_expires_at == T0 + 3600
    assert (done.outputs[0].width, done.outputs[0].height) == (64, 64)


async def test_a_result_whose_download_is_refused_fails_and_refunds(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        r.provider.duration_s = 0
        r.provider.outputs = lambda job: (Output("image/png", url="https://cdn.example/x.html"),)
        r.fetcher.errors.append(FetchError("not media", reason="not_media"))
        job = await r.add()
        await r.run_until_finished(job.id)
        failed = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert (failed.error_code, failed.error_message) == ("download_failed", DOWNLOAD_FAILED)
    assert len(r.provider.polls) == 1


async def test_an_unexpected_error_while_handling_a_poll_does_not_strand_the_job(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0, max_concurrency=1) as r:
        r.provider.duration_s = 0
        save_output = r.media.save_output
        failures = [OSError("disk full"), OSError("disk full")]  # the poll's own download, then the download step

        async def flaky_save(*args, **kwargs):
            if failures:
                raise failures.pop()
            return await save_output(*args, **kwargs)

        r.media.save_output = flaky_save  # type: ignore[method-assign]
        job = await r.add("first")
        after = await r.add("second")
        await r.run_until_finished(job.id, after.id, limit_s=600)
        done = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "commit"]
    assert done.status == "succeeded"
    # The poll that saw it finish tries to download it, then the download step, whose error hands the step back
    # (the lane) to be tried again: not stranded.
    assert r.provider.poll_times("r1") == [T0 + 5]
    assert done.finished_at == T0 + 5 + RETRY_AFTER_ERROR_S


# ---------------------------------------------------------------------------------------------- restart, cancel
async def test_restart_resumes_queued_in_order_polls_running_and_fails_submitting(tmp_path):
    async with rig(tmp_path, start=False, max_concurrency=2, first_poll_s=5.0) as r:
        q1 = await r.add("q1", enqueue=False)
        running = await r.add("running", enqueue=False)
        q3 = await r.add("q3", enqueue=False)
        submitting = await r.add("submitting", enqueue=False)
        r.provider.jobs["old"] = RemoteJob("old", "running", T0 - 10, 20)
        await r.db.execute(
            "UPDATE jobs SET status = 'running', remote_id = 'old', submitted_at = ?, next_poll_at = ? WHERE id = ?",
            (T0 - 10, T0 + 3, running.id),
        )
        # Caught between the submit's intent and the service's answer:
        await r.db.execute(
            "UPDATE jobs SET status = 'submitting', submit_sent_at = ? WHERE id = ?", (T0 - 1, submitting.id)
        )

        await r.engine.start()
        await r.driver.settle()
        lost = await r.job(submitting.id)
        assert r.provider.submits == [(T0, "q1")]  # the running job holds the other slot
        assert await r.position(q3.id) == 1
        await r.run_until_finished(q1.id, running.id, q3.id)
        jobs = [await r.job(job.id) for job in (q1, running, q3)]
        assert await r.ledger(submitting.id) == ["reserve", "refund"]

    assert (lost.status, lost.error_code, lost.error_message) == (
        "failed",
        "interrupted_submit",
        RESTARTED_WHILE_SUBMITTING,
    )
    assert submitting.id in r.notified_ids()
    assert prompts(r.provider.submits) == ["q1", "q3"]
    assert r.provider.poll_times("old") == [T0 + 3, T0 + 5, T0 + 7, T0 + 9, T0 + 11]
    assert [job.status for job in jobs] == ["succeeded"] * 3


async def test_a_stopped_scheduler_picks_up_where_it_left(tmp_path):
    async with rig(tmp_path, max_concurrency=1, first_poll_s=5.0) as r:
        r.provider.duration_s = 20
        a = await r.add("a")
        b = await r.add("b")
        await r.driver.advance(7)  # a polled once, b waiting
        await r.restart()
        await r.run_until_finished(a.id, b.id)
    assert prompts(r.provider.submits) == ["a", "b"]
    assert r.provider.poll_times("r1") == [T0 + 5, T0 + 7, T0 + 9, *[T0 + t for t in range(11, 23, 2)]]


async def test_cancelling_frees_the_place_in_line_or_the_slot(tmp_path):
    async with rig(tmp_path, max_concurrency=1, first_poll_s=5.0) as r:
        r.provider.duration_s = 100
        a, b, c, d = [await r.add(name) for name in "abcd"]
        await r.driver.settle()
        assert [await r.position(job.id) for job in (a, b, c, d)] == [None, 1, 2, 3]
        r.notified.clear()

        assert await r.transitions.cancel(c.id) == "refunded"
        r.engine.line_changed("wavespeed")  # what JobService.cancel does
        await r.driver.settle()
        assert [await r.position(job.id) for job in (b, c, d)] == [1, None, 2]
        assert r.notified_ids() == [c.id]  # c's end at once
        # d's new place: once its message is queue_edit_interval_s old (b's place did not change)
        assert ("message", T0 + 10) in await r.steps.pending(d.id)
        assert not [kind for kind, _ in await r.steps.pending(b.id) if kind == "message"]

        assert await r.transitions.cancel(a.id) == "kept"
        r.engine.line_changed("wavespeed")
        r.engine.wake("submit:wavespeed")
        await r.driver.settle()
        assert prompts(r.provider.submits) == ["a", "b"]
        await r.run_until_finished(b.id, d.id)
        ledgers = {"a": await r.ledger(a.id), "c": await r.ledger(c.id), "b": await r.ledger(b.id)}
        statuses = [(await r.job(job.id)).status for job in (a, b, c, d)]

    assert prompts(r.provider.submits) == ["a", "b", "d"]
    assert r.provider.poll_times("r1") == []  # the cancelled running job is not followed any more
    assert ledgers == {"a": ["reserve", "commit"], "c": ["reserve", "refund"], "b": ["reserve", "commit"]}
    assert statuses == ["cancelled", "succeeded", "cancelled", "succeeded"]


async def test_a_job_being_sent_is_not_cancelled_and_nothing_is_refunded(tmp_path):
    async with rig(tmp_path) as r:
        job = await r.add("a", enqueue=False)
        # claimed (what the submit lane's claim writes), then the intent written just before the call
        assert await r.db.execute("UPDATE jobs SET status = 'submitting' WHERE id = ? AND status = 'queued'", (job.id,))
        async with r.db.transaction() as conn:
            assert await r.jobs.mark_submit_sent(conn, job.id, r.clock())
        assert await r.transitions.cancel(job.id) == "sending"
        assert (await r.job(job.id)).status == "submitting"
        assert await r.ledger(job.id) == ["reserve"]


# ---------------------------------------------------------------------------------------------- found in review
async def test_results_finished_while_the_bot_was_down_are_collected_not_timed_out(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        r.provider.duration_s = 60
        job = await r.add()
        await r.driver.advance(10)
        assert (await r.job(job.id)).status == "running"
        await r.engine.stop()
        r.clock.now += 3600  # down for an hour, far past the 600 s deadline; the provider finished meanwhile
        r.engine = r.new_engine()
        await r.engine.start()
        await r.run_until_finished(job.id)
        done = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "commit"]
    assert done.status == "succeeded"


async def test_the_run_deadline_starts_when_the_job_is_submitted(tmp_path):
    async with rig(tmp_path, max_concurrency=1, first_poll_s=5.0) as r:
        r.provider.durations = {"first": 500, "second": 300}
        first = await r.add("first")
        second = await r.add("second")  # waits 500 s in line, then runs 300 s: 800 s after it was made
        await r.run_until_finished(first.id, second.id)
        done = await r.job(second.id)
    assert done.status == "succeeded"
    assert done.finished_at - done.created_at > 600


async def test_a_stopped_engine_sends_nothing_more(tmp_path):
    async with rig(tmp_path) as r:
        await r.engine.stop()
        job = await r.add()
        await r.driver.settle()
        assert r.provider.submits == []
        assert (await r.job(job.id)).status == "queued"  # the next start submits it
        await r.restart()
        await r.run_until_finished(job.id)
        assert len(r.provider.submits) == 1


async def test_a_submission_accepted_but_not_recorded_is_recorded_later_not_resent(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:
        start_running = r.jobs.start_running
        failures = [RuntimeError("database is locked")]

        async def flaky(*args, **kwargs):
            if failures:
                raise failures.pop()
            return await start_running(*args, **kwargs)

        r.jobs.start_running = flaky  # type: ignore[method-assign]
        job = await r.add()
        await r.run_until_finished(job.id, limit_s=3600)
        done = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "commit"]
    assert done.status == "succeeded"
    assert len(r.provider.submits) == 1


async def test_a_synchronous_result_whose_download_fails_is_fetched_again_from_the_same_answer(tmp_path):
    url = "https://lumozai.example/storage/outputs/image_1.png"
    async with rig(tmp_path) as r:
        r.provider.submit_answers_done = True
        r.provider.duration_s = 0
        r.provider.outputs = lambda job: (Output("image/png", url=url),)
        r.fetcher.errors.append(FetchError("connection reset", reason="network", retryable=True))
        original_submit = r.provider.submit

        async def submit_then_forget(request):
            state = await original_submit(request)
            r.provider.jobs.clear()  # like a synchronous answer: there is nothing to poll afterwards
            return state

        r.provider.submit = submit_then_forget  # type: ignore[method-assign]
        job = await r.add()
        await r.run_until_finished(job.id)
        done = await r.job(job.id)
    assert done.status == "succeeded"
    assert r.fetcher.urls == [url, url]


async def test_a_throttled_provider_waits_for_its_tokens_without_holding_workers(tmp_path):
    async with rig(tmp_path, max_concurrency=10, requests_per_minute=6, first_poll_s=1000.0) as r:
        jobs = [await r.add(f"j{n}") for n in range(3)]
        await r.driver.advance(25)
        assert [t for t, _ in r.provider.submits] == [T0, T0 + 10, T0 + 20]
        assert [(await r.job(job.id)).status for job in jobs] == ["running"] * 3


async def test_a_retry_after_longer_than_the_deadline_does_not_keep_the_job_running_past_it(tmp_path):
    async with rig(tmp_path, first_poll_s=5.0) as r:  # image deadline 600 s
        r.provider.duration_s = 1e9
        # e.g. a daily quota exhausted: the service says to come back tomorrow
        r.provider.poll_errors.append(RateLimitedError("429", provider="wavespeed", status=429, retry_after_s=86_400))
        job = await r.add()
        await r.run_until_finished(job.id)
        failed = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert (failed.status, failed.error_code) == ("failed", "timeout")
    assert failed.finished_at <= T0 + 600 + 1  # at its deadline, not a day later


async def test_a_cancel_landing_as_an_at_once_failure_is_recorded_does_not_charge_for_the_failure(tmp_path):
    async with rig(tmp_path) as r:
        r.provider.submit_answers_done = True
        r.provider.duration_s = 0
        failed_state = JobState("r1", JobStatus.FAILED, failure_code="nsfw", failure_message="Refused.")
        r.provider.outputs = lambda job: ()
        submit = r.provider.submit

        async def refused_at_once(request):
            await submit(request)
            return failed_state

        r.provider.submit = refused_at_once  # type: ignore[method-assign]
        start_running = r.jobs.start_running

        async def then_a_click(conn, job_id, **kwargs):
            changed = await start_running(conn, job_id, **kwargs)
            # The member clicks Cancel while the failure is being recorded:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(r.transitions.cancel(job_id)))
            return changed

        r.jobs.start_running = then_a_click  # type: ignore[method-assign]
        job = await r.add()
        await r.run_until_finished(job.id)
        await r.driver.advance(5)
        done = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]  # the service made nothing: nothing is charged
    assert (done.status, done.error_code) == ("failed", "nsfw")


async def test_a_job_cancelled_while_its_output_downloads_leaves_no_files_behind(tmp_path):
    async with rig(tmp_path) as r:
        r.provider.duration_s = 0
        r.provider.outputs = lambda job: (Output("image/png", url="https://cdn.example/out.png"),)
        download = r.fetcher.download

        async def cancelled_meanwhile(url, **kwargs):
            got = await download(url, **kwargs)
            job_id = (await r.jobs.active())[0].id
            assert await r.transitions.cancel(job_id) == "kept"  # the service made it: credits stay spent
            return got

        r.fetcher.download = cancelled_meanwhile  # type: ignore[method-assign]
        job = await r.add()
        await r.run_until_finished(job.id)
        await r.driver.advance(5)
        done = await r.job(job.id)
        assert done.status == "cancelled"
        assert await r.ledger(job.id) == ["reserve", "commit"]
        assert r.fetcher.urls  # the output was downloaded, then the job was found cancelled
        leftovers = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
    assert leftovers == []


async def test_an_output_that_stays_unreachable_fails_the_job_in_minutes_not_at_its_deadline(tmp_path):
    from bot.jobs.result_steps import DOWNLOAD_TRIES

    async with rig(tmp_path, first_poll_s=5.0) as r:
        r.provider.duration_s = 0
        r.provider.outputs = lambda job: (Output("image/png", url="https://cdn.example/gone.png"),)
        r.fetcher.errors.extend(FetchError("expired", reason="expired", retryable=True, status=403) for _ in range(100))
        job = await r.add()
        await r.run_until_finished(job.id)
        failed = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "refund"]
    assert (failed.status, failed.error_code) == ("failed", "download_failed")
    assert len(r.fetcher.urls) == DOWNLOAD_TRIES
    assert failed.finished_at < T0 + 300  # the image deadline is 600 s


async def test_a_progress_edit_only_for_a_job_that_runs_longer_than_usual(tmp_path):
    """The job's message goes from its first render straight to the result when the job takes no longer than about
    its model's usual duration (1.5 times it); a slower job is shown running once that has passed."""
    async with rig(tmp_path, first_poll_s=5.0, poll_interval_s=5.0) as r:
        r.provider.typical_s = 40.0  # usual: 40 s, so a progress edit is worth it only after 60 s
        r.provider.durations = {"quick": 30.0, "slow": 120.0}
        quick = await r.add("quick")
        slow = await r.add("slow")
        await r.run_until_finished(quick.id, slow.id)
        done = {job.id: await r.job(job.id) for job in (quick, slow)}
    edits = {job_id: [at - T0 for at, notified in r.notified if notified == job_id] for job_id in done}
    assert edits[quick.id] == [0, 30]  # first render, result
    first, progress, result = edits[slow.id]
    assert first == 0
    assert 60 <= progress < 120  # at the first poll after 1.5 x 40 s from the submit
    assert result == 120
    assert all(job.shown_version == job.version for job in done.values())
