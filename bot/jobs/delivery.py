"""Delivery: the one component that decides how a job's message reaches the user, and when.

Paths, in order: the interaction token while it is valid (minus a margin), then an edit of the channel message
with the bot token, then (for results only) a new message in the channel or the requester's DMs. Edits are
coalesced per job: at most one per ``edit_min_interval_s``, latest state wins, and only when what a person sees
changes. The database is read fresh before each send, so a failed edit never loses state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.http import handle_message_parameters
from discord.webhook.async_ import async_context

from bot.jobs.delivery_errors import PathFailed, TransientFailure, classify
from bot.jobs.links import fresh_links
from bot.jobs.media_store import MediaStore
from bot.render.job import ACTIONS, RenderContext, Rendered, render_job
from bot.render.message import dm_intro, message_kwargs
from bot.server_settings.config import ServerConfig
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.jobs import JobRecord, JobRepository
from providers.base import Kind

if TYPE_CHECKING:
    from bot.catalogue import Catalogue

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
FINAL_RETRY_DELAYS_S = (2.0, 5.0, 15.0, 30.0, 60.0, 120.0)
STOP_GRACE_S = 10.0


def nsfw_mode(job: JobRecord, config: ServerConfig, settings: Settings, *, in_dm: bool) -> str:
    if in_dm or not job.guild_id:
        return "spoiler"
    policy = config.nsfw_policy or settings.default_nsfw_policy
    if policy == "block":
        return "withhold"
    if policy == "spoiler":
        return "spoiler"
    return "show" if job.channel_nsfw else "withhold"


class Delivery:
    def __init__(
        self,
        *,
        client: discord.Client,
        jobs: JobRepository,
        media: MediaStore,
        settings: Settings,
        catalogue: Catalogue,
        server_settings: ServerSettingsService,
        position: Callable[[int], int | None] = lambda job_id: None,
        providers: Mapping[str, object] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._jobs = jobs
        self._media = media
        self._settings = settings
        self._catalogue = catalogue
        self._server_settings = server_settings
        self.position = position
        self._providers = providers or {}
        self._clock = clock
        self._sleep = sleep
        self._dirty: set[int] = set()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._last_sent_at: dict[int, float] = {}
        self._last_key: dict[int, str] = {}
        self._last_status: dict[int, str] = {}
        self._final_attempts: dict[int, int] = {}
        self._stopping = False
        self.sent: dict[str, int] = {"token": 0, "channel": 0, "new_message": 0, "dm": 0, "ping": 0}

    # ------------------------------------------------------------------ scheduling
    def notify(self, job_id: int) -> None:
        """The job changed: update its message soon (coalesced; latest state wins)."""
        if self._stopping:
            return
        self._dirty.add(job_id)
        if job_id not in self._tasks:
            self._tasks[job_id] = asyncio.create_task(self._run(job_id), name=f"deliver-{job_id}")

    async def resume(self) -> None:
        """After a restart: deliver every finished job whose result never reached its message."""
        for job in await self._jobs.undelivered():
            self.notify(job.id)

    async def stop(self) -> None:
        """Let results being delivered finish (bounded), drop pending progress edits: the state is in the database."""
        self._stopping = True
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, job_id: int) -> None:
        try:
            while job_id in self._dirty and not self._stopping:
                job = await self._jobs.get(job_id)
                if job is None:
                    break
                wait = self._last_sent_at.get(job_id, 0.0) + self._interval(job) - self._clock()
                if wait > 0:
                    # In steps of at most the normal interval, then a fresh look: a job that starts or finishes
                    # while its place in line waits out the (longer) queue interval goes out at the normal pace.
                    await self._sleep(min(wait, max(self._settings.edit_min_interval_s, 1.0)))
                    continue
                # Cleared before the read: a change written after this point marks the job dirty again.
                self._dirty.discard(job_id)
                job = await self._jobs.get(job_id)
                if job is None:
                    break
                await self._deliver(job)
        except Exception:
            log.exception("delivery of job %s failed unexpectedly", job_id)
        finally:
            self._tasks.pop(job_id, None)

    def _interval(self, job: JobRecord) -> float:
        """Least time between two edits of this job's message. A move up the queue is worth less than a change
        of state, so while a job waits its message follows its place in line more slowly."""
        if job.status == "queued" and self._last_status.get(job.id) == "queued":
            return max(self._settings.edit_min_interval_s, self._settings.queue_edit_interval_s)
        return self._settings.edit_min_interval_s

    # ------------------------------------------------------------------ rendering
    async def render(
        self, job: JobRecord, *, upload_limit: int | None = None, in_dm: bool = False, position: int | None = None
    ) -> Rendered:
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
        missing: set[int] = set()
        if job.status == "succeeded" and job.outputs_purged_at is None:
            missing = {o.idx for o in job.outputs if not await self._media.exists(o.path)}
        return render_job(
            job,
            RenderContext(
                now=self._clock(),
                media_root=self._media.root,
                position=position or (self.position(job.id) if job.status == "queued" else None),
                typical_duration_s=entry.capabilities.typical_duration_s if entry else None,
                upload_limit=upload_limit or job.attachment_size_limit,
                nsfw_mode=nsfw_mode(job, config, self._settings, in_dm=in_dm),  # type: ignore[arg-type]
                actions=frozenset(actions),
                model_title=entry.title if entry else None,
                missing_outputs=frozenset(missing),
                retention_days=self._settings.output_retention_days,
                takes_seed=entry.capabilities.seed_range is not None if entry else "seed" in job.params,
            ),
        )

    # ------------------------------------------------------------------ delivering
    async def _deliver(self, job: JobRecord) -> None:
        if job.delivered_at is not None or job.message_deleted_at is not None:
            self._forget(job.id)
            return
        final = job.finished
        try:
            path, sent = await self._send_through_paths(job, final=final)
        except TransientFailure as exc:
            log.warning("job %s: delivery will be retried (%s)", job.id, exc)
            await self._retry_later(job.id, final)
            return
        if path is None:
            if final:
                log.error("job %s: the result could not be delivered anywhere; it stays available in /job show", job.id)
                await self._jobs.mark_delivered(job.id, path="undeliverable", now=self._clock())
                self._forget(job.id)
            return
        if sent:
            self._last_sent_at[job.id] = self._clock()
        if path != job.delivery_path:
            await self._jobs.set_delivery_path(job.id, path)
        if final:
            await self._jobs.mark_delivered(job.id, path=path, now=self._clock())
            log.info("job %s: %s delivered via %s", job.id, job.status, path)
            await self._maybe_ping(job, path)
            self._forget(job.id)

    async def _retry_later(self, job_id: int, final: bool) -> None:
        if not final:
            return
        attempt = self._final_attempts.get(job_id, 0)
        if attempt >= len(FINAL_RETRY_DELAYS_S):
            log.error(
                "job %s: giving up delivering after %d attempts; it stays available in /job show", job_id, attempt
            )
            await self._jobs.mark_delivered(job_id, path="undeliverable", now=self._clock())
            self._forget(job_id)
            return
        self._final_attempts[job_id] = attempt + 1
        self._last_sent_at[job_id] = self._clock() + FINAL_RETRY_DELAYS_S[attempt] - self._settings.edit_min_interval_s
        self._dirty.add(job_id)

    def _forget(self, job_id: int) -> None:
        for store in (self._last_sent_at, self._last_key, self._last_status, self._final_attempts):
            store.pop(job_id, None)

    async def _send_through_paths(self, job: JobRecord, *, final: bool) -> tuple[str | None, bool]:
        """Try each path in order: the name of the one that worked (None if none did), and whether it sent."""
        gone = job.message_id is None
        if job.message_id is not None or job.token_edits_original:
            if self._token_usable(job):
                try:
                    return "token", await self._edit(job, "token", job.attachment_size_limit, final)
                except PathFailed as exc:
                    log.info("job %s: %s", job.id, exc)
                    gone = gone or exc.gone
                    if exc.token_dead:
                        await self._jobs.expire_token(job.id)
            if not gone and self._channel_editable(job):
                try:
                    return "channel", await self._edit(job, "channel", self._channel_upload_limit(job), final)
                except PathFailed as exc:
                    log.info("job %s: %s", job.id, exc)
                    gone = exc.gone
        if not final:
            return None, False
        if gone and self._channel_editable(job):
            try:
                return await self._post_new(job), True
            except PathFailed as exc:
                log.info("job %s: %s", job.id, exc)
        try:
            return await self._send_dm(job), True
        except PathFailed as exc:
            log.warning("job %s: %s", job.id, exc)
            return None, False

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

    async def _edit(self, job: JobRecord, path: str, upload_limit: int, final: bool) -> bool:
        """Edit the job's message if what it shows changed. True if a request was sent."""
        rendered = await self.render(job, upload_limit=upload_limit)
        if not final and self._last_key.get(job.id) == rendered.key:
            return False
        kwargs = message_kwargs(rendered)
        try:
            if path == "token":
                await self._edit_with_token(job, kwargs)
            else:
                channel = self._client.get_partial_messageable(job.channel_id or 0)
                await channel.get_partial_message(job.message_id or 0).edit(**kwargs)
        except discord.HTTPException as exc:
            raise classify(exc, path) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientFailure(f"{path}: {type(exc).__name__}") from None
        self._last_key[job.id] = rendered.key
        self._last_status[job.id] = job.status
        self.sent[path] += 1
        return True

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

    async def _post_new(self, job: JobRecord) -> str:
        """The job's message is gone (or was never posted): post the result as a new channel message."""
        rendered = await self.render(job, upload_limit=self._channel_upload_limit(job))
        kwargs = message_kwargs(rendered)
        kwargs["files"] = kwargs.pop("attachments")
        channel = self._client.get_partial_messageable(job.channel_id or 0)
        try:
            message = await channel.send(**kwargs)
        except discord.HTTPException as exc:
            raise classify(exc, "new_message") from None
        await self._jobs.set_message(job.id, message.id)
        self.sent["new_message"] += 1
        return "new_message"

    async def _send_dm(self, job: JobRecord) -> str:
        rendered = await self.render(job, upload_limit=DEFAULT_UPLOAD_LIMIT, in_dm=True)
        kwargs = message_kwargs(rendered)
        kwargs["files"] = kwargs.pop("attachments")
        kwargs["content"] = f"{dm_intro(job)}\n{kwargs['content']}"[:2000]
        try:
            channel = await self._client.create_dm(discord.Object(job.user_id))
            await channel.send(**kwargs)
        except discord.HTTPException as exc:
            raise classify(exc, "dm") from None
        self.sent["dm"] += 1
        return "dm"

    async def _maybe_ping(self, job: JobRecord, path: str) -> None:
        took = (job.finished_at or self._clock()) - job.created_at
        if job.ephemeral or path == "dm" or took < self._settings.completion_ping_after_s or job.status == "cancelled":
            return
        config = await self._server_settings.get(job.guild_id)
        if not config.completion_ping or job.channel_id is None:
            return
        if not await self._jobs.mark_ping_sent(job.id, self._clock()):
            return
        fresh = await self._jobs.get(job.id)
        message_id = fresh.message_id if fresh else job.message_id
        link = f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{message_id}"
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
