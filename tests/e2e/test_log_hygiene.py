"""With LOG_LEVEL=DEBUG, a run through the real wiring (commands, attachments, buttons, a video) logs no
interaction token, no bot token and no provider key, however the line was produced."""

from __future__ import annotations

import io
import logging

from bot import log_redaction
from tests.e2e.commands_support import png, run
from tests.e2e.harness import bot_running


async def test_a_debug_run_logs_no_token_and_no_secret(fake_discord, fakes, settings):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    undo = log_redaction.install(log_redaction.configured_secrets(settings))
    try:
        async with bot_running(settings, fake_discord) as bot:
            _, image = await run(fake_discord, bot, "imagine", {"prompt": "a cat", "model": "uni-1"})
            _, edit = await run(
                fake_discord, bot, "edit", {"prompt": "bluer", "image": fake_discord.add_cdn_file("in.png", png())}
            )
            _, video = await run(fake_discord, bot, "video", {"prompt": "it moves"})
            record = await fake_discord.dispatch(fake_discord.button_click(f"gen:details:{image.id}", image.message_id))
            await fake_discord.wait_for(lambda r: r.interaction_token == record.token and r.method == "PATCH")
            logging.getLogger("bot.test").debug("job row %r", await bot.services.job_records.get(image.id))
    finally:
        undo()
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert (image.status, edit.status, video.status) == ("succeeded", "succeeded", "succeeded")
    text = stream.getvalue()
    assert text.count("\n") > 20  # the run did log at DEBUG
    tokens = [r.token for r in fake_discord.state.interactions.values()]
    assert len(tokens) >= 4
    secrets = [settings.discord_token.get_secret_value()] if settings.discord_token else []
    secrets += [block.api_key.get_secret_value() for block in settings.providers().values() if block.api_key]
    leaks = [t for t in tokens + secrets if t in text]
    assert leaks == []
    assert "INSERT INTO jobs" not in text  # aiosqlite's statement log stays off
