"""Alerts to operators: a message in ``OPERATOR_ALERT_CHANNEL_ID`` (sent with the bot's token) and/or a post to
``OPERATOR_ALERT_WEBHOOK_URL``. Each alert belongs to an incident (a key such as ``paused:wavespeed``): it is sent
once while the incident is open, however many jobs run into it, and again only after ``resolve``."""

from __future__ import annotations

import logging

import aiohttp
import discord

from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_LENGTH = 1900


class Alerter:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession | None = None) -> None:
        self._channel_id = settings.operator_alert_channel_id
        url = settings.operator_alert_webhook_url
        self._webhook = url.get_secret_value() if url is not None else None
        self._session = session
        self.client: discord.Client | None = None
        self.open: set[str] = set()
        self.sent: list[str] = []  # every alert raised, in order (the log has them too)

    async def alert(self, incident: str, text: str) -> bool:
        """Tell the operators, unless this incident was reported already; True when sent now."""
        if incident in self.open:
            return False
        self.open.add(incident)
        self.sent.append(text)
        log.warning("operator alert (%s): %s", incident, text)
        content = f"🚨 {text}"[:MAX_LENGTH]
        if self._channel_id is not None and self.client is not None:
            try:
                await self.client.get_partial_messageable(self._channel_id).send(
                    content, allowed_mentions=discord.AllowedMentions.none()
                )
            except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
                log.error("could not post the alert in channel %s: %s", self._channel_id, exc)
        if self._webhook and self._session is not None:
            try:
                async with self._session.post(
                    self._webhook, json={"content": content, "allowed_mentions": {"parse": []}}
                ) as response:
                    if response.status >= 400:
                        log.error("the alert webhook answered HTTP %s", response.status)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.error("could not post the alert to the webhook: %s", type(exc).__name__)
        return True

    def resolve(self, incident: str) -> None:
        self.open.discard(incident)
