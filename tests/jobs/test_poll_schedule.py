"""The learned poll schedule, deterministically: where polls go for a known distribution, the prior, provider
hints, the safety net with callbacks, the fit of what finished jobs showed, and (on a simulated clock, no timing,
learning from its own polls as the bot does) that for log-normal run times it needs at most half the polls of a
fixed 2-second loop while its 95th percentile detection latency is no worse."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from bot.jobs.poll_schedule import (
    HIGH_Q,
    LOW_Q,
    MIN_CENTRE_SAMPLES,
    MIN_SAMPLES,
    PollPlan,
    RunTimes,
    first_poll_delay,
    fit_lognormal,
    later_poll_delay,
    next_poll_at,
    next_safety_poll_at,
    poll_times,
    previous_poll_at,
    seen_running_until,
)
from providers.base import JobState, JobStatus
from providers.registry import ProviderSettings

PLAN = PollPlan(target_s=1.8, cap_s=60.0)
RUNNING = JobState(remote_id="r", status=JobStatus.RUNNING)


def block(**values: object) -> ProviderSettings:
    return ProviderSettings(base_url="http://x", **values)  # type: ignore[arg-type]


def test_quantiles_interpolate_between_sorted_points():
    runs = RunTimes((2.0, 4.0, 6.0))
    assert runs.quantile(0.0) == 2.0
    assert runs.quantile(0.25) == 3.0
    assert runs.quantile(1.0) == 6.0
    assert runs.done_by(4.0) == pytest.approx(2 / 3)


def test_the_prior_is_a_lognormal_around_the_typical_duration():
    runs = RunTimes.prior(10.0)
    assert runs.quantile(0.5) == pytest.approx(10.0, rel=0.02)
    assert runs.quantile(0.02) < 6.0 < 17.0 < runs.quantile(0.98)


def test_few_jobs_centre_the_prior_and_enough_are_fitted():
    assert RunTimes.learned([], 10.0) == RunTimes.prior(10.0)
    few = [(3.0, 5.0)] * MIN_CENTRE_SAMPLES
    assert RunTimes.learned(few, 10.0) == RunTimes.prior(4.0)
    rng = random.Random(1)
    exact = [(t - 0.01, t) for t in (6.0 * math.exp(rng.gauss(0, 0.2)) for _ in range(400))]
    fitted = RunTimes.learned([*exact, (5.0, math.inf), (-1.0, 2.0)], 10.0)
    assert fitted.quantile(0.5) == pytest.approx(6.0, rel=0.05)
    assert fitted.quantile(0.8413) / fitted.quantile(0.5) == pytest.approx(math.exp(0.2), rel=0.05)
    assert len(exact) >= MIN_SAMPLES


def test_jobs_found_done_at_the_first_look_count_as_shorter_not_as_long_as_that_look():
    """Taking the first look's time as the run time would move the first poll later at every refresh."""
    truth = 6.0
    first_look = 6.5
    rng = random.Random(2)
    durations = [truth * math.exp(rng.gauss(0, 0.2)) for _ in range(400)]
    seen = [(0.0, first_look) if d <= first_look else (first_look, first_look + 1.8) for d in durations]
    fitted = fit_lognormal(seen, 10.0)
    assert fitted is not None
    assert fitted[0] == pytest.approx(truth, rel=0.1)
    assert RunTimes.learned(seen, 10.0).quantile(0.5) < first_look


def test_jobs_all_found_done_at_the_first_look_move_the_first_poll_earlier_not_keep_it():
    """A plan that starts too late (a prior longer than the real run times) finds nearly every job done at its first
    look. A narrow fit just under that look would keep the first poll there at every refresh; the fitted plan must
    poll well before it, so the next refresh sees jobs running."""
    first_look = 4.8
    rng = random.Random(3)
    durations = [3.0 * math.exp(rng.gauss(0, 0.35)) for _ in range(40)]
    seen = [(0.0, first_look) if d <= first_look else (first_look, first_look + 0.9) for d in durations]
    assert sum(1 for low, _ in seen if low > 0) < MIN_SAMPLES // 2  # almost all found done at the first look
    runs = RunTimes.learned(seen, 8.0)
    plan = PollPlan(target_s=0.9, cap_s=15.0)
    assert next_poll_at(runs, plan, 0.0) < first_look - 2 * plan.target_s


