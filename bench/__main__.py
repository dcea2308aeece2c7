"""``python -m bench``: the real bot process against the fake Discord (with Discord's rate limits) and the fake
services (realistic, scaled job durations), per scenario, next to two baselines on the same fakes.

    python -m bench                                   # every scenario (about 15 minutes on 2 cores)
    python -m bench --quick                           # tiny sizes: a smoke test of the whole path
    python -m bench --scenarios images-100,videos-200 --scale 0.5 --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import report
from bench.baselines import LOOPS
from bench.run import Options, ScenarioResult, run_scenario
from bench.scenarios import BY_NAME, SCENARIOS

DEFAULT_SCALE = 0.5
QUICK_SCALE = 0.02
NOTES = """How to read it:
- **Detection latency**: from the moment the fake service's job became done to the moment the fake Discord
  received the request carrying the result's file (the bot's poll, download and delivery together). The
  baselines' latency stops when their client saw the job done (they deliver nothing).
- **Jobs accepted per second**: jobs written by the bot over the time from the first command to the last job
  written. Commands are sent through the gateway as fast as the bot acknowledges them (at most 100 waiting).
- **Discord REST calls per job**: every request the fake Discord received after the first command, divided by
  the commands (mean); the max is over the requests attributable to one job (its interaction token or message).
- **Upstream polls per job**: status requests the fake service counted per job.
- **Database round trips per job**: the bot's `genbot_db_round_trips_total` over the scenario (n/a when the bot
  does not export it); **CPU ms per job**: the bot process' user + system time over the scenario, from `/proc`;
  **peak RSS**: its `VmHWM`; **event-loop lag p99**: from the bot's `genbot_event_loop_lag_seconds` (its histogram
  when exported, else the gauge read every second).
- **Baselines**: each loop runs `min(N, --baseline-jobs)` jobs at once (both loops together, after the bot,
  on the same fake service and distribution): a loop's per-job figures do not depend on N, and thousands of
  clients polling every second would measure this machine's CPU rather than the loop."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    names = ", ".join(s.name for s in SCENARIOS)
    parser.add_argument("--scenarios", default="", help=f"comma-separated, default all available: {names}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and scale (smoke test)")
    parser.add_argument(
        "--scale", type=float, help=f"time scale factor (default {DEFAULT_SCALE}, --quick {QUICK_SCALE})"
    )
    parser.add_argument("--seed", type=int, default=12, help="seed of the job durations (default 12)")
    parser.add_argument("--baseline-jobs", type=int, default=250, help="jobs per baseline loop at most (250)")
    parser.add_argument("--timeout", type=float, default=600.0, help="stop waiting for deliveries after this (s, 600)")
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the markdown report (BENCHMARKS.md)")
    parser.add_argument("--logs", type=Path, help="keep the bot's logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {names}")
    args.chosen = [BY_NAME[name] for name in chosen] or list(SCENARIOS)
    if args.scale is None:
        args.scale = QUICK_SCALE if args.quick else DEFAULT_SCALE
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


async def run_all(args: argparse.Namespace, log_dir: Path) -> list[ScenarioResult]:
    options = Options(
        scale=args.scale, seed=args.seed, quick=args.quick, baseline_jobs_max=args.baseline_jobs, timeout_s=args.timeout
    )
    results = []
    for scenario in args.chosen:
        if not scenario.available():
            print(f"{scenario.name}: skipped (the bot has no setting {scenario.requires!r})", flush=True)
            continue
        started = time.monotonic()
        print(f"{scenario.name}: {scenario.size(args.quick)} jobs ...", flush=True)
        result = await run_scenario(scenario, options, log_dir)
        print(f"{scenario.name}: done in {time.monotonic() - started:.0f} s", flush=True)
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="genbot-bench-logs-") as tmp:
        log_dir = args.logs or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(run_all(args, log_dir))
    wall = time.monotonic() - started
    loops = list(LOOPS)
    print(f"\nscale {args.scale:g}, {wall / 60:.1f} minutes\n")
    print(report.console(results, loops))
    if args.write:
        text = report.markdown(results, loops, command=command.strip(), scale=args.scale, wall_s=wall, notes=NOTES)
        args.write.write_text(text)
        print(f"\nwritten to {args.write}")
    complete = all(r.bot.delivered == r.jobs for r in results)
    return 0 if complete else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
