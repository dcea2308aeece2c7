"""Texts for people that an adapter gives (an error's ``user_message``, a failed job's ``failure_message``).

``providers/`` cannot import ``bot``, so a text is given as its English template, which is also its id in the bot's
catalogues (``bot/i18n``), and its parameters: ``msg("Keep it under {limit}.", limit=4000)``. As a ``str`` a
``Message`` is the English text with the parameters filled in (logs, tests, English readers); the bot renders it
in the reader's language. A parameter may itself be a ``Message`` (a word that is translated too).
``dump`` and ``load`` keep one in a text column (a failed job's message), so it can be rendered later in any
language; a plain string stays as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self


class Message(str):
    """A text for people: ``text`` (the English template, a literal) and ``params``; as a ``str``, the English."""

    text: str
    params: dict[str, Any]

    def __new__(cls, text: str, params: Mapping[str, Any] | None = None) -> Self:
        params = dict(params or {})
        self = super().__new__(cls, text.format(**params) if params else text)
        self.text = text
        self.params = params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.text, self.params))


def msg(text: str, /, **params: Any) -> Message:
    """A text for people in English, rendered in the reader's language by the bot. ``text`` must be a literal (a
    test collects them for the catalogues); values go in ``params``, never in the text."""
    return Message(text, params)


def dump(value: str) -> str:
    """``value`` for a text column: a ``Message`` with parameters as JSON, anything else as it is."""
    if isinstance(value, Message) and value.params:
        return json.dumps(_to_json(value), ensure_ascii=False, sort_keys=True)
    return str(value)


def load(stored: str) -> str:
    """What ``dump`` wrote: a ``Message`` again, or the plain string (also any text stored before messages had
    parameters)."""
    if not stored.startswith("{"):
        return stored
    try:
        data = json.loads(stored)
    except ValueError:
        return stored
    message = _from_json(data)
    return stored if message is None else message


def _to_json(message: Message) -> dict[str, Any]:
    params = {key: _param_to_json(value) for key, value in message.params.items()}
    return {"text": message.text, "params": params}


def _param_to_json(value: Any) -> Any:
    if isinstance(value, Message):
        return _to_json(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def _from_json(data: Any) -> Message | None:
    if not (isinstance(data, dict) and set(data) == {"text", "params"}):
        return None
    text, params = data["text"], data["params"]
    if not isinstance(text, str) or not isinstance(params, dict):
        return None
    try:
        return Message(text, {key: _param_from_json(value) for key, value in params.items()})
    except (KeyError, IndexError, ValueError):
        return None


def _param_from_json(value: Any) -> Any:
    message = _from_json(value)
    return value if message is None else message
