"""Any sequence of reserve, commit, refund, grant, revoke, reset, limit changes and time passing, run against a real
database and checked against a simple model: balances match the model and the ledger, bonus never goes negative or
gets lost in a reset, period credits never go past the limit, a refund after a reset gives back only the bonus part
(the reset forgave the period part), and each job is settled at most once."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule, run_state_machine_as_test

from bot.credits.service import QuotaService
from bot.errors import InvalidInput, QuotaExceeded
from bot.server_settings.service import ServerSettingsService
from bot.storage.database import Database
from tests.fakes.clock import ManualClock
from tests.quota.helpers import T0, Jobs, make_settings

G, U, MOD = 1, 100, 900
DEFAULT_LIMIT = 4
MAX_ACTIVE = 3
T = TypeVar("T")


@dataclass
class JobModel:
    period: str
    from_period: int
    from_bonus: int
    settled: str | None = None
    forgiven: bool = False  # a moderator reset of its period came after its reservation


class QuotaMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.mkdtemp(prefix="quota-prop-")
        self.db = Database(Path(self.tmp) / "bot.sqlite3")
        self.run(self.db.open())
        self.clock = ManualClock(T0)
        config = make_settings(
            daily_credits=DEFAULT_LIMIT, quota_reset_hour_utc=6, max_running_jobs_per_user=MAX_ACTIVE
        )
        self.service = QuotaService(self.db, config, ServerSettingsService(self.db, clock=self.clock), clock=self.clock)
        self.engine = Jobs(self.db, self.service, self.clock)
        self.member_limit: int | None = None
        self.used: dict[str, int] = {}
        self.bonus = 0
        self.model_jobs: dict[int, JobModel] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def limit(self) -> int:
        return DEFAULT_LIMIT if self.member_limit is None else self.member_limit

    @rule(target=jobs, cost=st.integers(0, 6))
    def reserve(self, cost: int) -> Any:
        period = self.service.period_at(self.clock())
        used = self.used.get(period, 0)
        from_period = min(cost, max(0, self.limit - used))
        from_bonus = cost - from_period
        active = sum(1 for job in self.model_jobs.values() if job.settled is None)
        expect_refusal = active >= MAX_ACTIVE or from_bonus > self.bonus
        try:
            reservation = self.run(self.engine.start(guild_id=G, user_id=U, cost=cost))
        except QuotaExceeded:
            assert expect_refusal
            return multiple()
        assert not expect_refusal
        assert (reservation.period, reservation.from_period, reservation.from_bonus) == (
            period,
            from_period,
            from_bonus,
        )
        assert reservation.limit == self.limit
        if from_period:
            assert reservation.used_after <= reservation.limit
        if from_bonus:
            assert reservation.used_after >= reservation.limit  # bonus only once the period credits are gone
        self.used[period] = used + from_period
        self.bonus -= from_bonus
        self.model_jobs[reservation.job_id] = JobModel(period, from_period, from_bonus)
        return reservation.job_id

    @rule(job_id=jobs)
    def commit(self, job_id: int) -> None:
        job = self.model_jobs[job_id]
        assert self.run(self.engine.finish(job_id, ok=True)) is (job.settled is None)
        job.settled = job.settled or "commit"

    @rule(job_id=jobs)
    def refund(self, job_id: int) -> None:
        job = self.model_jobs[job_id]
        assert self.run(self.engine.finish(job_id, ok=False)) is (job.settled is None)
        if job.settled is None:
            job.settled = "refund"
            back = 0 if job.forgiven else job.from_period  # the reset already gave the period part back
            self.used[job.period] = self.used.get(job.period, 0) - back
            assert self.used[job.period] >= 0
            self.bonus += job.from_bonus

    @rule(credits=st.integers(-6, 8))
    def grant(self, credits: int) -> None:
        try:
            balance = self.run(self.service.grant(G, U, credits, actor_id=MOD))
        except InvalidInput:
            assert credits == 0 or self.bonus + credits < 0
            return
        self.bonus += credits
        assert balance == self.bonus

    @rule()
    def reset(self) -> None:
        bonus_before = self.run(self.service.status(G, U, ())).bonus
        self.run(self.service.reset(G, U, actor_id=MOD))
        status = self.run(self.service.status(G, U, ()))
        assert status.bonus == bonus_before  # a reset never loses bonus credits
        assert status.used == 0
        period = self.service.period_at(self.clock())
        self.used[period] = 0
        for job in self.model_jobs.values():
            job.forgiven = job.forgiven or job.period == period

    @rule(credits=st.none() | st.integers(0, 8))
    def set_member_limit(self, credits: int | None) -> None:
        before, after = self.run(self.service.set_member_limit(G, U, credits, actor_id=MOD))
        assert (before, after) == (self.member_limit, credits)
        self.member_limit = credits

    @rule(hours=st.integers(1, 30))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours * 3600)

    @invariant()
    def balances_match_the_model_and_the_ledger(self) -> None:
        usage = {
            row["period"]: row["used"]
            for row in self.run(self.db.fetch_all("SELECT period, used FROM credit_usage WHERE guild_id = ?", (G,)))
        }
        assert {p: u for p, u in usage.items() if u} == {p: u for p, u in self.used.items() if u}
        assert all(used >= 0 for used in usage.values())
        balance = self.run(self.db.fetch_value("SELECT balance FROM credit_bonus WHERE guild_id = ?", (G,))) or 0
        assert balance == self.bonus >= 0
        sums = self.run(
            self.db.fetch_all(
                "SELECT period, SUM(period_delta) FROM credit_ledger WHERE period IS NOT NULL GROUP BY period"
            )
        )
        assert {p: s for p, s in sums if s} == {p: u for p, u in usage.items() if u}
        assert (self.run(self.db.fetch_value("SELECT SUM(bonus_delta) FROM credit_ledger")) or 0) == balance

    @invariant()
    def each_job_is_reserved_once_and_settled_at_most_once(self) -> None:
        rows = self.run(self.db.fetch_all("SELECT job_id, kind FROM credit_ledger WHERE job_id IS NOT NULL"))
        kinds: dict[int, list[str]] = {}
        for job_id, kind in rows:
            kinds.setdefault(job_id, []).append(kind)
        assert set(kinds) == set(self.model_jobs)
        for job_id, job in self.model_jobs.items():
            assert sorted(kinds[job_id]) == sorted(["reserve", *([job.settled] if job.settled else [])])

    @invariant()
    def status_agrees(self) -> None:
        status = self.run(self.service.status(G, U, ()))
        period = self.service.period_at(self.clock())
        assert (status.limit, status.used, status.bonus) == (self.limit, self.used.get(period, 0), self.bonus)
        assert status.left == max(0, self.limit - status.used)
        assert status.active_jobs == sum(1 for job in self.model_jobs.values() if job.settled is None)


def test_any_sequence_of_quota_operations_keeps_the_books_straight():
    run_state_machine_as_test(
        QuotaMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
