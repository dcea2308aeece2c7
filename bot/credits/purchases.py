"""Purchases through Discord: an entitlement to a credit pack is settled (``packs.py``: ledger row and bonus, in
the database) and only then consumed at Discord. A crash between the two leaves an unconsumed entitlement whose
ledger row exists: the sweep at the next start (and at every READY) finds it, settles it again (which adds
nothing) and consumes it. An entitlement to a SKU that is not a configured pack is logged and left alone."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord

from bot.credits.packs import CreditPacks

log = logging.getLogger(__name__)

_NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# After a failed consume, while the process runs: Discord lets a user buy a consumable SKU again only once their
# last entitlement to it is consumed. After the last try, the next READY's sweep takes it over.
CONSUME_RETRY_S = (5.0, 30.0, 120.0, 600.0)


class Purchases:
    def __init__(self, packs: CreditPacks) -> None:
        self._packs = packs
        self._lock = asyncio.Lock()  # one settlement at a time in this process (the database guards the others)
        self._retrying: dict[int, asyncio.Task[None]] = {}

    async def on_entitlement(self, entitlement: discord.Entitlement) -> bool:
        """Settle and consume one entitlement; True when it is consumed now. Never raises for Discord's errors."""
        sku_id, entitlement_id = entitlement.sku_id, entitlement.id
        if self._packs.credits_for(sku_id) is None:
            log.warning(
                "entitlement %s: SKU %s is not a credit pack in CREDIT_PACKS; left alone", entitlement_id, sku_id
            )
            return False
        if entitlement.consumed or entitlement.deleted:
            return False
        if entitlement.user_id is None:
            log.warning("entitlement %s of SKU %s has no user; left alone", entitlement_id, sku_id)
            return False
        async with self._lock:
            settled = await self._packs.settle(
                entitlement_id=entitlement_id, user_id=entitlement.user_id, sku_id=sku_id
            )
            if settled.credited:
                log.info(
                    "entitlement %s: %s bonus credits to the personal wallet of user %s",
                    entitlement_id,
                    settled.credits,
                    settled.user_id,
                )
            outcome = await self._consume(entitlement)
        if outcome == "failed":
            self._retry_later(entitlement)
        return outcome == "consumed"

    async def _consume(self, entitlement: discord.Entitlement) -> str:
        try:
            await entitlement.consume()
        except discord.NotFound:
            log.warning("entitlement %s: Discord no longer knows it (already consumed or deleted)", entitlement.id)
            return "gone"
        except (discord.HTTPException, *_NETWORK_ERRORS) as exc:
            log.warning("entitlement %s: settled, but consuming it failed (%s); retried later", entitlement.id, exc)
            return "failed"
        log.info("entitlement %s consumed", entitlement.id)
        return "consumed"

    def _retry_later(self, entitlement: discord.Entitlement) -> None:
        if entitlement.id in self._retrying:
            return
        task = asyncio.create_task(self._retry(entitlement), name=f"consume-entitlement-{entitlement.id}")
        self._retrying[entitlement.id] = task
        task.add_done_callback(lambda _: self._retrying.pop(entitlement.id, None))

    async def _retry(self, entitlement: discord.Entitlement) -> None:
        for delay in CONSUME_RETRY_S:
            await asyncio.sleep(delay)
            if await self._consume(entitlement) != "failed":
                return
        log.warning("entitlement %s: still not consumed; the next READY's sweep tries again", entitlement.id)

    async def close(self) -> None:
        """Stop the pending consume retries (the next start's sweep finds those entitlements unconsumed)."""
        tasks = list(self._retrying.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def sweep(self, client: discord.Client) -> int:
        """Settle and consume every unconsumed entitlement to a configured pack; how many were consumed now."""
        sku_ids = self._packs.sku_ids
        if not sku_ids:
            return 0
        await self._check_skus(client)
        consumed = 0
        try:
            skus = [discord.Object(id=sku_id) for sku_id in sku_ids]
            async for entitlement in client.entitlements(limit=None, skus=skus, exclude_ended=True):
                if not entitlement.consumed and not entitlement.deleted:
                    consumed += await self.on_entitlement(entitlement)
        except (discord.HTTPException, *_NETWORK_ERRORS) as exc:
            log.warning("could not list the unconsumed credit-pack entitlements (%s); retried at the next READY", exc)
        except Exception:  # the database: whatever is left unconsumed is found again at the next READY
            log.exception("the sweep of credit-pack entitlements failed; retried at the next READY")
        return consumed

    async def _check_skus(self, client: discord.Client) -> None:
        """Warn about configured packs that are not consumable SKUs of this application."""
        try:
            known = {sku.id: sku for sku in await client.fetch_skus()}
        except (discord.HTTPException, *_NETWORK_ERRORS) as exc:
            log.warning("could not fetch the application's SKUs to check CREDIT_PACKS (%s)", exc)
            return
        for sku_id in self._packs.sku_ids:
            sku = known.get(sku_id)
            if sku is None:
                log.warning("CREDIT_PACKS: SKU %s is not a SKU of this application", sku_id)
            elif sku.type is not discord.SKUType.consumable:
                log.warning("CREDIT_PACKS: SKU %s (%s) is not a consumable SKU", sku_id, sku.name)
