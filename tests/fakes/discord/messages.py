"""Message objects: creating them from a send body, applying edits (v10 attachment semantics, discord.md §2.3),
resolving ``attachment://`` embed images and computing mentions under ``allowed_mentions``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.discord.limits import EPHEMERAL, IS_COMPONENTS_V2, Problem
from tests.fakes.discord.recording import UploadedFile
from tests.fakes.discord.state import FakeState, InteractionRecord

LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
EDITABLE_FLAGS = SUPPRESS_EMBEDS | IS_COMPONENTS_V2
PARSE_ALL = ("users", "roles", "everyone")
PARSE_INTERACTION = ("users",)

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


class AttachmentError(Exception):
    """The ``attachments`` list names something that is neither kept nor uploaded."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.describe() for p in problems))


def new_message(
    state: FakeState,
    *,
    channel_id: int,
    body: Mapping[str, Any],
    files: Sequence[UploadedFile],
    message_type: int = 0,
    interaction: InteractionRecord | None = None,
    extra_flags: int = 0,
) -> dict[str, Any]:
    """Create (and store) the message a send body describes, authored by the bot user."""
    flags = (body.get("flags") or 0) | extra_flags
    ephemeral = bool(flags & EPHEMERAL)
    message_id = state.new_id()
    message: dict[str, Any] = {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "type": message_type,
        "content": "",
        "author": state.bot_user,
        "attachments": [],
        "embeds": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "timestamp": state.now_iso(),
        "edited_timestamp": None,
        "flags": flags,
        "components": [],
        "pinned": False,
        "tts": bool(body.get("tts", False)),
        "position": 0,
    }
    if interaction is not None:
        message["webhook_id"] = str(state.application_id)
        message["application_id"] = str(state.application_id)
        message["interaction_metadata"] = _interaction_metadata(interaction)
    default_parse = PARSE_INTERACTION if interaction is not None else PARSE_ALL
    _apply_body(state, message, body, files, default_parse, existing=[], ephemeral=ephemeral)
    state.messages[message_id] = message
    return message


def edit_message(
    state: FakeState,
    message: dict[str, Any],
    body: Mapping[str, Any],
    files: Sequence[UploadedFile],
    *,
    via_interaction: bool,
) -> dict[str, Any]:
    """Apply an edit body in place: given fields replace old ones; ``attachments`` is the full new set."""
    flags = message["flags"] & ~LOADING
    if "flags" in body and body["flags"] is not None:
        flags = (flags & ~EDITABLE_FLAGS) | (body["flags"] & EDITABLE_FLAGS) | (flags & IS_COMPONENTS_V2)
    default_parse = PARSE_INTERACTION if via_interaction else PARSE_ALL
    existing = list(message["attachments"])
    _apply_body(state, message, body, files, default_parse, existing=existing, ephemeral=bool(flags & EPHEMERAL))
    message["flags"] = flags
    message["edited_timestamp"] = state.now_iso()
    return message


def _interaction_metadata(interaction: InteractionRecord) -> dict[str, Any]:
    payload = interaction.payload
    user = payload.get("user") or payload.get("member", {}).get("user")
    metadata: dict[str, Any] = {
        "id": str(interaction.id),
        "type": interaction.type,
        "user": user,
        "authorizing_integration_owners": payload.get("authorizing_integration_owners", {}),
    }
    if interaction.original_message_id is not None:
        metadata["original_response_message_id"] = str(interaction.original_message_id)
    if interaction.component_message_id is not None:
        metadata["interacted_message_id"] = str(interaction.component_message_id)
    return metadata


