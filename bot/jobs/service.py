"""Starting and cancelling jobs. The command has already deferred (its "thinking" message is the job's message);
from here: server rules → inputs → reserve credits and write the job with its first steps (one transaction) →
the first render of the job's message, through the outbox, which is the answer to the command (its number and
cost included). An ephemeral note follows only when there is something the member should know privately: an
option the bot adjusted, or credits running low."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord

from bot.catalogue import Catalogue, ModelEntry
from bot.clock import shared_clock
from bot.credits.service import QuotaService
from bot.credits.types import Reservation
from bot.credits.wallets import is_personal
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.fetch import Fetcher
from bot.i18n import msg, render, tr
from bot.jobs import access
from bot.jobs.delivery import DISCORD_LANE, NETWORK_ERRORS, Outbox
from bot.jobs.engine import StepEngine
from bot.jobs.inputs import ImageSource, load_image
from bot.jobs.media_store import MediaStore
from bot.jobs.outcomes import submit_lane
from bot.jobs.requester import Requester
from bot.jobs.requests import StoredImage, job_params
from bot.jobs.transitions import FINAL_PRIORITY, JobTransitions
from bot.prompting.models import pick_model
from bot.prompting.specs import JobSpec
from bot.render.job import credits_refunded, credits_stay_spent, credits_text, timestamp
from bot.server_settings.service import ServerSettingsService
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobRepository, NewJob
from bot.storage.steps import Lease
from providers.base import Kind

log = logging.getLogger(__name__)


# Credits "run low" when what is left pays for fewer jobs of the same cost than this: the note says so.
LOW_CREDITS_JOBS = 3


@dataclass(frozen=True, slots=True)
class Started:
    job: JobRecord  # as written (before the engine moved it on)
    note: str | None  # the ephemeral note sent after the job's message, if any


class JobService:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        jobs: JobRepository,
        quota: QuotaService,
        transitions: JobTransitions,
        catalogue: Catalogue,
        server_settings: ServerSettingsService,
        fetcher: Fetcher,
        media: MediaStore,
        engine: StepEngine,
        delivery: Outbox,
        admission: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = shared_clock,
    ) -> None:
        self._settings = settings
        self._db = database
        self._jobs = jobs
        self._quota = quota
        self._transitions = transitions
        self._catalogue = catalogue
        self._server_settings = server_settings
        self._fetcher = fetcher
        self._media = media
        self._engine = engine
        self._steps = engine.steps
        self._delivery = delivery
        self._admission = admission  # may refuse a provider's new jobs (its daily budget is spent)
        self._clock = clock

    # ------------------------------------------------------------------ starting
    async def check_allowed(self, requester: Requester, model_key: str, kind: Kind, prompt: str) -> ModelEntry:
        """The server's rules for this request: the channel allowed, the model usable here, no banned word."""
        config = await self._server_settings.get(requester.guild_id)
        if not config.allows_channel(requester.channel_id, *requester.ancestor_ids):
            channels = ", ".join(f"<#{c}>" for c in sorted(config.allowed_channels))
            raise NotAllowed(
                msg("Generation is not allowed in this channel. Use one of: {channels}.", channels=channels)
            )
        entry = pick_model(self._catalogue, config, kind, model_key)
        word = config.banned_word_in(prompt)
        if word is not None:
            raise InvalidInput(
                msg(
                    "Your prompt contains a word this server does not allow (“{word}”). Remove it and try again.",
                    word=word,
                )
            )
        return entry

    async def start(self, interaction: discord.Interaction, spec: JobSpec) -> Started:
        """Run the whole start of a job for an interaction already deferred with ``defer_job_reply``."""
        requester = Requester.from_interaction(interaction)
        entry = await self.check_allowed(requester, spec.model_key, spec.kind, spec.prompt)
        if self._admission is not None:  # before any credit is reserved: a refusal charges nothing
            await self._admission(entry.provider)
        if spec.reference_images or spec.source_image or spec.start_frame or spec.end_frame:
            # Refuse a banned or out-of-credits member before downloading anything; reserve() below decides for good
            # (without inputs to download, it is the only check: a refusal there costs nothing either).
            await self._quota.check(requester.wallet_id, requester.user_id, requester.role_ids, entry.cost)
        params = job_params(
            upstream_model=entry.upstream_model,
            options=spec.options,
            size=spec.size,
            reference_images=tuple(
                [await self._load_one(src, msg("reference image")) for src in spec.reference_images]
            ),
            source_image=await self._load(spec.source_image, msg("image to edit")),
            start_frame=await self._load(spec.start_frame, msg("start image")),
            end_frame=await self._load(spec.end_frame, msg("end image")),
        )
        message_id = interaction.extras.get("original_message_id")
        job, first, reservation = await self._create(requester, spec, entry, params, message_id)
        # The job is safe in the database from here on: a refusal would no longer be true.
        interaction.extras.pop("public_ack", None)
        interaction.extras.pop("ephemeral_ack", None)
        self._engine.wake(submit_lane(job.provider))
        await self._first_message(job, first)
        note = self._note(requester, job, spec, reservation)
        if note is not None:
            try:
                # After the first edit of the job's message: a followup while it still loads would replace it.
                await interaction.followup.send(note, ephemeral=True)
            except (discord.HTTPException, *NETWORK_ERRORS) as exc:
                log.warning("job %s: could not send its note (%s)", job.id, exc)
        log.info(
            "job %s started: user %s, %s, model %s, %s, origin %s",
            job.id,
            requester.user_id,
            job.scope,
            job.model_key,
            credits_text(job.cost),
            spec.origin,
        )
        return Started(job, note)

    async def _load(self, source: ImageSource | None, what: str) -> StoredImage | None:
        return None if source is None else await self._load_one(source, what)

    async def _load_one(self, source: ImageSource, what: str) -> StoredImage:
        return await load_image(source, fetcher=self._fetcher, media=self._media, settings=self._settings, what=what)

    async def _create(
        self,
        requester: Requester,
        spec: JobSpec,
        entry: ModelEntry,
        params: dict[str, Any],
        message_id: int | None = None,
    ) -> tuple[JobRecord, Lease, Reservation]:
        now = self._clock()
        deadline = self._settings.video_deadline_s if spec.kind is Kind.VIDEO else self._settings.image_deadline_s
        new = NewJob(
            user_id=requester.user_id,
            guild_id=requester.guild_id,
            channel_id=requester.channel_id,
            model_key=entry.key,
            provider=entry.provider,
            kind=spec.kind.value,
            prompt=spec.prompt,
            params=params,
            cost=entry.cost,
            created_at=now,
            deadline_at=now + deadline,
            origin=spec.origin,
            parent_job_id=spec.parent_job_id,
            application_id=requester.application_id,
            interaction_token=requester.token,
            token_expires_at=requester.token_expires_at,
            token_edits_original=True,  # the job's message is the interaction's original response
            ephemeral=spec.private,
            interaction_context=requester.context,
            guild_installed=requester.guild_installed,
            channel_nsfw=requester.channel_nsfw,
            attachment_size_limit=requester.attachment_size_limit,
            message_id=message_id,
            user_locale=requester.locale,
            guild_locale=requester.guild_locale,
        )
        async with self._db.transaction() as conn:
            job = await self._jobs.insert(conn, new)
            job_id = job.id
            reservation = await self._quota.reserve(
                conn,
                job_id=job_id,
                guild_id=requester.wallet_id,
                user_id=requester.user_id,
                role_ids=requester.role_ids,
                cost=entry.cost,
                now=now,
                new_job=True,
            )
            await self._steps.put(conn, job_id, "submit", submit_lane(entry.provider), due_at=now, now=now)
            # Leased to this process from the start: the command sends the first render itself, before any note
            # (another process's lane sending it meanwhile would race the note while the response loads).
            first = await self._steps.put_leased(
                conn, job_id, "message", DISCORD_LANE, owner=self._engine.owner, now=now, lease_s=self._engine.lease_s
            )
        return job, first, reservation

    def _note(self, requester: Requester, job: JobRecord, spec: JobSpec, reservation: Reservation) -> str | None:
        """The ephemeral note after the job's message, in the requester's language: only when the bot adjusted an
        option or credits run low (the job's number and cost are on its message). Built from the reservation: no
        further reads."""
        left = max(0, reservation.limit - reservation.used_after)
        low = job.cost > 0 and left + reservation.bonus_after < LOW_CREDITS_JOBS * job.cost
        if not spec.notes and not low:
            return None
        lang = requester.locale
        bonus = tr(lang, " + {credits} bonus", credits=credits_text(reservation.bonus_after))
        facts = {
            "job_id": job.id,
            "cost": credits_text(job.cost),
            "left": credits_text(left),
            "bonus": bonus if reservation.bonus_after else "",
            "resets": timestamp(self._quota.next_reset(job.created_at)),
        }
        if is_personal(requester.wallet_id):
            started = tr(
                lang,
                "✅ Job #{job_id} started: {cost}. You have {left} left in your personal wallet for today{bonus} "
                "(more {resets}).",
                **facts,
            )
        else:
            started = tr(
                lang,
                "✅ Job #{job_id} started: {cost}. You have {left} left for today{bonus} (more {resets}).",
                **facts,
            )
        lines = [started]
        lines += [f"ℹ️ {render(note, lang)}" for note in spec.notes]
        return "\n".join(lines)

    async def _first_message(self, job: JobRecord, lease: Lease | None) -> None:
        """The first render of the job's message, sent now by the command itself through the outbox's one code
        path (its step was leased when the job was written; if anything goes wrong, the discord lane sends it)."""
        if lease is None:
            return
        self._engine.also_held.add(lease.step_id)  # renewed while it is sent, like the lanes' steps
        try:
            await self._delivery.message(lease, job=job)  # as just written: no read
        except Exception:
            log.exception("job %s: the first render of its message failed; the outbox retries it", job.id)
            try:
                await self._steps.release_one(lease, due_at=self._clock())
            except Exception:
                log.warning("job %s: could not hand its message step back; its lease will expire", job.id)
            self._engine.wake(DISCORD_LANE)
        finally:
            self._engine.also_held.discard(lease.step_id)

    # ------------------------------------------------------------------ cancelling
    async def cancel(self, job_id: int, requester: Requester) -> str:
        """Cancel for the requester or a moderator of the job's server; returns what to tell them."""
        job = await self._visible_job(job_id, requester, moderator_allowed=True)
        outcome = await self._transitions.cancel(job.id)
        if outcome == "finished":
            return msg("Job #{job_id} has already finished.", job_id=job.id)
        if outcome == "sending":
            return msg(
                "Job #{job_id} is being sent to the service right now; try again in a few seconds.", job_id=job.id
            )
        self._engine.line_changed(job.provider)
        self._engine.wake(submit_lane(job.provider))
        self._engine.wake(DISCORD_LANE)
        if outcome == "kept":
            return msg(
                "Job #{job_id} is cancelled: you will get no more updates. It had already started at the service, "
                "which cannot stop it, so its {credits}.",
                job_id=job.id,
                credits=credits_stay_spent(job.cost),
            )
        return msg("Job #{job_id} is cancelled and its {credits}.", job_id=job.id, credits=credits_refunded(job.cost))

    async def _visible_job(self, job_id: int, requester: Requester, *, moderator_allowed: bool) -> JobRecord:
        """The job, if the requester may manage it (``access.can_manage``; only its own requester when
        ``moderator_allowed`` is false)."""
        job = await self._jobs.get(job_id)
        if job is None:
            raise NotFound(msg("There is no job #{job_id}.", job_id=job_id))
        if access.is_owner(job, requester) or (moderator_allowed and await self.may_manage(job, requester)):
            return job
        raise NotAllowed(access.refusal(job))

    # ------------------------------------------------------------------ access (bot/jobs/access.py)
    async def may_view(self, job: JobRecord, requester: Requester) -> bool:
        """May see the job by its number (``/job show``)."""
        config = await self._server_settings.get(job.guild_id)
        return access.can_view(job, requester, config, self._settings)

    async def may_manage(self, job: JobRecord, requester: Requester) -> bool:
        """May cancel the job or delete its message."""
        config = await self._server_settings.get(job.guild_id)
        return access.can_manage(job, requester, config, self._settings)

    # ------------------------------------------------------------------ the job's message
    async def renew_token(self, job: JobRecord, interaction: discord.Interaction) -> bool:
        """A click on the job's own message (Refresh) brings a fresh 15-minute token whose @original is that
        message. It is stored and the message is sent again through the outbox (never rendered here from what may
        already be an older read). True if the click was on the job's message."""
        message = interaction.message
        if message is None or message.id != job.message_id or job.message_deleted_at is not None:
            return False
        requester = Requester.from_interaction(interaction)
        now = self._clock()
        async with self._db.transaction() as conn:
            await self._jobs.set_token_in(
                conn,
                job.id,
                application_id=requester.application_id,
                token=requester.token,
                expires_at=requester.token_expires_at,
                edits_original=True,
            )
            await self._jobs.touch(conn, job.id)
            await self._steps.want(
                conn,
                job.id,
                "message",
                DISCORD_LANE,
                due_at=now,
                now=now,
                priority=FINAL_PRIORITY if job.finished else 0,
            )
        self._engine.wake(DISCORD_LANE)
        return True

    async def delete_message(
        self, job: JobRecord, message_id: int | None, delete: Callable[[], Awaitable[None]]
    ) -> None:
        """Delete a message showing the job with ``delete``. The job's own message is marked deleted first, so
        nothing sends it again once it is gone, even after a crash between the two (its Delete button still works
        then); if Discord refuses the delete (4xx), the mark is taken back. Any other failure (a 5xx, the
        connection, a cancel) leaves the outcome unknown: the mark stays, so a message that is gone is never posted
        again. A copy of the result (e.g. in DMs) is only deleted."""
        stamp = None
        if message_id is not None and message_id == job.message_id:
            stamp = self._clock()
            await self._jobs.mark_message_deleted(job.id, stamp)
        try:
            await delete()
        except discord.NotFound:
            return  # already gone
        except discord.HTTPException as exc:
            if stamp is not None and exc.status < 500:  # refused; after a 5xx the outcome is unknown
                await self._jobs.unmark_message_deleted(job.id, stamp)
            raise
