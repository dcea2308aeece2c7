"""The figures of each scenario as a table (console and markdown) and issue 12's targets, met or missed."""

from __future__ import annotations

import functools
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.run import ScenarioResult, percentile

ROOT = Path(__file__).resolve().parents[1]
SLOW_LOOP = "luma-docs"  # the 2-second loop the latency and polls targets compare with


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}{unit}"


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs and not math.isnan(theirs) and not math.isnan(ours) else float("nan")


@dataclass(frozen=True)
class Row:
    label: str
    value: Callable[[ScenarioResult], str]


def _lat(result: ScenarioResult, pct: float) -> float:
    return percentile(result.bot.latencies_s, pct)


def _base_lat(result: ScenarioResult, loop: str, pct: float) -> float:
    figures = result.baselines.get(loop)
    return percentile(figures.latencies_s, pct) if figures else float("nan")


def _base_polls(result: ScenarioResult, loop: str) -> float:
    figures = result.baselines.get(loop)
    return mean(figures.polls_per_job) if figures else float("nan")


def per_job(result: ScenarioResult, total: float | None) -> float | None:
    return None if total is None else total / max(1, result.bot.accepted)


def rows(loops: Sequence[str]) -> list[Row]:
    table = [
        Row("jobs sent / accepted / delivered", _delivered_cell),
        Row(
            "wall time, bot's CPU, fakes' CPU (s)",
            lambda r: f"{r.bot.wall_s:.0f}, {r.bot.cpu_s:.0f}, {r.bot.fakes_cpu_s:.0f}",
        ),
        Row("commands answered after Discord's 3 s window", lambda r: str(r.bot.late_acks)),
        Row("jobs accepted per second", lambda r: fmt(r.bot.accepted / r.bot.intake_s, 1)),
        Row("peak jobs in flight (accepted, not delivered)", lambda r: str(r.bot.peak_in_flight)),
        Row("detection latency p50 / p95 / p99 (s)", lambda r: " / ".join(fmt(_lat(r, p)) for p in (50, 95, 99))),
        Row(
            "Discord REST calls per job: mean, max",
            lambda r: f"{fmt(r.bot.rest_total / max(1, r.bot.sent))}, {max(r.bot.rest_per_job, default=0)}",
        ),
        Row("Discord 429s", lambda r: str(r.bot.rest_429)),
        Row("upstream polls per job", lambda r: fmt(mean(r.bot.polls_per_job))),
        Row("database round trips per job", lambda r: fmt(per_job(r, r.bot.db_round_trips), 1)),
        Row("CPU ms per job", lambda r: fmt(per_job(r, r.bot.cpu_s * 1000), 1)),
        Row("peak RSS (MiB)", lambda r: fmt(r.bot.peak_rss_mib, 0)),
        Row("event-loop lag p99 (ms)", lambda r: fmt(None if r.bot.lag_p99_s is None else r.bot.lag_p99_s * 1000, 0)),
    ]
    for loop in loops:
        table += [
            Row(f"{loop}: jobs, latency p50 / p95 (s)", functools.partial(_baseline_cell, loop=loop)),
            Row(f"{loop}: polls per job", functools.partial(_baseline_polls_cell, loop=loop)),
            Row(f"ratio to {loop}: latency p50 / p95, polls", functools.partial(_ratio_cell, loop=loop)),
        ]
    return table


def _delivered_cell(result: ScenarioResult) -> str:
    cell = f"{result.bot.sent} / {result.bot.accepted} / {result.bot.delivered}"
    failed = sum(n for status, n in result.bot.statuses.items() if status != "succeeded")
    cell += f" ({failed} not succeeded)" if failed else ""
    return cell + (f" (stopped after {result.bot.wall_s:.0f} s)" if result.bot.timed_out else "")


def _baseline_polls_cell(result: ScenarioResult, loop: str) -> str:
    return fmt(_base_polls(result, loop))


def _ratio_cell(result: ScenarioResult, loop: str) -> str:
    p50 = fmt(ratio(_lat(result, 50), _base_lat(result, loop, 50)))
    p95 = fmt(ratio(_lat(result, 95), _base_lat(result, loop, 95)))
    return f"{p50} / {p95}, {fmt(ratio(mean(result.bot.polls_per_job), _base_polls(result, loop)))}"


def _baseline_cell(result: ScenarioResult, loop: str) -> str:
    figures = result.baselines.get(loop)
    if figures is None:
        return "n/a"
    return f"{figures.jobs}, {fmt(_base_lat(result, loop, 50))} / {fmt(_base_lat(result, loop, 95))}"


