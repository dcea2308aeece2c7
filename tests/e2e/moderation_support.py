"""Helpers for the end-to-end tests of /quota, /history, /job, /quota-admin and /server-settings."""

from __future__ import annotations

import time
from typing import Any

from bot.app import Bot
from bot.storage.jobs import NewJob
from tests.e2e.harness import delivered, eventually
from tests.fakes.discord import (
    DEFAULT_MEMBER_PERMISSIONS,
    MANAGE_GUILD,
    FakeDiscord,
    InteractionRecord,
    RecordedRequest,
)

MODERATOR_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
MODERATOR_ID = 1_200_000_000_000_000_500
GUILD_B = 1_200_000_000_000_009_000
CHANNEL_B = 1_200_000_000_000_009_001


async def reply(fake: FakeDiscord, record: InteractionRecord, *, timeout: float = 5.0) -> RecordedRequest:
    """The command's answer (or its refusal) for the user alone: the edit of a deferred ephemeral acknowledgement,
    or, after a public one, the job's message (its first render: the answer to a command that started a job) or
    the ephemeral followup (the refusal once the public acknowledgement was deleted)."""

    def edited(request: RecordedRequest) -> bool:
        if request.interaction_token != record.token:
            return False
        if request.method == "PATCH" and request.path.endswith("/messages/@original"):
            return True  # an ephemeral acknowledgement's answer, or a public one become the job's message
        return (
            request.method == "POST"
            and "/callback" not in request.path
            and request.path.startswith("/webhooks/")
            and bool((request.json or {}).get("flags", 0) & 64)
        )

    return await fake.wait_for(edited, timeout=timeout)


async def command(fake: FakeDiscord, name: str, options: Any = None, **context: Any) -> tuple[InteractionRecord, str]:
    """Dispatch ``/name`` (``subcommand=``/``subcommand_group=`` in ``context``) and return its answer as text."""
    record = await fake.dispatch(fake.slash_command(name, options or {}, **context))
    answer = await reply(fake, record)
    callback = fake.requests_for(record.token)[0]
    assert callback.json == {"type": 5, "data": {"flags": 64}}, "every answer is an ephemeral deferral first"
    return record, text_of(answer.json or {})


async def admin(
    fake: FakeDiscord, subcommand: str, options: Any = None, *, group: str = "quota-admin", **context: Any
) -> str:
    """``/quota-admin <subcommand>`` (or another group) by a member with Manage Server, unless told otherwise."""
    context.setdefault("member_permissions", MODERATOR_PERMISSIONS)
    context.setdefault("user_id", MODERATOR_ID)
    _, text = await command(fake, group, options, subcommand=subcommand, **context)
    return text


def text_of(body: dict[str, Any]) -> str:
    """Content and every visible text of the embeds of a message body, one string."""
    parts = [body.get("content") or ""]
    for embed in body.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        for field in embed.get("fields") or []:
            parts += [field["name"], field["value"]]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(parts)


def custom_ids(body: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in body.get("components") or [] for c in row.get("components") or []]


async def audit_rows(bot: Bot, guild_id: int | None = None) -> int:
    if guild_id is None:
        return int(await bot.services.database.fetch_value("SELECT COUNT(*) FROM audit_log"))
    return int(
        await bot.services.database.fetch_value("SELECT COUNT(*) FROM audit_log WHERE guild_id = ?", (guild_id,))
    )


async def seed_jobs(
    bot: Bot,
    count: int,
    *,
    user_id: int,
    guild_id: int,
    channel_id: int | None,
    model_key: str = "neta-lumina",
    prompt: str = "seeded job {n}",
    status: str = "succeeded",
    ephemeral: bool = False,
) -> list[int]:
    """Finished jobs written through the repository, oldest first (with a message id when not ephemeral)."""
    repo = bot.services.job_records
    now = time.time()
    ids = []
    for n in range(count):
        async with bot.services.database.transaction() as conn:
            written = await repo.insert(
                conn,
                NewJob(
                    user_id=user_id,
                    guild_id=guild_id,
                    channel_id=channel_id,
                    model_key=model_key,
                    provider="wavespeed",
                    kind="image",
                    prompt=prompt.format(n=n),
                    params={},
                    cost=1,
                    created_at=now - (count - n) * 60,
                    deadline_at=now + 600,
                    ephemeral=ephemeral,
                ),
            )
            job_id = written.id
            if status != "queued":
                await repo.finish(conn, job_id, status=status, now=now)
        if not ephemeral:
            await repo.set_message(job_id, 1_300_000_000_000_000_000 + job_id)
        ids.append(job_id)
    return ids


async def imagine(fake: FakeDiscord, bot: Bot, prompt: str = "a cat", **context: Any) -> Any:
    """Run /imagine and wait for its job to be delivered."""
    before = int(await bot.services.database.fetch_value("SELECT COALESCE(MAX(id), 0) FROM jobs"))
    options = {"prompt": prompt, **context.pop("options", {})}
    await fake.dispatch(fake.slash_command("imagine", options, **context))

    async def new_id() -> int | None:
        return await bot.services.database.fetch_value("SELECT MIN(id) FROM jobs WHERE id > ?", (before,))

    return await delivered(bot, int(await eventually(new_id)))


async def used_today(bot: Bot, guild_id: int, user_id: int) -> int:
    return (await bot.services.quota.status(guild_id, user_id, ())).used
