"""The steps repository: every SQL statement about the job engine's pending work (``job_steps``).

A step is claimed with a lease (owner, expiry) and a fencing counter that grows on every claim. Whoever holds a
step proves it inside each write transaction with ``hold`` (or finishes it with ``complete`` / ``release``); when
the fence moved on (the lease expired and another process claimed the step, or the job was cancelled and the step
removed), those statements change no row and ``LeaseLost`` rolls the whole transaction back.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from bot.storage.database import Connection, Database, fetch_all, fetch_one
from bot.storage.step_records import Lease, LeaseLost, Orphan, lease_from_row

STEP_KINDS = ("submit", "poll", "download", "message", "ping")
# The steps that move a job forward upstream; an active job has exactly one of them.
RUN_KINDS = ("submit", "poll", "download")


_WANT_SQL = """INSERT INTO job_steps (job_id, kind, lane, due_at, priority, created_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (job_id, kind) DO UPDATE SET
        due_at = CASE WHEN job_steps.lease_owner IS NOT NULL THEN excluded.due_at
                      WHEN excluded.due_at < job_steps.due_at THEN excluded.due_at
                      ELSE job_steps.due_at END,
        priority = CASE WHEN excluded.priority > job_steps.priority THEN excluded.priority
                        ELSE job_steps.priority END"""
# A step can be claimed when nobody holds it or its lease ran out; a lease of the claiming process itself only
# OWN_LEASE_GRACE leases later: that process is alive, so its handler is most likely still working and only the
# renewals came late (an overloaded write queue). Taking the step over would run it twice (a submit would be failed
# as interrupted); a handler that really died without handing its step back is still taken over, later.
OWN_LEASE_GRACE = 2
_CLAIMABLE = """(lease_expires_at IS NULL OR lease_expires_at <= ?)
                 AND (lease_owner IS NULL OR lease_owner <> ? OR lease_expires_at <= ?)"""
_CLAIM = f"""UPDATE job_steps SET lease_owner = ?, lease_expires_at = ?, fence = fence + 1
    WHERE id IN (SELECT id FROM job_steps
                 WHERE lane = ? AND due_at <= ? AND {_CLAIMABLE}
                 ORDER BY priority DESC, due_at, id LIMIT ?{{lock}})
    RETURNING id, job_id, kind, lane, fence, attempts, due_at"""
# SQLite: one writer at a time (the write lock, BEGIN IMMEDIATE). PostgreSQL: any number of processes claim at once;
# each locks the rows it picks and passes over the ones another claim holds (re-checked on their newest version).
_CLAIM_SQL = {"sqlite": _CLAIM.format(lock=""), "postgresql": _CLAIM.format(lock=" FOR UPDATE SKIP LOCKED")}
# PostgreSQL: the submit lanes of one provider in every process count its free slots one at a time (a transaction
# lock, released at commit); each count then sees the claims committed before it (READ COMMITTED).
_CAPACITY_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(?))"


class StepRepository:
    def __init__(self, database: Database) -> None:
        self._db = database
        # The due times this process gave steps, per lane (a heap each): when its lanes should look again, known
        # without asking the database. A hint, never a decision: claims decide (a rolled-back write leaves a hint
        # that wakes a lane for nothing; steps of other processes are seen at the lanes' idle_s rounds).
        self._due: dict[str, list[float]] = {}
        self.hint_listeners: list[Callable[[str, float], None]] = []  # the engines' lanes: wake up sooner?

    def _hint(self, lane: str, due_at: float) -> None:
        heapq.heappush(self._due.setdefault(lane, []), due_at)
        for listener in self.hint_listeners:
            listener(lane, due_at)

    def due_hint(self, lane: str, now: float) -> float | None:
        """The earliest due time after ``now`` this process gave a step of ``lane`` (earlier ones are forgotten:
        the claim just made took what was due)."""
        heap = self._due.get(lane)
        while heap and heap[0] <= now:
            heapq.heappop(heap)
        return heap[0] if heap else None

    # ------------------------------------------------------------------ scheduling (inside a caller's transaction)
    async def put(
        self,
        conn: Connection,
        job_id: int,
        kind: str,
        lane: str,
        *,
        due_at: float,
        now: float,
        priority: int = 0,
    ) -> None:
        """Schedule the job's step of this kind at ``due_at``, replacing one that is pending (not one that is
        leased: its holder's fenced writes decide what happens to it)."""
        await conn.execute(
            """INSERT INTO job_steps (job_id, kind, lane, due_at, priority, created_at) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (job_id, kind) DO UPDATE SET lane = excluded.lane, due_at = excluded.due_at,
                   priority = excluded.priority, attempts = 0
               WHERE job_steps.lease_owner IS NULL""",
            (job_id, kind, lane, due_at, priority, now),
        )
        self._hint(lane, due_at)

    async def want(
        self,
        conn: Connection,
        job_id: int,
        kind: str,
        lane: str,
        *,
        due_at: float,
        now: float,
        priority: int = 0,
    ) -> None:
        """Make sure the step runs no later than ``due_at`` (and at least at ``priority``): a message to send
        coalesces with one already pending, the sooner and more urgent wins. A step being run right now gets the
        new due time as it is: its holder sees it changed (``complete``, ``release``) and hands the step back
        instead of dropping the request with it."""
        await conn.execute(_WANT_SQL, (job_id, kind, lane, due_at, priority, now))
        self._hint(lane, due_at)

    async def want_many(
        self, conn: Connection, wanted: Sequence[tuple[int, float]], kind: str, lane: str, *, now: float
    ) -> None:
        """``want`` for many jobs at once, (job id, due time) each: one round trip (ordered by job id, so two
        processes doing this lock the rows in the same order)."""
        if wanted:
            await conn.executemany(_WANT_SQL, [(job_id, kind, lane, due, 0, now) for job_id, due in sorted(wanted)])
            for due in {due for _, due in wanted}:
                self._hint(lane, due)

    async def drop_run_steps_held(self, conn: Connection, lease: Lease) -> None:
        """The holder of ``lease`` (a run step) ends the job: ``complete`` and ``drop_run_steps`` in one statement.
        A run step's due time never changes while it is held (only message steps are asked for again)."""
        cursor = await conn.execute(
            """DELETE FROM job_steps WHERE job_id = ? AND kind IN ('submit', 'poll', 'download')
               AND EXISTS (SELECT 1 FROM job_steps WHERE id = ? AND fence = ?)""",
            (lease.job_id, lease.step_id, lease.fence),
        )
        if cursor.rowcount < 1:
            raise LeaseLost(f"step {lease.step_id} of job {lease.job_id}")

    async def lock_job(self, conn: Connection, job_id: int) -> None:
        """Lock the job's steps before its row (PostgreSQL; SQLite has one writer). Claims and step holders lock
        steps then the job: a transition that changes the job and then its steps takes the same order, or the
        two could wait for each other (a deadlock, which PostgreSQL breaks by aborting one)."""
        if self._db.dialect == "postgresql":
            await conn.execute_fetchall("SELECT id FROM job_steps WHERE job_id = ? ORDER BY id FOR UPDATE", (job_id,))

    async def drop_run_steps(self, conn: Connection, job_id: int) -> None:
        """The job ended: nothing more to submit, poll or download (a holder of one of them loses its lease)."""
        await conn.execute(
            "DELETE FROM job_steps WHERE job_id = ? AND kind IN ('submit', 'poll', 'download')", (job_id,)
        )

    async def drop(self, conn: Connection, job_id: int, kind: str) -> None:
        """Remove the job's step of ``kind``, leased or not (its holder's fenced writes then change nothing)."""
        await conn.execute("DELETE FROM job_steps WHERE job_id = ? AND kind = ?", (job_id, kind))

    # ------------------------------------------------------------------ claiming
    async def claim(
        self, lane: str, *, owner: str, now: float, lease_s: float, limit: int, capacity: tuple[str, int] | None = None
    ) -> list[Lease]:
        """Lease up to ``limit`` due steps of ``lane``. With ``capacity`` (provider, most running), a submit lane
        claims only as many as the provider has free slots, and marks their jobs ``submitting`` in the same
        transaction, so the count holds across processes."""
        if limit <= 0:
            return []
        own_expired = now - OWN_LEASE_GRACE * lease_s

        async def claim(conn: Connection) -> list[Lease]:
            wanted = limit
            if capacity is not None:
                provider, most = capacity
                if self._db.dialect == "postgresql":
                    await conn.execute(_CAPACITY_LOCK_SQL, (f"submit capacity: {provider}",))
                row = await fetch_one(
                    conn,
                    f"""SELECT COUNT(*) FROM jobs WHERE provider = ? AND status IN ('submitting', 'running')
                        AND id NOT IN (SELECT job_id FROM job_steps WHERE lane = ? AND due_at <= ? AND {_CLAIMABLE})""",
                    (provider, lane, now, now, owner, own_expired),
                )
                busy = int(row[0]) if row is not None else 0
                wanted = min(limit, most - busy)
                if wanted <= 0:
                    return []
            rows = await fetch_all(
                conn,
                _CLAIM_SQL[self._db.dialect],
                (owner, now + lease_s, lane, now, now, owner, own_expired, wanted),
            )
            leases = [lease_from_row(row) for row in rows]
            if capacity is not None and leases:
                await conn.executemany(
                    "UPDATE jobs SET status = 'submitting' WHERE id = ? AND status = 'queued'",
                    [(lease.job_id,) for lease in leases],
                )
            return leases

        return await self._db.transact(claim)

    async def lease_new(
        self, conn: Connection, job_id: int, kind: str, *, owner: str, now: float, lease_s: float
    ) -> Lease | None:
        """Lease the job's step of ``kind`` just put in this transaction, so no other process sends it first."""
        row = await fetch_one(
            conn,
            """UPDATE job_steps SET lease_owner = ?, lease_expires_at = ?, fence = fence + 1
               WHERE job_id = ? AND kind = ? AND lease_owner IS NULL
               RETURNING id, job_id, kind, lane, fence, attempts, due_at""",
            (owner, now + lease_s, job_id, kind),
        )
        return None if row is None else lease_from_row(row)

    async def put_leased(
        self, conn: Connection, job_id: int, kind: str, lane: str, *, owner: str, now: float, lease_s: float
    ) -> Lease:
        """A new step of the job, due now and leased to ``owner`` from the start (``put`` and ``lease_new`` in one
        statement), for a job written in this same transaction."""
        row = await fetch_one(
            conn,
            """INSERT INTO job_steps (job_id, kind, lane, due_at, priority, created_at, fence, lease_owner,
                   lease_expires_at) VALUES (?, ?, ?, ?, 0, ?, 1, ?, ?)
               RETURNING id, job_id, kind, lane, fence, attempts, due_at""",
            (job_id, kind, lane, now, now, owner, now + lease_s),
        )
        assert row is not None
        return lease_from_row(row)

    async def claim_one(self, step_id: int, *, owner: str, now: float, lease_s: float) -> Lease | None:
        """Lease one known step now, whatever its due time (e.g. the first message of a job, sent by the command
        that created it), unless someone else holds it."""
        async with self._db.transaction() as conn:
            row = await fetch_one(
                conn,
                """UPDATE job_steps SET lease_owner = ?, lease_expires_at = ?, fence = fence + 1
                   WHERE id = ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)
                   RETURNING id, job_id, kind, lane, fence, attempts, due_at""",
                (owner, now + lease_s, step_id, now),
            )
        return None if row is None else lease_from_row(row)

    async def step_id(self, job_id: int, kind: str) -> int | None:
        row = await self._db.fetch_one("SELECT id FROM job_steps WHERE job_id = ? AND kind = ?", (job_id, kind))
        return None if row is None else int(row[0])

    async def renew(self, owner: str, step_ids: Sequence[int], *, now: float, lease_s: float) -> int:
        """Extend the leases of the steps this process's handlers are still working on, also one that ran out
        while the renewal waited, as long as nobody took the step over (a lease whose handler died is not in
        ``step_ids``: it is left to expire, so the step is taken up again)."""
        if not step_ids:
            return 0
        marks = ", ".join("?" for _ in step_ids)
        # PostgreSQL: lock the rows in id order (as a job's transitions do) and run again after a deadlock.
        lock = " ORDER BY id FOR UPDATE" if self._db.dialect == "postgresql" else ""

        async def renew(conn: Connection) -> int:
            cursor = await conn.execute(
                f"""UPDATE job_steps SET lease_expires_at = ? WHERE id IN (SELECT id FROM job_steps
                        WHERE lease_owner = ? AND id IN ({marks}){lock})""",
                (now + lease_s, owner, *step_ids),
            )
            return cursor.rowcount

        return await self._db.transact(renew)

    async def release_all(self, owner: str) -> int:
        """On a clean stop: hand every step this process holds back, so the next one takes them at once."""
        return await self._db.execute(
            "UPDATE job_steps SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?", (owner,)
        )

    async def next_due(self, lane: str) -> float | None:
        """When the next step of ``lane`` can be claimed (a leased one: when its lease runs out)."""
        row = await self._db.fetch_one(
            """SELECT MIN(CASE WHEN lease_expires_at IS NULL OR lease_expires_at < due_at THEN due_at
                               ELSE lease_expires_at END) FROM job_steps WHERE lane = ?""",
            (lane,),
        )
        return None if row is None or row[0] is None else float(row[0])

    # ------------------------------------------------------------------ fenced writes (inside a transaction)
    async def hold(self, conn: Connection, lease: Lease) -> None:
        """Prove the lease is still ours in this transaction (and lock the step where the database can)."""
        cursor = await conn.execute(
            "UPDATE job_steps SET attempts = attempts WHERE id = ? AND fence = ?", (lease.step_id, lease.fence)
        )
        if cursor.rowcount != 1:
            raise LeaseLost(f"step {lease.step_id} of job {lease.job_id}")

    async def complete(self, conn: Connection, lease: Lease) -> bool:
        """The step is done: remove it, unless it was asked for again while held (``want`` moved its due time):
        then hand it back, due when it was asked for (True: the caller wakes its lane after the commit)."""
        cursor = await conn.execute(
            "DELETE FROM job_steps WHERE id = ? AND fence = ? AND due_at = ?",
            (lease.step_id, lease.fence, lease.due_at),
        )
        if cursor.rowcount == 1:
            return False
        cursor = await conn.execute(
            "UPDATE job_steps SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND fence = ?",
            (lease.step_id, lease.fence),
        )
        if cursor.rowcount != 1:
            raise LeaseLost(f"step {lease.step_id} of job {lease.job_id}")
        return True

    async def advance(self, conn: Connection, lease: Lease, kind: str, lane: str, *, due_at: float) -> None:
        """The step is done and the job's next run step is ``kind`` at ``due_at``: the same row becomes it (one
        statement for ``complete`` and ``put``; a job has one run step at a time)."""
        cursor = await conn.execute(
            """UPDATE job_steps SET kind = ?, lane = ?, due_at = ?, priority = 0, attempts = 0, lease_owner = NULL,
                   lease_expires_at = NULL WHERE id = ? AND fence = ?""",
            (kind, lane, due_at, lease.step_id, lease.fence),
        )
        if cursor.rowcount != 1:
            raise LeaseLost(f"step {lease.step_id} of job {lease.job_id}")
        self._hint(lane, due_at)

    async def release(self, conn: Connection, lease: Lease, *, due_at: float, attempts: int | None = None) -> None:
        """Run the step again at ``due_at`` (and count a failed try when ``attempts`` is given)."""
        cursor = await conn.execute(
            """UPDATE job_steps SET due_at = CASE WHEN due_at <> ? AND due_at < ? THEN due_at ELSE ? END,
                   attempts = COALESCE(?, attempts), lease_owner = NULL, lease_expires_at = NULL
               WHERE id = ? AND fence = ?""",
            (lease.due_at, due_at, due_at, attempts, lease.step_id, lease.fence),
        )
        if cursor.rowcount != 1:
            raise LeaseLost(f"step {lease.step_id} of job {lease.job_id}")
        self._hint(lease.lane, due_at)

    async def release_one(self, lease: Lease, *, due_at: float, attempts: int | None = None) -> bool:
        """Hand one step back to run at ``due_at`` (its own transaction); False if it is no longer ours."""
        try:
            async with self._db.transaction() as conn:
                await self.release(conn, lease, due_at=due_at, attempts=attempts)
        except LeaseLost:
            return False
        return True

    async def complete_one(self, lease: Lease) -> bool:
        """The step has nothing left to do (its own transaction); False if it is no longer ours."""
        try:
            async with self._db.transaction() as conn:
                await self.complete(conn, lease)
        except LeaseLost:
            return False
        return True

    # ------------------------------------------------------------------ the sweep
    async def orphans(self, *, limit: int = 500) -> list[Orphan]:
        """Active jobs with no submit, poll or download step, and finished jobs whose message Discord never
        confirmed that have no message step: the sweep gives each the step it lacks."""
        rows = await self._db.fetch_all(
            """SELECT id, status, upstream_result IS NOT NULL AS has_result FROM jobs j
               WHERE (status IN ('queued', 'submitting', 'running')
                      AND NOT EXISTS (SELECT 1 FROM job_steps s WHERE s.job_id = j.id
                                      AND s.kind IN ('submit', 'poll', 'download')))
                  OR (finished_at IS NOT NULL AND delivered_at IS NULL AND message_deleted_at IS NULL
                      AND NOT EXISTS (SELECT 1 FROM job_steps s WHERE s.job_id = j.id AND s.kind = 'message'))
               ORDER BY id LIMIT ?""",
            (limit,),
        )
        return [Orphan(int(r["id"]), str(r["status"]), bool(r["has_result"])) for r in rows]

    async def pending(self, job_id: int) -> list[tuple[str, float]]:
        rows = await self._db.fetch_all(
            "SELECT kind, due_at FROM job_steps WHERE job_id = ? ORDER BY due_at", (job_id,)
        )
        return [(str(r["kind"]), float(r["due_at"])) for r in rows]

    async def count(self, lanes: Sequence[str] | None = None) -> int:
        if lanes is None:
            return int(await self._db.fetch_value("SELECT COUNT(*) FROM job_steps") or 0)
        marks = ", ".join("?" for _ in lanes)
        return int(await self._db.fetch_value(f"SELECT COUNT(*) FROM job_steps WHERE lane IN ({marks})", lanes) or 0)
