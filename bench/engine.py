"""Benchmark of the job engine end to end: the production wiring (``open_services`` + ``Bot``) against the fake
Discord and the fake provider servers, N slash commands at once, and figures about what it cost.

Run from the repository root::

    .venv/bin/python -m bench.engine                      # 200 jobs of neta-lumina, concurrency 4
    .venv/bin/python -m bench.engine --jobs 500 --model uni-1 --concurrency 8 --processing-s 0.5

Everything (bot, fake Discord, fake providers) runs in this one process and event loop, so the figures are an
upper bound on the bot's own cost. Not a test: pytest never collects it (it lives outside ``tests/``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import Bot
from bot.runtime import open_services
from providers.base import GenerationRequest, JobState, Provider
from tests.e2e.harness import e2e_settings, provider_fakes
from tests.fakes.discord import FakeDiscord, RecordedRequest, running_bot
from tests.fakes.discord.runner import pointed_at
from tests.fakes.providers._server import Timing

# model key -> (provider, command)
MODELS = {
    "neta-lumina": ("wavespeed", "imagine"),
    "uni-1": ("luma_agents", "imagine"),
    "uni-1-max": ("luma_agents", "imagine"),
    "kawaii-3d": ("lumozai", "imagine"),
    "luma-video": ("luma_reseller", "video"),
}
REST_KINDS = ("callback", "receipt", "job message", "progress edits", "final edit", "pings", "other")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="slash commands sent at once (default 200)")
    parser.add_argument("--model", choices=sorted(MODELS), default="neta-lumina")
    parser.add_argument("--concurrency", type=int, default=4, help="the provider's max_concurrency (default 4)")
    parser.add_argument("--edit-min-interval", type=float, default=2.0, help="EDIT_MIN_INTERVAL_S (default 2)")
    parser.add_argument("--queue-edit-interval", type=float, default=10.0, help="QUEUE_EDIT_INTERVAL_S (default 10)")
    parser.add_argument("--processing-s", type=float, default=0.05, help="fake upstream job duration (default 0.05)")
    parser.add_argument("--poll-interval", type=float, default=0.02, help="first poll and poll interval (0.02)")
    parser.add_argument("--ping-after", type=float, default=60.0, help="COMPLETION_PING_AFTER_S (default 60)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--validate-spec", action="store_true", help="check bodies against the OpenAPI spec too")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.concurrency < 1:
        parser.error("--jobs and --concurrency must be at least 1")
    return args


class UpstreamMeter:
    """Wraps one provider adapter: how many jobs were live upstream at once (being submitted, or submitted and not
    yet seen finished; a synchronous API such as Lumozai's only has the former)."""

    def __init__(self, provider: Provider) -> None:
        self.live: set[str] = set()
        self.submitting = 0
        self.peak = 0
        submit, poll = provider.submit, provider.poll

        async def metered_submit(request: GenerationRequest) -> JobState:
            self.submitting += 1
            self.peak = max(self.peak, len(self.live) + self.submitting)
            try:
                state = await submit(request)
            finally:
                self.submitting -= 1
            if not state.status.terminal:
                self.live.add(state.remote_id)
            return state

        async def metered_poll(remote_id: str) -> JobState:
            state = await poll(remote_id)
            if state.status.terminal:
                self.live.discard(remote_id)
            return state

        provider.submit = metered_submit  # type: ignore[method-assign]
        provider.poll = metered_poll  # type: ignore[method-assign]


@dataclass
class Result:
    jobs: int
    elapsed_s: float
    statuses: Counter[str]
    latencies_s: list[float]
    accept_s: list[float]
    rest: Counter[str]
    final_with_files: int
    scheduler_calls: dict[str, int]
    provider_http: int
    peak_upstream: int
    violations: int
    peak_rss_mb: float
    db_round_trips: int = 0
    cpu_s: float = 0.0
    loop_lag_s: list[float] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def classify_rest(requests: Sequence[RecordedRequest]) -> tuple[Counter[str], int]:
    """Count the bot's Discord REST calls by purpose; also how many final edits carried files.

    The job message is the command's original response: its first edit is "job message", the last one per message
    "final edit", the ones between "progress edits"; followups are the ephemeral receipt, channel posts with a
    mention the completion pings."""
    counts: Counter[str] = Counter()
    edits: dict[str, list[RecordedRequest]] = {}
    for r in requests:
        path = r.path
        if r.method == "POST" and re.fullmatch(r"/interactions/\d+/[^/]+/callback", path):
            counts["callback"] += 1
        elif r.method == "PATCH" and path.endswith("/messages/@original"):
            edits.setdefault(r.interaction_token or path, []).append(r)
        elif r.method == "POST" and re.fullmatch(r"/webhooks/\d+/[^/]+", path):
            content = (r.json or {}).get("content", "") if isinstance(r.json, dict) else ""
            counts["pings" if "discord.com/channels" in str(content) else "receipt"] += 1
        elif r.method == "PATCH" and (m := re.fullmatch(r"/(?:webhooks/\d+/[^/]+|channels/\d+)/messages/(\d+)", path)):
            edits.setdefault(m.group(1), []).append(r)
        elif r.method == "POST" and re.fullmatch(r"/channels/\d+/messages", path):
            content = (r.json or {}).get("content", "") if isinstance(r.json, dict) else ""
            counts["pings" if " your " in content and "discord.com/channels" in content else "other"] += 1
        else:
            counts["other"] += 1
    for sent in edits.values():
        counts["job message"] += 1
        if len(sent) > 1:
            counts["final edit"] += 1
            counts["progress edits"] += len(sent) - 2
    return counts, sum(1 for sent in edits.values() if sent[-1].files)


async def run(args: argparse.Namespace) -> Result:
    provider_name, command = MODELS[args.model]
    with tempfile.TemporaryDirectory(prefix="genbot-bench-") as tmp:
        fake = FakeDiscord(spec_path=None) if not args.validate_spec else FakeDiscord()
        async with fake, provider_fakes() as fakes:
            with pointed_at(fake):
                upstream = getattr(fakes, provider_name)
                upstream.timing = Timing(queued_s=0.0, processing_s=args.processing_s)
                settings = e2e_settings(
                    Path(tmp),
                    fake,
                    fakes,
                    providers={
                        provider_name: {
                            "max_concurrency": args.concurrency,
                            "first_poll_s": args.poll_interval,
                            "poll_interval_s": args.poll_interval,
                        }
                    },
                    edit_min_interval_s=args.edit_min_interval,
                    queue_edit_interval_s=args.queue_edit_interval,
                    completion_ping_after_s=args.ping_after,
                    max_running_jobs_per_user=args.jobs + 1,
                    daily_credits=1_000_000,
                )
                async with open_services(settings) as services:
                    meter = UpstreamMeter(services.providers[provider_name])
                    bot = Bot(services)
                    async with running_bot(bot, fake):
                        first_request = len(fake.requests)
                        provider_requests = len(upstream.requests)
                        sent_at: dict[str, float] = {}
                        started = time.monotonic()
                        trips_before = services.database.round_trips
                        cpu_before = time.process_time()
                        lags: list[float] = []
                        lag_task = asyncio.create_task(sample_loop_lag(lags))
                        for n in range(args.jobs):
                            prompt = f"bench job {n}"
                            options: dict[str, Any] = {"prompt": prompt}
                            if command == "imagine":
                                options["model"] = args.model
                            sent_at[prompt] = time.time()
                            await fake.dispatch(fake.slash_command(command, options))
                        waits = await wait_for_delivery(services.database, args.jobs, args.timeout)
                        elapsed = time.monotonic() - started
                        cpu_s = time.process_time() - cpu_before
                        lag_task.cancel()
                        db_round_trips = services.database.round_trips - trips_before - waits
                        rows = await services.database.fetch_all(
                            "SELECT prompt, status, error_code, created_at, delivered_at FROM jobs"
                        )
                        runner = services.engine.steps.runner
                        calls = dict(runner.calls) if runner is not None else {}
                    requests = fake.requests[first_request:]
                    http = [r for r in upstream.requests[provider_requests:] if not r.path.startswith("/media/")]
        rest, final_with_files = classify_rest(requests)
        return Result(
            jobs=args.jobs,
            elapsed_s=elapsed,
            statuses=Counter(row["status"] + (f" ({row['error_code']})" if row["error_code"] else "") for row in rows),
            latencies_s=[row["delivered_at"] - sent_at[row["prompt"]] for row in rows if row["delivered_at"]],
            accept_s=[row["created_at"] - sent_at[row["prompt"]] for row in rows],
            rest=rest,
            final_with_files=final_with_files,
            scheduler_calls=calls,
            provider_http=len(http),
            peak_upstream=meter.peak,
            violations=len(fake.violations),
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            db_round_trips=db_round_trips,
            cpu_s=cpu_s,
            loop_lag_s=lags,
            settings={
                "model": args.model,
                "provider": provider_name,
                "concurrency": args.concurrency,
                "edit_min_interval_s": args.edit_min_interval,
                "queue_edit_interval_s": args.queue_edit_interval,
                "processing_s": args.processing_s,
                "poll_interval_s": args.poll_interval,
            },
        )


async def sample_loop_lag(lags: list[float], interval_s: float = 0.05) -> None:
    """How late the event loop runs a timer of ``interval_s``, sampled for as long as the run lasts."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval_s)
        lags.append(max(0.0, time.perf_counter() - start - interval_s))


async def wait_for_delivery(database: Any, jobs: int, limit_s: float) -> int:
    """Wait until every job was delivered; returns how many queries that took (not the bot's round trips)."""
    deadline = time.monotonic() + limit_s
    queries = 0
    while True:
        done = await database.fetch_value("SELECT COUNT(*) FROM jobs WHERE delivered_at IS NOT NULL")
        queries += 1
        if done >= jobs:
            return queries
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {jobs} jobs were delivered within {limit_s:.0f}s")
        await asyncio.sleep(0.05)


def percentile(values: Sequence[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def report(result: Result) -> str:
    n = result.jobs
    s = result.settings
    rest_total = sum(result.rest.values())
    split = ", ".join(f"{kind} {result.rest[kind] / n:.2f}" for kind in REST_KINDS)
    lines = [
        f"genbot engine benchmark: {n} jobs of {s['model']} ({s['provider']}, max_concurrency {s['concurrency']}), "
        f"EDIT_MIN_INTERVAL_S={s['edit_min_interval_s']:g}, QUEUE_EDIT_INTERVAL_S={s['queue_edit_interval_s']:g}, "
        f"upstream job {s['processing_s']:g}s, poll every {s['poll_interval_s']:g}s",
        f"outcome:               {dict(result.statuses)}; Discord-limit violations: {result.violations}",
        f"total time:            {result.elapsed_s:.2f} s (first command sent → last result delivered)",
        f"throughput:            {n / result.elapsed_s:.1f} jobs/s",
        f"Discord REST per job:  {rest_total / n:.2f} total: {split}",
        f"                       final edits carrying the file: {result.final_with_files}/{n}",
        f"provider calls per job: submits {result.scheduler_calls.get('submit', 0) / n:.2f}, "
        f"polls {result.scheduler_calls.get('poll', 0) / n:.2f} (HTTP requests seen upstream: "
        f"{result.provider_http / n:.2f})",
        f"command → delivered:   p50 {percentile(result.latencies_s, 50):.2f} s, "
        f"p95 {percentile(result.latencies_s, 95):.2f} s, max {max(result.latencies_s):.2f} s "
        f"(command → job written: p50 {percentile(result.accept_s, 50) * 1000:.0f} ms, "
        f"p95 {percentile(result.accept_s, 95) * 1000:.0f} ms)",
        f"database round trips:  {result.db_round_trips / n:.1f} per job",
        f"CPU:                   {result.cpu_s * 1000 / n:.1f} ms per job (this process: bot, fakes and the client)",
        f"event-loop lag:        p99 {percentile(result.loop_lag_s or [0.0], 99) * 1000:.0f} ms, "
        f"max {max(result.loop_lag_s or [0.0]) * 1000:.0f} ms (one loop for bot and fakes)",
        f"upstream concurrency:  peak {result.peak_upstream} observed, {s['concurrency']} configured",
        f"peak RSS:              {result.peak_rss_mb:.0f} MB (this process: bot, fake Discord and fake providers)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = asyncio.run(run(args))
    except TimeoutError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(report(result))
    return 0 if result.statuses.get("succeeded", 0) == result.jobs and result.violations == 0 else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
