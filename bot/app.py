"""The Discord client: loads every cog, turns command errors into ephemeral replies, starts and stops the job
engine with the connection."""

from __future__ import annotations

import asyncio
import logging
import pkgutil

import discord
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket

import cogs
from bot.i18n.commands import CommandTranslator
from bot.render.purchase import refusal_view
from bot.render.replies import error_text, send_ephemeral
from bot.runtime import Services

log = logging.getLogger(__name__)


class BotTree(app_commands.CommandTree["Bot"]):
    async def on_error(self, interaction: discord.Interaction[Bot], error: app_commands.AppCommandError) -> None:
        name = interaction.command.qualified_name if interaction.command else "command tree"
        text = error_text(error, where=f"/{name} (interaction {interaction.id})")
        await send_ephemeral(interaction, text, view=refusal_view(error, interaction.client.settings.credit_packs))


def cog_extensions() -> list[str]:
    """Every module in ``cogs/`` except private ``_`` helpers."""
    return sorted(
        f"{cogs.__name__}.{module.name}"
        for module in pkgutil.iter_modules(cogs.__path__)
        if not module.name.startswith("_")
    )


class Bot(commands.AutoShardedBot):
    def __init__(self, services: Services, *, run_engine: bool = True, **options: object) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=BotTree,
            http_trace=services.ops.metrics.discord_trace(),
            **options,  # type: ignore[arg-type]
        )
        self.services = services
        self.settings = services.settings
        self.run_engine = run_engine
        self._sweeps: set[asyncio.Task[int]] = set()
        self._sweep_again = False
        self._sessions = 0  # gateway sessions of shard 0 so far (each READY of it)
        self._swept_sessions = -1  # the sessions the running (or last) sweep began after
        self._ready_once = False

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CommandTranslator())
        for extension in cog_extensions():
            await self.load_extension(extension)
        if self.run_engine:
            await self.services.start(self)
        log.info(
            "loaded %d extensions; models enabled: %s",
            len(self.extensions),
            ", ".join(entry.key for entry in self.services.catalogue) or "none",
        )

    async def launch_shards(self) -> None:
        """With SHARD_COUNT set, discord.py would connect to its built-in gateway address: ask ``/gateway/bot`` for
        it, as it does without (so an API at DISCORD_API_BASE_URL other than Discord's names its own gateway)."""
        if self.shard_count is not None and not self.is_closed():
            _, url, _ = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await super().launch_shards()

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("connected as %s (%s) to %d servers", self.user, self.user.id, len(self.guilds))
        self._ready_once = True
        self._sweep_purchases()

    async def on_shard_ready(self, shard_id: int) -> None:
        # Entitlement events come on shard 0: after it identified again (its missed events are not replayed), look.
        if shard_id == 0:
            self._sessions += 1
            if self._ready_once:
                self._sweep_purchases()

    def _sweep_purchases(self) -> None:
        """Settle purchases made while no process was connected, or settled but not consumed before a crash. Asked
        for by a new session of shard 0 while a sweep runs (it may have listed before that session's missed
        purchases), the sweep runs once more when it ends."""
        if self._sweeps:
            self._sweep_again = self._sweep_again or self._sessions != self._swept_sessions
            return
        task = asyncio.create_task(self._sweep_until_current(), name="credit-pack-sweep")
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    async def _sweep_until_current(self) -> int:
        consumed = 0
        while True:
            self._sweep_again, self._swept_sessions = False, self._sessions
            consumed += await self.services.purchases.sweep(self)
            if not self._sweep_again:
                return consumed

    async def on_entitlement_create(self, entitlement: discord.Entitlement) -> None:
        await self.services.purchases.on_entitlement(entitlement)

    async def close(self) -> None:
        """Stop receiving (disconnect the shards), let the commands and clicks already received finish (they
        write their jobs), let the job engine park its state, then close the HTTP client. In a rolling restart
        the new process takes over what was received and written."""
        if not self.is_closed():
            for shard in self.shards.values():
                await shard.disconnect()
            await _handlers_settle(HANDLERS_GRACE_S)
            if self._sweeps:
                await asyncio.wait(self._sweeps, timeout=HANDLERS_GRACE_S)
        await self.services.purchases.close()
        await self.services.stop()
        await super().close()


HANDLERS_GRACE_S = 10.0
_HANDLER_TASKS = ("CommandTree-invoker", "discord-ui-view-dispatch-", "discord.py: interaction")


async def _handlers_settle(grace_s: float) -> None:
    """Wait (at most ``grace_s``) for discord.py's running command, component and interaction handlers."""
    current = asyncio.current_task()
    running = [t for t in asyncio.all_tasks() if t is not current and t.get_name().startswith(_HANDLER_TASKS)]
    if running:
        await asyncio.wait(running, timeout=grace_s)
