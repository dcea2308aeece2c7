"""Credit packs: a consumable SKU bought through Discord (``CREDIT_PACKS__<sku_id>=<credits>``) adds bonus credits
to the buyer's personal wallet. The settlement is one transaction: a ``purchase`` ledger row, unique on the
entitlement id, and the bonus it adds. A second settlement of the same entitlement (a redelivered event, the
sweep at start, another process) finds the row and adds nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.clock import shared_clock
from bot.credits.wallets import PERSONAL_WALLET
from bot.storage.credits import CreditRepository, NewLedgerEntry
from bot.storage.database import Database


@dataclass(frozen=True, slots=True)
class PackSettlement:
    entitlement_id: int
    user_id: int
    sku_id: int
    credits: int
    credited: bool  # False: this entitlement had already been settled (nothing added now)


class CreditPacks:
    def __init__(
        self, database: Database, packs: Mapping[int, int], *, clock: Callable[[], float] = shared_clock
    ) -> None:
        self._db = database
        self._credits = CreditRepository(database)
        self._packs = dict(packs)
        self._clock = clock

    @property
    def sku_ids(self) -> list[int]:
        return sorted(self._packs)

    def credits_for(self, sku_id: int) -> int | None:
        """The credits a SKU's pack adds; None for a SKU that is not a configured pack."""
        return self._packs.get(sku_id)

    async def settle(self, *, entitlement_id: int, user_id: int, sku_id: int) -> PackSettlement:
        """Credit the pack of ``entitlement_id`` to ``user_id``'s personal wallet, at most once ever."""
        credits = self._packs.get(sku_id)
        if credits is None:
            raise ValueError(f"SKU {sku_id} is not a credit pack")
        entry = NewLedgerEntry(
            guild_id=PERSONAL_WALLET,
            user_id=user_id,
            kind="purchase",
            created_at=self._clock(),
            bonus_delta=credits,
            reason=f"credit pack (SKU {sku_id})",
            entitlement_id=entitlement_id,
        )
        async with self._db.transaction() as conn:
            credited = await self._credits.append(conn, entry)
            if credited:
                await self._credits.add_bonus(conn, PERSONAL_WALLET, user_id, credits)
        return PackSettlement(entitlement_id, user_id, sku_id, credits, credited)

    async def settled(self, entitlement_id: int) -> bool:
        return await self._credits.purchase(entitlement_id) is not None
