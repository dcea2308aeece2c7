"""``LOG_FORMAT=json``: one JSON object per line. Job, user and server ids become fields: from ``extra=`` when a
call passes them, else from the message's own words (``job 12``, ``user 34``, ``guild 56``), which is how the
bot's log lines name them. The redacting filter runs before this formatter, so what it sees is already masked."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

FIELDS = ("job_id", "user_id", "guild_id")
_FROM_MESSAGE = {
    "job_id": re.compile(r"\bjob #?(\d+)\b", re.IGNORECASE),
    "user_id": re.compile(r"\buser (\d{5,})\b", re.IGNORECASE),
    "guild_id": re.compile(r"\b(?:guild|server) (\d{5,})\b", re.IGNORECASE),
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                found = _FROM_MESSAGE[name].search(message)
                value = found.group(1) if found else None
            if value is not None:
                entry[name] = int(value) if str(value).isdigit() else value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)
