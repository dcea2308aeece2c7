"""When to ask a provider again, and when to stop waiting.

Learned polling: each model's run times (acceptance → done, from finished jobs; a log-normal prior around the
model's typical duration while there are few) give a distribution ``RunTimes``. Polls are placed where completion
is likely: the first one a target latency after a low quantile, then one every target latency until a high
quantile, then further and further apart (up to the cap) in the tail. A job finishing inside the likely window is
seen within one target latency; nothing is spent before it. A provider's own hint (an estimated wait) wins where
given. With callbacks on, polls are only a safety net: the first after twice the 99th percentile (at most the
cap), then one every cap.
Errors keep capped exponential backoff with jitter (``Retry-After`` honoured past the cap).
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist

from bot.settings import ProviderSettings, Settings
from providers.base import JobState, Kind

PRIOR_SIGMA = 0.35  # spread (of the log) assumed for a model before its own jobs say otherwise
PRIOR_POINTS = 64
MIN_SAMPLES = 20  # below this, the prior is used (centred on the samples' median once there are a few)
MIN_CENTRE_SAMPLES = 5
MIN_SIGMA = 0.03
SIGMA_MARGIN = 1.07  # a fitted spread is widened a little: too narrow costs latency, too wide only polls
# The fit's prior belief about the median: the model's typical duration, give or take a factor e (one unit of the
# log). Hundreds of jobs outweigh it; it keeps the fit finite when every job was found done at its first look.
PRIOR_LOG_SD = 1.0
LOW_Q = 0.02  # before this quantile (plus one target) nobody polls
HIGH_Q = 0.975  # after this one, polls back off
TAIL_GROWTH = 1.5
SAFETY_FACTOR = 2.0  # callbacks on: the first safety poll at this many times the 99th percentile


@dataclass(frozen=True, slots=True)
class RunTimes:
    """A model's run times in seconds, sorted (an empirical distribution)."""

    points: tuple[float, ...]

    @classmethod
    def prior(cls, typical_s: float, sigma: float = PRIOR_SIGMA) -> RunTimes:  # also any fitted log-normal
        """A log-normal with median ``typical_s``, as evenly spaced quantiles."""
        normal = NormalDist()
        return cls(
            tuple(typical_s * math.exp(sigma * normal.inv_cdf((i + 0.5) / PRIOR_POINTS)) for i in range(PRIOR_POINTS))
        )

    @classmethod
    def learned(cls, seen: list[tuple[float, float]], typical_s: float) -> RunTimes:
        """From what finished jobs showed: each ran between ``low`` (last seen running; 0 when found done at the
        first look) and ``high`` seconds (found done). A log-normal fitted to them once there are enough; before
        that the prior, centred on their middle when there are a few. Jobs still running count in the fit as
        (last seen running, infinity)."""
        clean = [(max(0.0, low), high) for low, high in seen if 0 < high < math.inf and low < high]
        if len(clean) >= MIN_SAMPLES:
            running = [(low, high) for low, high in seen if high == math.inf and low > 0]
            fitted = fit_lognormal([*clean, *running], typical_s)
            if fitted is not None:
                median, sigma = fitted
                return cls.prior(median, sigma * SIGMA_MARGIN)
        if len(clean) >= MIN_CENTRE_SAMPLES:
            middles = sorted((low + high) / 2 for low, high in clean)
            return cls.prior(middles[len(middles) // 2])
        return cls.prior(typical_s)

    def quantile(self, q: float) -> float:
        """Linear interpolation between the points (q in [0, 1])."""
        points = self.points
        position = min(max(q, 0.0), 1.0) * (len(points) - 1)
        low = int(position)
        high = min(low + 1, len(points) - 1)
        return points[low] + (points[high] - points[low]) * (position - low)

    def done_by(self, t: float) -> float:
        """The share of jobs done within ``t`` seconds."""
        return bisect.bisect_right(self.points, t) / len(self.points)


def fit_lognormal(seen: list[tuple[float, float]], typical_s: float) -> tuple[float, float] | None:
    """(median, sigma) of the log-normal most likely to have produced these intervals (interval-censored maximum
    likelihood, with the weak prior ``PRIOR_LOG_SD`` on the median around ``typical_s``): a job found done at its
    first look only says it took less than that, and taking the look's time as its run time would push the first
    poll later at every refresh. Jobs that all say only that would let the median fall without end (a plan polling
    from the first second, its window over before the jobs are done); the prior stops it where they are still
    likely. Pure CPU: run it off the event loop."""
    prior_mu = math.log(typical_s)
    groups = Counter((round(low, 2), round(high, 2)) for low, high in seen)
    normal = NormalDist()
    finished = [(low, high) for low, high in seen if high < math.inf]
    logs = [math.log((low + high) / 2 if low > 0 else high / 2) for low, high in finished]
    mu = sum(logs) / len(logs)
    # Jobs found done at their first look say nothing about the spread: with few jobs seen running first, a narrow
    # fit just under that look would keep the first poll there for good (every job found done at it again). The
    # prior's spread at least puts the first poll earlier, so the next refresh has jobs seen running.
    two_sided = sum(1 for low, _ in finished if low > 0)
    min_sigma = MIN_SIGMA if two_sided >= MIN_SAMPLES // 2 else PRIOR_SIGMA
    log_sigma = math.log(max(min_sigma, math.sqrt(sum((x - mu) ** 2 for x in logs) / len(logs))))

    def cost(mu: float, log_sigma: float) -> float:
        sigma = math.exp(log_sigma)
        total = 0.5 * ((mu - prior_mu) / PRIOR_LOG_SD) ** 2
        for (low, high), count in groups.items():
            p = normal.cdf((math.log(high) - mu) / sigma) if high < math.inf else 1.0
            if low > 0:
                p -= normal.cdf((math.log(low) - mu) / sigma)
            total -= count * math.log(max(p, 1e-300))
        return total

    best = cost(mu, log_sigma)
    step = 0.5
    for _ in range(200):  # pattern search: a few dozen evaluations of a smooth two-parameter function
        moved = False
        for d_mu, d_log_sigma in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
            candidate = (mu + d_mu, max(math.log(min_sigma), log_sigma + d_log_sigma))
            value = cost(*candidate)
            if value < best - 1e-9:
                best, (mu, log_sigma), moved = value, candidate, True
        if not moved:
            step /= 2
            if step < 1e-3:
                break
    if not math.isfinite(best):
        return None
    return math.exp(mu), math.exp(log_sigma)


@dataclass(frozen=True, slots=True)
class PollPlan:
    """``target_s``: the gap between polls where completion is likely (the detection latency aimed for);
    ``cap_s``: the longest gap."""

    target_s: float
    cap_s: float


def _planned(runs: RunTimes, plan: PollPlan) -> Iterator[float]:
    """The planned polls in seconds after acceptance, without end."""
    cap = max(plan.cap_s, plan.target_s)
    window_end = runs.quantile(HIGH_Q)
    t = runs.quantile(LOW_Q) + plan.target_s
    gap = plan.target_s
    while True:
        yield t
        if t >= window_end:
            gap = min(cap, gap * TAIL_GROWTH)
        t += gap


def poll_times(runs: RunTimes, plan: PollPlan, *, until: float) -> list[float]:
    """Every planned poll, in seconds after acceptance, up to the first at or after ``until``."""
    times: list[float] = []
    for t in _planned(runs, plan):
        times.append(t)
        if t >= until:
            return times
    return times  # pragma: no cover (the plan has no end)


def next_poll_at(runs: RunTimes, plan: PollPlan, elapsed: float) -> float:
    """Seconds after acceptance of the next poll of a job not done ``elapsed`` seconds after acceptance: the next
    planned one at least half a target from now."""
    earliest = elapsed + plan.target_s / 2
    for t in _planned(runs, plan):
        if t >= earliest:
            return t
    raise AssertionError("unreachable")  # pragma: no cover


def previous_poll_at(runs: RunTimes, plan: PollPlan, elapsed: float) -> float:
    """The planned poll before the one ``elapsed`` seconds after acceptance (0 when that was the first)."""
    previous = 0.0
    for t in _planned(runs, plan):
        if t > elapsed - plan.target_s / 2:
            return previous
        previous = t
    raise AssertionError("unreachable")  # pragma: no cover


def next_safety_poll_at(runs: RunTimes, plan: PollPlan, elapsed: float) -> float:
    """Callbacks on: twice the 99th percentile after acceptance (never later than the cap), then every cap."""
    cap = max(plan.cap_s, plan.target_s)
    first = min(max(runs.quantile(0.99) * SAFETY_FACTOR, plan.target_s), cap)
    if elapsed < first:
        return first
    return first + cap * (math.floor((elapsed - first) / cap) + 1)


def hinted_delay(plan: PollPlan, hint: float) -> float:
    """The provider's own estimate of the wait, kept between the target and the cap."""
    return max(plan.target_s, min(hint, plan.cap_s))


def plan_for(settings: Settings, block: ProviderSettings) -> PollPlan:
    return PollPlan(target_s=settings.poll_target_latency_s, cap_s=block.max_poll_interval_s)


def first_poll_delay(
    block: ProviderSettings, plan: PollPlan, state: JobState, runs: RunTimes, *, callbacks: bool
) -> float:
    """With callbacks, the safety net; else ``first_poll_s`` when set, the provider's hint, or the learned plan."""
    if callbacks:
        return next_safety_poll_at(runs, plan, 0.0)
    if block.first_poll_s is not None:
        return block.first_poll_s
    if state.poll_after_s is not None:
        return hinted_delay(plan, state.poll_after_s)
    return next_poll_at(runs, plan, 0.0)


def later_poll_delay(
    block: ProviderSettings, plan: PollPlan, state: JobState, runs: RunTimes, elapsed: float, *, callbacks: bool
) -> float:
    """After a poll that found the job still running, ``elapsed`` seconds after acceptance. A provider with a fixed
    ``first_poll_s`` is polled every ``poll_interval_s`` after it (the operator chose a fixed schedule)."""
    if callbacks:
        return next_safety_poll_at(runs, plan, elapsed) - elapsed
    if block.first_poll_s is not None:
        hint = state.poll_after_s
        return block.poll_interval_s if hint is None else max(block.poll_interval_s, min(hint, plan.cap_s))
    if state.poll_after_s is not None:
        return hinted_delay(plan, state.poll_after_s)
    return next_poll_at(runs, plan, elapsed) - elapsed


def seen_running_until(
    block: ProviderSettings, plan: PollPlan, runs: RunTimes, elapsed: float, *, callbacks: bool
) -> float:
    """When a job found done ``elapsed`` seconds after acceptance was last seen running, as far as its schedule
    says (0: at its first look, which says only that it took less than ``elapsed``)."""
    if callbacks:
        return 0.0  # found by a safety poll: the callback never came
    if block.first_poll_s is not None:
        return 0.0 if elapsed < block.first_poll_s + block.poll_interval_s / 2 else elapsed - block.poll_interval_s
    return previous_poll_at(runs, plan, elapsed)


def error_delay(block: ProviderSettings, errors: int, retry_after_s: float | None, rng: random.Random) -> float:
    """After the ``errors``-th error in a row: doubling from the poll interval, jittered, never past
    ``max_poll_interval_s`` (only a provider's Retry-After goes past it)."""
    delay = min(block.max_poll_interval_s, block.poll_interval_s * 2.0 ** min(errors - 1, 32))
    delay = min(block.max_poll_interval_s, delay * rng.uniform(0.8, 1.2))
    return max(delay, retry_after_s or 0.0)


def run_deadline_s(settings: Settings, kind: str) -> float:
    """How long a job may run once the service accepted it."""
    return settings.video_deadline_s if kind == Kind.VIDEO else settings.image_deadline_s


def past_deadline(deadline_at: float | None, now: float) -> bool:
    return deadline_at is not None and now >= deadline_at
