"""What a Discord error means for the delivery path that got it: try the next path, or try again later."""

from __future__ import annotations

import discord

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
    """Discord could not take it right now (5xx, network, rate limit): try again later (after ``retry_after_s``
    when Discord said how long)."""

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def classify(exc: discord.HTTPException, path: str) -> PathFailed | TransientFailure:
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
        return TransientFailure(f"{path}: {exc.status}", retry_after_s=getattr(exc, "retry_after", None))
    return PathFailed(f"{path}: rejected ({exc.status}/{exc.code}): {exc.text[:200]}")
