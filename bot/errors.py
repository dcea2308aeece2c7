"""Errors the application raises for people to read. The command tree's error handler shows ``user_message``
ephemerally; anything else becomes "Something went wrong (ref …)" with the traceback logged under that ref."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error whose message is safe and useful to show the user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class InvalidInput(BotError):
    """The user's input cannot be used as given; the message says what to change. Nothing was charged."""


class NotAllowed(BotError):
    """The user may not do this here (permissions, channel rules, banned, disabled model)."""


class QuotaExceeded(BotError):
    """Not enough credits, or too many jobs running."""


class OutOfCredits(QuotaExceeded):
    """Not enough credits in the wallet the job draws on; ``personal``: the user's personal wallet (where credit
    packs go, so the refusal offers them)."""

    def __init__(self, user_message: str, *, personal: bool) -> None:
        super().__init__(user_message)
        self.personal = personal


class NotFound(BotError):
    """The job or record asked for does not exist or is not visible to this user."""


class ConfigError(Exception):
    """The configuration cannot work. ``setting`` names the offending setting; no value is ever included."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem
