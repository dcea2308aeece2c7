"""The REST routes under ``/api/v10``: what each answers, which auth it needs, and which limits its body must meet.

Handlers raise ``ApiError`` for Discord error answers. ``RestApi.process`` runs one request through
auth → interaction-token checks → body checks (limits + OpenAPI) → handler.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from tests.fakes.discord import errors, limits
from tests.fakes.discord.errors import ApiError
from tests.fakes.discord.interactions import APPLICATION_COMMAND, AUTOCOMPLETE, MESSAGE_COMPONENT, MODAL_SUBMIT
from tests.fakes.discord.limits import EPHEMERAL, Problem
from tests.fakes.discord.messages import LOADING, AttachmentError, edit_message, new_message
from tests.fakes.discord.monetization import Monetization
from tests.fakes.discord.openapi import SpecIndex
from tests.fakes.discord.recording import RecordedRequest
from tests.fakes.discord.state import FakeState, InteractionRecord

Auth = Literal["bot", "token", "none"]
TRUTHY = {"1", "true", "True"}


@dataclass
class Reply:
    """A handler's answer; ``body=None`` means 204 No Content."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One request being served: the record, the path parameters, and its interaction for token routes."""

    request: RecordedRequest
    params: dict[str, str]
    interaction: InteractionRecord | None = None

    @property
    def body(self) -> Any:
        return self.request.json if self.request.json is not None else {}

    def int_param(self, name: str) -> int:
        return int(self.params[name])


