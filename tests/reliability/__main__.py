"""``python -m tests.reliability [--examples N] [--output RELIABILITY.md]``: run the fault matrix, the fuzzers, the
crash-point and SIGKILL tests and a DEBUG log scan, then print and write the figures. Every figure is counted from
what the tests recorded during this run (``tests.reliability.record`` and the plugin's outcomes)."""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.reliability import REPORT_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
FAULTS = "tests/e2e/test_fault_matrix.py"
FUZZ = ("tests/e2e/test_fuzz_inputs.py", "tests/test_media_fuzz.py")
CRASH = ("tests/jobs/test_engine_durability.py", "tests/e2e/test_sigkill.py")
LOGS = ("tests/e2e/test_log_hygiene.py",)


def run(examples: int, directory: Path) -> tuple[int, float]:
    env = {**os.environ, REPORT_DIR_ENV: str(directory), "RELIABILITY_FUZZ_EXAMPLES": str(examples)}
    env["LOG_LEVEL"] = "DEBUG"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.reliability.plugin",
        "--log-level=DEBUG",
        FAULTS,
        *FUZZ,
        *CRASH,
        *LOGS,
    ]
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)
    return code, time.monotonic() - started


def load(directory: Path) -> list[dict[str, Any]]:
    path = directory / "observations.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = collections.defaultdict(list)
    for row in rows:
        by[row["kind"]].append(row)
    tests = by["test"]

    def outcomes(prefix: str) -> tuple[int, int]:
        mine = [t for t in tests if t["nodeid"].startswith(prefix)]
        return len(mine), sum(t["outcome"] == "passed" for t in mine)

    fault_tests = [t for t in tests if t["nodeid"].startswith(FAULTS + "::test_fault[")]
    faults = by["fault"]
    inputs, specs, blobs = by["input"], by["spec"], by["bytes"]
    settlement = by["settlement"]
    scan = by["log_scan"][-1] if by["log_scan"] else None
    crash = {path: outcomes(path) for path in CRASH}
    return {
        "faults_tried": len(fault_tests),
        "faults_survived": sum(t["outcome"] == "passed" for t in fault_tests),
        "faults_by_layer": dict(collections.Counter(f["layer"] for f in faults)),
        "fault_endings": dict(collections.Counter(f"{f['status']} via {f['delivery']}" for f in faults)),
        "fault_cases": [{k: f[k] for k in ("case", "status", "delivery", "shown", "ledger")} for f in faults],
        "commands_fuzzed": len(inputs),
        "commands_accepted": sum(bool(i["accepted"]) for i in inputs),
        "bad_inputs_refused": sum(bool(i["refused"]) for i in inputs),
        "specs_fuzzed": len(specs),
        "specs_refused": sum(bool(s["refused"]) for s in specs),
        "attachment_bytes_fuzzed": len(blobs),
        "attachment_bytes_refused": sum(bool(b["refused"]) for b in blobs),
        "unexpected_errors": sum(i["unexpected"] for i in inputs),
        "charged_for_refused_input": sum(i["charged_when_refused"] for i in inputs),
        "jobs_lost": sum(f["job_lost"] for f in faults),
        "double_charges": sum(f["double_charge"] for f in faults) + sum(s["double_charges"] for s in settlement),
        "fuzzed_jobs_settled": sum(s["jobs"] for s in settlement),
        "unintended_pings": sum(f["pings"] for f in faults)
        + sum(i["pings"] for i in inputs)
        + sum(s["pings"] for s in settlement),
        "crash_tests": {path: {"run": n, "passed": ok} for path, (n, ok) in crash.items()},
        "log_lines_scanned": scan["lines"] if scan else 0,
        "log_values_checked": (scan["interaction_tokens"] + scan["bot_tokens"] + scan["provider_keys"] if scan else 0),
        "secrets_in_logs": sum(scan["found"].values()) if scan else None,
        "secrets_in_logs_by_kind": scan["found"] if scan else None,
        "tests_run": len(tests),
        "tests_failed": sum(t["outcome"] != "passed" for t in tests),
    }


def markdown(f: dict[str, Any], code: int, seconds: float, examples: int) -> str:
    crash = f["crash_tests"]
    lines = [
        "# Reliability report",
        "",
        "Produced by `python -m tests.reliability` (see README); every figure below was counted during that run.",
        f"Run: {f['tests_run']} tests, {f['tests_failed']} failed, pytest exit code {code}, {seconds:.0f} s, "
        f"{examples} fuzz examples per command.",
        "",
        "| Figure | Value | Goal |",
        "|---|---|---|",
        f"| Faults tried (provider and Discord, through the real stack) | {f['faults_tried']} | — |",
        f"| Faults survived (visible ending, credits settled once, no ping) | {f['faults_survived']} "
        f"| {f['faults_tried']} |",
        f"| Bad inputs tried: slash commands fuzzed (options, inline flags, attachments) | {f['commands_fuzzed']} "
        f"({f['bad_inputs_refused']} refused, {f['commands_accepted']} started a job) | — |",
        f"| Bad inputs tried: flag/option sets into the spec builder | {f['specs_fuzzed']} "
        f"({f['specs_refused']} refused) | — |",
        f"| Bad inputs tried: attachment byte strings checked | {f['attachment_bytes_fuzzed']} "
        f"({f['attachment_bytes_refused']} refused) | — |",
        f'| Unexpected errors ("Something went wrong" or an ERROR log) on fuzzed input | {f["unexpected_errors"]} '
        "| 0 |",
        f"| Charged for refused input | {f['charged_for_refused_input']} | 0 |",
        f"| Jobs lost (fault matrix: never ended, or nothing shows the ending) | {f['jobs_lost']} | 0 |",
        f"| Double charges (fault matrix and the {f['fuzzed_jobs_settled']} fuzzed jobs) | {f['double_charges']} | 0 |",
        f"| Unintended pings | {f['unintended_pings']} | 0 |",
        *(
            f"| Crash tests `{path}` passed (each asserts no job lost, none charged twice) | "
            f"{v['passed']}/{v['run']} | {v['run']}/{v['run']} |"
            for path, v in crash.items()
        ),
        f"| Secrets or tokens found in {f['log_lines_scanned']} DEBUG log lines "
        f"({f['log_values_checked']} values checked) | {f['secrets_in_logs']} | 0 |",
        "",
        "## Fault matrix",
        "",
        "| Case | End | Delivered via | User sees | Ledger |",
        "|---|---|---|---|---|",
        *(
            f"| {c['case']} | {c['status']} | {c['delivery']} | {c['shown']} | {' + '.join(c['ledger'])} |"
            for c in f["fault_cases"]
        ),
        "",
        "Expired output URLs are retried (a fresh poll usually hands out fresh URLs) until the job's deadline, then",
        "the job fails and is refunded; the matrix runs those cases with a 1 s deadline.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
    parser.add_argument("--examples", type=int, default=50, help="fuzz examples per command (default 50)")
    parser.add_argument("--output", type=Path, default=ROOT / "RELIABILITY.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        code, seconds = run(args.examples, Path(tmp))
        result = figures(load(Path(tmp)))
    text = markdown(result, code, seconds, args.examples)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    print(json.dumps({k: v for k, v in result.items() if k != "fault_cases"}, indent=2))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