def _apply_body(
    state: FakeState,
    message: dict[str, Any],
    body: Mapping[str, Any],
    files: Sequence[UploadedFile],
    default_parse: Sequence[str],
    *,
    existing: list[dict[str, Any]],
    ephemeral: bool,
) -> None:
    if "attachments" in body or files:
        message["attachments"] = _attachments(state, message, body.get("attachments"), files, existing, ephemeral)
    if "content" in body:
        message["content"] = body["content"] or ""
    if "components" in body:
        message["components"] = list(body["components"] or [])
    if "embeds" in body:
        message["embeds"] = [_embed(e, message["attachments"]) for e in body["embeds"] or []]
    if "content" in body or "allowed_mentions" in body:
        _mentions(state, message, body.get("allowed_mentions"), default_parse)


def _attachments(
    state: FakeState,
    message: dict[str, Any],
    wanted: Sequence[Mapping[str, Any]] | None,
    files: Sequence[UploadedFile],
    existing: list[dict[str, Any]],
    ephemeral: bool,
) -> list[dict[str, Any]]:
    """Kept attachments by id, new ones from ``files[n]`` by placeholder ``n``; unlisted uploads still attach."""
    uploads = {f.index: f for f in files if f.index is not None}
    kept = {a["id"]: a for a in existing}
    folder = f"attachments/{message['channel_id']}"
    result: list[dict[str, Any]] = []
    problems: list[Problem] = []
    used: set[int] = set()
    if wanted is None:
        result = list(existing)
        wanted = []
    for index, entry in enumerate(wanted):
        raw_id = str(entry.get("id"))
        if raw_id in kept:
            result.append({**kept[raw_id], **_attachment_overrides(entry)})
        elif raw_id.isdigit() and int(raw_id) in uploads:
            upload = uploads[int(raw_id)]
            used.add(int(raw_id))
            filename = entry.get("filename") or upload.filename
            attachment = state.store_file(filename, upload.data, folder=folder, ephemeral=ephemeral)
            result.append({**attachment, **_attachment_overrides(entry)})
        else:
            problems.append(Problem(f"attachments[{index}].id", f"{raw_id} is neither kept nor an uploaded files[n]"))
    for n, upload in sorted(uploads.items()):
        if n not in used:
            result.append(state.store_file(upload.filename, upload.data, folder=folder, ephemeral=ephemeral))
    if problems:
        raise AttachmentError(problems)
    return result


def _attachment_overrides(entry: Mapping[str, Any]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if entry.get("description") is not None:
        overrides["description"] = entry["description"]
    return overrides


def _embed(embed: Mapping[str, Any], attachments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Embeds come back with ``type: rich`` and ``attachment://`` images pointing at the CDN."""
    result: dict[str, Any] = {"type": "rich", **embed}
    by_name = {a["filename"]: a for a in attachments}
    for key in ("image", "thumbnail"):
        media = embed.get(key)
        url = (media or {}).get("url") or ""
        name = url.removeprefix("attachment://")
        if url.startswith("attachment://") and name in by_name:
            attachment = by_name[name]
            result[key] = {
                "url": attachment["url"],
                "proxy_url": attachment["proxy_url"],
                "width": attachment.get("width", 0),
                "height": attachment.get("height", 0),
                "content_type": attachment["content_type"],
                "flags": 0,
            }
    return result


def _mentions(
    state: FakeState, message: dict[str, Any], allowed: Mapping[str, Any] | None, default_parse: Sequence[str]
) -> None:
    content = message["content"]
    parse = default_parse if allowed is None else allowed.get("parse") or []
    allowed_users = {str(u) for u in (allowed or {}).get("users") or []}
    allowed_roles = {str(r) for r in (allowed or {}).get("roles") or []}
    user_ids = [u for u in dict.fromkeys(USER_MENTION.findall(content)) if "users" in parse or u in allowed_users]
    message["mentions"] = [state.users[int(u)] for u in user_ids if int(u) in state.users]
    role_ids = dict.fromkeys(ROLE_MENTION.findall(content))
    message["mention_roles"] = [r for r in role_ids if "roles" in parse or r in allowed_roles]
    message["mention_everyone"] = "everyone" in parse and ("@everyone" in content or "@here" in content)
