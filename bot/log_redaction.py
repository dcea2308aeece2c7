"""No secret and no token in any log line, at any level.

Two defences, installed by ``install`` on the root logger's handlers at start:

- Third-party loggers that print bound values or whole request URLs at DEBUG are capped, whatever ``LOG_LEVEL``
  says: ``aiosqlite`` prints every statement with its parameters (interaction tokens among them), ``discord``
  prints webhook URLs and gateway payloads (which carry interaction tokens), ``aiohttp.access`` echoes paths.
- ``RedactingFilter`` on every handler masks, in the message, its arguments, exception tracebacks and stack
  information: the configured secrets (every ``SecretStr`` in the settings) and anything shaped like a Discord
  token (interaction tokens, the token part of ``/webhooks/<id>/<token>`` and ``/interactions/<id>/<token>``
  paths, bot tokens).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Final

from pydantic import BaseModel, SecretStr

MASK: Final = "[redacted]"
MIN_SECRET_CHARS: Final = 6  # shorter configured "secrets" would mask ordinary words; none is that short

# Logger → the lowest level it may log at, whatever LOG_LEVEL says.
CAPPED_LOGGERS: Final = {
    "aiosqlite": logging.INFO,
    "discord": logging.INFO,
    "discord.http": logging.INFO,
    "discord.webhook": logging.INFO,
    "discord.gateway": logging.INFO,
    "aiohttp.access": logging.WARNING,
    "aiohttp.client": logging.INFO,
}

_TOKEN_PATTERNS: Final = (
    # Interaction tokens: base64 of "interaction:<id>:<random>" (and the fake's "aW50ZXJhY3Rpb24<id>_<random>").
    re.compile(r"aW50ZXJhY3Rpb24[A-Za-z0-9_\-+=]{16,}"),
    # The token segment of webhook and interaction-callback paths.
    re.compile(r"(?<=/webhooks/)(\d+/)[^/\s?#\"'<>]+"),
    re.compile(r"(?<=/interactions/)(\d+/)[^/\s?#\"'<>]+"),
    # The secret segment of the bot's own callback URLs (/callbacks/<provider>/<job id>/<secret>).
    re.compile(r"(?<=/callbacks/)([\w\-]+/\d+/)[^/\s?#\"'<>]+"),
    # Bot tokens: <base64 user id>.<timestamp>.<hmac>.
    re.compile(r"[A-Za-z0-9_\-]{24,}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,}"),
)


def configured_secrets(settings: BaseModel) -> list[str]:
    """The value of every ``SecretStr`` in ``settings``, nested blocks included."""
    found: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value().strip()
                if len(secret) >= MIN_SECRET_CHARS:
                    found.append(secret)
            elif isinstance(value, BaseModel):
                walk(value)

    walk(settings)
    return found


class Redactor:
    """Masks configured secrets and token-shaped values in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literal = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._secrets = re.compile("|".join(re.escape(s) for s in literal)) if literal else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        for pattern in _TOKEN_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + MASK, text)
        return text


class RedactingFilter(logging.Filter):
    """Rewrites each record with its message already formatted and redacted, and its traceback redacted."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown, never the raw arguments
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


def cap_noisy_loggers() -> Callable[[], None]:
    """Raise the capped loggers to their floor; returns a function that puts the old levels back (for tests)."""
    before = {name: logging.getLogger(name).level for name in CAPPED_LOGGERS}
    for name, floor in CAPPED_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), floor))

    def restore() -> None:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)

    return restore


def install(secrets: Iterable[str], *, root: logging.Logger | None = None) -> Callable[[], None]:
    """Cap the noisy loggers and put a ``RedactingFilter`` on every handler of ``root`` (default: the root logger).
    Returns a function that undoes both."""
    root = root or logging.getLogger()
    restore_levels = cap_noisy_loggers()
    redacting = RedactingFilter(Redactor(secrets))
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(redacting)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(redacting)
        restore_levels()

    return undo
