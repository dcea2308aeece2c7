"""Discord's premium purchase buttons under an out-of-credits refusal of the personal wallet (where credit packs
go), when credit packs are configured."""

from __future__ import annotations

from collections.abc import Mapping

import discord
from discord import app_commands

from bot.errors import OutOfCredits

MAX_PACK_BUTTONS = 5  # one action row


def refusal_view(error: BaseException, packs: Mapping[int, int]) -> discord.ui.View | None:
    """A view of premium buttons (one per pack, smallest first) for a personal wallet's out-of-credits refusal."""
    if isinstance(error, app_commands.CommandInvokeError) and error.__cause__:
        error = error.__cause__
    if not isinstance(error, OutOfCredits) or not error.personal or not packs:
        return None
    view = discord.ui.View(timeout=None)
    for sku_id, _credits in sorted(packs.items(), key=lambda item: (item[1], item[0]))[:MAX_PACK_BUTTONS]:
        view.add_item(discord.ui.Button(style=discord.ButtonStyle.premium, sku_id=sku_id))
    return view
