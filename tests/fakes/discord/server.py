"""``FakeDiscord``: one aiohttp app on 127.0.0.1 serving REST under ``/api/v10``, the gateway at ``/gateway`` and
a CDN at ``/cdn`` (and ``/media`` for proxy urls), driven by the real discord.py client (discord.md §5).

Point discord.py at it with ``discord.http.Route.BASE = fake.api_base`` (an ``AutoShardedBot`` then finds the
gateway through ``GET /gateway/bot``; a plain ``Client`` also needs ``DiscordWebSocket.DEFAULT_GATEWAY``).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from typing_extensions import Unpack

from tests.fakes.discord.errors import ApiError, error_body
from tests.fakes.discord.gateway import RECONNECT, FakeGateway, GatewaySession
from tests.fakes.discord.interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    InteractionBuilder,
    InvocationKwargs,
)
from tests.fakes.discord.limits import Problem
from tests.fakes.discord.monetization import CONSUMABLE, Monetization
from tests.fakes.discord.openapi import SpecIndex, load_spec
from tests.fakes.discord.ratelimits import RateLimiter
from tests.fakes.discord.recording import RecordedRequest, RequestLog, read_body
from tests.fakes.discord.rest import Reply, RestApi, RestSettings
from tests.fakes.discord.state import FakeChannel, FakeGuild, FakeState, InteractionRecord

API_PREFIX = "/api/v10"
DEFAULT_SPEC_PATH = Path(__file__).resolve().parents[3].parent / "shared" / "discord-api-spec" / "openapi.json"
DEFAULT_APPLICATION_ID = 1_234_567_890_123_456_789
DEFAULT_BOT_USER_ID = DEFAULT_APPLICATION_ID
DEFAULT_USER_ID = 1_200_000_000_000_000_100
DEFAULT_GUILD_ID = 1_200_000_000_000_000_200
DEFAULT_CHANNEL_ID = 1_200_000_000_000_000_300
_TOKEN_IN_PATH = re.compile(r"^/(?:interactions/\d+|webhooks/\d+)/([^/]+)")


@dataclass
class FailRule:
    """A scripted error answer for the next ``times`` requests matching ``method`` and ``path`` (full match)."""

    method: str
    path: re.Pattern[str]
    status: int
    retry_after: float
    code: int | None
    times: int
    json: dict[str, Any] | None
    via: bool

    def reply(self) -> Reply:
        if self.status != 429:
            return Reply(self.status, self.json or error_body(self.status, self.code))
        body = self.json or {"message": "You are being rate limited.", "retry_after": self.retry_after, "global": False}
        if self.code is not None:
            body.setdefault("code", self.code)
        headers = {
            "Retry-After": str(math.ceil(self.retry_after)),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
            "X-RateLimit-Bucket": "fakebucket0000000000000000000000",
            "X-RateLimit-Scope": "user",
        }
        if self.via:
            headers["Via"] = "1.1 google"
        return Reply(429, body, headers)


class FakeDiscord:
    """An in-process Discord for the real discord.py client. Use ``async with FakeDiscord() as fake:``.

    - ``spec_path``: Discord's OpenAPI spec; request bodies are validated against it when the file exists
      (``None`` turns spec validation off). Limits of ``limits.py`` are always checked.
    - ``token`` is the only bot token accepted; ``application_id``/``bot_user_id`` identify the bot.
    - ``rate_limits=True`` enforces Discord's rate limits (``ratelimits.py``: per-route buckets with their headers,
      50 requests/s globally for bot-token routes); ``rate_limiter.refused`` lists the 429s it gave.
    - A default user (``default_user_id``), guild (``default_guild_id``) and text channel
      (``default_channel_id``) exist; payload builders use them unless told otherwise.
    """

    def __init__(
        self,
        *,
        spec_path: Path | None = DEFAULT_SPEC_PATH,
        application_id: int = DEFAULT_APPLICATION_ID,
        bot_user_id: int = DEFAULT_BOT_USER_ID,
        token: str = "fake-bot-token",
        shard_count: int = 1,
        rate_limits: bool = False,
    ) -> None:
        self.token = token
        self.rate_limiter: RateLimiter | None = RateLimiter() if rate_limits else None
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.clock_offset = timedelta()
        self.state = FakeState(application_id=application_id, bot_user_id=bot_user_id, clock=self.now)
        self.default_user_id = int(self.state.add_user("alice", user_id=DEFAULT_USER_ID, global_name="Alice")["id"])
        self.default_guild_id = self.state.add_guild(
            "Test Guild", guild_id=DEFAULT_GUILD_ID, owner_id=DEFAULT_USER_ID
        ).id
        self.default_channel_id = self.state.add_channel(DEFAULT_GUILD_ID, "general", channel_id=DEFAULT_CHANNEL_ID).id
        self.builder = InteractionBuilder(
            self.state, default_user_id=self.default_user_id, default_guild_id=self.default_guild_id
        )
        self.spec: SpecIndex | None = load_spec(spec_path) if spec_path is not None and spec_path.exists() else None
        self.settings = RestSettings(token=token, shard_count=shard_count)
        self.rest = RestApi(self.state, self.settings, self._report, self.spec)
        self.gateway = FakeGateway(token=lambda: self.token, ready_payload=self._ready_payload, on_ready=self._on_ready)
        self.ready = asyncio.Event()
        self.violations: list[str] = []
        self.cdn_requests: list[str] = []
        self._log = RequestLog()
        self._fail_rules: list[FailRule] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -------------------------------------------------------------------------------------------- lifecycle
    async def start(self) -> FakeDiscord:
        """Listen on an ephemeral port of 127.0.0.1."""
        app = web.Application(client_max_size=256 * 1024**2)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/cdn/{tail:.+}", self._serve_cdn)
        app.router.add_get("/media/{tail:.+}", self._serve_cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._serve_api)
        app.router.add_route("*", "/{tail:.*}", self._serve_unknown)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.state.root_url = self.root_url
        self.settings.gateway_url = self.gateway_url
        return self

    async def close(self) -> None:
        """Close gateway websockets (1001 going away) and stop listening."""
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return self.root_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The websocket URL (``GET /gateway/bot`` answers it; a plain Client needs it as DEFAULT_GATEWAY)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -------------------------------------------------------------------------------------------- time
    def now(self) -> datetime:
        """The fake's clock: real UTC time plus ``clock_offset`` (token expiry and the 3 s window use it)."""
        return datetime.now(UTC) + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward, e.g. ``advance(15 * 60)`` to let interaction tokens expire."""
        self.clock_offset += timedelta(seconds=seconds)

    def new_snowflake(self, at: datetime | None = None) -> int:
        """A unique snowflake whose timestamp is ``at`` (default: the fake's now)."""
        return self.state.new_id(at)

    # -------------------------------------------------------------------------------------------- the world
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every REST request so far, in arrival order."""
        return self._log.requests

    @property
    def messages(self) -> dict[int, dict[str, Any]]:
        """Message id → current message object (edits update it in place, deletes remove it)."""
        return self.state.messages

    @property
    def commands(self) -> dict[int | None, list[dict[str, Any]]]:
        """Synced commands: ``None`` → global list, guild id → that guild's list."""
        return self.state.commands

    def add_user(self, username: str, *, user_id: int | None = None, global_name: str | None = None) -> dict[str, Any]:
        """A user who can invoke commands, be mentioned, or get a DM; returns the user object."""
        return self.state.add_user(username, user_id=user_id, global_name=global_name)

    def add_guild(
        self, name: str, *, guild_id: int | None = None, premium_tier: int = 0, bot_member: bool = True
    ) -> FakeGuild:
        """A guild; ``bot_member=False`` = the app is only user-installed there (channel routes answer 403)."""
        return self.state.add_guild(
            name, guild_id=guild_id, owner_id=self.default_user_id, premium_tier=premium_tier, bot_member=bot_member
        )

    def add_role(self, guild_id: int, name: str, *, role_id: int | None = None, permissions: int = 0) -> dict[str, Any]:
        return self.state.add_role(guild_id, name, role_id=role_id, permissions=permissions)

    def add_channel(
        self,
        guild_id: int | None,
        name: str | None = "channel",
        *,
        channel_id: int | None = None,
        channel_type: int = 0,
        nsfw: bool = False,
        bot_access: bool = True,
    ) -> FakeChannel:
        """A guild channel (type 0 text by default); ``bot_access=False`` makes bot-token routes answer 403."""
        return self.state.add_channel(
            guild_id, name, channel_id=channel_id, channel_type=channel_type, nsfw=nsfw, bot_access=bot_access
        )

    def dm_channel(self, user_id: int) -> FakeChannel:
        """The bot's DM channel with ``user_id`` (what ``POST /users/@me/channels`` returns)."""
        return self.state.dm_channel(user_id)

    def add_message(self, channel_id: int, content: str, *, author_id: int | None = None) -> dict[str, Any]:
        """A message posted by someone else (default: the default user) — the bot may not edit it (403 50005)."""
        message_id = self.state.new_id()
        message = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "content": content,
            "author": self.state.users[author_id or self.default_user_id],
            "attachments": [],
            "embeds": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "timestamp": self.state.now_iso(),
            "edited_timestamp": None,
            "flags": 0,
            "components": [],
            "pinned": False,
            "tts": False,
        }
        self.state.messages[message_id] = message
        return message

    def add_cdn_file(self, filename: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        """Serve ``data`` and return a Discord attachment object for it (use it as an ATTACHMENT option value).

        ``content_type`` defaults to what the extension (or Pillow) says; images get ``width``/``height``.
        """
        return self.state.store_file(
            filename, data, content_type, folder=f"ephemeral-attachments/{self.application_id}", ephemeral=True
        )

    # -------------------------------------------------------------------------------------------- payloads
    def slash_command(
        self,
        name: str,
        options: Sequence[Mapping[str, Any]] | Mapping[str, Any] = (),
        *,
        attachments: Sequence[Mapping[str, Any]] = (),
        subcommand: str | None = None,
        subcommand_group: str | None = None,
        **context: Unpack[InvocationKwargs],
    ) -> dict[str, Any]:
        """An APPLICATION_COMMAND interaction for ``/name``.

        ``options`` is a dict ``{"prompt": "a cat", "seed": 42, "image": fake.add_cdn_file(...)}`` (types are
        inferred: str 3, int 4, bool 5, float 10, attachment dict 11, ``UserOption``/``RoleOption``/
        ``ChannelOption`` 6/8/7 with ``data.resolved``) or a raw list of option dicts.
        ``context`` takes ``InvocationKwargs``: ``user_id, guild_id`` (None = DM with the bot; ``context=2`` for
        a private channel), ``channel_id, member_permissions, roles, created_at, context, channel_type,
        nsfw_channel, attachment_size_limit, locale, app_permissions``.
        """
        how = self.builder.invocation(**context)
        data = self.builder.command_data(
            name, options, how, attachments=attachments, subcommand=subcommand, subcommand_group=subcommand_group
        )
        return self.builder.envelope(APPLICATION_COMMAND, data, how)

    def autocomplete(
        self,
        name: str,
        options: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        focused: str,
        *,
        subcommand: str | None = None,
        subcommand_group: str | None = None,
        **context: Unpack[InvocationKwargs],
    ) -> dict[str, Any]:
        """An APPLICATION_COMMAND_AUTOCOMPLETE interaction; ``focused`` names the option being typed."""
        how = self.builder.invocation(**context)
        data = self.builder.command_data(
            name, options, how, subcommand=subcommand, subcommand_group=subcommand_group, focused=focused
        )
        return self.builder.envelope(AUTOCOMPLETE, data, how)

    def button_click(self, custom_id: str, message_id: int, **context: Unpack[InvocationKwargs]) -> dict[str, Any]:
        """A MESSAGE_COMPONENT click on a button of ``self.messages[message_id]`` (the message is included)."""
        return self._component(custom_id, message_id, 2, None, context)

    def select_menu(
        self,
        custom_id: str,
        message_id: int,
        values: Sequence[str],
        *,
        component_type: int = 3,
        **context: Unpack[InvocationKwargs],
    ) -> dict[str, Any]:
        """A MESSAGE_COMPONENT choice in a select menu of ``self.messages[message_id]``."""
        return self._component(custom_id, message_id, component_type, values, context)

    def _component(
        self, custom_id: str, message_id: int, kind: int, values: Sequence[str] | None, context: InvocationKwargs
    ) -> dict[str, Any]:
        message = self.builder.message_for(message_id)
        context.setdefault("channel_id", int(message["channel_id"]))
        how = self.builder.invocation(**context)
        payload = self.builder.envelope(MESSAGE_COMPONENT, self.builder.component_data(custom_id, kind, values), how)
        payload["message"] = message
        return payload

    def modal_submit(
        self,
        custom_id: str,
        values: Mapping[str, str],
        message_id: int | None = None,
        **context: Unpack[InvocationKwargs],
    ) -> dict[str, Any]:
        """A MODAL_SUBMIT with text-input ``values`` by custom_id (from a component's message if ``message_id``)."""
        message = self.builder.message_for(message_id) if message_id is not None else None
        if message is not None:
            context.setdefault("channel_id", int(message["channel_id"]))
        how = self.builder.invocation(**context)
        payload = self.builder.envelope(MODAL_SUBMIT, self.builder.modal_data(custom_id, values), how)
        if message is not None:
            payload["message"] = message
        return payload

    # -------------------------------------------------------------------------------------------- premium apps
    @property
    def monetization(self) -> Monetization:
        """The application's SKUs and entitlements (``consume_calls``: every consume request, in order)."""
        return self.state.monetization

    def add_sku(self, name: str, *, sku_id: int | None = None, sku_type: int = CONSUMABLE) -> int:
        """A SKU of the application (a consumable by default); its id."""
        return int(self.state.monetization.add_sku(name, sku_id=sku_id, sku_type=sku_type)["id"])

    def entitle(self, user_id: int, sku_id: int) -> dict[str, Any]:
        """A purchase Discord recorded but the bot was not told of (it was down): no event is sent."""
        return self.state.monetization.new_entitlement(user_id, sku_id)

    async def purchase(self, user_id: int, sku_id: int, *, timeout: float = 5.0) -> dict[str, Any]:
        """A user buys ``sku_id``: the entitlement, then ``ENTITLEMENT_CREATE`` to shard 0."""
        entitlement = self.entitle(user_id, sku_id)
        await self.dispatch_event("ENTITLEMENT_CREATE", dict(entitlement), timeout=timeout)
        return entitlement

    # -------------------------------------------------------------------------------------------- gateway
    async def dispatch(self, payload: dict[str, Any], *, timeout: float = 5.0) -> InteractionRecord:
        """Send ``payload`` as INTERACTION_CREATE to the shard owning its guild; its token becomes usable."""
        record = self.state.register_interaction(payload)
        guild_id = int(payload["guild_id"]) if payload.get("guild_id") else None
        await self.dispatch_event("INTERACTION_CREATE", payload, guild_id=guild_id, timeout=timeout)
        return record

    async def dispatch_event(
        self, event: str, data: Any, *, guild_id: int | None = None, timeout: float = 5.0
    ) -> GatewaySession:
        """Send any dispatch event (op 0) once a session is ready."""
        await asyncio.wait_for(self.ready.wait(), timeout)
        session = self.gateway.session_for(guild_id)
        await session.send_dispatch(event, data)
        return session

    async def dispatch_and_wait(
        self, payload: dict[str, Any], predicate: Callable[[RecordedRequest], bool], *, timeout: float = 5.0
    ) -> RecordedRequest:
        """``dispatch`` then ``wait_for`` a request sent after it."""
        start = len(self.requests)
        await self.dispatch(payload, timeout=timeout)
        return await self.wait_for(predicate, timeout=timeout, start=start)

    async def reconnect_gateway(self) -> None:
        """Send RECONNECT (op 7): discord.py reconnects to ``resume_gateway_url`` and RESUMEs."""
        await self.gateway.send_op(RECONNECT)

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send INVALID_SESSION (op 9): ``resumable=False`` makes discord.py IDENTIFY again (to DEFAULT_GATEWAY)."""
        await self.gateway.invalidate(resumable=resumable)

    def _ready_payload(self, session: GatewaySession) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.state.bot_user,
            "guilds": [],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 0},
        }

    def _on_ready(self, session: GatewaySession) -> None:
        self.settings.session_start_remaining -= 1
        self.ready.set()

    # -------------------------------------------------------------------------------------------- requests
    async def wait_for(
        self, predicate: Callable[[RecordedRequest], bool], *, timeout: float = 5.0, start: int = 0
    ) -> RecordedRequest:
        """The first answered request (index ≥ ``start``) accepted by ``predicate``, already recorded or future.

        Raises ``WaitTimeout`` (an AssertionError) listing the recent requests and violations.
        """
        return await self._log.wait_for(predicate, timeout=timeout, start=start, violations=self.violations)

    def requests_for(self, interaction_or_token: Mapping[str, Any] | str) -> list[RecordedRequest]:
        """Everything sent with that interaction's token (its callback and webhook routes), in order."""
        token = interaction_or_token if isinstance(interaction_or_token, str) else interaction_or_token["token"]
        return [r for r in self.requests if r.interaction_token == token]

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Requests whose method matches and whose path fully matches ``path_regex``."""
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.fullmatch(r.path)]

    def interaction(self, interaction_or_token: Mapping[str, Any] | str) -> InteractionRecord:
        """The fake's record of a dispatched interaction (callback type, original message id, followups)."""
        token = interaction_or_token if isinstance(interaction_or_token, str) else interaction_or_token["token"]
        return self.state.interactions[token]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 429,
        retry_after: float = 0.1,
        code: int | None = None,
        times: int = 1,
        json: dict[str, Any] | None = None,
        via: bool = True,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` before any other processing.

        429s carry ``{"message", "retry_after", "global": false}``, X-RateLimit-* headers and (``via=True``) a
        ``Via`` header — without it discord.py treats the 429 as a Cloudflare ban and raises at once.
        Other statuses answer ``json`` or ``{"message": ..., "code": code}`` (e.g. 401 + code 50027).
        Note discord.py retries 500/502/504 after 1 + 2·attempt seconds.
        """
        pattern = re.compile(path_regex)
        self._fail_rules.append(FailRule(method.upper(), pattern, status, retry_after, code, times, json, via))

    def expire_token(self, token: str) -> None:
        """From now on every callback/webhook request with ``token`` answers 401 ``Invalid Webhook Token``."""
        self.state.expired_tokens.add(token)
        if token in self.state.interactions:
            self.state.interactions[token].expired = True

    # -------------------------------------------------------------------------------------------- serving
    def _report(self, request: RecordedRequest, problem: Problem) -> None:
        text = f"{request.method} {request.path} (#{request.index}): {problem.describe()}"
        request.violations.append(text)
        self.violations.append(text)

    def _take_fail_rule(self, method: str, path: str) -> FailRule | None:
        for rule in self._fail_rules:
            if rule.method == method and rule.path.fullmatch(path):
                rule.times -= 1
                if rule.times <= 0:
                    self._fail_rules.remove(rule)
                return rule
        return None

    async def _serve_api(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        payload, files, form = await read_body(request)
        authorization = request.headers.get("Authorization")
        auth = "none" if authorization is None else "bot" if authorization == f"Bot {self.token}" else "invalid"
        token_match = _TOKEN_IN_PATH.match(path)
        recorded = RecordedRequest(
            index=len(self.requests),
            method=request.method,
            path=path,
            query=dict(request.query),
            auth=auth,
            headers=dict(request.headers),
            json=payload,
            files=files,
            form=form,
            received_at=self.now(),
            interaction_token=token_match.group(1) if token_match else None,
        )
        self._log.add(recorded)
        limiter = self.rate_limiter
        verdict = None if limiter is None else limiter.check(request.method, path, bot_auth=auth == "bot")
        try:
            if verdict is not None and verdict.refused:
                reply = Reply(429, verdict.body)
            elif (rule := self._take_fail_rule(request.method, path)) is not None:
                reply = rule.reply()
            else:
                reply = await self.rest.process(recorded)
        except ApiError as exc:
            reply = Reply(exc.status, exc.body)
        except Exception as exc:  # a bug in the fake must fail the test, not make discord.py retry a 500
            self._report(recorded, Problem("", f"the fake crashed: {exc!r}", source="fake"))
            reply = Reply(400, {"message": f"fake discord crashed: {exc!r}", "code": 0})
        if verdict is not None:
            reply.headers = {**verdict.headers, **reply.headers}
        recorded.status, recorded.response = reply.status, reply.body
        self._log.answered(recorded)
        if reply.body is None:
            return web.Response(status=204 if reply.status == 200 else reply.status, headers=reply.headers)
        return web.Response(
            status=reply.status,
            body=json.dumps(reply.body).encode(),
            content_type="application/json",
            headers=reply.headers,
        )

    async def _serve_unknown(self, request: web.Request) -> web.Response:
        self.violations.append(f"{request.method} {request.path}: route: unknown route outside {API_PREFIX}")
        return web.Response(status=404, body=json.dumps(error_body(404)).encode(), content_type="application/json")

    async def _serve_cdn(self, request: web.Request) -> web.Response:
        self.cdn_requests.append(request.path)
        parts = request.path.split("/")
        stored = self.state.cdn.get(int(parts[-2])) if len(parts) >= 3 and parts[-2].isdigit() else None
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, content_type=stored.content_type)
