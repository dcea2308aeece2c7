"""One scenario, start to end: fresh fakes (Discord with its rate limits, the providers with realistic durations),
a fresh bot process and database, the commands through the gateway, then the baselines on the same fakes.

This process holds the fakes and sends the commands; the bot and the baselines' clients are processes of their
own, so that the bot shares its CPU only with the fakes.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.baselines import LOOPS
from bench.bot_process import BotProcess, bot_env, free_port
from bench.scenarios import Scenario
from bot.jobs.delivery_paths import nonce_for
from tests.e2e.harness import provider_fakes
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.recording import RecordedRequest
from tests.fakes.providers.durations import JobClock

USERS = 500
CHANNELS = 20
UNACKNOWLEDGED_MAX = 100  # commands sent but not yet acknowledged by the bot: intake follows the bot's pace
LAG_SAMPLE_S = 1.0
# Every scenario but the burst starts with a bot that has history, as one in production has: WARMUP_JOBS jobs
# delivered first (not measured), then two periods of the timer that refits the learned poll plan
# (POLL_STATS_REFRESH_S, set to WARMUP_REFRESH_S here). Without it the plan starts from each model's typical
# duration, which is not scaled like the fake jobs' durations.
WARMUP_JOBS = 40
WARMUP_REFRESH_S = 2.0


@dataclass
class Options:
    scale: float
    seed: int
    quick: bool
    baseline_jobs_max: int
    timeout_s: float


@dataclass
class BotFigures:
    sent: int
    accepted: int
    delivered: int
    statuses: Counter[str]
    intake_s: float
    latencies_s: list[float]
    rest_per_job: list[int]
    rest_total: int
    rest_429: int
    polls_per_job: list[int]
    db_round_trips: float | None
    cpu_s: float
    peak_rss_mib: float
    lag_p99_s: float | None
    peak_in_flight: int
    late_acks: int
    wall_s: float
    fakes_cpu_s: float
    timed_out: bool
    violations: list[str]


@dataclass
class BaselineFigures:
    jobs: int
    latencies_s: list[float]
    polls_per_job: list[int]


@dataclass
class ScenarioResult:
    scenario: Scenario
    jobs: int
    bot: BotFigures
    baselines: dict[str, BaselineFigures] = field(default_factory=dict)


async def run_scenario(scenario: Scenario, options: Options, log_dir: Path) -> ScenarioResult:
    jobs = scenario.size(options.quick)
    with tempfile.TemporaryDirectory(prefix=f"genbot-bench-{scenario.name}-") as tmp:
        workdir = Path(tmp)
        async with FakeDiscord(spec_path=None, rate_limits=True) as discord, provider_fakes() as fakes:
            users = [int(discord.add_user(f"user{n}")["id"]) for n in range(min(USERS, jobs))]
            channels = [int(discord.add_channel(discord.default_guild_id, f"c{n}").id) for n in range(CHANNELS)]
            upstream = getattr(fakes, scenario.provider)
            bot = await bot_phase(scenario, options, jobs, workdir, discord, fakes, upstream, users, channels, log_dir)
            (log_dir / f"{scenario.name}.bot.log").write_bytes((workdir / "bot.log").read_bytes())
            baselines = await baseline_phase(scenario, options, jobs, upstream)
    return ScenarioResult(scenario, jobs, bot, baselines)


async def bot_phase(
    scenario: Scenario,
    options: Options,
    jobs: int,
    workdir: Path,
    discord: FakeDiscord,
    fakes: Any,
    upstream: Any,
    users: list[int],
    channels: list[int],
    log_dir: Path,
) -> BotFigures:
    clock = JobClock(scenario.model, scale=options.scale, seed=options.seed, hold=scenario.burst).attach(upstream)
    port = free_port()
    extra = {k: v.format(http_port=port, http_url=f"http://127.0.0.1:{port}") for k, v in scenario.env.items()}
    env = bot_env(
        workdir, discord, fakes.settings_blocks(), scale=options.scale, in_flight=jobs, http_port=port,
        fixed_first_poll=options.quick,
    )  # fmt: skip
    env.update(extra)
    bot = BotProcess(workdir, env, port)
    await bot.start(discord)
    try:
        # A bot that has run before: the learned poll plan has its history (see WARMUP_JOBS), refitted by its timer
        # while the bot idles.
        warm = 0 if scenario.burst else min(WARMUP_JOBS, jobs)
        if warm:
            await send_commands(discord, scenario, warm, users, channels, prefix="warmup")
            await wait_until(
                lambda: delivered_count(workdir / "bot.sqlite3") >= warm, options.timeout_s, "the warm-up delivered"
            )
            await asyncio.sleep(WARMUP_REFRESH_S * 2)
        before = await bot.scrape()
        cpu_before = bot.cpu_s()
        fakes_before = own_cpu_s()
        timed_out = False
        first_request = len(discord.requests)
        violations_before = len(discord.violations)
        lags: list[float] = []
        sampler = asyncio.create_task(sample_lag(bot, lags))
        started = time.time()
        tokens = await send_commands(discord, scenario, jobs, users, channels)
        if scenario.burst:
            await wait_until(lambda: len(clock.jobs) >= jobs, options.timeout_s, "every job submitted upstream")
            clock.release()
        database = workdir / "bot.sqlite3"
        try:
            await wait_until(lambda: delivered_count(database) >= jobs + warm, options.timeout_s, "every job delivered")
        except TimeoutError as exc:
            timed_out = True
            print(f"  {scenario.name}: {exc}", file=sys.stderr)
        wall = time.time() - started
        fakes_cpu = own_cpu_s() - fakes_before
        sampler.cancel()
        after = await bot.scrape()
        cpu = bot.cpu_s() - cpu_before
        rss = bot.peak_rss_mib()
    finally:
        await bot.stop()
    rows = [row for row in read_jobs(workdir / "bot.sqlite3") if row["prompt"].startswith("bench ")]
    requests = discord.requests[first_request:]
    delivered_at, per_job = attribute_requests(requests, tokens, rows)
    undelivered = [n for n in range(jobs) if n not in delivered_at]
    if undelivered:
        dump_undelivered(log_dir / f"{scenario.name}.undelivered.json", undelivered, tokens, rows, requests)
    latencies = []
    polls = []
    for row in rows:
        seen = clock.jobs.get(row["remote_id"] or "")
        if seen is None:
            continue
        polls.append(seen.polls)
        n = prompt_number(row["prompt"])
        if seen.done_wall is not None and n in delivered_at:
            latencies.append(delivered_at[n] - seen.done_wall)
    rounds_before, rounds_after = (
        before.total("genbot_db_round_trips_total"),
        after.total("genbot_db_round_trips_total"),
    )
    created = [row["created_at"] for row in rows]
    return BotFigures(
        sent=len(tokens),
        accepted=len(rows),
        delivered=len(delivered_at),
        statuses=Counter(row["status"] for row in rows),
        intake_s=(max(created) - started) if created else float("nan"),
        latencies_s=latencies,
        rest_per_job=[per_job.get(n, 0) for n in range(jobs)],
        rest_total=len(requests),
        rest_429=sum(1 for r in requests if r.status == 429),
        polls_per_job=polls,
        db_round_trips=None if rounds_after is None else rounds_after - (rounds_before or 0.0),
        cpu_s=cpu,
        peak_rss_mib=rss,
        lag_p99_s=lag_p99(before, after, lags),
        peak_in_flight=peak_in_flight(rows),
        late_acks=sum(1 for v in discord.violations[violations_before:] if "deadline:" in v),
        wall_s=wall,
        fakes_cpu_s=fakes_cpu,
        timed_out=timed_out,
        violations=list(discord.violations),
    )


async def send_commands(
    discord: FakeDiscord, scenario: Scenario, jobs: int, users: list[int], channels: list[int], prefix: str = "bench"
) -> dict[str, int]:
    """The commands as INTERACTION_CREATE, as fast as the bot acknowledges them (at most ``UNACKNOWLEDGED_MAX``
    waiting); returns interaction token → command number."""
    tokens: dict[str, int] = {}
    waiting: list[Any] = []
    for n in range(jobs):
        options: dict[str, Any] = {"prompt": f"{prefix} {n}"}
        if scenario.command == "imagine":
            options["model"] = scenario.model
        payload = discord.slash_command(
            scenario.command, options, user_id=users[n % len(users)], channel_id=channels[n % len(channels)]
        )
        record = await discord.dispatch(payload, timeout=30)
        tokens[record.token] = n
        waiting.append(record)
        while len(waiting) >= UNACKNOWLEDGED_MAX:
            waiting = [r for r in waiting if r.callback_type is None and not late(discord, r)]
            if len(waiting) >= UNACKNOWLEDGED_MAX:
                await asyncio.sleep(0.01)
    return tokens


def own_cpu_s() -> float:
    """CPU time of this process (the fakes and the command sender)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def late(discord: FakeDiscord, record: Any) -> bool:
    """Past Discord's 3 s window: that command will never be acknowledged."""
    return (discord.now() - record.created_at).total_seconds() > 3.5


