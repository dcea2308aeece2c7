"""Delivery, an outbox: every message of a job to send or edit is a leased ``message`` step in the database that
stays until Discord confirms it, and the completion ping is a ``ping`` step. Both run on the ``discord`` lane.

Paths, in order: the interaction token while it is valid (minus a margin), then a bot-token edit of the same
message, then (for results only) a new message in the channel, then the requester's DMs. Edits are coalesced per
job (one pending step, latest state wins): progress at most once per ``edit_min_interval_s`` (a place in line at
``queue_edit_interval_s``), final results first and at once. The job is read fresh before each send; the
confirmation is recorded with the version that was rendered, and if the job moved on meanwhile the step runs
again, so an older state never stays over a newer one. Transient errors (5xx, network, 429 after ``retry_after``)
are retried with capped exponential backoff and jitter, without a time limit; only permanent errors on every
path end a result as undeliverable, visibly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.http import handle_message_parameters
from discord.webhook.async_ import async_context

from bot.jobs.media_store import MediaStore
from bot.jobs.render import ACTIONS, RenderContext, Rendered, queue_place, render_job
from bot.server_settings.config import ServerConfig
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobRepository
from bot.storage.steps import Lease, LeaseLost, StepRepository
from providers.base import Kind

if TYPE_CHECKING:
    from bot.catalogue import Catalogue

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
DISCORD_LANE = "discord"
RETRY_BASE_S = 2.0
RETRY_CAP_S = 300.0

# Discord JSON error codes that decide the next path.
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
INVALID_WEBHOOK_TOKEN = 50027
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
CANNOT_DM = 50007


class PathFailed(Exception):
    """This path cannot deliver; try the next one. ``gone`` means the message itself no longer exists;
    ``token_dead`` that Discord refused the interaction token itself (it will not work again)."""

    def __init__(self, reason: str, *, gone: bool = False, token_dead: bool = False) -> None:
        super().__init__(reason)
        self.gone = gone
        self.token_dead = token_dead


class TransientFailure(Exception):
    """Discord could not take it right now (5xx, network, rate limit): try again later."""

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def nsfw_mode(job: JobRecord, config: ServerConfig, settings: Settings, *, in_dm: bool) -> str:
    if in_dm or not job.guild_id:
        return "spoiler"
    policy = config.nsfw_policy or settings.default_nsfw_policy
    if policy == "block":
        return "withhold"
    if policy == "spoiler":
        return "spoiler"
    return "show" if job.channel_nsfw else "withhold"


def _classify(exc: discord.HTTPException, path: str) -> PathFailed | TransientFailure:
    """What a Discord error means for the delivery path that got it. Only 401, Invalid Webhook Token (50027) and
    Unknown Webhook (10015) say the token is dead; any other refusal (a 400 for the body, a 413 for the files)
    is a failure of this attempt only, and the next path is tried with the token left as it is."""
    if exc.status == 401 or exc.code in (INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK):
        return PathFailed(f"{path}: token refused ({exc.status}/{exc.code})", token_dead=path == "token")
    if exc.code == UNKNOWN_MESSAGE:
        return PathFailed(f"{path}: message gone", gone=True)
    if exc.status == 403 or exc.code in (MISSING_ACCESS, MISSING_PERMISSIONS, CANNOT_DM):
        return PathFailed(f"{path}: forbidden ({exc.code})")
    if exc.status == 404:
        return PathFailed(f"{path}: not found ({exc.code})", gone=path != "token")
    if exc.status == 429 or exc.status >= 500:
        retry_after = getattr(exc, "retry_after", None)
        return TransientFailure(f"{path}: {exc.status}", retry_after_s=retry_after)
    return PathFailed(f"{path}: rejected ({exc.status}/{exc.code}): {exc.text[:200]}")


def nonce_for(job_id: int) -> str:
    """The nonce of every new message a job posts (Discord returns the message already made with it, for a few
    minutes, instead of making a second one: a resend after a crash posts nothing twice)."""
    return f"genbot-job-{job_id}"


NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


class Outbox:
    """The handlers of the ``message`` and ``ping`` steps (lane ``discord``)."""

    def __init__(
        self,
        *,
        client: discord.Client,
        database: Database,
        jobs: JobRepository,
        steps: StepRepository,
        media: MediaStore,
        settings: Settings,
        catalogue: Catalogue,
        server_settings: ServerSettingsService,
        wake: Callable[[str], None] = lambda lane: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._db = database
        self._jobs = jobs
        self._steps = steps
        self._media = media
        self._settings = settings
        self._catalogue = catalogue
        self._server_settings = server_settings
        self._wake = wake
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.sent: dict[str, int] = {"token": 0, "channel": 0, "new_message": 0, "dm": 0, "ping": 0}

    # ------------------------------------------------------------------ rendering
    async def position(self, job: JobRecord) -> int | None:
        """The job's place in the bot's own line (from the database), or None when it is not waiting."""
        if job.status != "queued":
            return None
        return await self._jobs.queue_position(job.id, job.provider)

    async def render(
        self, job: JobRecord, *, upload_limit: int | None = None, in_dm: bool = False, position: int | None = None
    ) -> Rendered:
        config = await self._server_settings.get(job.guild_id)
        entry = self._catalogue.get(job.model_key)
        actions = set(ACTIONS)
        if not any(config.allows_model(m.key) for m in self._catalogue.for_kind(Kind.IMAGE_EDIT)):
            actions.discard("edit")
        if not any(config.allows_model(m.key) for m in self._catalogue.for_kind(Kind.VIDEO)):
            actions.discard("animate")
        missing: set[int] = set()
        if job.status == "succeeded" and job.outputs_purged_at is None:
            missing = {o.idx for o in job.outputs if not await self._media.exists(o.path)}
        if position is None:
            position = await self.position(job)
        return render_job(
            job,
            RenderContext(
                now=self._clock(),
                media_root=self._media.root,
                position=position,
                typical_duration_s=entry.capabilities.typical_duration_s if entry else None,
                upload_limit=upload_limit or job.attachment_size_limit,
                nsfw_mode=nsfw_mode(job, config, self._settings, in_dm=in_dm),  # type: ignore[arg-type]
                actions=frozenset(actions),
                model_title=entry.title if entry else None,
                missing_outputs=frozenset(missing),
                retention_days=self._settings.output_retention_days,
            ),
        )

    # ------------------------------------------------------------------ the message step
    def _interval(self, job: JobRecord) -> float:
        """Least time between two edits of a job in progress. A move up the line (nothing else changed) is worth
        less than a change of state, so a waiting job's message follows its place more slowly."""
        if job.status == "queued" and job.shown_place is not None and job.shown_version == job.version:
            return max(self._settings.edit_min_interval_s, self._settings.queue_edit_interval_s)
        return self._settings.edit_min_interval_s

    async def message(self, lease: Lease) -> None:
        job = await self._jobs.get(lease.job_id)
        if job is None or job.message_deleted_at is not None:
            await self._finish_step(lease)
            return
        final = job.finished
        if final and job.delivered_at is not None and job.shown_version == job.version:
            await self._finish_step(lease)
            return
        now = self._clock()
        if not final and job.message_sent_at is not None:
            wait = job.message_sent_at + self._interval(job) - now
            if wait > 0:
                await self._release(lease, now + wait)
                return
        position = await self.position(job)
        failures: list[str] = []
        try:
            outcome = await self._send_through_paths(job, final=final, position=position, failures=failures)
        except TransientFailure as exc:
            attempts = lease.attempts + 1
            delay = min(RETRY_CAP_S, RETRY_BASE_S * 2.0 ** min(attempts - 1, 16)) * self._rng.uniform(0.8, 1.2)
            delay = min(RETRY_CAP_S, max(delay, exc.retry_after_s or 0.0))
            log.warning("job %s: delivery will be retried in %.0fs (%s, try %d)", job.id, delay, exc, attempts)
            await self._release(lease, now + delay, attempts=attempts)
            return
        if outcome is None:
            if final:
                reason = "; ".join(failures) or "no way to reach the user"
                log.error("job %s: the result could not be delivered anywhere (%s); see /job show", job.id, reason)
                try:
                    async with self._db.transaction() as conn:
                        await self._steps.complete(conn, lease)
                        await self._jobs.undeliverable(conn, job.id, reason=reason[:500], now=self._clock())
                except LeaseLost:
                    pass
            else:
                await self._finish_step(lease)  # nothing can show progress here; the result will find a way
            return
        path, message_id, rendered, sent = outcome
        place = queue_place(position) if position is not None else None
        try:
            async with self._db.transaction() as conn:
                await self._steps.hold(conn, lease)
                current = await self._jobs.message_shown(
                    conn,
                    job.id,
                    version=job.version,
                    now=self._clock(),
                    path=path,
                    message_id=message_id,
                    final=final,
                    key=rendered.key,
                    place=place,
                    sent=sent,
                )
                if current is not None and current != job.version:
                    # The job moved on while this was being sent: show the newer state too.
                    await self._steps.release(conn, lease, due_at=self._clock())
                    again = True
                else:
                    await self._steps.complete(conn, lease)
                    again = False
                    if final and await self._should_ping(job, path):
                        await self._steps.want(conn, job.id, "ping", DISCORD_LANE, due_at=self._clock(), now=now)
                        again = True
        except LeaseLost:
            log.info("job %s: lost its message step after sending; the holder sends it again", job.id)
            return
        if final and not again:
            log.info("job %s: %s delivered via %s", job.id, job.status, path)
        if again:
            self._wake(DISCORD_LANE)

    async def _finish_step(self, lease: Lease) -> None:
        try:
            async with self._db.transaction() as conn:
                await self._steps.complete(conn, lease)
        except LeaseLost:
            pass

    async def _release(self, lease: Lease, due_at: float, *, attempts: int | None = None) -> None:
        try:
            async with self._db.transaction() as conn:
                await self._steps.release(conn, lease, due_at=due_at, attempts=attempts)
        except LeaseLost:
            pass

    async def _send_through_paths(
        self, job: JobRecord, *, final: bool, position: int | None, failures: list[str]
    ) -> tuple[str, int | None, Rendered, bool] | None:
        """Try each path in order: (the path that worked, the message id if it changed, what was rendered, whether
        a request was sent), or None when no path can take it. Raises TransientFailure to try again later."""
        gone = job.message_id is None and not job.token_edits_original
        if job.message_id is not None or job.token_edits_original:
            if self._token_usable(job):
                try:
                    rendered, sent = await self._edit(job, "token", job.attachment_size_limit, final, position)
                    return "token", None, rendered, sent
                except PathFailed as exc:
                    self._note(job, exc, failures)
                    gone = gone or exc.gone
                    if exc.token_dead:
                        await self._jobs.expire_token(job.id)
            if not gone and job.message_id is not None and self._channel_editable(job):
                try:
                    rendered, sent = await self._edit(job, "channel", self._channel_upload_limit(job), final, position)
                    return "channel", None, rendered, sent
                except PathFailed as exc:
                    self._note(job, exc, failures)
                    gone = exc.gone
            elif job.message_id is None:
                gone = True
        if not final:
            return None
        if gone and self._channel_editable(job):
            try:
                rendered, message_id = await self._post_new(job)
                return "new_message", message_id, rendered, True
            except PathFailed as exc:
                self._note(job, exc, failures)
        try:
            rendered = await self._send_dm(job)
            return "dm", None, rendered, True
        except PathFailed as exc:
            self._note(job, exc, failures)
            return None

    @staticmethod
    def _note(job: JobRecord, exc: PathFailed, failures: list[str]) -> None:
        log.info("job %s: %s", job.id, exc)
        failures.append(str(exc))

    def _token_usable(self, job: JobRecord) -> bool:
        return bool(
            job.interaction_token
            and job.application_id
            and job.token_expires_at
            and self._clock() < job.token_expires_at - self._settings.token_margin_s
        )

    def _channel_editable(self, job: JobRecord) -> bool:
        """A bot-token edit works on non-ephemeral messages where the bot user is present (guild installs, its DM)."""
        if job.ephemeral or job.channel_id is None:
            return False
        if job.guild_id:
            return job.guild_installed
        return job.interaction_context in (None, 1)

    def _channel_upload_limit(self, job: JobRecord) -> int:
        guild = self._client.get_guild(job.guild_id) if job.guild_id else None
        guild_limit = guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT
        return min(job.attachment_size_limit, guild_limit)

    async def _edit(
        self, job: JobRecord, path: str, upload_limit: int, final: bool, position: int | None
    ) -> tuple[Rendered, bool]:
        """Edit the job's message unless it already shows this (progress only). True if a request was sent."""
        rendered = await self.render(job, upload_limit=upload_limit, position=position)
        if not final and job.shown_key == rendered.key and job.message_sent_at is not None:
            return rendered, False
        kwargs = message_kwargs(rendered)
        try:
            if path == "token":
                await self._edit_with_token(job, kwargs)
            else:
                channel = self._client.get_partial_messageable(job.channel_id or 0)
                await channel.get_partial_message(job.message_id or 0).edit(**kwargs)
        except discord.HTTPException as exc:
            raise _classify(exc, path) from None
        except NETWORK_ERRORS as exc:
            raise TransientFailure(f"{path}: {type(exc).__name__}") from None
        self.sent[path] += 1
        return rendered, True

    async def _edit_with_token(self, job: JobRecord, kwargs: dict[str, Any]) -> None:
        assert job.application_id
        assert job.interaction_token
        webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self._client)
        if not job.token_edits_original:
            await webhook.edit_message(job.message_id or 0, **kwargs)
            return
        # The token's own @original (private jobs, Refresh clicks): what Interaction.edit_original_response does.
        with handle_message_parameters(
            content=kwargs["content"],
            embeds=kwargs["embeds"],
            attachments=kwargs["attachments"],
            view=kwargs["view"],
            previous_allowed_mentions=self._client.allowed_mentions,
        ) as params:
            await async_context.get().edit_original_interaction_response(
                job.application_id,
                job.interaction_token,
                session=webhook.session,
                proxy=webhook.proxy,
                proxy_auth=webhook.proxy_auth,
                payload=params.payload,
                multipart=params.multipart,
                files=params.files,
            )

    async def _post_new(self, job: JobRecord) -> tuple[Rendered, int]:
        """The job's message is gone (or was never posted): post the result as a new channel message, with the
        job's nonce (a resend after a crash gets the same message back)."""
        rendered = await self.render(job, upload_limit=self._channel_upload_limit(job))
        kwargs = message_kwargs(rendered)
        kwargs["files"] = kwargs.pop("attachments")
        channel = self._client.get_partial_messageable(job.channel_id or 0)
        try:
            message = await channel.send(**kwargs, nonce=nonce_for(job.id))
        except discord.HTTPException as exc:
            raise _classify(exc, "new_message") from None
        except NETWORK_ERRORS as exc:
            raise TransientFailure(f"new_message: {type(exc).__name__}") from None
        self.sent["new_message"] += 1
        return rendered, message.id

    async def _send_dm(self, job: JobRecord) -> Rendered:
        rendered = await self.render(job, upload_limit=DEFAULT_UPLOAD_LIMIT, in_dm=True)
        kwargs = message_kwargs(rendered)
        kwargs["files"] = kwargs.pop("attachments")
        kwargs["content"] = f"{dm_intro(job)}\n{kwargs['content']}"[:2000]
        try:
            channel = await self._client.create_dm(discord.Object(job.user_id))
            await channel.send(**kwargs, nonce=nonce_for(job.id))
        except discord.HTTPException as exc:
            raise _classify(exc, "dm") from None
        except NETWORK_ERRORS as exc:
            raise TransientFailure(f"dm: {type(exc).__name__}") from None
        self.sent["dm"] += 1
        return rendered

    async def _should_ping(self, job: JobRecord, path: str) -> bool:
        """A mention in the channel when a long job ends there (not for private jobs, DMs or cancellations)."""
        took = (job.finished_at or self._clock()) - job.created_at
        if job.ephemeral or path == "dm" or took < self._settings.completion_ping_after_s or job.status == "cancelled":
            return False
        if job.ping_sent_at is not None or job.channel_id is None:
            return False
        config = await self._server_settings.get(job.guild_id)
        return bool(config.completion_ping)

    # ------------------------------------------------------------------ the ping step
    async def ping(self, lease: Lease) -> None:
        job = await self._jobs.get(lease.job_id)
        if job is None or job.channel_id is None:
            await self._finish_step(lease)
            return
        # At most once: ping_sent_at is written (and the step removed) before sending. If the process dies
        # between the two, the ping is lost, which is harmless; a second ping would not be.
        try:
            async with self._db.transaction() as conn:
                await self._steps.complete(conn, lease)
                if not await self._jobs.claim_ping(conn, job.id, self._clock()):
                    return
        except LeaseLost:
            return
        link = f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.message_id}"
        noun = "result" if job.status == "succeeded" else "job"
        content = (
            f"<@{job.user_id}> your {noun} is ready: {link}"
            if job.status == "succeeded"
            else (f"<@{job.user_id}> your {noun} did not work out: {link}")
        )
        mentions = discord.AllowedMentions(users=[discord.Object(job.user_id)], everyone=False, roles=False)
        try:
            if self._token_usable(job):
                assert job.application_id
                assert job.interaction_token
                webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self._client)
                await webhook.send(content, allowed_mentions=mentions)
            elif self._channel_editable(job):
                await self._client.get_partial_messageable(job.channel_id).send(content, allowed_mentions=mentions)
            else:
                return
            self.sent["ping"] += 1
        except discord.HTTPException as exc:
            log.info("job %s: completion ping not sent (%s %s)", job.id, exc.status, exc.code)
        except NETWORK_ERRORS as exc:
            log.info("job %s: completion ping not sent (%s)", job.id, type(exc).__name__)


