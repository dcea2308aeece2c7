"""The benchmark's scenarios, as data: a new one is a few lines here (see ``webhooks-100``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.settings import Settings
from tests.fakes.providers.callbacks import WAVESPEED_SECRET

Command = Literal["imagine", "video"]


@dataclass(frozen=True)
class Scenario:
    """``jobs`` commands of ``model`` sent through the fake gateway; ``burst``: the fake service holds every job
    until all are submitted, then finishes them within one second. ``env`` adds bot settings (``{http_port}`` and
    ``{http_url}`` are filled in); ``requires`` names a bot setting without which the scenario is skipped."""

    name: str
    title: str
    jobs: int
    quick_jobs: int
    model: str = "neta-lumina"
    provider: str = "wavespeed"
    command: Command = "imagine"
    burst: bool = False
    env: dict[str, str] = field(default_factory=dict)
    requires: str | None = None
    targets: tuple[str, ...] = ()  # which of issue 12's targets this scenario is judged on (report.TARGETS)

    def size(self, quick: bool) -> int:
        return self.quick_jobs if quick else self.jobs

    def available(self) -> bool:
        return self.requires is None or self.requires in Settings.model_fields


IMAGE_TARGETS = ("latency", "polls", "rest", "429", "cpu", "db", "lag")
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("images-100", "100 image jobs in flight", 100, 6, targets=IMAGE_TARGETS),
    Scenario("images-1000", "1,000 image jobs in flight", 1000, 10, targets=IMAGE_TARGETS),
    Scenario("images-10000", "10,000 image jobs in flight", 10_000, 12, targets=(*IMAGE_TARGETS, "rss")),
    Scenario(
        "videos-200",
        "200 videos",
        200,
        3,
        model="luma-video",
        provider="luma_reseller",
        command="video",
        targets=("429", "cpu", "db", "lag"),
    ),
    Scenario(
        "burst-1000",
        "1,000 jobs completing within one second",
        1000,
        8,
        burst=True,
        targets=("429", "cpu", "db", "lag"),
    ),
    # Push instead of polls: runs once the bot knows WEBHOOK_PUBLIC_URL (the fakes then call back).
    Scenario(
        "webhooks-100",
        "100 image jobs, webhooks on",
        100,
        6,
        env={"WEBHOOK_PUBLIC_URL": "{http_url}", "WAVESPEED__WEBHOOK_SECRET": WAVESPEED_SECRET},
        requires="webhook_public_url",
        targets=("webhook", "rest", "429", "cpu", "db", "lag"),
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
