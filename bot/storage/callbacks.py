"""Provider callbacks: each job's callback secret, kept as a hash (``job_callbacks``), and the deliveries already
taken (``callback_deliveries``), so a replayed one is refused."""

from __future__ import annotations

from bot.storage.database import Connection, Database


class CallbackRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def register(self, conn: Connection, job_id: int, provider: str, secret_hash: str, now: float) -> None:
        """The job is about to be submitted with a callback URL carrying the secret hashed here."""
        await conn.execute(
            """INSERT INTO job_callbacks (job_id, provider, secret_hash, created_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (job_id) DO UPDATE SET provider = excluded.provider,
                   secret_hash = excluded.secret_hash, created_at = excluded.created_at""",
            (job_id, provider, secret_hash, now),
        )

    async def secret_hash(self, job_id: int, provider: str) -> str | None:
        row = await self._db.fetch_one(
            "SELECT secret_hash FROM job_callbacks WHERE job_id = ? AND provider = ?", (job_id, provider)
        )
        return None if row is None else str(row[0])

    async def first_delivery(self, conn: Connection, provider: str, delivery_id: str, job_id: int, now: float) -> bool:
        """Note a delivery; False when it was taken before (a replay or a provider's retry)."""
        cursor = await conn.execute(
            """INSERT INTO callback_deliveries (provider, delivery_id, job_id, received_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (provider, delivery_id) DO NOTHING""",
            (provider, delivery_id, job_id, now),
        )
        return cursor.rowcount == 1

    async def forget_deliveries(self, before: float) -> int:
        """Delivery ids older than any timestamp a provider's signature may still carry are no longer needed."""
        return await self._db.execute("DELETE FROM callback_deliveries WHERE received_at < ?", (before,))

    async def delivery_count(self, job_id: int) -> int:
        """Deliveries taken for a job (tests, operators)."""
        value = await self._db.fetch_value("SELECT COUNT(*) FROM callback_deliveries WHERE job_id = ?", (job_id,))
        return int(value or 0)
