"""SIGTERM ends ``python -m bot`` even when the gateway connection is stuck and does not notice the close."""

from __future__ import annotations

import asyncio
import os
import signal

import bot.__main__ as cli


class StuckClient:
    """A client whose ``start`` keeps reconnecting forever, whatever ``close`` does."""

    def __init__(self) -> None:
        self.closed = False
        self.cancelled = False

    async def start(self, token: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def close(self) -> None:
        self.closed = True


async def test_sigterm_stops_a_process_whose_gateway_never_stops(monkeypatch):
    monkeypatch.setattr(cli, "STOP_TIMEOUT_S", 0.2)
    client = StuckClient()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
    try:
        assert await asyncio.wait_for(cli._run_until_signal(client, "token"), timeout=5) == 0  # type: ignore[arg-type]
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    assert client.closed
    assert client.cancelled
