"""The learned poll schedule, deterministically: where polls go for a known distribution, the prior, provider
hints, the safety net with callbacks, and (on a simulated clock, no timing) that for log-normal run times it needs
at most half the polls of a fixed 2-second loop while its 95th percentile detection latency is no worse."""

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
    later_poll_delay,
    next_poll_at,
    next_safety_poll_at,
    poll_times,
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


def test_few_samples_centre_the_prior_and_enough_replace_it():
    assert RunTimes.learned([], 10.0) == RunTimes.prior(10.0)
    few = [4.0] * MIN_CENTRE_SAMPLES
    assert RunTimes.learned(few, 10.0) == RunTimes.prior(4.0)
    many = [float(i) for i in range(1, MIN_SAMPLES + 1)]
    assert RunTimes.learned([*many, -1.0, math.inf], 10.0).points == tuple(many)


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
def simulate(runs: RunTimes, plan: PollPlan, durations: list[float]) -> tuple[float, float]:
    """(mean polls per job, 95th percentile detection latency) of the learned plan, on a simulated clock."""
    polls, latencies = 0, []
    for duration in durations:
        elapsed = 0.0
        while True:
            t = next_poll_at(runs, plan, elapsed)
            polls += 1
            if t >= duration:
                latencies.append(t - duration)
                break
            elapsed = t
    return polls / len(durations), p95(latencies)


def fixed_loop(durations: list[float], interval: float = 2.0) -> tuple[float, float]:
    """The same for a loop that polls every ``interval`` seconds after submitting."""
    polls = [max(1, math.ceil(d / interval)) for d in durations]
    latencies = [interval * n - d for n, d in zip(polls, durations, strict=True)]
    return sum(polls) / len(durations), p95(latencies)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


@pytest.mark.parametrize(("median_s", "sigma"), [(8.0, 0.15), (8.0, 0.2), (6.0, 0.2)])
def test_lognormal_run_times_need_half_the_polls_of_a_2s_loop_and_see_completion_as_soon(median_s, sigma):
    rng = random.Random(12)
    history = [median_s * math.exp(rng.gauss(0, sigma)) for _ in range(300)]  # finished jobs, as the database has
    runs = RunTimes.learned(history, typical_s=20.0)
    durations = [median_s * math.exp(rng.gauss(0, sigma)) for _ in range(5000)]

    polls, latency = simulate(runs, PLAN, durations)
    loop_polls, loop_latency = fixed_loop(durations)

    assert polls <= loop_polls / 2, (polls, loop_polls)
    assert latency <= loop_latency, (latency, loop_latency)


def test_a_wide_distribution_still_sees_completion_as_soon_with_fewer_polls():
    rng = random.Random(3)
    history = [8.0 * math.exp(rng.gauss(0, 0.5)) for _ in range(300)]
    durations = [8.0 * math.exp(rng.gauss(0, 0.5)) for _ in range(5000)]
    polls, latency = simulate(RunTimes.learned(history, 20.0), PLAN, durations)
    loop_polls, loop_latency = fixed_loop(durations)
    assert polls < loop_polls
    assert latency <= loop_latency


def figures(sigmas: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.5), median_s: float = 8.0) -> list[str]:
    """The README's table: ``python -m tests.jobs.test_poll_schedule``."""
    lines = []
    for sigma in sigmas:
        rng = random.Random(12)
        history = [median_s * math.exp(rng.gauss(0, sigma)) for _ in range(300)]
        durations = [median_s * math.exp(rng.gauss(0, sigma)) for _ in range(5000)]
        polls, latency = simulate(RunTimes.learned(history, 20.0), PLAN, durations)
        loop_polls, loop_latency = fixed_loop(durations)
        lines.append(
            f"sigma {sigma:.2f}: polls per job {polls:.2f} / {loop_polls:.2f} ({polls / loop_polls:.2f}x), "
            f"detection p95 {latency:.2f} s / {loop_latency:.2f} s"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(figures()))
