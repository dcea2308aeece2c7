"""Reliability figures: tests record what they observed (``record``), ``python -m tests.reliability`` runs them and
writes RELIABILITY.md from what they recorded. Nothing is recorded unless ``RELIABILITY_REPORT_DIR`` is set."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPORT_DIR_ENV = "RELIABILITY_REPORT_DIR"


def report_dir() -> Path | None:
    value = os.environ.get(REPORT_DIR_ENV)
    return Path(value) if value else None


def record(kind: str, **data: Any) -> None:
    """Append one observation (a JSON line) to ``$RELIABILITY_REPORT_DIR/observations.jsonl``; no-op when unset."""
    directory = report_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"kind": kind, "pid": os.getpid(), **data}, sort_keys=True, default=str)
    with (directory / "observations.jsonl").open("a", encoding="utf-8") as out:
        out.write(line + "\n")