def table(results: Sequence[ScenarioResult], loops: Sequence[str]) -> list[list[str]]:
    header = ["", *(r.scenario.name for r in results)]
    return [header, *([row.label, *(row.value(r) for r in results)] for row in rows(loops))]


def console(results: Sequence[ScenarioResult], loops: Sequence[str]) -> str:
    cells = table(results, loops)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells)


def markdown_table(cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    key: str
    text: str
    check: Callable[[ScenarioResult], tuple[bool | None, str]]  # None: not measured


def _latency_target(r: ScenarioResult) -> tuple[bool, str]:
    ours, theirs = _lat(r, 95), _base_lat(r, SLOW_LOOP, 95)
    return ours <= theirs, f"p95 {fmt(ours)} s vs {fmt(theirs)} s"


def _polls_target(r: ScenarioResult) -> tuple[bool, str]:
    ours, theirs = mean(r.bot.polls_per_job), _base_polls(r, SLOW_LOOP)
    return ours <= theirs / 2, f"{fmt(ours)} vs {fmt(theirs)} polls per job"


def _webhook_target(r: ScenarioResult) -> tuple[bool, str]:
    polls, p95 = mean(r.bot.polls_per_job), _lat(r, 95)
    return polls == 0 and p95 < 0.2, f"{fmt(polls)} polls per job, p95 {fmt(p95)} s"


def _rest_target(r: ScenarioResult) -> tuple[bool, str]:
    value = r.bot.rest_total / max(1, r.bot.sent)
    return value <= 3, f"{fmt(value)} per job"


def _limit(value: float | None, limit: float, text: str) -> tuple[bool | None, str]:
    if value is None or math.isnan(value):
        return None, "n/a"
    return value <= limit, text.format(value)


TARGETS = (
    Target("latency", "detection latency p95 at or below the 2-second loop's", _latency_target),
    Target("polls", "at most half the 2-second loop's polls per job", _polls_target),
    Target("webhook", "with webhooks on: 0 routine polls and p95 under 0.2 s", _webhook_target),
    Target("rest", "at most 3 Discord REST calls per image job", _rest_target),
    Target("429", "0 Discord 429s", lambda r: (r.bot.rest_429 == 0, f"{r.bot.rest_429} 429s")),
    Target("cpu", "CPU at most 5 ms per job", lambda r: _limit(per_job(r, r.bot.cpu_s * 1000), 5, "{:.1f} ms")),
    Target(
        "db",
        "at most 15 database round trips per job",
        lambda r: _limit(per_job(r, r.bot.db_round_trips), 15, "{:.1f}"),
    ),
    Target(
        "rss", "peak RSS at most 400 MiB with 10,000 in flight", lambda r: _limit(r.bot.peak_rss_mib, 400, "{:.0f} MiB")
    ),
    Target(
        "lag",
        "event-loop lag p99 at most 50 ms",
        lambda r: _limit(None if r.bot.lag_p99_s is None else r.bot.lag_p99_s * 1000, 50, "{:.0f} ms"),
    ),
)


def target_lines(results: Sequence[ScenarioResult]) -> list[list[str]]:
    out = [["target", "scenario", "measured", "met?", "why missed / what would close it"]]
    for target in TARGETS:
        judged = [r for r in results if target.key in r.scenario.targets]
        if not judged:
            out.append([target.text, "(not run)", "", "not measured", ""])
        for r in judged:
            met, measured = target.check(r)
            verdict = "not measured" if met is None else "met" if met else "**missed**"
            out.append([target.text, r.scenario.name, measured, verdict, ""])
    return out


# ------------------------------------------------------------------------------------------------- markdown
def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024**2:.1f} GiB RAM"
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}"


def commit() -> str:
    try:
        found = subprocess.run(  # noqa: S603 (fixed arguments)
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        )
        return found.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(
    results: Sequence[ScenarioResult], loops: Sequence[str], *, command: str, scale: float, wall_s: float, notes: str
) -> str:
    return "\n".join(
        [
            "# Benchmarks",
            "",
            f"Command: `{command}` (commit `{commit()}`, {wall_s / 60:.1f} minutes).",
            "",
            f"Scale factor: **{scale:g}**: upstream job durations, the bot's poll intervals, edit pacing and "
            "completion ping threshold, and the baselines' intervals are all multiplied by it. Discord's rate "
            "limits are not.",
            "",
            f"Machine: {machine()}. The bot runs as its own process (`python -m bot`, SQLite); the fakes and the "
            "command sender share a second process; the baselines' clients run in a third after the bot stopped.",
            "",
            notes,
            "",
            "## Results",
            "",
            markdown_table(table(results, loops)),
            "",
            "## Targets of issue 12",
            "",
            markdown_table(target_lines(results)),
            "",
        ]
    )
