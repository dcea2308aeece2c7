"""Pointing discord.py at a ``FakeDiscord`` and running a client against it for the length of a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, TypeVar

import discord
import yarl
from discord.gateway import DiscordWebSocket

if TYPE_CHECKING:
    from tests.fakes.discord.server import FakeDiscord

ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.contextmanager
def pointed_at(fake: FakeDiscord) -> Iterator[None]:
    """Set ``Route.BASE`` (REST, interaction callbacks and webhooks) and ``DEFAULT_GATEWAY`` to the fake.

    ``DEFAULT_GATEWAY`` matters even for an AutoShardedBot: after INVALID_SESSION or a failed reconnect
    discord.py reconnects to it rather than to the ``GET /gateway/bot`` url.
    """
    previous_base, previous_gateway = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = previous_base
        DiscordWebSocket.DEFAULT_GATEWAY = previous_gateway


@contextlib.asynccontextmanager
async def running_bot(client: ClientT, fake: FakeDiscord, *, timeout: float = 5.0) -> AsyncIterator[ClientT]:
    """Log ``client`` in with ``fake.token``, connect it, and yield once the fake has answered IDENTIFY.

    Errors while logging in or connecting (``LoginFailure``, a closed gateway) are raised here; the client is
    closed on exit. Requires discord.py to point at the fake already (``pointed_at`` / the fixture).
    """
    if fake.api_base != discord.http.Route.BASE:
        raise RuntimeError("discord.http.Route.BASE does not point at the fake; use pointed_at() or the fixture")
    fake.ready.clear()
    connect: asyncio.Task[None] | None = None
    try:
        await client.login(fake.token)
        connect = asyncio.create_task(client.connect(reconnect=True), name="fake-discord-client")
        ready = asyncio.create_task(fake.ready.wait())
        done, _ = await asyncio.wait({connect, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if connect in done:
            connect.result()
            raise RuntimeError("the client stopped before it identified")
        if not done:
            raise TimeoutError(f"the client did not identify within {timeout}s")
        yield client
    finally:
        await client.close()
        if connect is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(connect, timeout)
