"""A pytest plugin for ``python -m tests.reliability``: records every test's outcome, logs the whole run at DEBUG
the way ``python -m bot`` logs (noisy loggers capped, redaction installed), and at the end scans that log for every
interaction token the fake Discord handed out, the bot token and the provider keys."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pytest

from bot import log_redaction
from tests.fakes.discord import state as fake_state
from tests.fakes.discord.server import FakeDiscord
from tests.fakes.providers.luma_agents import FakeLumaAgents
from tests.fakes.providers.luma_reseller import FakeLumaReseller
from tests.fakes.providers.lumozai import FakeLumozai
from tests.fakes.providers.wavespeed import FakeWaveSpeed
from tests.reliability import record, report_dir

_tokens: set[str] = set()
_bot_tokens: set[str] = {inspect.signature(FakeDiscord.__init__).parameters["token"].default}
PROVIDER_KEYS = {fake.api_key for fake in (FakeWaveSpeed, FakeLumaAgents, FakeLumaReseller, FakeLumozai)}
_handler: logging.FileHandler | None = None
_undo: Any = None


def _watch_the_fakes() -> None:
    register = fake_state.FakeState.register_interaction

    def register_and_remember(self: Any, payload: dict[str, Any]) -> Any:
        _tokens.add(payload["token"])
        return register(self, payload)

    fake_state.FakeState.register_interaction = register_and_remember  # type: ignore[method-assign]
    start = FakeDiscord.start

    async def start_and_remember(self: FakeDiscord) -> FakeDiscord:
        _bot_tokens.add(self.token)
        return await start(self)

    FakeDiscord.start = start_and_remember  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    global _handler, _undo
    directory = report_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    _watch_the_fakes()
    _handler = logging.FileHandler(directory / "debug.log", encoding="utf-8")
    _handler.setLevel(logging.DEBUG)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(_handler)
    root.setLevel(logging.DEBUG)
    # What ``python -m bot`` installs; the configured secrets are the ones every fake is set up with.
    _undo = log_redaction.install([*PROVIDER_KEYS, *_bot_tokens])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        record("test", nodeid=report.nodeid, outcome=report.outcome, duration=round(report.duration, 3))


def pytest_sessionfinish(session: pytest.Session) -> None:
    directory = report_dir()
    if directory is None or _handler is None:
        return
    _handler.flush()
    logging.getLogger().removeHandler(_handler)
    _handler.close()
    if _undo is not None:
        _undo()
    text = (directory / "debug.log").read_text(encoding="utf-8", errors="replace")
    secrets = {"interaction token": _tokens, "bot token": _bot_tokens, "provider key": PROVIDER_KEYS}
    found = {what: sorted(v[:6] + "…" for v in values if v and v in text) for what, values in secrets.items()}
    record(
        "log_scan",
        lines=text.count("\n"),
        interaction_tokens=len(_tokens),
        bot_tokens=len(_bot_tokens),
        provider_keys=len(PROVIDER_KEYS),
        found={what: len(values) for what, values in found.items()},
        examples=found,
    )
