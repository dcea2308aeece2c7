"""What ``/quota`` (and ``/quota-admin view``) shows, gathered once by ``build_report``; ``bot/render/quota.py``
renders it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from bot.credits.service import QuotaService
from bot.credits.types import LedgerEntry, QuotaStatus
from bot.credits.wallets import PERSONAL_WALLET, is_personal
from bot.storage.jobs import JobRecord, JobRepository

MAX_PURCHASES_SHOWN = 3


@dataclass(frozen=True, slots=True)
class ActiveJob:
    job: JobRecord
    position: int | None  # place in the bot's own queue, when waiting there


@dataclass(frozen=True, slots=True)
class QuotaReport:
    status: QuotaStatus  # the wallet jobs started here draw on
    active: tuple[ActiveJob, ...]
    max_running: int
    here_guild_id: int = 0  # where the report is asked for (a server where the bot is only user-installed: its id)
    personal: QuotaStatus | None = None  # the personal wallet too, when jobs here use a server's wallet
    purchases: tuple[LedgerEntry, ...] = ()  # the last credit packs settled into the personal wallet


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
    here_guild_id: int | None = None,
    with_personal: bool = False,
) -> QuotaReport:
    """The member's credits in this scope (``guild_id``: a server's wallet, or ``PERSONAL_WALLET``) and their
    queued and running jobs (every scope's, or this one's). ``with_personal``: the personal wallet as well."""
    status = await quota.status(guild_id, user_id, role_ids)
    active = await jobs.active_for_user(user_id, guild_id if jobs_in_scope_only else None)
    personal = None
    if with_personal and not is_personal(guild_id):
        personal = await quota.status(PERSONAL_WALLET, user_id, ())
    purchases: tuple[LedgerEntry, ...] = ()
    if with_personal:
        purchases = tuple(await quota.purchases(user_id, limit=MAX_PURCHASES_SHOWN))
    return QuotaReport(
        status=status,
        active=tuple([ActiveJob(job, await position(job.id) if job.status == "queued" else None) for job in active]),
        max_running=max_running,
        here_guild_id=guild_id if here_guild_id is None else here_guild_id,
        personal=personal,
        purchases=purchases,
    )
