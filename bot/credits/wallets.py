"""Which wallet a job draws on. In a server that installed the bot, the server's (credits per member per server,
its moderators' rules); in DMs and in servers where only the user installed the app, the user's personal wallet:
the credit scope ``PERSONAL_WALLET``, with its own daily limit (``PERSONAL_DAILY_LIMIT``) and bonus credits (where
credit packs go)."""

from __future__ import annotations

PERSONAL_WALLET = 0  # the credit scope (guild_id in the credit tables) of every user's personal wallet


def wallet_for(guild_id: int, *, guild_installed: bool) -> int:
    """The credit scope of a request made in ``guild_id`` (0 outside servers)."""
    return guild_id if guild_id and guild_installed else PERSONAL_WALLET


def is_personal(wallet_id: int) -> bool:
    return wallet_id == PERSONAL_WALLET