@pytest.mark.parametrize("typical_s", [3.0, 8.0, 60.0])
def test_jobs_every_one_found_done_at_the_first_look_give_a_plan_that_still_waits_for_them(typical_s):
    """Nothing but "shorter than the first look" would let the fitted median fall towards zero: a plan polling from
    the first second whose window is over before the jobs are done, every job then seen only in the slow tail. The
    prior around the typical duration keeps the median where such jobs are still likely, whatever that duration."""
    first_look = 5.0
    seen = [(0.0, first_look)] * 40
    fitted = fit_lognormal(seen, typical_s)
    assert fitted is not None
    assert first_look / 3 < fitted[0] < first_look
    runs = RunTimes.learned(seen, typical_s)
    plan = PollPlan(target_s=0.9, cap_s=15.0)
    assert first_look / 3 < next_poll_at(runs, plan, 0.0) < first_look - 2 * plan.target_s


def test_polls_start_a_target_after_the_low_quantile_then_every_target_then_back_off_to_the_cap():
    runs = RunTimes(tuple(float(t) for t in range(10, 31)))  # 10 … 30 s
    times = poll_times(runs, PollPlan(target_s=2.0, cap_s=8.0), until=60)
    start, end = runs.quantile(LOW_Q), runs.quantile(HIGH_Q)
    assert times[0] == pytest.approx(start + 2.0)
    inside = [b - a for a, b in itertools.pairwise(times) if a < end]
    assert inside == pytest.approx([2.0] * len(inside))
    tail = [b - a for a, b in itertools.pairwise(times) if a >= end]
    assert tail[0] == pytest.approx(3.0)
    assert tail[1] == pytest.approx(4.5)
    assert max(tail) == pytest.approx(8.0)
    assert tail[-1] == pytest.approx(8.0)


def test_the_next_poll_is_the_next_planned_one_at_least_half_a_target_away():
    runs = RunTimes(tuple(float(t) for t in range(10, 31)))
    plan = PollPlan(target_s=2.0, cap_s=8.0)
    times = poll_times(runs, plan, until=60)
    assert next_poll_at(runs, plan, 0.0) == times[0]
    assert next_poll_at(runs, plan, times[2]) == times[3]  # just polled on plan
    assert next_poll_at(runs, plan, times[3] - 0.5) == times[4]  # off plan (after an error): not twice at once


def test_a_provider_hint_wins_within_the_target_and_the_cap():
    runs = RunTimes.prior(10.0)
    hinted = JobState(remote_id="r", status=JobStatus.RUNNING, poll_after_s=30.0)
    assert first_poll_delay(block(), PLAN, hinted, runs, callbacks=False) == 30.0
    assert later_poll_delay(block(), PLAN, hinted, runs, 5.0, callbacks=False) == 30.0
    soon = JobState(remote_id="r", status=JobStatus.RUNNING, poll_after_s=0.1)
    assert later_poll_delay(block(), PLAN, soon, runs, 5.0, callbacks=False) == PLAN.target_s
    late = JobState(remote_id="r", status=JobStatus.RUNNING, poll_after_s=900.0)
    assert later_poll_delay(block(), PLAN, late, runs, 5.0, callbacks=False) == PLAN.cap_s


def test_first_poll_s_keeps_a_fixed_schedule():
    fixed = block(first_poll_s=5.0, poll_interval_s=2.5)
    runs = RunTimes.prior(10.0)
    assert first_poll_delay(fixed, PLAN, RUNNING, runs, callbacks=False) == 5.0
    assert later_poll_delay(fixed, PLAN, RUNNING, runs, 5.0, callbacks=False) == 2.5


def test_with_callbacks_polls_are_a_slow_safety_net():
    runs = RunTimes.prior(10.0)
    first = first_poll_delay(block(first_poll_s=1.0), PLAN, RUNNING, runs, callbacks=True)
    assert first == pytest.approx(2 * runs.quantile(0.99))
    assert next_safety_poll_at(RunTimes.prior(100.0), PLAN, 0.0) == PLAN.cap_s  # never later than the cap
    assert next_safety_poll_at(runs, PLAN, first) == pytest.approx(first + PLAN.cap_s)
    assert later_poll_delay(block(), PLAN, RUNNING, runs, first + 1, callbacks=True) == pytest.approx(PLAN.cap_s - 1)


