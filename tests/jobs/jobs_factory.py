"""JobRecord / OutputRecord builders and Discord-limit checks for the pure rendering and delivery tests."""

from __future__ import annotations

import dataclasses
from typing import Any

import discord

from bot.render.job import Rendered
from bot.storage.jobs import JobRecord, OutputRecord
from tests.jobs.virtual import T0

MiB = 1024 * 1024


def make_job(**changes: Any) -> JobRecord:
    base = JobRecord(
        id=42,
        user_id=111_111_111_111_111_111,
        guild_id=222_222_222_222_222_222,
        channel_id=333_333_333_333_333_333,
        model_key="neta-lumina",
        provider="wavespeed",
        kind="image",
        prompt="a cat",
        params={"model": "wavespeed-ai/neta-lumina", "seed": 5},
        status="queued",
        cost=1,
        origin="command",
        parent_job_id=None,
        remote_id=None,
        upstream_status=None,
        upstream_request_id=None,
        error_code=None,
        error_message=None,
        created_at=T0,
        submitted_at=None,
        finished_at=None,
        next_poll_at=None,
        deadline_at=T0 + 600,
        poll_errors=0,
        application_id=None,
        interaction_token=None,
        token_expires_at=None,
        token_edits_original=False,
        message_id=None,
        ephemeral=False,
        interaction_context=0,
        guild_installed=True,
        channel_nsfw=False,
        attachment_size_limit=10 * MiB,
        delivery_path=None,
        delivered_at=None,
        ping_sent_at=None,
        message_deleted_at=None,
        outputs_purged_at=None,
    )
    return dataclasses.replace(base, **changes)


def output(idx: int = 0, *, media_type: str = "image/png", size: int = 1000, **changes: Any) -> OutputRecord:
    ext = {"image/png": ".png", "video/mp4": ".mp4", "image/jpeg": ".jpg"}[media_type]
    values: dict[str, Any] = {
        "job_id": 42,
        "idx": idx,
        "path": f"outputs/42/{idx}{ext}",
        "media_type": media_type,
        "size_bytes": size,
        "width": 64 if media_type.startswith("image/") else None,
        "height": 64 if media_type.startswith("image/") else None,
        **changes,
    }
    return OutputRecord(**values)


def succeeded(*outputs: OutputRecord, **changes: Any) -> JobRecord:
    values: dict[str, Any] = {
        "status": "succeeded",
        "submitted_at": T0 + 1,
        "finished_at": T0 + 75,
        "outputs": outputs or (output(),),
        **changes,
    }
    return make_job(**values)


def assert_embed_within_limits(embed: discord.Embed) -> int:
    """Discord's embed limits (discord.md §2.1); returns the embed's counted length."""
    data = embed.to_dict()
    title, description = data.get("title", ""), data.get("description", "")
    fields = data.get("fields", [])
    footer = data.get("footer", {}).get("text", "")
    author = data.get("author", {}).get("name", "")
    assert len(title) <= 256
    assert len(description) <= 4096
    assert len(fields) <= 25
    for item in fields:
        assert 0 < len(item["name"]) <= 256
        assert 0 < len(item["value"]) <= 1024
    assert len(footer) <= 2048
    assert len(author) <= 256
    total = len(title) + len(description) + len(footer) + len(author)
    total += sum(len(item["name"]) + len(item["value"]) for item in fields)
    assert total <= 6000
    return total


def assert_message_within_limits(rendered: Rendered) -> None:
    assert len(rendered.content) <= 2000
    assert len(rendered.embeds) <= 10
    assert sum(assert_embed_within_limits(e) for e in rendered.embeds) <= 6000
    assert len(rendered.files) <= 10
    assert len(rendered.rows) <= 5
    ids = [b.custom_id for row in rendered.rows for b in row]
    assert len(ids) == len(set(ids))
    for row in rendered.rows:
        assert 1 <= len(row) <= 5
        for button in row:
            assert 1 <= len(button.custom_id) <= 100
            assert len(button.label) <= 80
