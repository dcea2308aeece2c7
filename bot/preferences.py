"""``PreferenceService``: a member's own defaults for /imagine, /edit and /video (``/prefer``), checked when set
(``prompting/preferences.py``) and stored per user (``storage/preferences.py``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.catalogue import Catalogue
from bot.clock import shared_clock
from bot.errors import InvalidInput
from bot.i18n import msg
from bot.prompting.preferences import check_preferences, clean_text, merged
from bot.storage.preferences import PreferenceRepository, Preferences

log = logging.getLogger(__name__)

# The private preference decides how a command is acknowledged, within Discord's 3 seconds: it is read from a
# short-lived cache (another process's /prefer set reaches this one within CACHE_TTL_S) or with a bounded wait.
CACHE_TTL_S = 30.0
CACHE_MAX = 10_000
ACK_WAIT_S = 1.0


class PreferenceService:
    def __init__(
        self, repository: PreferenceRepository, catalogue: Catalogue, *, clock: Callable[[], float] = shared_clock
    ) -> None:
        self._repository = repository
        self._catalogue = catalogue
        self._clock = clock
        self._private: dict[int, tuple[bool | None, float]] = {}  # user id → (private preference, read at)

    async def get(self, user_id: int) -> Preferences:
        preferences = await self._repository.get(user_id)
        self._remember(preferences)
        return preferences

    async def private_before_ack(self, user_id: int) -> bool:
        """Whether the member's results are private unless the command says: their preference, else no. When the
        database does not answer in time, yes: a result shown only to its requester is the safe side."""
        cached = self._private.get(user_id)
        if cached is not None and self._clock() - cached[1] < CACHE_TTL_S:
            return bool(cached[0])
        try:
            return bool((await asyncio.wait_for(self.get(user_id), ACK_WAIT_S)).private)
        except TimeoutError:
            log.warning("preferences of user %s not read within %.1fs: the job is private", user_id, ACK_WAIT_S)
            return True

    def _remember(self, preferences: Preferences) -> None:
        if len(self._private) >= CACHE_MAX:
            self._private.clear()
        self._private[preferences.user_id] = (preferences.private, self._clock())

    async def set(
        self,
        user_id: int,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        private: bool | None = None,
        suffix: str | None = None,
    ) -> Preferences:
        """Change the preferences given (text "none" removes one), keep the others; refused when one cannot work."""
        if model is None and aspect_ratio is None and private is None and suffix is None:
            raise InvalidInput(msg("Give at least one option to set. `/prefer clear` removes them all."))
        old = await self._repository.get(user_id)
        new = merged(
            old,
            model_key=clean_text(model),
            aspect_ratio=clean_text(aspect_ratio),
            private=private,
            suffix=clean_text(suffix),
        )
        new = check_preferences(self._catalogue, new)
        await self._repository.save(new, now=self._clock())
        self._remember(new)
        return new

    async def clear(self, user_id: int) -> bool:
        had_any = await self._repository.clear(user_id)
        self._remember(Preferences(user_id))
        return had_any