def dm_intro(job: JobRecord) -> str:
    """The first line of a result sent to the requester's DMs: which job, and where it was asked for (a channel
    mention shows as a link to it and pings nobody)."""
    where = f" (from <#{job.channel_id}>)" if job.guild_id and job.channel_id else ""
    if job.status == "succeeded":
        return f"Here is the result of your job #{job.id}{where}:"
    if job.status == "cancelled":
        return f"Your job #{job.id}{where} was cancelled:"
    return f"Your job #{job.id}{where} did not work out:"


def message_kwargs(rendered: Rendered) -> dict[str, Any]:
    files = [
        discord.File(spec.path, filename=spec.filename, spoiler=spec.spoiler, description=spec.description)
        for spec in rendered.files
    ]
    view = discord.ui.View(timeout=None)
    for row_index, row in enumerate(rendered.rows):
        for button in row:
            view.add_item(
                discord.ui.Button(
                    custom_id=button.custom_id,
                    label=button.label,
                    emoji=button.emoji,
                    row=row_index,
                    style=getattr(discord.ButtonStyle, button.style),
                )
            )
    # The cogs' persistent DynamicItems handle the clicks; a stopped view is sent but not kept in memory.
    view.stop()
    return {"content": rendered.content, "embeds": list(rendered.embeds), "attachments": files, "view": view}
