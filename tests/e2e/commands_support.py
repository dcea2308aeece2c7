"""Helpers shared by the command, button and attachment end-to-end tests."""

from __future__ import annotations

import base64
import json
from typing import Any

from bot.app import Bot
from tests.e2e.harness import delivered, eventually, job_when, latest_job_id
from tests.fakes.discord import FakeDiscord, InteractionRecord
from tests.fakes.media import image_bytes
from tests.fakes.providers._server import Recorded

SUBMIT_PATHS = {
    "wavespeed": "/api/v3/wavespeed-ai/neta-lumina",
    "luma_agents": "/v1/generations",
    "lumozai": "/api/v4/run",
    "luma_reseller": "/luma/generations",
}
PROVIDER_OF = {
    "neta-lumina": "wavespeed",
    "uni-1": "luma_agents",
    "uni-1-max": "luma_agents",
    "kawaii-3d": "lumozai",
    "luma-video": "luma_reseller",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png(width: int = 96, height: int = 80, color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    return image_bytes("png", width, height, color)


def submits(fakes: Any, provider: str) -> list[Recorded]:
    return getattr(fakes, provider).requests_to("POST", SUBMIT_PATHS[provider])


def body_of(request: Recorded) -> dict[str, Any]:
    """The submitted JSON body or form fields."""
    return request.json if request.json is not None else dict(request.form or {})


def last_body(fakes: Any, provider: str) -> dict[str, Any]:
    sent = submits(fakes, provider)
    assert sent, f"nothing was submitted to {provider}"
    return body_of(sent[-1])


async def ack_text(fake: FakeDiscord, record: InteractionRecord, *, contains: str = "") -> str:
    """The last answer to the interaction: an edit of its @original (a refusal in an ephemeral acknowledgement, the
    message a button is on) or an ephemeral followup (the note after the job's message, a refusal after a public
    acknowledgement was deleted)."""

    def edited(request: Any) -> bool:
        if request.interaction_token != record.token or contains not in ((request.json or {}).get("content") or ""):
            return False
        if request.method == "PATCH" and request.path.endswith("/messages/@original"):
            return True
        return (
            request.method == "POST"
            and request.path.startswith("/webhooks/")
            and bool((request.json or {}).get("flags", 0) & 64)
        )

    await fake.wait_for(edited)
    return [r for r in fake.requests_for(record.token) if edited(r)][-1].json.get("content") or ""


def ephemeral_followups(fake: FakeDiscord, record: InteractionRecord) -> list[str]:
    """The contents of every ephemeral followup sent with the interaction's token (a job's note, a refusal)."""
    return [
        (r.json or {}).get("content") or ""
        for r in fake.requests_for(record.token)
        if r.method == "POST" and r.path.startswith("/webhooks/") and (r.json or {}).get("flags", 0) & 64
    ]


def _ephemeral_original(fake: FakeDiscord, record: InteractionRecord) -> bool:
    callback = next(r for r in fake.requests_for(record.token) if "/callback" in r.path)
    body = callback.json or {}
    return body.get("type") != 5 or bool((body.get("data") or {}).get("flags", 0) & 64)


async def run(fake: FakeDiscord, bot: Bot, name: str, options: dict[str, Any], **context: Any) -> tuple[Any, Any]:
    """Invoke ``/name`` and wait for the job it starts to be delivered: (interaction record, job)."""
    before = await bot.services.database.fetch_value("SELECT COALESCE(MAX(id), 0) FROM jobs")
    record = await fake.dispatch(fake.slash_command(name, options, **context))
    return record, await delivered(bot, await new_job_id(bot, before))


async def new_job_id(bot: Bot, before: int) -> int:
    """The id of the first job created after job ``before``."""

    async def check() -> int | None:
        return await bot.services.database.fetch_value("SELECT MIN(id) FROM jobs WHERE id > ?", (before,))

    return int(await eventually(check))


async def max_job_id(bot: Bot) -> int:
    return int(await bot.services.database.fetch_value("SELECT COALESCE(MAX(id), 0) FROM jobs"))


async def refused(fake: FakeDiscord, bot: Bot, name: str, options: dict[str, Any], **context: Any) -> str:
    """Invoke ``/name``, expect an ephemeral refusal: no job, no ledger row. Returns the refusal text."""
    counts = await charges(bot)
    record = await fake.dispatch(fake.slash_command(name, options, **context))
    text = await ack_text(fake, record)
    assert not text.startswith("✅"), text
    assert await charges(bot) == counts, "a refused command must charge nothing"
    requests = fake.requests_for(record.token)
    if not _ephemeral_original(fake, record):
        # A public acknowledgement (meant to become the job's message) is deleted before the refusal.
        assert any(r.method == "DELETE" and r.path.endswith("/messages/@original") for r in requests)
        assert record.original_message_id not in fake.state.messages
    public = [
        r
        for r in requests
        if r.method == "POST" and r.path.startswith("/webhooks") and not ((r.json or {}).get("flags", 0) & 64)
    ]
    assert not public  # nothing public
    return text


async def charges(bot: Bot) -> tuple[int, int]:
    db = bot.services.database
    return (
        int(await db.fetch_value("SELECT COUNT(*) FROM jobs")),
        int(await db.fetch_value("SELECT COUNT(*) FROM credit_ledger")),
    )


async def ledger(bot: Bot, job_id: int) -> list[tuple[str, int]]:
    rows = await bot.services.database.fetch_all(
        "SELECT kind, user_id FROM credit_ledger WHERE job_id = ? ORDER BY id", (job_id,)
    )
    return [(row["kind"], row["user_id"]) for row in rows]


def no_cdn_urls(body: dict[str, Any]) -> bool:
    text = json.dumps(body)
    return "/cdn/" not in text and "/media/" not in text and "ephemeral-attachments" not in text


__all__ = [
    "PROVIDER_OF",
    "ack_text",
    "b64",
    "body_of",
    "charges",
    "delivered",
    "job_when",
    "last_body",
    "latest_job_id",
    "ledger",
    "max_job_id",
    "new_job_id",
    "no_cdn_urls",
    "png",
    "refused",
    "run",
    "submits",
]