# ---------------------------------------------------------------------------------------------- simulation
def simulate(runs: RunTimes, plan: PollPlan, durations: list[float]) -> tuple[float, float, list[tuple[float, float]]]:
    """The learned plan on a simulated clock: (mean polls per job, 95th percentile detection latency, what each
    job showed: last seen running and found done, as the bot records it)."""
    polls, latencies, seen = 0, [], []
    for duration in durations:
        elapsed = 0.0
        while True:
            t = next_poll_at(runs, plan, elapsed)
            polls += 1
            if t >= duration:
                latencies.append(t - duration)
                seen.append((seen_running_until(block(), plan, runs, t, callbacks=False), t))
                break
            elapsed = t
    return polls / len(durations), p95(latencies), seen


def learn_by_running(median_s: float, sigma: float, rng: random.Random, *, typical_s: float = 20.0) -> RunTimes:
    """The bot's own loop: from the prior around the model's typical duration (here far off), poll by the plan,
    record what each job showed, refit (a refresh) after every 300 jobs, from the newest 500."""
    runs = RunTimes.learned([], typical_s)
    seen: list[tuple[float, float]] = []
    for _ in range(6):
        durations = [median_s * math.exp(rng.gauss(0, sigma)) for _ in range(300)]
        seen = [*seen, *simulate(runs, PLAN, durations)[2]][-500:]
        runs = RunTimes.learned(seen, typical_s)
    return runs


def fixed_loop(durations: list[float], interval: float = 2.0) -> tuple[float, float]:
    """The same for a loop that polls every ``interval`` seconds after submitting."""
    polls = [max(1, math.ceil(d / interval)) for d in durations]
    latencies = [interval * n - d for n, d in zip(polls, durations, strict=True)]
    return sum(polls) / len(durations), p95(latencies)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


def compare(median_s: float, sigma: float, seed: int = 12) -> tuple[float, float, float, float]:
    """(learned polls, learned p95, loop polls, loop p95) over 5,000 jobs, after learning by running."""
    rng = random.Random(seed)
    runs = learn_by_running(median_s, sigma, rng)
    durations = [median_s * math.exp(rng.gauss(0, sigma)) for _ in range(5000)]
    polls, latency, _ = simulate(runs, PLAN, durations)
    return (polls, latency, *fixed_loop(durations))


def test_the_poll_before_is_the_planned_one_or_none():
    runs = RunTimes.prior(8.0)
    times = poll_times(runs, PLAN, until=60)
    assert previous_poll_at(runs, PLAN, times[0]) == 0.0
    assert previous_poll_at(runs, PLAN, times[3]) == times[2]
    fixed = block(first_poll_s=5.0, poll_interval_s=2.0)
    assert seen_running_until(fixed, PLAN, runs, 5.0, callbacks=False) == 0.0
    assert seen_running_until(fixed, PLAN, runs, 9.0, callbacks=False) == 7.0
    assert seen_running_until(block(), PLAN, runs, 30.0, callbacks=True) == 0.0


@pytest.mark.parametrize(("median_s", "sigma"), [(8.0, 0.1), (8.0, 0.15), (8.0, 0.2), (5.0, 0.15), (12.0, 0.2)])
def test_lognormal_run_times_need_half_the_polls_of_a_2s_loop_and_see_completion_as_soon(median_s, sigma):
    polls, latency, loop_polls, loop_latency = compare(median_s, sigma)
    assert polls <= loop_polls / 2, (polls, loop_polls)
    assert latency <= loop_latency, (latency, loop_latency)


def test_a_wide_distribution_still_sees_completion_as_soon_with_fewer_polls():
    polls, latency, loop_polls, loop_latency = compare(8.0, 0.5)
    assert polls < loop_polls
    assert latency <= loop_latency


def figures(sigmas: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.5), median_s: float = 8.0) -> list[str]:
    """The README's table: ``python -m tests.jobs.test_poll_schedule``."""
    lines = []
    for sigma in sigmas:
        polls, latency, loop_polls, loop_latency = compare(median_s, sigma)
        lines.append(
            f"sigma {sigma:.2f}: polls per job {polls:.2f} / {loop_polls:.2f} ({polls / loop_polls:.2f}x), "
            f"detection p95 {latency:.2f} s / {loop_latency:.2f} s"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(figures()))
