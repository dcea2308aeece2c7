"""The records the jobs repository returns (``JobRecord``, ``OutputRecord``) and takes (``NewJob``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from providers import messages

ACTIVE_STATUSES = ("queued", "submitting", "running")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class OutputRecord:
    job_id: int
    idx: int
    path: str
    media_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    nsfw: bool = False
    source_url: str | None = field(default=None, repr=False)
    url_expires_at: float | None = None

    @property
    def is_video(self) -> bool:
        return self.media_type.startswith("video/")


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    user_id: int
    guild_id: int
    channel_id: int | None
    model_key: str
    provider: str
    kind: str
    prompt: str
    params: dict[str, Any]
    status: str
    cost: int
    origin: str
    parent_job_id: int | None
    remote_id: str | None
    upstream_status: str | None
    upstream_request_id: str | None
    error_code: str | None
    error_message: str | None  # a providers.messages.Message when it was stored with its parameters
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    next_poll_at: float | None
    deadline_at: float | None
    poll_errors: int
    application_id: int | None
    interaction_token: str | None = field(repr=False)
    token_expires_at: float | None
    token_edits_original: bool
    message_id: int | None
    ephemeral: bool
    interaction_context: int | None
    guild_installed: bool
    channel_nsfw: bool
    attachment_size_limit: int
    delivery_path: str | None
    delivered_at: float | None
    ping_sent_at: float | None
    message_deleted_at: float | None
    outputs_purged_at: float | None
    version: int = 0
    shown_version: int | None = None
    message_sent_at: float | None = None
    submit_sent_at: float | None = None
    upstream_result: str | None = field(default=None, repr=False)
    delivery_error: str | None = None
    shown_key: str | None = None
    shown_place: int | None = None
    user_locale: str | None = None  # Discord locales (bot.i18n): the requester's and the server's
    guild_locale: str | None = None
    seen_running_at: float | None = None  # when a poll last saw it running upstream (the learned poll plan)
    outputs: tuple[OutputRecord, ...] = ()

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def scope(self) -> str:
        return f"guild {self.guild_id}" if self.guild_id else "DMs"


@dataclass(frozen=True, slots=True)
class NewJob:
    user_id: int
    guild_id: int
    channel_id: int | None
    model_key: str
    provider: str
    kind: str
    prompt: str
    params: dict[str, Any]
    cost: int
    created_at: float
    deadline_at: float
    origin: str = "command"
    parent_job_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: float | None = None
    token_edits_original: bool = False
    ephemeral: bool = False
    interaction_context: int | None = None
    guild_installed: bool = True
    channel_nsfw: bool = False
    attachment_size_limit: int = 10 * 1024 * 1024
    message_id: int | None = None  # the job's message: the interaction's original response
    user_locale: str | None = None
    guild_locale: str | None = None


_BOOL_COLUMNS = ("token_edits_original", "ephemeral", "guild_installed", "channel_nsfw")


def row_to_job(row: sqlite3.Row, outputs: Sequence[OutputRecord] = ()) -> JobRecord:
    data = dict(row)
    data["params"] = json.loads(data["params"])
    if data["error_message"] is not None:
        data["error_message"] = messages.load(data["error_message"])
    for column in _BOOL_COLUMNS:
        data[column] = bool(data[column])
    return JobRecord(**data, outputs=tuple(outputs))


def row_to_output(row: sqlite3.Row) -> OutputRecord:
    data = dict(row)
    data["nsfw"] = bool(data["nsfw"])
    return OutputRecord(**data)
