"""``QuotaService``: the credit rules, the settlement of jobs' credits and the moderator actions, behind one object
for the job engine and the commands."""

from __future__ import annotations

from collections.abc import Callable

from bot.clock import shared_clock
from bot.credits.moderation import CreditModeration
from bot.credits.packs import CreditPacks
from bot.credits.periods import Periods
from bot.credits.rules import CreditRules
from bot.credits.settlement import Settlement
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.credits import CreditRepository
from bot.storage.database import Database


class QuotaService:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        server_settings: ServerSettingsService,
        *,
        clock: Callable[[], float] = shared_clock,
    ) -> None:
        self.periods = Periods(settings.quota_reset_hour_utc)
        self.rules = CreditRules(database, settings, self.periods, clock=clock)
        self.settlement = Settlement(database, self.rules)
        self.moderation = CreditModeration(database, self.periods, server_settings, clock=clock)
        self.packs = CreditPacks(database, settings.credit_packs, clock=clock)

        self.period_at = self.periods.period_at
        self.next_reset = self.periods.next_reset
        # reads
        self.check = self.rules.check
        self.status = self.rules.status
        self.ledger = CreditRepository(database).ledger
        self.purchases = CreditRepository(database).purchases
        # the job engine's side, inside its transactions
        self.reserve = self.settlement.reserve
        self.commit = self.settlement.commit
        self.refund = self.settlement.refund
        # moderator actions, each audited in its own transaction
        self.set_member_limit = self.moderation.set_member_limit
        self.grant = self.moderation.grant
        self.reset = self.moderation.reset
        self.ban = self.moderation.ban
        self.unban = self.moderation.unban
        self.set_role_limit = self.moderation.set_role_limit
        self.set_server_default = self.moderation.set_server_default