Handler = Callable[[Call], Awaitable[Reply]]
Checker = Callable[[Call], list[Problem]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: Auth
    check: Checker | None = None


@dataclass
class RestSettings:
    """Things the routes answer with that the server only knows once it listens."""

    token: str
    gateway_url: str = ""
    shard_count: int = 1
    callback_deadline_s: float = 3.0
    session_start_remaining: int = 1000


NONCE_WINDOW_S = 300.0  # "a few minutes"


def _nested_errors(problems: list[Problem]) -> dict[str, Any]:
    """Discord's ``errors`` object: nested by body location, leaves ``{"_errors": [{code, message}]}``."""
    root: dict[str, Any] = {}
    for problem in problems:
        node = root
        for part in filter(None, re.split(r"[.\[\]]+", problem.where)):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": problem.message})
    return root


class RestApi:
    """Route table and handlers over a ``FakeState``. ``report`` records a problem as a violation."""

    def __init__(
        self,
        state: FakeState,
        settings: RestSettings,
        report: Callable[[RecordedRequest, Problem], None],
        spec: SpecIndex | None,
    ) -> None:
        self.state = state
        self.settings = settings
        self.report = report
        self.spec = spec
        self.routes = self._routes()

    def _routes(self) -> list[Route]:
        app_commands = r"/applications/(?P<app>\d+)/commands"
        guild_commands = r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands"
        callback = r"/interactions/(?P<interaction>\d+)/(?P<token>[^/]+)/callback"
        webhook = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        webhook_message = webhook + r"/messages/(?P<message>@original|\d+)"
        channel = r"/channels/(?P<channel>\d+)"
        channel_message = channel + r"/messages/(?P<message>\d+)"
        entitlements = r"/applications/(?P<app>\d+)/entitlements"
        entitlement = entitlements + r"/(?P<entitlement>\d+)"
        table: list[tuple[str, str, Handler, Auth, Checker | None]] = [
            ("GET", "/users/@me", self.get_me, "bot", None),
            ("POST", "/users/@me/channels", self.create_dm, "bot", None),
            ("GET", r"/users/(?P<user>\d+)", self.get_user, "bot", None),
            ("GET", "/oauth2/applications/@me", self.get_application, "bot", None),
            ("GET", "/gateway", self.get_gateway, "none", None),
            ("GET", "/gateway/bot", self.get_gateway_bot, "bot", None),
            ("GET", app_commands, self.get_commands, "bot", None),
            ("PUT", app_commands, self.put_commands, "bot", self.check_commands),
            ("GET", guild_commands, self.get_commands, "bot", None),
            ("PUT", guild_commands, self.put_commands, "bot", self.check_commands),
            ("POST", callback, self.callback, "token", self.check_callback),
            ("POST", webhook, self.followup, "token", self.check_webhook_message),
            ("GET", webhook_message, self.get_webhook_message, "token", None),
            ("PATCH", webhook_message, self.edit_webhook_message, "token", self.check_webhook_message),
            ("DELETE", webhook_message, self.delete_webhook_message, "token", None),
            ("GET", channel, self.get_channel, "bot", None),
            ("POST", channel + "/messages", self.create_channel_message, "bot", self.check_channel_message),
            ("GET", channel_message, self.get_channel_message, "bot", None),
            ("PATCH", channel_message, self.edit_channel_message, "bot", self.check_channel_message),
            ("DELETE", channel_message, self.delete_channel_message, "bot", None),
            ("GET", r"/applications/(?P<app>\d+)/skus", self.get_skus, "bot", None),
            ("GET", entitlements, self.get_entitlements, "bot", None),
            ("POST", entitlements, self.create_entitlement, "bot", None),
            ("GET", entitlement, self.get_entitlement, "bot", None),
            ("DELETE", entitlement, self.delete_entitlement, "bot", None),
            ("POST", entitlement + "/consume", self.consume_entitlement, "bot", None),
        ]
        return [Route(m, re.compile(p), h, a, c) for m, p, h, a, c in table]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    # ------------------------------------------------------------------------------------------- pipeline
    async def process(self, request: RecordedRequest) -> Reply:
        matched = self.match(request.method, request.path)
        if matched is None:
            self.report(request, Problem("", f"unknown route {request.method} {request.path}", source="route"))
            raise ApiError(404, 0, "404: Not Found")
        route, params = matched
        call = Call(request, params)
        if route.auth == "bot" and request.auth != "bot":
            raise ApiError(401, 0, "401: Unauthorized")
        if route.auth == "token":
            call.interaction = self._interaction_for(call)
        self._check_upload_sizes(call)
        problems = route.check(call) if route.check else []
        if self.spec is not None:
            problems += self.spec.validate_request(
                request.method, request.path, request.json, has_files=bool(request.files)
            )
        for problem in problems:
            self.report(request, problem)
        rejected = [p for p in problems if p.rejects]
        if rejected:
            raise ApiError(400, errors.INVALID_FORM_BODY, errors=_nested_errors(rejected))
        try:
            return await route.handler(call)
        except AttachmentError as exc:
            for problem in exc.problems:
                self.report(request, problem)
            raise ApiError(400, errors.INVALID_FORM_BODY, errors=_nested_errors(exc.problems)) from None

    def _interaction_for(self, call: Call) -> InteractionRecord:
        """Resolve the interaction token in the path; expired or expire_token()-ed tokens answer 401 50027."""
        is_callback = "interaction" in call.params
        if not is_callback and call.int_param("app") != self.state.application_id:
            raise ApiError(404, errors.UNKNOWN_WEBHOOK)
        token = call.params["token"]
        record = self.state.interactions.get(token)
        unknown = errors.UNKNOWN_INTERACTION if is_callback else errors.UNKNOWN_WEBHOOK
        if record is None or (is_callback and record.id != call.int_param("interaction")):
            if token in self.state.expired_tokens:
                raise ApiError(401, errors.INVALID_WEBHOOK_TOKEN)
            raise ApiError(404, unknown)
        if record.expired or token in self.state.expired_tokens or self.state.clock() >= record.expires_at:
            raise ApiError(401, errors.INVALID_WEBHOOK_TOKEN)
        if is_callback:
            self._check_callback_allowed(call, record)
        elif record.callback_type is None:
            self.report(call.request, Problem("", "webhook used before the interaction was acknowledged"))
            raise ApiError(404, errors.UNKNOWN_WEBHOOK)
        return record

    def _check_callback_allowed(self, call: Call, record: InteractionRecord) -> None:
        if record.callback_type is not None:
            self.report(call.request, Problem("", f"interaction {record.id} was already acknowledged"))
            raise ApiError(400, errors.ALREADY_ACKNOWLEDGED)
        late = self.state.clock() - record.created_at
        if late > timedelta(seconds=self.settings.callback_deadline_s):
            message = f"initial response {late.total_seconds():.2f}s after the interaction (limit 3s)"
            self.report(call.request, Problem("", message, source="deadline"))
            raise ApiError(404, errors.UNKNOWN_INTERACTION)

    def _check_upload_sizes(self, call: Call) -> None:
        if not call.request.files:
            return
        if call.interaction is not None:
            limit = call.interaction.attachment_size_limit
        elif "channel" in call.params:
            limit = self.state.filesize_limit_for(call.int_param("channel"))
        else:
            return
        too_big = [f for f in call.request.files if len(f.data) > limit]
        if too_big:
            names = ", ".join(f"{f.filename} ({len(f.data)} bytes)" for f in too_big)
            self.report(call.request, Problem("files", f"{names} exceed the {limit}-byte upload limit"))
            raise ApiError(413, errors.REQUEST_TOO_LARGE)

    # ------------------------------------------------------------------------------------------- checks
    def _filenames(self, call: Call, body: Mapping[str, Any], existing: Mapping[str, Any] | None) -> list[str]:
        names = [a.get("filename") or "" for a in body.get("attachments") or []]
        names += [f.filename for f in call.request.files]
        if existing is not None and "attachments" not in body:
            names += [a["filename"] for a in existing["attachments"]]
        return names

    def _message_checks(self, call: Call, body: Any, prefix: str = "") -> list[Problem]:
        if not isinstance(body, Mapping):
            return [Problem("", "body must be a JSON object")]
        files = len(call.request.files)
        existing = self._existing_message(call)
        return limits.check_message(body, file_count=files, prefix=prefix) + limits.check_embed_attachment_refs(
            body, self._filenames(call, body, existing), prefix=prefix
        )

    def _existing_message(self, call: Call) -> dict[str, Any] | None:
        target = call.params.get("message")
        if target == "@original" and call.interaction is not None:
            target = str(call.interaction.original_message_id or "")
        return self.state.messages.get(int(target)) if target and target.isdigit() else None

    def check_callback(self, call: Call) -> list[Problem]:
        body = call.body
        if not isinstance(body, Mapping):
            return [Problem("", "body must be a JSON object")]
        assert call.interaction is not None
        problems = limits.check_callback(body, file_count=len(call.request.files))
        problems += self._callback_type_problems(body.get("type"), call.interaction)
        if body.get("type") in (4, 7):
            data = body.get("data") or {}
            problems += limits.check_embed_attachment_refs(data, self._filenames(call, data, None), prefix="data")
        return problems

    @staticmethod
    def _callback_type_problems(kind: Any, record: InteractionRecord) -> list[Problem]:
        valid = {
            APPLICATION_COMMAND: {4, 5, 9, 10, 12},
            MESSAGE_COMPONENT: {4, 5, 6, 7, 9, 10, 12},
            AUTOCOMPLETE: {8},
            MODAL_SUBMIT: {4, 5, 6, 7, 10, 12} if record.component_message_id else {4, 5, 10, 12},
        }.get(record.type, set())
        if kind in valid:
            return []
        return [Problem("type", f"callback type {kind} is not valid for interaction type {record.type}")]

    def check_webhook_message(self, call: Call) -> list[Problem]:
        return self._message_checks(call, call.body)

    def check_channel_message(self, call: Call) -> list[Problem]:
        problems = self._message_checks(call, call.body)
        if isinstance(call.body, Mapping):
            problems += limits.check_mention_policy(call.body)
        return problems

    def check_commands(self, call: Call) -> list[Problem]:
        body = call.request.json
        if not isinstance(body, list):
            return [Problem("", "bulk overwrite takes a JSON array of commands")]
        return limits.check_commands(body, global_scope="guild" not in call.params)

    # ------------------------------------------------------------------------------------------- premium apps
    def _monetization(self, call: Call) -> Monetization:
        if call.int_param("app") != self.state.application_id:
            raise ApiError(403, errors.MISSING_ACCESS)
        return self.state.monetization

    async def get_skus(self, call: Call) -> Reply:
        return Reply(body=list(self._monetization(call).skus.values()))

    async def get_entitlements(self, call: Call) -> Reply:
        return Reply(body=self._monetization(call).list_entitlements(call.request.query))

    async def create_entitlement(self, call: Call) -> Reply:
        return Reply(body=self._monetization(call).create_test_entitlement(call.body))

    async def get_entitlement(self, call: Call) -> Reply:
        return Reply(body=self._monetization(call).entitlement(call.int_param("entitlement")))

    async def delete_entitlement(self, call: Call) -> Reply:
        self._monetization(call).delete(call.int_param("entitlement"))
        return Reply(204)

    async def consume_entitlement(self, call: Call) -> Reply:
        self._monetization(call).consume(call.int_param("entitlement"))
        return Reply(204)

    # ------------------------------------------------------------------------------------------- users, app
    async def get_me(self, call: Call) -> Reply:
        extra = {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US", "premium_type": 0}
        return Reply(body={**self.state.bot_user, **extra})

    async def get_user(self, call: Call) -> Reply:
        user = self.state.users.get(call.int_param("user"))
        if user is None:
            raise ApiError(404, errors.UNKNOWN_USER)
        return Reply(body=user)

    async def create_dm(self, call: Call) -> Reply:
        recipient = call.body.get("recipient_id") if isinstance(call.body, Mapping) else None
        if recipient is None or int(recipient) not in self.state.users:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        channel = self.state.dm_channel(int(recipient))
        return Reply(body=self.state.channel_dict(channel.id))

    async def get_application(self, call: Call) -> Reply:
        state = self.state
        owner = next((u for uid, u in state.users.items() if uid != state.bot_user_id), state.bot_user)
        return Reply(
            body={
                "id": str(state.application_id),
                "name": state.bot_user["username"],
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 0,
                "flags_new": "0",
                "owner": owner,
                "team": None,
                "bot": state.bot_user,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "approximate_guild_count": len(state.guilds),
                "approximate_user_install_count": 0,
                "approximate_user_authorization_count": 0,
                "explicit_content_filter": 0,
                "eligible_oauth2_scopes": [],
                "integration_types_config": {"0": {}, "1": {}},
                "hook": True,
            }
        )

    async def get_gateway(self, call: Call) -> Reply:
        return Reply(body={"url": self.settings.gateway_url})

    async def get_gateway_bot(self, call: Call) -> Reply:
        limit = {
            "total": 1000,
            "remaining": self.settings.session_start_remaining,
            "reset_after": 14_400_000,
            "max_concurrency": 1,
        }
        return Reply(
            body={"url": self.settings.gateway_url, "shards": self.settings.shard_count, "session_start_limit": limit}
        )

    # ------------------------------------------------------------------------------------------- commands
    def _command_scope(self, call: Call) -> int | None:
        if call.int_param("app") != self.state.application_id:
            raise ApiError(403, errors.MISSING_ACCESS)
        return int(call.params["guild"]) if "guild" in call.params else None

    async def get_commands(self, call: Call) -> Reply:
        return Reply(body=self.state.commands.get(self._command_scope(call), []))

    async def put_commands(self, call: Call) -> Reply:
        scope = self._command_scope(call)
        previous = {(c["name"], c["type"]): c["id"] for c in self.state.commands.get(scope, [])}
        stored = []
        for command in call.request.json or []:
            kind = command.get("type", 1) or 1
            permissions = command.get("default_member_permissions")
            stored.append(
                {
                    "id": previous.get((command["name"], kind)) or str(self.state.new_id()),
                    "application_id": str(self.state.application_id),
                    "version": str(self.state.new_id()),
                    "type": kind,
                    "name": command["name"],
                    "name_localizations": command.get("name_localizations"),
                    "description": command.get("description", ""),
                    "description_localizations": command.get("description_localizations"),
                    "default_member_permissions": None if permissions is None else str(permissions),
                    "dm_permission": command.get("dm_permission", True) if scope is None else None,
                    "contexts": command.get("contexts", [0, 1, 2]) if scope is None else None,
                    "integration_types": command.get("integration_types", [0]) if scope is None else None,
                    "options": command.get("options", []),
                    "nsfw": command.get("nsfw", False),
                    **({"guild_id": str(scope)} if scope is not None else {}),
                }
            )
        self.state.commands[scope] = stored
        return Reply(body=stored)

    # ------------------------------------------------------------------------------------------- interactions
    async def callback(self, call: Call) -> Reply:
        record = call.interaction
        assert record is not None
        body = call.body
        kind = body["type"]
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        if kind == 4:
            message = self._interaction_message(record, data, call)
            record.original_message_id = int(message["id"])
        elif kind == 5:
            flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
            message = self._interaction_message(record, {"flags": flags}, call, files=False)
            record.original_message_id = int(message["id"])
        elif kind in (6, 7) and record.component_message_id is not None:
            record.original_message_id = record.component_message_id
            if kind == 7:
                target = self.state.messages[record.component_message_id]
                message = edit_message(self.state, target, data, call.request.files, via_interaction=True)
        record.callback_type = kind
        if call.request.query.get("with_response") not in TRUTHY:
            return Reply(status=204)
        return Reply(body=self._callback_response(record, kind, message))

    def _interaction_message(
        self, record: InteractionRecord, data: Mapping[str, Any], call: Call, *, files: bool = True
    ) -> dict[str, Any]:
        if record.type == APPLICATION_COMMAND:
            message_type = 23 if record.payload["data"].get("type", 1) in (2, 3) else 20
        else:
            message_type = 0
        uploads = call.request.files if files else []
        return new_message(
            self.state,
            channel_id=record.channel_id,
            body=data,
            files=uploads,
            message_type=message_type,
            interaction=record,
        )

    @staticmethod
    def _callback_response(record: InteractionRecord, kind: int, message: dict[str, Any] | None) -> dict[str, Any]:
        interaction: dict[str, Any] = {"id": str(record.id), "type": record.type}
        if record.original_message_id is not None and kind in (4, 5, 7):
            interaction["response_message_id"] = str(record.original_message_id)
            interaction["response_message_loading"] = kind == 5
            interaction["response_message_ephemeral"] = bool(message and message["flags"] & EPHEMERAL)
        response: dict[str, Any] = {"interaction": interaction}
        if message is not None and kind in (4, 7):
            response["resource"] = {"type": kind, "message": message}
        return response

    def _webhook_target(self, call: Call) -> dict[str, Any]:
        record = call.interaction
        assert record is not None
        target = call.params["message"]
        message_id = record.original_message_id if target == "@original" else int(target)
        if message_id is None or not record.owns(message_id) or message_id not in self.state.messages:
            raise ApiError(404, errors.UNKNOWN_MESSAGE)
        return self.state.messages[message_id]

    async def get_webhook_message(self, call: Call) -> Reply:
        return Reply(body=self._webhook_target(call))

    async def edit_webhook_message(self, call: Call) -> Reply:
        message = self._webhook_target(call)
        return Reply(body=edit_message(self.state, message, call.body, call.request.files, via_interaction=True))

    async def delete_webhook_message(self, call: Call) -> Reply:
        message = self._webhook_target(call)
        del self.state.messages[int(message["id"])]
        return Reply(status=204)

    async def followup(self, call: Call) -> Reply:
        record = call.interaction
        assert record is not None
        original = self.state.messages.get(record.original_message_id or 0)
        if original is not None and original["flags"] & LOADING:
            self.report(
                call.request,
                Problem(
                    "",
                    "followup sent while the deferred response is loading: Discord turns it into an edit of "
                    "@original (deprecated); use edit_original_response",
                    source="policy",
                    rejects=False,
                ),
            )
            message = edit_message(self.state, original, call.body, call.request.files, via_interaction=True)
        else:
            message = new_message(
                self.state,
                channel_id=record.channel_id,
                body=call.body,
                files=call.request.files,
                interaction=record,
            )
            record.followup_ids.append(int(message["id"]))
        if call.request.query.get("wait") not in TRUTHY:
            return Reply(status=204)
        return Reply(body=message)

    # ------------------------------------------------------------------------------------------- channels
    def _channel(self, call: Call) -> int:
        channel = self.state.channels.get(call.int_param("channel"))
        if channel is None:
            raise ApiError(404, errors.UNKNOWN_CHANNEL)
        guild = self.state.guilds.get(channel.guild_id) if channel.guild_id else None
        if not channel.bot_access or (guild is not None and not guild.bot_member):
            raise ApiError(403, errors.MISSING_ACCESS)
        return channel.id

    def _channel_message(self, call: Call) -> dict[str, Any]:
        channel_id = self._channel(call)
        message = self.state.messages.get(call.int_param("message"))
        if message is None or int(message["channel_id"]) != channel_id or message["flags"] & EPHEMERAL:
            raise ApiError(404, errors.UNKNOWN_MESSAGE)
        return message

    async def get_channel(self, call: Call) -> Reply:
        return Reply(body=self.state.channel_dict(self._channel(call)))

    async def create_channel_message(self, call: Call) -> Reply:
        channel_id = self._channel(call)
        body = call.body if isinstance(call.body, dict) else {}
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord: the same author sending the same nonce in this channel within a few minutes gets the
            # message it already made back, and no second one is created.
            known = self.state.nonces.get((channel_id, str(nonce)))
            if known is not None and self.state.clock().timestamp() - known[1] < NONCE_WINDOW_S:
                existing = self.state.messages.get(known[0])
                if existing is not None:
                    return Reply(body=existing)
        message = new_message(self.state, channel_id=channel_id, body=call.body, files=call.request.files)
        if nonce is not None:
            message["nonce"] = nonce
            if body.get("enforce_nonce"):
                self.state.nonces[(channel_id, str(nonce))] = (int(message["id"]), self.state.clock().timestamp())
        return Reply(body=message)

    async def get_channel_message(self, call: Call) -> Reply:
        return Reply(body=self._channel_message(call))

    async def edit_channel_message(self, call: Call) -> Reply:
        message = self._channel_message(call)
        if int(message["author"]["id"]) != self.state.bot_user_id:
            raise ApiError(403, errors.CANNOT_EDIT_OTHERS_MESSAGE)
        return Reply(body=edit_message(self.state, message, call.body, call.request.files, via_interaction=False))

    async def delete_channel_message(self, call: Call) -> Reply:
        message = self._channel_message(call)
        del self.state.messages[int(message["id"])]
        return Reply(status=204)
