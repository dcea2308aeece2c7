"""What ``/quota`` (and ``/quota-admin view``) shows, gathered once by ``build_report``; ``bot/render/quota.py``
renders it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from bot.credits.service import QuotaService
from bot.credits.types import QuotaStatus
from bot.storage.jobs import JobRecord, JobRepository


@dataclass(frozen=True, slots=True)
class ActiveJob:
    job: JobRecord
    position: int | None  # place in the bot's own queue, when waiting there


@dataclass(frozen=True, slots=True)
class QuotaReport:
    status: QuotaStatus
    active: tuple[ActiveJob, ...]
    max_running: int


async def build_report(
    quota: QuotaService,
    jobs: JobRepository,
    position: Callable[[int], Awaitable[int | None]],
    *,
    guild_id: int,
    user_id: int,
    role_ids: Collection[int],
    max_running: int,
    jobs_in_scope_only: bool,
) -> QuotaReport:
    """The member's credits in this scope and their queued and running jobs (every scope's, or this one's)."""
    status = await quota.status(guild_id, user_id, role_ids)
    active = await jobs.active_for_user(user_id, guild_id if jobs_in_scope_only else None)
    return QuotaReport(
        status=status,
        active=tuple([ActiveJob(job, await position(job.id) if job.status == "queued" else None) for job in active]),
        max_running=max_running,
    )
