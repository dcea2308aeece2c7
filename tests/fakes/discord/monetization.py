"""Premium Apps: the application's SKUs and entitlements, and the routes that read and change them
(``GET /applications/{app}/skus``, ``GET``/``POST /applications/{app}/entitlements``, ``POST .../{id}/consume``,
``DELETE .../{id}``). Shapes follow Discord's ``EntitlementResponse``; entitlement types: 1 a purchase, 4 a test
purchase (what ``POST /applications/{app}/entitlements`` creates). ``FakeDiscord.purchase`` makes one and sends
``ENTITLEMENT_CREATE``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.discord.errors import ApiError

UNKNOWN_ENTITLEMENT = 10029
UNKNOWN_SKU = 10014
CONSUMABLE = 3
PURCHASE, TEST_MODE_PURCHASE = 1, 4
USER_OWNER = 2
TRUE = {"1", "true", "True"}


@dataclass
class Monetization:
    application_id: int
    new_id: Callable[[], int]
    skus: dict[int, dict[str, Any]] = field(default_factory=dict)
    entitlements: dict[int, dict[str, Any]] = field(default_factory=dict)
    consume_calls: list[int] = field(default_factory=list)  # every consume request's entitlement id, in order

    def add_sku(self, name: str, *, sku_id: int | None = None, sku_type: int = CONSUMABLE) -> dict[str, Any]:
        sku_id = sku_id or self.new_id()
        slug = name.lower().replace(" ", "-")
        sku = {
            "id": str(sku_id),
            "type": sku_type,
            "application_id": str(self.application_id),
            "name": name,
            "slug": slug,
            "flags": 1 << 2,  # available
        }
        self.skus[sku_id] = sku
        return sku

    def new_entitlement(self, user_id: int, sku_id: int, *, entitlement_type: int = PURCHASE) -> dict[str, Any]:
        if sku_id not in self.skus:
            raise ApiError(404, UNKNOWN_SKU, "Unknown SKU")
        entitlement_id = self.new_id()
        entitlement = {
            "id": str(entitlement_id),
            "sku_id": str(sku_id),
            "application_id": str(self.application_id),
            "user_id": str(user_id),
            "guild_id": None,
            "deleted": False,
            "starts_at": None,
            "ends_at": None,
            "type": entitlement_type,
            "consumed": False,
        }
        self.entitlements[entitlement_id] = entitlement
        return entitlement

    def consumed(self, entitlement_id: int) -> bool:
        return bool(self.entitlements[entitlement_id]["consumed"])

    # ------------------------------------------------------------------------------------------------ routes
    def list_entitlements(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """What ``GET /applications/{app}/entitlements`` answers: ascending ids, filtered and paged."""
        limit = int(query.get("limit", 100))
        if not 1 <= limit <= 100:
            raise ApiError(400, 50035, "Invalid Form Body")
        found = sorted(self.entitlements.items())
        if "user_id" in query:
            found = [(i, e) for i, e in found if e["user_id"] == query["user_id"]]
        if "guild_id" in query:
            found = [(i, e) for i, e in found if e["guild_id"] == query["guild_id"]]
        if query.get("sku_ids"):
            wanted = set(query["sku_ids"].split(","))
            found = [(i, e) for i, e in found if e["sku_id"] in wanted]
        if query.get("exclude_deleted", "1") in TRUE:
            found = [(i, e) for i, e in found if not e["deleted"]]
        if "after" in query:
            found = [(i, e) for i, e in found if i > int(query["after"])][:limit]
        elif "before" in query:
            found = [(i, e) for i, e in found if i < int(query["before"])][-limit:]
        else:
            found = found[:limit]
        return [dict(e) for _, e in found]

    def create_test_entitlement(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if int(body.get("owner_type", 0)) != USER_OWNER:
            raise ApiError(400, 50035, "Invalid Form Body")  # the fake sells to users only
        return self.new_entitlement(int(body["owner_id"]), int(body["sku_id"]), entitlement_type=TEST_MODE_PURCHASE)

    def entitlement(self, entitlement_id: int) -> dict[str, Any]:
        found = self.entitlements.get(entitlement_id)
        if found is None or found["deleted"]:
            raise ApiError(404, UNKNOWN_ENTITLEMENT, "Unknown Entitlement")
        return found

    def consume(self, entitlement_id: int) -> None:
        self.consume_calls.append(entitlement_id)
        self.entitlement(entitlement_id)["consumed"] = True

    def delete(self, entitlement_id: int) -> None:
        self.entitlement(entitlement_id)["deleted"] = True
