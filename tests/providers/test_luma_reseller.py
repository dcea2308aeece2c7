"""The relay's Luma "own format" video adapter: body building, parsing, and the HTTP paths against the fake relay."""

from __future__ import annotations

import logging

import pytest

from providers import luma_reseller
from providers._http import RetryPolicy, Timeouts
from providers.base import GenerationRequest, ImageInput, JobStatus, Kind
from providers.errors import (
    AmbiguousSubmitError,
    AuthError,
    InsufficientFundsError,
    InvalidRequestError,
    ModeratedError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    UnavailableError,
)
from providers.luma_reseller import LumaResellerProvider, _parse, _to_body
from tests.fakes.clock import ManualClock, RecordingSleep
from tests.fakes.media import image_bytes, mp4_bytes
from tests.fakes.providers._server import Outcome, Timing
from tests.fakes.providers.luma_reseller import SATURATED_MESSAGE, SUBMIT_PATH, FakeLumaReseller, task_path

# The doc's own examples (provider doc excerpt "Generate" and providers.md §2.4), copied verbatim.
DOC_REQUEST_EXAMPLE = {
    "user_prompt": "cat dance",
    "duration": "5s",
    "resolution": "1080p",
    "aspect_ratio": "16:9",
    "keyframes": {
        "frame0": {
            "type": "image",
            "url": "https://www.shutterstock.com/image-photo/beautifull-red-black-bengal-tiger-260nw-2526207017.jpg",
        }
    },
}
DOC_CREATED_EXAMPLE = {
    "created_at": "2024-07-22T12:47:28.553735Z",
    "estimate_wait_seconds": None,
    "id": "fc7fb008-7a5e-40ad-a7ff-dbb63db61be8",
    "last_frame": None,
    "liked": None,
    "prompt": "cat dance",
    "state": "pending",
    "thumbnail": None,
    "video": None,
}
DOC_PROCESSING_EXAMPLE = {
    "id": "9d4b7516-77e5-481a-b015-48313946f33b",
    "liked": None,
    "state": "processing",
    "video": None,
    "prompt": "cat dance",
    "created_at": "2024-07-01T07:35:13.498000Z",
    "estimate_wait_seconds": None,
}
WATERMARKED = "https://storage.cdn-luma.com/lit_lite_inference_v1.6-xl/5bf0/5f7c_watermarked_video05a8.mp4"
PRESIGNED = (
    "https://dc53a917a6f427706a8ca3ecc7d70ea4.r2.cloudflarestorage.com/ai-lumalabs-storage/x.mp4"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abc"
)
RAW = "https://storage.cdn-luma.com/raw/video.mp4"
DOC_COMPLETED_EXAMPLE = {
    "id": "32ec5549-7b7a-4111-a43b-445b3a89c8ef",
    "liked": None,
    "state": "completed",
    "video": {"url": WATERMARKED, "width": 752, "height": 1360, "download_url": PRESIGNED},
    "prompt": "cat dance",
    "thumbnail": {
        "url": "https://imagedelivery.net/1KomXrSWiTojGGip43n0SQ/e4268de5/public",
        "width": 752,
        "height": 1360,
    },
    "video_raw": {"url": RAW, "width": 752, "height": 1360},
    "created_at": "2024-10-15T08:53:20.123Z",
    "last_frame": {"url": "https://storage.cdn-luma.com/x/video_0_last_frame.jpg", "width": 752, "height": 1360},
    "queue_state": None,
    "estimate_wait_seconds": None,
}

START = ImageInput(image_bytes("png"), "image/png")
END = ImageInput(image_bytes("jpeg"), "image/jpeg")


def video(prompt: str = "cat dance", **kw) -> GenerationRequest:
    return GenerationRequest(kind=Kind.VIDEO, prompt=prompt, model=kw.pop("model", "luma"), **kw)


def completed(video_obj=None, **extra) -> dict:
    return {"id": "g1", "state": "completed", "video": video_obj, **extra}


