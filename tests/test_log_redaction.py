"""No secret and no token in a log line: the redacting filter, the capped loggers, and tokens forgotten once
expired."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from bot import log_redaction
from bot.jobs import retention
from bot.jobs.media_store import MediaStore
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRepository, NewJob

INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpzZWNyZXRyYW5kb21wYXJ0c2VjcmV0cmFuZG9tcGFydA" * 2
BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
API_KEY = "ws-key-0123456789abcdef"


@pytest.fixture
def captured():
    """A handler on a private logger tree, with redaction installed as ``main()`` installs it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("redaction-test")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    root.propagate = False
    settings = Settings(_env_file=None, discord_token=BOT_TOKEN, wavespeed={"api_key": API_KEY})  # type: ignore[call-arg]
    undo = log_redaction.install(log_redaction.configured_secrets(settings), root=root)
    yield root, stream
    undo()
    root.removeHandler(handler)


def test_configured_secrets_are_every_secret_str_in_the_settings():
    settings = Settings(_env_file=None, discord_token=BOT_TOKEN, luma_agents={"api_key": "luma-api-secret"})  # type: ignore[call-arg]
    assert set(log_redaction.configured_secrets(settings)) == {BOT_TOKEN, "luma-api-secret"}


def test_secrets_and_tokens_are_masked_in_messages_and_arguments(captured):
    root, stream = captured
    log = root.getChild("x")
    log.info("key %s used", API_KEY)
    log.debug("POST https://discord.com/api/v10/webhooks/1234567890/%s/messages/@original", INTERACTION_TOKEN)
    log.warning("callback /interactions/99/some-opaque-token-value/callback failed")
    log.info("token=%r", BOT_TOKEN.replace(".GaBcDe.", ".HxYzWv."))  # bot-token shaped, not the configured one
    log.info("row %s", {"interaction_token": INTERACTION_TOKEN})
    log.info("notify_hook=https://bot.example/callbacks/luma_reseller/42/per-job-callback-secret?x=1")
    text = stream.getvalue()
    assert "/callbacks/luma_reseller/42/[redacted]?x=1" in text
    for secret in (API_KEY, INTERACTION_TOKEN[:40], "some-opaque-token-value", "HxYzWv", "per-job-callback-secret"):
        assert secret not in text
    assert "/webhooks/1234567890/[redacted]/messages/@original" in text
    assert "/interactions/99/[redacted]/callback" in text
    assert text.count("[redacted]") >= 5


def test_tracebacks_are_masked(captured):
    root, stream = captured
    try:
        raise RuntimeError(f"Bearer {API_KEY} refused for {INTERACTION_TOKEN}")
    except RuntimeError:
        root.getChild("x").exception("it failed")
    text = stream.getvalue()
    assert "RuntimeError: Bearer [redacted] refused for [redacted]" in text
    assert API_KEY not in text
    assert INTERACTION_TOKEN[:30] not in text


def test_loggers_that_print_bound_values_are_capped_even_at_debug():
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    undo = log_redaction.install([], root=logging.getLogger("redaction-test-empty"))
    try:
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("discord.http").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("discord.webhook.async_").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("aiohttp.access").isEnabledFor(logging.INFO)
        assert logging.getLogger("bot.jobs").isEnabledFor(logging.DEBUG)
    finally:
        undo()
        root.setLevel(old)


async def test_expired_interaction_tokens_are_cleared_by_the_retention_loop(tmp_path, monkeypatch):
    async with Database(tmp_path / "bot.sqlite3") as db:
        repo = JobRepository(db)
        ids = []
        for expires in (100.0, 5000.0):
            new = NewJob(
                user_id=1, guild_id=1, channel_id=1, model_key="neta-lumina", provider="wavespeed", kind="image",
                prompt="p", params={}, cost=0, created_at=0.0, deadline_at=600.0, application_id=1,
                interaction_token=f"tok-{expires}", token_expires_at=expires,
            )  # fmt: skip
            async with db.transaction() as conn:
                ids.append((await repo.insert(conn, new)).id)
        monkeypatch.setattr(retention, "PURGE_EVERY_S", 3600)
        task = asyncio.create_task(
            retention.purge_forever(repo, MediaStore(tmp_path / "m"), retention_s=86400, clock=lambda: 1000.0)
        )
        try:
            for _ in range(200):
                expired = await repo.get(ids[0])
                if expired is not None and expired.interaction_token is None:
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        live = await repo.get(ids[1])
    assert expired is not None
    assert expired.interaction_token is None
    assert live is not None
    assert live.interaction_token == "tok-5000.0"
