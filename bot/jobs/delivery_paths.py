"""Where a job's message can go, and the Discord calls that are not plain sends: the interaction token while it
is valid, a bot-token edit where the bot can see the message, the nonce of new messages, the completion ping."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import discord
from discord.http import handle_message_parameters
from discord.webhook.async_ import async_context

from bot.i18n import tr
from bot.render.job import job_locale
from bot.storage.jobs import JobRecord

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
# What a failed request to Discord that got no answer looks like (reset, refused, timed out): try again later.
NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def nonce_for(job_id: int) -> str:
    """The nonce of every new message a job posts (Discord returns the message already made with it, for a few
    minutes, instead of making a second one: a resend after a crash posts nothing twice)."""
    return f"genbot-job-{job_id}"


def token_usable(job: JobRecord, *, now: float, margin_s: float) -> bool:
    """The job's interaction token can still be used (it is valid for 15 minutes; ``margin_s`` before that)."""
    return bool(
        job.interaction_token and job.application_id and job.token_expires_at and now < job.token_expires_at - margin_s
    )


def channel_editable(job: JobRecord) -> bool:
    """A bot-token edit works on non-ephemeral messages where the bot user is present (guild installs, its DM)."""
    if job.ephemeral or job.channel_id is None:
        return False
    if job.guild_id:
        return job.guild_installed
    return job.interaction_context in (None, 1)


async def edit_with_token(client: discord.Client, job: JobRecord, kwargs: dict[str, Any]) -> None:
    """Edit the job's message through its interaction token: its @original (the command's reply, a Refresh click)
    or, for older jobs, the followup it names."""
    assert job.application_id
    assert job.interaction_token
    webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=client)
    if not job.token_edits_original:
        await webhook.edit_message(job.message_id or 0, **kwargs)
        return
    # What Interaction.edit_original_response does.
    with handle_message_parameters(
        content=kwargs["content"],
        embeds=kwargs["embeds"],
        attachments=kwargs["attachments"],
        view=kwargs["view"],
        previous_allowed_mentions=client.allowed_mentions,
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


async def send_ping(client: discord.Client, job: JobRecord, *, use_token: bool) -> bool:
    """Mention the requester with a link to the job's message; True if Discord took it. Never raises."""
    assert job.channel_id is not None
    link = f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.message_id}"
    lang = job_locale(job)
    content = (
        tr(lang, "{user} your result is ready: {link}", user=f"<@{job.user_id}>", link=link)
        if job.status == "succeeded"
        else tr(lang, "{user} your job did not work out: {link}", user=f"<@{job.user_id}>", link=link)
    )
    mentions = discord.AllowedMentions(users=[discord.Object(job.user_id)], everyone=False, roles=False)
    try:
        if use_token:
            assert job.application_id
            assert job.interaction_token
            webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=client)
            await webhook.send(content, allowed_mentions=mentions)
        elif channel_editable(job):
            await client.get_partial_messageable(job.channel_id).send(content, allowed_mentions=mentions)
        else:
            return False
    except discord.HTTPException as exc:
        log.info("job %s: completion ping not sent (%s %s)", job.id, exc.status, exc.code)
        return False
    except NETWORK_ERRORS as exc:
        log.info("job %s: completion ping not sent (%s)", job.id, type(exc).__name__)
        return False
    return True
