"""What the steps repository hands out: a claimed step's lease, the error a lost lease raises, and a job the sweep
found without a step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class LeaseLost(Exception):
    """The step is no longer ours: write nothing more for it."""


@dataclass(frozen=True, slots=True)
class Lease:
    step_id: int
    job_id: int
    kind: str
    lane: str
    fence: int
    attempts: int
    due_at: float


@dataclass(frozen=True, slots=True)
class Orphan:
    """An unfinished job with no step to move it on, or a finished one whose message was never confirmed."""

    job_id: int
    status: str
    has_result: bool


def lease_from_row(row: Any) -> Lease:
    return Lease(
        step_id=int(row["id"]),
        job_id=int(row["job_id"]),
        kind=str(row["kind"]),
        lane=str(row["lane"]),
        fence=int(row["fence"]),
        attempts=int(row["attempts"]),
        due_at=float(row["due_at"]),
    )
