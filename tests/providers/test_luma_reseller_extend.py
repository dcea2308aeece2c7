"""The relay's extend call (``POST /luma/generations/{id}/extend``) against the fake relay: the documented body,
the same answer as a submit, and a refusal for a video the relay cannot extend told as such."""

from __future__ import annotations

import pytest

from providers._http import RetryPolicy, Timeouts
from providers.base import GenerationRequest, JobStatus, Kind
from providers.errors import InvalidRequestError
from providers.luma_reseller import LumaResellerProvider
from tests.fakes.clock import ManualClock, RecordingSleep
from tests.fakes.providers._server import Timing
from tests.fakes.providers.luma_reseller import SUBMIT_PATH, FakeLumaReseller


@pytest.fixture
async def fake():
    async with FakeLumaReseller() as server:
        server.clock = ManualClock()
        server.timing = Timing(queued_s=0, processing_s=10)
        yield server


def adapter(session, fake) -> LumaResellerProvider:
    return LumaResellerProvider(
        session,
        api_key=fake.api_key,
        base_url=fake.base_url,
        timeouts=Timeouts(connect_s=2, submit_s=2, fetch_s=2),
        retry=RetryPolicy(fetch_backoff_s=0.01),
        sleep=RecordingSleep(),
    )


def video(prompt: str, **kw) -> GenerationRequest:
    return GenerationRequest(kind=Kind.VIDEO, prompt=prompt, model="luma", **kw)


async def test_extend_sends_the_documented_fields_and_is_followed_like_a_submit(fake, http_session):
    provider = adapter(http_session, fake)
    original = await provider.submit(video("a cat", aspect_ratio="9:16", duration_s=10, loop=True))
    fake.clock.advance(11)
    assert (await provider.poll(original.remote_id)).status is JobStatus.SUCCEEDED

    request = video("the cat jumps", aspect_ratio="9:16", enhance_prompt=False, extend_of=original.remote_id)
    extension = await provider.submit(request)
    assert extension.status is JobStatus.RUNNING  # queued_s=0: straight to "processing"
    assert extension.remote_id != original.remote_id
    assert extension.request_id
    [sent] = fake.requests_to("POST", f"{SUBMIT_PATH}/{original.remote_id}/extend")
    assert sent.json == {"user_prompt": "the cat jumps", "expand_prompt": False}  # no shape: it continues one
    assert len(fake.requests_to("POST", SUBMIT_PATH)) == 1  # the original only
    fake.clock.advance(11)
    done = await provider.poll(extension.remote_id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.outputs[0].media_type == "video/mp4"
    assert await provider.extend(original.remote_id, video("and again")) is not None  # the explicit call
    hook = "https://bot.example.com/callbacks/luma-reseller/7/secret"
    await provider.extend(original.remote_id, video("with a callback", callback_url=hook))
    assert fake.requests_to("POST", f"{SUBMIT_PATH}/{original.remote_id}/extend")[-1].json["notify_hook"] == hook


@pytest.mark.parametrize("known", [False, True])
async def test_a_video_the_relay_cannot_extend_is_a_clear_refusal(fake, http_session, known):
    provider = adapter(http_session, fake)
    task_id = "no-such-task"
    if known:  # still running: not extendable yet
        task_id = (await provider.submit(video("a cat"))).remote_id
    with pytest.raises(InvalidRequestError) as caught:
        await provider.submit(video("more", extend_of=task_id))
    assert not caught.value.retryable
    assert "can no longer extend this video" in caught.value.user_message


async def test_an_empty_prompt_is_refused_before_the_relay(fake, http_session):
    provider = adapter(http_session, fake)
    with pytest.raises(InvalidRequestError) as caught:
        await provider.submit(video("  ", extend_of="abc"))
    assert "describing how the video goes on" in caught.value.user_message
    assert fake.requests == []
