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
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import discord

from bot.clock import shared_clock
from bot.jobs.delivery_errors import PathFailed, TransientFailure, classify
from bot.jobs.delivery_paths import (
    DEFAULT_UPLOAD_LIMIT,
    NETWORK_ERRORS,
    channel_editable,
    edit_with_token,
    nonce_for,
    send_ping,
    token_usable,
)
from bot.jobs.links import fresh_links
from bot.jobs.media_store import MediaStore
from bot.render.job import ACTIONS, RenderContext, Rendered, job_locale, queue_place, render_job
from bot.render.message import dm_intro, message_kwargs
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

DISCORD_LANE = "discord"
RETRY_BASE_S = 2.0
RETRY_CAP_S = 300.0


def nsfw_mode(job: JobRecord, config: ServerConfig, settings: Settings, *, in_dm: bool) -> str:
    if in_dm or not job.guild_id:
        return "spoiler"
    policy = config.nsfw_policy or settings.default_nsfw_policy
    if policy == "block":
        return "withhold"
    if policy == "spoiler":
        return "spoiler"
    return "show" if job.channel_nsfw else "withhold"


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
        providers: Mapping[str, object] | None = None,
        waiting: Callable[[str], str | None] = lambda provider: None,
        clock: Callable[[], float] = shared_clock,
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
        self._providers = providers or {}
        self._waiting = waiting  # why a provider's jobs wait (it is paused), for their messages
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
        self,
        job: JobRecord,
        *,
        upload_limit: int | None = None,
        in_dm: bool = False,
        position: int | None = None,
        locale: str | None = None,
    ) -> Rendered:
        """The job's message; in ``locale``, else in the language ``job_locale`` gives it."""
        job = await fresh_links(
            job, upload_limit=upload_limit or job.attachment_size_limit, providers=self._providers,
            jobs=self._jobs, now=self._clock(),
        )  # fmt: skip
        config = await self._server_settings.get(job.guild_id)
        entry = self._catalogue.get(job.model_key)
        actions = set(ACTIONS)
        if not any(config.allows_model(m.key) for m in self._catalogue.for_kind(Kind.IMAGE_EDIT)):
            actions.discard("edit")
        if not any(config.allows_model(m.key) for m in self._catalogue.for_kind(Kind.VIDEO)):
            actions.discard("animate")
        if entry is None or "extend_of" not in entry.capabilities.fields or not config.allows_model(entry.key):
            actions.discard("extend")
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
                takes_seed=entry.capabilities.seed_range is not None if entry else "seed" in job.params,
                waiting_reason=self._waiting(job.provider) if job.status == "queued" else None,
                locale=locale or job_locale(job, in_dm=in_dm),
            ),
        )

    # ------------------------------------------------------------------ the message step
    def _interval(self, job: JobRecord) -> float:
        """Least time between two edits of a job in progress. A move up the line (nothing else changed) is worth
        less than a change of state, so a waiting job's message follows its place more slowly."""
        if job.status == "queued" and job.shown_place is not None and job.shown_version == job.version:
            return max(self._settings.edit_min_interval_s, self._settings.queue_edit_interval_s)
        return self._settings.edit_min_interval_s

    async def message(self, lease: Lease, *, job: JobRecord | None = None) -> None:
        """Send the job's message as it is now (``job``: as the caller just read or wrote it)."""
        if job is None:
            job = await self._jobs.get(lease.job_id)
        if job is None or job.message_deleted_at is not None:
            await self._steps.complete_one(lease)
            return
        final = job.finished
        if final and job.delivered_at is not None and job.shown_version == job.version:
            await self._steps.complete_one(lease)
            return
        now = self._clock()
        if not final and job.message_sent_at is not None:
            wait = job.message_sent_at + self._interval(job) - now
            if wait > 0:
                await self._steps.release_one(lease, due_at=now + wait)
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
            await self._steps.release_one(lease, due_at=now + delay, attempts=attempts)
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
                await self._steps.complete_one(lease)  # nothing can show progress here; the result will find a way
            return
        path, message_id, rendered, sent = outcome
        place = queue_place(position) if position is not None else None
        try:
            async with self._db.transaction() as conn:
                # Done, if the lease is still ours (else LeaseLost rolls this back): the step first, then the job,
                # the order every step holder locks them in.
                asked_again = await self._steps.complete(conn, lease)
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
                    # The job moved on while this was being sent: show the newer state too (its change asked for
                    # the step already; this makes sure, at once).
                    await self._steps.want(
                        conn, job.id, "message", DISCORD_LANE, due_at=self._clock(), now=now, priority=1
                    )
                    again = True
                else:
                    again = asked_again
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

    async def _send_through_paths(
        self, job: JobRecord, *, final: bool, position: int | None, failures: list[str]
    ) -> tuple[str, int | None, Rendered, bool] | None:
        """Try each path in order: (the path that worked, the message id if it changed, what was rendered, whether
        a request was sent), or None when no path can take it. Raises TransientFailure to try again later."""
        gone = job.message_id is None and not job.token_edits_original
        if job.message_id is not None or job.token_edits_original:
            if token_usable(job, now=self._clock(), margin_s=self._settings.token_margin_s):
                try:
                    rendered, sent = await self._edit(job, "token", job.attachment_size_limit, final, position)
                    return "token", None, rendered, sent
                except PathFailed as exc:
                    self._note(job, exc, failures)
                    gone = gone or exc.gone
                    if exc.token_dead:
                        await self._jobs.expire_token(job.id)
            if not gone and job.message_id is not None and channel_editable(job):
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
        if gone and channel_editable(job):
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
            raise classify(exc, path) from None
        except NETWORK_ERRORS as exc:
            raise TransientFailure(f"{path}: {type(exc).__name__}") from None
        self.sent[path] += 1
        return rendered, True

    async def _edit_with_token(self, job: JobRecord, kwargs: dict[str, Any]) -> None:
        await edit_with_token(self._client, job, kwargs)

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
            raise classify(exc, "new_message") from None
        except NETWORK_ERRORS as exc:
            raise TransientFailure(f"new_message: {type(exc).__name__}") from None
        self.sent["new_message"] += 1
        return rendered, message.id

    async def _send_dm(self, job: JobRecord) -> Rendered:
        rendered = await self.render(job, upload_limit=DEFAULT_UPLOAD_LIMIT, in_dm=True)
        kwargs = message_kwargs(rendered)
        kwargs["files"] = kwargs.pop("attachments")
        kwargs["content"] = f"{dm_intro(job, job_locale(job, in_dm=True))}\n{kwargs['content']}"[:2000]
        try:
            channel = await self._client.create_dm(discord.Object(job.user_id))
            await channel.send(**kwargs, nonce=nonce_for(job.id))
        except discord.HTTPException as exc:
            raise classify(exc, "dm") from None
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
            await self._steps.complete_one(lease)
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
        token = token_usable(job, now=self._clock(), margin_s=self._settings.token_margin_s)
        if await send_ping(self._client, job, use_token=token):
            self.sent["ping"] += 1
