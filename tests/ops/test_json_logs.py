"""LOG_FORMAT=json: every line is one JSON object, ids are fields, secrets and tokens stay masked."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import logging
    from bot.__main__ import configure_logging
    configure_logging("INFO", ["sk-very-secret-key"], "json")
    log = logging.getLogger("bot.jobs.runner")
    log.info("job %s submitted to %s as %s", 42, "wavespeed", "remote-1")
    log.warning("refused for user %s in guild %s", 123456789012, 987654321098)
    log.info("explicit", extra={"job_id": 7, "user_id": 11, "guild_id": 0})
    log.info("key %s leaked?\\nsecond line", "sk-very-secret-key")
    try:
        raise RuntimeError("boom with sk-very-secret-key")
    except RuntimeError:
        log.exception("job %s: failed", 43)
    """
)


def test_json_logs_parse_line_by_line_with_ids_as_fields_and_secrets_masked():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stderr.splitlines()
    entries = [json.loads(line) for line in lines]  # every line parses on its own
    assert len(entries) == 5
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    submitted, refused, explicit, leaked, failed = entries
    assert submitted["job_id"] == 42
    assert submitted["logger"] == "bot.jobs.runner"
    assert refused["user_id"] == 123456789012
    assert refused["guild_id"] == 987654321098
    assert refused["level"] == "WARNING"
    assert (explicit["job_id"], explicit["user_id"], explicit["guild_id"]) == (7, 11, 0)
    assert "second line" in leaked["message"]
    assert failed["job_id"] == 43
    assert "RuntimeError" in failed["exception"]
    assert "sk-very-secret-key" not in result.stderr
