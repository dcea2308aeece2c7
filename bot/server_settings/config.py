"""A server's settings as the rest of the bot sees them: default limit and model, enabled models, NSFW policy,
allowed channels, moderator roles, banned words and the completion ping."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, get_args

from bot.settings import NsfwPolicy

NSFW_POLICIES: tuple[str, ...] = get_args(NsfwPolicy)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    guild_id: int
    default_limit: int | None = None
    default_model: str | None = None
    enabled_models: frozenset[str] | None = None  # None: every configured model
    nsfw_policy: NsfwPolicy | None = None  # None: the operator's default
    allowed_channels: frozenset[int] = frozenset()  # empty: everywhere
    moderator_roles: frozenset[int] = frozenset()
    banned_words: tuple[str, ...] = ()
    completion_ping: bool = True

    def allows_model(self, key: str) -> bool:
        return self.enabled_models is None or key in self.enabled_models

    def allows_channel(self, channel_id: int | None, *ancestor_ids: int | None) -> bool:
        """Generating is allowed in the channel: no list, or the list names the channel or one of its ancestors
        (its category; for a thread, its parent channel and that channel's category)."""
        if not self.allowed_channels:
            return True
        return any(place is not None and place in self.allowed_channels for place in (channel_id, *ancestor_ids))

    def banned_word_in(self, text: str) -> str | None:
        """The first banned word that appears in ``text`` as a whole word, ignoring case."""
        for word in self.banned_words:
            if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE):
                return word
        return None

    def as_audit_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("guild_id")
        for key, value in data.items():
            if isinstance(value, frozenset | tuple):
                data[key] = sorted(value)
        return data


DM_CONFIG = ServerConfig(guild_id=0)
