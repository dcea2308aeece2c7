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
    """The content of the last edit of the ephemeral acknowledgement (the receipt or the refusal)."""

    def edited(request: Any) -> bool:
        return (
            request.interaction_token == record.token
            and request.method == "PATCH"
            and request.path.endswith("/messages/@original")
            and contains in ((request.json or {}).get("content") or "")
        )

    await fake.wait_for(edited)
    return [r for r in fake.requests_for(record.token) if edited(r)][-1].json.get("content") or ""


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
    assert requests[0].json["data"]["flags"] == 64  # the ack (and so the refusal) is ephemeral
    assert not [r for r in requests if r.method == "POST" and r.path.startswith("/webhooks")]  # nothing public
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