async def sample_lag(bot: BotProcess, lags: list[float]) -> None:
    while True:
        await asyncio.sleep(LAG_SAMPLE_S)
        try:
            lag = (await bot.scrape()).total("genbot_event_loop_lag_seconds")
        except Exception as exc:  # a slow scrape under load is a sample lost, not a failure
            print(f"  lag sample lost: {exc!r}", file=sys.stderr)
            continue
        if lag is not None:
            lags.append(lag)


def lag_p99(before: Any, after: Any, samples: list[float]) -> float | None:
    """From the histogram when the bot exports one (``_bucket``s), else from the gauge sampled every second."""
    start, end = before.buckets("genbot_event_loop_lag_seconds"), after.buckets("genbot_event_loop_lag_seconds")
    if end:
        counts = sorted((le, end[le] - start.get(le, 0.0)) for le in end)
        total = counts[-1][1]
        if total > 0:
            return next(le for le, count in counts if count >= 0.99 * total)
    if not samples:  # a scenario shorter than one sample: the gauge as the scenario ended
        last = after.total("genbot_event_loop_lag_seconds")
        samples = [] if last is None else [last]
    return percentile(samples, 99) if samples else None


async def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} within {timeout_s:.0f}s")
        await asyncio.sleep(0.25)


def delivered_count(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs WHERE delivered_at IS NOT NULL").fetchone()[0])
    except sqlite3.Error:
        return 0


def read_jobs(database: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM jobs ORDER BY id").fetchall()


def prompt_number(prompt: str) -> int | None:
    last = prompt.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else None


def attribute_requests(
    requests: list[RecordedRequest], tokens: dict[str, int], rows: list[sqlite3.Row]
) -> tuple[dict[int, float], Counter[int]]:
    """Which command each Discord request served (by its interaction token, the job's message id on bot-token
    routes, or the nonce of a new message); when each job's result (a file) first reached Discord."""
    by_message = {int(row["message_id"]): prompt_number(row["prompt"]) for row in rows if row["message_id"]}
    by_nonce = {nonce_for(int(row["id"])): prompt_number(row["prompt"]) for row in rows}
    delivered: dict[int, float] = {}
    per_job: Counter[int] = Counter()
    for request in requests:
        n = tokens.get(request.interaction_token or "")
        parts = request.path.split("/")
        if n is None and len(parts) >= 5 and parts[1] == "channels" and parts[4].isdigit():
            n = by_message.get(int(parts[4]))
        if n is None and isinstance(request.json, dict):  # a new message (the command was not answered in time)
            n = by_nonce.get(str(request.json.get("nonce")))
        if n is None:
            continue
        per_job[n] += 1
        ok = request.status is not None and 200 <= request.status < 300
        if ok and request.files and n not in delivered and request.received_at is not None:
            delivered[n] = request.received_at.timestamp()
    return delivered, per_job


def dump_undelivered(
    path: Path, numbers: list[int], tokens: dict[str, int], rows: list[sqlite3.Row], requests: list[RecordedRequest]
) -> None:
    """For the jobs whose file never reached Discord: their row and the requests made for them (up to 200)."""
    by_number = {prompt_number(row["prompt"]): dict(row) for row in rows}
    token_of = {n: token for token, n in tokens.items()}
    found = []
    for n in numbers[:200]:
        token = token_of.get(n)
        row = by_number.get(n, {})
        row.pop("interaction_token", None)
        sent = [r.summary() for r in requests if token is not None and r.interaction_token == token]
        found.append({"command": n, "job": row, "requests": sent})
    path.write_text(json.dumps({"undelivered": len(numbers), "first": found}, indent=1, default=str))


def peak_in_flight(rows: list[sqlite3.Row]) -> int:
    """Most jobs accepted and not yet delivered at one moment."""
    events = sorted(
        [(row["created_at"], 1) for row in rows]
        + [(row["delivered_at"], -1) for row in rows if row["delivered_at"] is not None]
    )
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


async def baseline_phase(scenario: Scenario, options: Options, jobs: int, upstream: Any) -> dict[str, BaselineFigures]:
    """Both loops at once, on the same fake service, with ``min(jobs, baseline_jobs_max)`` jobs each."""
    count = min(jobs, options.baseline_jobs_max)
    upstream.job_hooks.clear()
    clock = JobClock(scenario.model, scale=options.scale, seed=options.seed + 1, hold=scenario.burst).attach(upstream)
    spec = {
        "provider": scenario.provider,
        "base_url": upstream.base_url,
        "api_key": upstream.api_key,
        "jobs": count,
        "loops": [{"name": name, "interval_s": interval * options.scale} for name, interval in LOOPS.items()],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.baselines", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    communicate = asyncio.ensure_future(process.communicate(json.dumps(spec).encode()))
    if scenario.burst:
        await wait_until(lambda: len(clock.jobs) >= count * len(LOOPS), options.timeout_s, "baseline jobs created")
        clock.release()
    out, _ = await asyncio.wait_for(communicate, options.timeout_s)
    if process.returncode != 0:
        raise RuntimeError(f"the baselines failed (exit {process.returncode})")
    figures = {}
    for name, seen in json.loads(out).items():
        latencies, polls = [], []
        for job in seen:
            upstream_job = clock.jobs[job["remote_id"]]
            polls.append(upstream_job.polls)
            if upstream_job.done_wall is not None and job["done_seen_at"] is not None:
                latencies.append(job["done_seen_at"] - upstream_job.done_wall)
        figures[name] = BaselineFigures(len(seen), latencies, polls)
    return figures


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
