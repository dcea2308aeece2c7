"""/imagine end to end: the real discord.py client against the fake Discord, the real adapters against the fake
providers, a real SQLite file."""

from __future__ import annotations

import pytest

from tests.e2e.harness import bot_running, calls, delivered, latest_job_id


@pytest.mark.parametrize(
    ("model", "fake_name", "submit_path"),
    [
        ("neta-lumina", "wavespeed", "/api/v3/wavespeed-ai/neta-lumina"),
        ("uni-1", "luma_agents", "/v1/generations"),
        ("uni-1-max", "luma_agents", "/v1/generations"),
        ("kawaii-3d", "lumozai", "/api/v4/run"),
    ],
)
async def test_imagine_each_image_model(fake_discord, fakes, settings, model, fake_name, submit_path):
    async with bot_running(settings, fake_discord) as bot:
        record = await fake_discord.dispatch(
            fake_discord.slash_command("imagine", {"prompt": "a lighthouse at dusk --ar 16:9", "model": model})
        )
        job = await delivered(bot, await latest_job_id(bot))

    assert job.status == "succeeded", job.error_message
    assert job.model_key == model
    sequence = calls(fake_discord, record)
    # The answer to the command is the job's message: no receipt, no progress edit for a job this quick.
    assert sequence == [
        "POST /interactions/{id}/{token}/callback",  # defer, public: the "thinking" message is the job's message
        "PATCH /webhooks/{id}/{token}/messages/@original",  # the job's message, first shown
        "PATCH /webhooks/{id}/{token}/messages/@original",  # the result
    ]
    callback, first, _ = fake_discord.requests_for(record.token)
    assert callback.json == {"type": 5}
    assert f"Job #{job.id} · {job.cost} credit" in first.json["content"]  # the receipt's facts, on the message
    assert job.message_id == record.original_message_id
    final = fake_discord.requests_for(record.token)[-1]
    assert len(final.files) == 1
    assert final.files[0].data[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF")
    message = fake_discord.messages[job.message_id]
    assert message["attachments"][0]["filename"].startswith(f"job{job.id}_0")
    assert "a lighthouse at dusk" in message["content"]
    assert "--ar" not in message["content"]

    fake = getattr(fakes, fake_name)
    submits = fake.requests_to("POST", submit_path)
    assert len(submits) == 1
    body = submits[0].json or submits[0].form
    assert "--ar" not in str(body)