# ----------------------------------------------------------------------------------------------- _to_body
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {}),
        ({"aspect_ratio": "9:21"}, {"aspect_ratio": "9:21"}),
        ({"loop": True}, {"loop": True}),
        ({"loop": False}, {"loop": False}),
        ({"enhance_prompt": True}, {"expand_prompt": True}),
        ({"enhance_prompt": False}, {"expand_prompt": False}),
        ({"duration_s": 5}, {"duration": "5s"}),
        ({"duration_s": 10}, {"duration": "10s"}),
        ({"resolution": "720p"}, {"resolution": "720p"}),
        ({"resolution": "1080p"}, {"resolution": "1080p"}),
        ({"start_frame": START}, {"image_url": START.data_uri()}),
        ({"end_frame": END}, {"image_end_url": END.data_uri()}),
        ({"start_frame": START, "end_frame": END}, {"image_url": START.data_uri(), "image_end_url": END.data_uri()}),
        # Fields this API does not document are never sent.
        ({"seed": 3, "steps": 20, "user_id": "42", "style": "x", "size": (64, 64)}, {}),
    ],
)
def test_to_body_fields(changes, expected):
    body = _to_body(video(**changes))
    assert body == {"user_prompt": "cat dance", "aspect_ratio": "16:9", "loop": False, **expected}
    assert "keyframes" not in body
    assert "notify_hook" not in body


def test_to_body_sends_frames_as_data_uris():
    body = _to_body(video(start_frame=START, end_frame=END))
    assert body["image_url"].startswith("data:image/png;base64,")
    assert body["image_end_url"].startswith("data:image/jpeg;base64,")


def test_to_body_model_name():
    assert _to_body(video(), model_name="ray-v2")["model_name"] == "ray-v2"
    assert "model_name" not in _to_body(video())


def test_to_body_keys_are_a_subset_of_the_documented_fields():
    documented = {
        "user_prompt", "aspect_ratio", "expand_prompt", "loop", "image_url", "image_end_url", "keyframes",
        "notify_hook", "duration", "resolution", "model_name",
    }  # fmt: skip
    body = _to_body(
        video(start_frame=START, end_frame=END, duration_s=5, resolution="1080p", loop=True, enhance_prompt=True),
        model_name="ray-v2",
    )
    assert set(body) <= documented
    assert set(DOC_REQUEST_EXAMPLE) - {"keyframes"} <= set(body)


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (GenerationRequest(kind=Kind.IMAGE, prompt="x", model="luma"), "only makes videos"),
        (GenerationRequest(kind=Kind.IMAGE_EDIT, prompt="x", model="luma"), "only makes videos"),
        (video(prompt="   "), "Write a prompt"),
        (video(aspect_ratio="2:1"), "16:9, 9:16, 1:1, 4:3, 3:4, 21:9, 9:21"),
        (video(duration_s=7), "5 or 10 seconds"),
        (video(duration_s=9), "5 or 10 seconds"),
        (video(resolution="4k"), "720p, 1080p"),
        (video(resolution="540p"), "720p, 1080p"),
        (video(reference_images=(START,)), "start frame"),
        (video(source_image=START), "start frame"),
    ],
)
def test_to_body_refusals(request_, fragment):
    with pytest.raises(InvalidRequestError) as info:
        _to_body(request_)
    assert fragment in info.value.user_message
    assert info.value.provider == "luma_reseller"


# ----------------------------------------------------------------------------------------------- _parse
@pytest.mark.parametrize(
    ("state", "status"),
    [("pending", JobStatus.QUEUED), ("processing", JobStatus.RUNNING), ("dreaming", JobStatus.RUNNING)],
)
def test_parse_running_states(state, status):
    job = _parse({"id": "g1", "state": state, "video": None, "estimate_wait_seconds": None})
    assert job.status is status
    assert job.upstream_status == state
    assert job.remote_id == "g1"
    assert job.poll_after_s is None


