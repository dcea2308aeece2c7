"""Realistic upstream job durations for the fake providers, per model, seeded and scaled (the benchmark's).

``JobClock(model, scale=..., seed=...).attach(fake)`` makes every job the fake creates from then on draw its
duration (queue wait + processing) from the model's distribution times ``scale``, and records for each job when
it became done upstream (wall-clock seconds) so a client's detection latency can be measured; the fakes count
polls per job themselves (``FakeJob.polls``). ``hold=True`` keeps jobs processing until ``release()`` makes them
all finish within one window (the "1,000 jobs completing within one second" scenario).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from tests.fakes.providers._server import FakeJob, FakeProviderServer, Timing

HELD_S = 1e9  # "processing" until released


@dataclass(frozen=True)
class Lognormal:
    """Run times whose logarithm is normal: ``median_s`` and the spread ``sigma`` (5–95 % ≈ median·e^±1.645σ)."""

    median_s: float
    sigma: float
    queued_share: float = 0.15  # the part of the time spent "queued" before "processing"

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median_s), self.sigma)

    def quantile(self, p: float) -> float:
        from statistics import NormalDist

        return self.median_s * math.exp(self.sigma * NormalDist().inv_cdf(p))


# Per model key of the bot. Images take a few seconds (typical ranges seen on the services: neta-lumina 4–10 s,
# uni-1 8–20 s, uni-1-max longer, kawaii-3d 5–12 s); a 5 s Luma video takes 1–5 minutes, about 3 in the one
# timed example (providers.md §2.7).
MODELS: dict[str, Lognormal] = {
    "neta-lumina": Lognormal(6.0, 0.35),
    "uni-1": Lognormal(11.0, 0.3),
    "uni-1-max": Lognormal(16.0, 0.3),
    "kawaii-3d": Lognormal(7.0, 0.3),
    "luma-video": Lognormal(150.0, 0.3),
}


@dataclass
class Upstream:
    """What the fake knows about one job: when it was created and when it became done (wall clock)."""

    job: FakeJob
    created_wall: float
    done_wall: float | None

    @property
    def polls(self) -> int:
        return self.job.polls


class JobClock:
    def __init__(self, model: str, *, scale: float = 1.0, seed: int = 12, hold: bool = False) -> None:
        self.distribution = MODELS[model]
        self.scale = scale
        self.hold = hold
        self.rng = random.Random(f"{model}:{seed}")
        self.jobs: dict[str, Upstream] = {}

    def attach(self, fake: FakeProviderServer) -> JobClock:
        fake.job_hooks.append(self._on_create)
        return self

    def _on_create(self, job: FakeJob) -> None:
        now = time.time()
        if self.hold:
            job.timing = Timing(queued_s=0.0, processing_s=HELD_S)
            self.jobs[job.id] = Upstream(job, now, None)
            return
        total = self.distribution.draw(self.rng) * self.scale
        queued = total * self.distribution.queued_share
        job.timing = Timing(queued_s=queued, processing_s=total - queued)
        self.jobs[job.id] = Upstream(job, now, now + total)

    def release(self, *, lead_s: float = 0.5, window_s: float = 1.0) -> None:
        """Every held job finishes ``lead_s`` from now plus a uniform share of ``window_s``."""
        wall, mono = time.time(), time.monotonic()
        for upstream in self.jobs.values():
            if upstream.done_wall is not None:
                continue
            offset = lead_s + self.rng.uniform(0.0, window_s)
            upstream.job.timing = Timing(queued_s=0.0, processing_s=mono + offset - upstream.job.created_at)
            upstream.done_wall = wall + offset