def test_parse_documented_examples():
    assert _parse(DOC_CREATED_EXAMPLE).status is JobStatus.QUEUED
    assert _parse(DOC_CREATED_EXAMPLE).remote_id == "fc7fb008-7a5e-40ad-a7ff-dbb63db61be8"
    assert _parse(DOC_PROCESSING_EXAMPLE).status is JobStatus.RUNNING
    done = _parse(DOC_COMPLETED_EXAMPLE)
    assert done.status is JobStatus.SUCCEEDED
    assert [(o.url, o.media_type) for o in done.outputs] == [(PRESIGNED, "video/mp4")]


def test_parse_unknown_state_is_logged_once(caplog):
    luma_reseller._unknown_states_seen.discard("rendering")
    with caplog.at_level(logging.WARNING, logger="providers.luma_reseller"):
        _parse({"id": "g1", "state": "rendering"})
        _parse({"id": "g1", "state": "rendering"})
    assert sum("rendering" in r.message for r in caplog.records) == 1


def test_parse_missing_state_is_running():
    assert _parse({"id": "g1"}).status is JobStatus.RUNNING


@pytest.mark.parametrize(("wait", "expected"), [(12, 12.0), (7.5, 7.5), (None, None), ("soon", None), (True, None)])
def test_parse_estimate_wait_seconds(wait, expected):
    assert _parse({"id": "g1", "state": "pending", "estimate_wait_seconds": wait}).poll_after_s == expected


@pytest.mark.parametrize(
    ("data", "url"),
    [
        (completed({"url": WATERMARKED, "download_url": PRESIGNED}, video_raw={"url": RAW}), PRESIGNED),
        (completed({"url": WATERMARKED, "download_url": ""}, video_raw={"url": RAW}), RAW),
        (completed({"url": WATERMARKED, "download_url": "  "}, video_raw={"url": RAW}), RAW),
        (completed({"url": WATERMARKED}, video_raw={"url": RAW}), RAW),
        (completed({"url": WATERMARKED, "download_url": None}, video_raw=None), WATERMARKED),
        (completed({"url": WATERMARKED}), WATERMARKED),
        (completed(None, artifact={"video": {"url": WATERMARKED, "download_url": PRESIGNED}}), PRESIGNED),
        (completed(None, artifact={"video": {"url": WATERMARKED}, "video_raw": {"url": RAW}}), RAW),
        (completed(WATERMARKED), WATERMARKED),
    ],
)
def test_parse_best_video_url(data, url):
    job = _parse(data)
    assert job.status is JobStatus.SUCCEEDED
    assert job.outputs[0].url == url
    assert job.outputs[0].media_type == "video/mp4"
    assert not job.outputs[0].nsfw


@pytest.mark.parametrize(
    "data",
    [
        completed(None),
        completed({"url": "", "download_url": ""}, video_raw={"url": None}),
        completed(None, artifact={"video": None, "video_raw": None}),
    ],
)
def test_parse_completed_without_url_is_retryable_failure(data):
    job = _parse(data)
    assert job.status is JobStatus.FAILED
    assert job.failure_code == "no_output"
    assert job.retryable
    assert "no video" in (job.failure_message or "")
    assert job.upstream_status == "completed"


@pytest.mark.parametrize(
    ("reason", "code", "retryable", "fragment"),
    [
        ("Generation failed", "generation_failed", True, "Trying again may work"),
        (None, "generation_failed", True, "Trying again may work"),
        ("400: prompt not allowed because advanced moderation failed", "moderated", False, "Change the prompt"),
        ("NSFW content detected", "moderated", False, "Change the prompt"),
        ("failed to load image from url", "input_image", False, "different image"),
    ],
)
def test_parse_failed(reason, code, retryable, fragment):
    job = _parse({"id": "g1", "state": "failed", "video": None, "failure_reason": reason})
    assert job.status is JobStatus.FAILED
    assert job.failure_code == code
    assert job.retryable is retryable
    assert fragment in (job.failure_message or "")
    assert reason is None or reason not in (job.failure_message or "")


def test_parse_moderated_uses_the_moderation_message():
    job = _parse({"id": "g1", "state": "failed", "failure_reason": "prompt not allowed"})
    assert job.failure_message == ModeratedError.default_user_message


@pytest.mark.parametrize("code", ["success", "", 0, 200, None])
def test_parse_wrapped_success(code):
    job = _parse({"code": code, "message": "", "request_id": "r-9", "data": DOC_COMPLETED_EXAMPLE})
    assert job.status is JobStatus.SUCCEEDED
    assert job.request_id == "r-9"
    assert job.outputs[0].url == PRESIGNED


def test_parse_mixed_envelope_reads_the_top_level_object():
    # One mirror documents the Luma fields at top level next to code/data{task_id,task_status}.
    body = {**DOC_CREATED_EXAMPLE, "code": 200, "data": {"task_id": "t", "task_status": "submitted"}}
    assert _parse(body).remote_id == DOC_CREATED_EXAMPLE["id"]


@pytest.mark.parametrize(
    ("body", "phase", "error"),
    [
        ({"code": "task_not_exist", "message": "task_not_exist", "data": None}, "fetch", NotFoundError),
        (
            {"code": "quota_not_enough", "message": "user quota is not enough", "data": None},
            "submit",
            InsufficientFundsError,
        ),
        ({"code": "invalid_request", "message": "bad", "data": None}, "submit", InvalidRequestError),
        ({"code": "fetch_task_failed", "message": "upstream", "data": None}, "fetch", UnavailableError),
        ({"code": 500, "message": "upstream error", "data": None}, "fetch", UnavailableError),
        ({"code": 401, "message": "bad key", "data": None}, "fetch", AuthError),
        ({"error": {"message": "无效的令牌", "type": "new_api_error", "code": ""}}, "submit", InvalidRequestError),
        ({"code": "success", "data": None}, "fetch", ProtocolError),
        ({"code": {"odd": 1}, "data": None}, "fetch", UnavailableError),
        ({"code": True, "data": DOC_CREATED_EXAMPLE}, "submit", InvalidRequestError),
        ({"foo": 1}, "fetch", ProtocolError),
        ([DOC_CREATED_EXAMPLE], "fetch", ProtocolError),
        ({"id": "g1", "state": "completed", "video": 3}, "fetch", ProtocolError),
    ],
)
def test_parse_envelope_errors_and_malformed_bodies(body, phase, error):
    with pytest.raises(error) as info:
        _parse(body, phase=phase)
    assert type(info.value) is error


def test_parse_uses_the_polled_id_when_the_body_has_none():
    assert _parse({"state": "processing"}, remote_id="abc").remote_id == "abc"
    with pytest.raises(ProtocolError):
        _parse({"state": "processing"})


# ----------------------------------------------------------------------------------------------- the class
def test_models_capabilities_and_repr():
    plain = LumaResellerProvider(None, api_key="sk-secret-1")  # type: ignore[arg-type]
    assert plain.models == ("luma",)
    assert LumaResellerProvider.DEFAULT_BASE_URL == "https://api.ephone.ai"
    caps = plain.capabilities("luma")
    assert caps.kinds == {Kind.VIDEO}
    assert caps.fields == {
        "aspect_ratio", "duration_s", "resolution", "loop", "enhance_prompt", "start_frame", "end_frame", "extend_of"
    }  # fmt: skip
    assert caps.aspect_ratios == ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
    assert caps.durations_s == (5, 10)
    assert caps.resolutions == ("720p", "1080p")
    assert caps.typical_duration_s == 150
    with pytest.raises(KeyError):
        plain.capabilities("ray-v2")
    ray = LumaResellerProvider(None, api_key="sk-secret-1", model_name="ray-v2")  # type: ignore[arg-type]
    assert ray.models == ("luma", "ray-v2")
    assert ray.capabilities("ray-v2") is caps
    for provider in (plain, ray):
        assert "sk-secret" not in repr(provider)
        assert "sk-secret" not in str(vars(provider))


# ----------------------------------------------------------------------------------------------- over HTTP
@pytest.fixture
async def fake():
    async with FakeLumaReseller() as server:
        server.clock = ManualClock()
        server.timing = Timing(queued_s=10, processing_s=60)
        yield server


@pytest.fixture
def sleep():
    return RecordingSleep()


def adapter(session, fake, sleep=None, *, key=None, submit_s=2.0, fetch_s=2.0, **kw) -> LumaResellerProvider:
    return LumaResellerProvider(
        session,
        api_key=key or fake.api_key,
        base_url=fake.base_url,
        timeouts=Timeouts(connect_s=2, submit_s=submit_s, fetch_s=fetch_s),
        retry=RetryPolicy(fetch_backoff_s=0.01),
        sleep=sleep or RecordingSleep(),
        **kw,
    )


async def download(session, url: str) -> tuple[int, str, bytes]:
    async with session.get(url) as resp:
        return resp.status, resp.content_type, await resp.read()


async def test_submit_poll_download(fake, http_session):
    provider = adapter(http_session, fake)
    job = await provider.submit(video(duration_s=5, resolution="1080p", start_frame=START, enhance_prompt=True))
    assert job.status is JobStatus.QUEUED
    assert job.upstream_status == "pending"
    assert job.request_id  # X-Oneapi-Request-Id
    sent = fake.requests_to("POST", SUBMIT_PATH)[0]
    assert sent.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert sent.json["image_url"] == START.data_uri()
    assert sent.json["duration"] == "5s"

    assert (await provider.poll(job.remote_id)).status is JobStatus.QUEUED
    fake.clock.advance(11)
    assert (await provider.poll(job.remote_id)).status is JobStatus.RUNNING
    fake.clock.advance(60)
    done = await provider.poll(job.remote_id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.upstream_status == "completed"
    url = done.outputs[0].url
    assert url == fake.generation(job.remote_id)["video"]["download_url"]
    assert "X-Amz-Expires=3600" in url
    status, content_type, data = await download(http_session, url)
    assert (status, content_type) == (200, "video/mp4")
    assert data == mp4_bytes()
    assert data[4:8] == b"ftyp"


async def test_thumbnail_and_last_frame_are_real_jpegs(fake, http_session):
    job = await adapter(http_session, fake).submit(video())
    fake.clock.advance(100)
    body = fake.generation(job.remote_id)
    for key in ("thumbnail", "last_frame"):
        status, content_type, data = await download(http_session, body[key]["url"])
        assert (status, content_type) == (200, "image/jpeg")
        assert data[:3] == b"\xff\xd8\xff"


async def test_fake_answers_in_the_documented_shapes(fake, http_session):
    await adapter(http_session, fake).submit(video(aspect_ratio="9:16"))
    created = fake.requests[0]
    assert created.method == "POST"
    async with http_session.post(
        fake.base_url + SUBMIT_PATH, json={"user_prompt": "cat dance", "aspect_ratio": "16:9", "loop": False},
        headers={"Authorization": f"Bearer {fake.api_key}"},
    ) as resp:  # fmt: skip
        assert resp.status == 201
        body = await resp.json()
    assert set(body) == set(DOC_CREATED_EXAMPLE)
    assert {k: v for k, v in body.items() if v is None} == {k: v for k, v in DOC_CREATED_EXAMPLE.items() if v is None}
    assert body["state"] == "pending"
    assert body["prompt"] == "cat dance"
    fake.clock.advance(11)
    assert set(DOC_PROCESSING_EXAMPLE) <= set(fake.generation(body["id"]))
    fake.clock.advance(60)
    done = fake.generation(body["id"])
    assert set(DOC_COMPLETED_EXAMPLE) <= set(done)
    for key in ("video", "thumbnail", "video_raw", "last_frame"):
        assert set(DOC_COMPLETED_EXAMPLE[key]) <= set(done[key])
    assert "_watermarked" in done["video"]["url"]


async def test_fake_accepts_the_documented_request_example(fake, http_session):
    async with http_session.post(
        fake.base_url + SUBMIT_PATH, json=DOC_REQUEST_EXAMPLE, headers={"Authorization": f"Bearer {fake.api_key}"}
    ) as resp:
        assert resp.status == 201


@pytest.mark.parametrize(
    "body",
    [
        {"aspect_ratio": "16:9"},
        {"user_prompt": ""},
        {"user_prompt": "x", "aspect_ratio": "2:1"},
        {"user_prompt": "x", "duration": "9s"},
        {"user_prompt": "x", "resolution": "4k"},
        {"user_prompt": "x", "loop": "yes"},
        {"user_prompt": "x", "image_url": "data:image/png;base64,@@@"},
    ],
)
async def test_fake_refuses_bad_bodies_like_the_relay(fake, http_session, body):
    async with http_session.post(
        fake.base_url + SUBMIT_PATH, json=body, headers={"Authorization": f"Bearer {fake.api_key}"}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == "invalid_request"
    assert fake.jobs == {}


async def test_wrapped_relay(fake, http_session):
    fake.wrapped = True
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    assert job.status is JobStatus.QUEUED
    fake.clock.advance(100)
    done = await provider.poll(job.remote_id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.outputs[0].url == fake.generation(job.remote_id)["video"]["download_url"]


async def test_submit_accepts_200(fake, http_session):
    fake.submit_status = 200
    assert (await adapter(http_session, fake).submit(video())).status is JobStatus.QUEUED


async def test_model_name_is_sent_only_for_the_configured_model(fake, http_session):
    provider = adapter(http_session, fake, model_name="ray-v2")
    await provider.submit(video(model="ray-v2"))
    await provider.submit(video(model="luma"))
    first, second = (r.json for r in fake.requests_to("POST", SUBMIT_PATH))
    assert first["model_name"] == "ray-v2"
    assert "model_name" not in second
    with pytest.raises(InvalidRequestError):
        await provider.submit(video(model="ray-v3"))
    assert len(fake.requests) == 2


async def test_refused_request_never_reaches_the_relay(fake, http_session):
    with pytest.raises(InvalidRequestError):
        await adapter(http_session, fake).submit(video(duration_s=9))
    assert fake.requests == []


@pytest.mark.parametrize(
    ("mode", "raw", "pick"), [("empty", True, "raw"), ("missing", True, "raw"), ("empty", False, "watermarked")]
)
async def test_download_url_fallbacks(fake, http_session, mode, raw, pick):
    fake.download_url = mode
    fake.include_video_raw = raw
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.clock.advance(100)
    done = await provider.poll(job.remote_id)
    body = fake.generation(job.remote_id)
    expected = body["video_raw"]["url"] if pick == "raw" else body["video"]["url"]
    assert done.outputs[0].url == expected
    assert (await download(http_session, expected))[2] == mp4_bytes()
    assert fake.requests_to("GET", r".*/download_video_url") == []


async def test_urls_only_under_artifact(fake, http_session):
    fake.artifact_only = True
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.clock.advance(100)
    done = await provider.poll(job.remote_id)
    assert done.outputs[0].url == fake.generation(job.remote_id)["artifact"]["video"]["download_url"]


async def test_completed_without_url_uses_the_no_mark_endpoint(fake, http_session):
    fake.download_url = "missing"
    fake.include_video_raw = False
    fake.include_video_url = False
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.clock.advance(100)
    done = await provider.poll(job.remote_id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.failure_code is None
    assert len(fake.requests_to("GET", task_path(job.remote_id) + "/download_video_url")) == 1
    status, _, data = await download(http_session, done.outputs[0].url)
    assert (status, data) == (200, mp4_bytes())


async def test_completed_without_url_and_no_mark_refused_is_retryable_failure(fake, http_session):
    fake.download_url = "missing"
    fake.include_video_raw = False
    fake.include_video_url = False
    fake.no_mark_available = False
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.clock.advance(100)
    done = await provider.poll(job.remote_id)
    assert done.status is JobStatus.FAILED
    assert done.failure_code == "no_output"
    assert done.retryable


async def test_no_mark_endpoint_answers_400_until_completed(fake, http_session):
    job = await adapter(http_session, fake).submit(video())
    url = fake.base_url + task_path(job.remote_id) + "/download_video_url"
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with http_session.get(url, headers=headers) as resp:
        assert resp.status == 400
    fake.clock.advance(100)
    async with http_session.get(url, headers=headers) as resp:
        assert resp.status == 200
        assert "X-Amz-Expires=3600" in (await resp.json())["url"]


async def test_download_url_expires_like_a_presigned_url(fake, http_session):
    fake.download_ttl_s = 30
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.clock.advance(100)
    url = (await provider.poll(job.remote_id)).outputs[0].url
    assert (await download(http_session, url))[0] == 200
    fake.clock.advance(31)
    assert (await download(http_session, url))[0] == 403


async def test_failed_job(fake, http_session):
    fake.next_outcome(Outcome(success=False, failure="Internal error: job crashed on worker 7"))
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.clock.advance(100)
    failed = await provider.poll(job.remote_id)
    assert failed.status is JobStatus.FAILED
    assert failed.failure_code == "generation_failed"
    assert failed.retryable
    assert "worker 7" not in (failed.failure_message or "")
    assert failed.upstream_status == "failed"


async def test_moderated_job(fake, http_session):
    fake.next_outcome(Outcome(success=False, failure="400: prompt not allowed because advanced moderation failed"))
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.clock.advance(100)
    failed = await provider.poll(job.remote_id)
    assert (failed.failure_code, failed.retryable) == ("moderated", False)


async def test_estimate_wait_seconds_becomes_poll_hint(fake, http_session):
    fake.estimate_wait_seconds = 42
    job = await adapter(http_session, fake).submit(video())
    assert job.poll_after_s == 42


async def test_submit_429_saturation_is_retried_after_retry_after(fake, http_session, sleep):
    fake.saturate(retry_after=3, times=2)
    job = await adapter(http_session, fake, sleep).submit(video())
    assert job.status is JobStatus.QUEUED
    assert sleep.calls == [3.0, 3.0]
    assert len(fake.requests_to("POST", SUBMIT_PATH)) == 3
    assert len(fake.jobs) == 1


async def test_submit_429_saturation_gives_up(fake, http_session):
    fake.saturate(retry_after=1, times=5)
    with pytest.raises(RateLimitedError) as info:
        await adapter(http_session, fake).submit(video())
    assert info.value.retry_after_s == 1
    assert info.value.detail == SATURATED_MESSAGE
    assert info.value.retryable
    assert len(fake.requests_to("POST", SUBMIT_PATH)) == 3


@pytest.mark.parametrize(
    "script",
    [
        {"status": 500, "text": "<html>500 Internal Server Error</html>"},
        {"status": 502, "json": {"code": "do_request_failed", "message": "upstream error", "data": None}},
        {"status": 524, "text": "<html>cloudflare timeout</html>"},
        {"drop": True},
        {"status": 201, "text": "<html>ok</html>"},
        {"status": 201, "json": {"created_at": "2024-07-22T12:47:28Z", "state": "pending"}},
        {"status": 201, "json": {"code": "success", "message": "", "data": None}},
    ],
)
async def test_submit_ambiguous_is_never_resent(fake, http_session, script):
    fake.script("POST", SUBMIT_PATH, after_handler=True, **script)
    with pytest.raises(AmbiguousSubmitError) as info:
        await adapter(http_session, fake).submit(video())
    assert not info.value.retryable
    assert len(fake.requests_to("POST", SUBMIT_PATH)) == 1
    assert len(fake.jobs) == 1


async def test_submit_timeout_is_ambiguous(fake, http_session):
    fake.script("POST", SUBMIT_PATH, delay_s=1.0, after_handler=True)
    with pytest.raises(AmbiguousSubmitError):
        await adapter(http_session, fake, submit_s=0.2).submit(video())
    assert len(fake.requests_to("POST", SUBMIT_PATH)) == 1


async def test_bad_token_is_auth_error(fake, http_session):
    with pytest.raises(AuthError) as info:
        await adapter(http_session, fake, key="sk-wrong-key").submit(video())
    assert info.value.status == 401
    assert "无效的令牌" in info.value.detail
    assert "sk-wrong" not in str(info.value)
    assert "sk-wrong" not in info.value.user_message


@pytest.mark.parametrize(
    ("kind", "status", "code", "error"),
    [
        ("relay", 403, "quota_not_enough", InsufficientFundsError),
        ("middleware", 403, "insufficient_user_quota", InsufficientFundsError),
        ("middleware", 403, "", AuthError),  # disabled token
        ("relay", 400, "invalid_request", InvalidRequestError),
        ("middleware", 429, "", RateLimitedError),
    ],
)
async def test_submit_relay_error_shapes(fake, http_session, kind, status, code, error):
    if kind == "relay":
        fake.relay_error("POST", SUBMIT_PATH, status=status, code=code, message="nope", times=5)
    else:
        fake.middleware_error("POST", SUBMIT_PATH, status=status, message="nope", code=code, times=5)
    with pytest.raises(error) as info:
        await adapter(http_session, fake).submit(video())
    assert type(info.value) is error
    assert info.value.status == status
    assert info.value.code == (code or None)
    assert "nope" not in info.value.user_message


async def test_submit_200_with_error_code_is_an_error(fake, http_session):
    fake.wrapped_error("POST", SUBMIT_PATH, code="invalid_request", message="model_name not supported")
    with pytest.raises(InvalidRequestError) as info:
        await adapter(http_session, fake).submit(video())
    assert info.value.code == "invalid_request"
    assert fake.jobs == {}


@pytest.mark.parametrize("status", [400, 404])
async def test_poll_unknown_task_is_not_found(fake, http_session, status):
    fake.not_found_status = status
    with pytest.raises(NotFoundError) as info:
        await adapter(http_session, fake).poll("00000000-0000-0000-0000-000000000000")
    assert info.value.code == "task_not_exist"
    assert len(fake.requests) == 1


async def test_poll_200_with_error_code(fake, http_session):
    fake.wrapped_error("GET", task_path("x"), code="task_not_exist", message="task_not_exist")
    with pytest.raises(NotFoundError):
        await adapter(http_session, fake).poll("x")


async def test_poll_retries_5xx_and_429(fake, http_session, sleep):
    provider = adapter(http_session, fake, sleep)
    job = await provider.submit(video())
    fake.script("GET", task_path(job.remote_id), status=502, text="<html>bad gateway</html>")
    fake.saturate("GET", task_path(job.remote_id), retry_after=2)
    state = await provider.poll(job.remote_id)
    assert state.status is JobStatus.QUEUED
    assert sleep.calls == [0.01, 2.0]
    assert len(fake.requests_to("GET", task_path(job.remote_id))) == 3


async def test_poll_gives_up_on_persistent_5xx(fake, http_session):
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.relay_error("GET", task_path(job.remote_id), status=500, code="fetch_task_failed", times=10)
    with pytest.raises(UnavailableError):
        await provider.poll(job.remote_id)


@pytest.mark.parametrize("script", [{"text": "<html>maintenance</html>"}, {"json": ["not", "an", "object"]}])
async def test_poll_unreadable_body_is_protocol_error(fake, http_session, script):
    provider = adapter(http_session, fake)
    job = await provider.submit(video())
    fake.script("GET", task_path(job.remote_id), status=200, times=10, **script)
    with pytest.raises(ProtocolError):
        await provider.poll(job.remote_id)


async def test_poll_timeout_is_unavailable(fake, http_session):
    provider = adapter(http_session, fake, fetch_s=0.1)
    job = await provider.submit(video())
    fake.script("GET", task_path(job.remote_id), delay_s=0.5, times=5)
    with pytest.raises(UnavailableError):
        await provider.poll(job.remote_id)
