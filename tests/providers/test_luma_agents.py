"""Luma Agents adapter: pure body/parse functions, HTTP against the fake, and the official SDK against the fake."""

from __future__ import annotations

import base64
import io
import logging
import uuid

import aiohttp
import luma_agents
import pytest
from PIL import Image

from providers._http import RetryPolicy, Timeouts
from providers.base import GenerationRequest, ImageInput, JobStatus, Kind, Provider
from providers.errors import (
    AmbiguousSubmitError,
    AuthError,
    InputImageError,
    InsufficientFundsError,
    InvalidRequestError,
    ModeratedError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
)
from providers.luma_agents import LumaAgentsProvider, _parse, _to_body
from tests.fakes.clock import ManualClock, RecordingSleep
from tests.fakes.media import image_bytes
from tests.fakes.providers._server import Outcome, Timing
from tests.fakes.providers.luma_agents import FAILURE_REASONS, FakeLumaAgents

PNG = ImageInput(image_bytes("png"), "image/png")
JPEG = ImageInput(image_bytes("jpeg"), "image/jpeg")
GEN_PATH = "/v1/generations"


def req(**kw: object) -> GenerationRequest:
    fields: dict[str, object] = {"kind": Kind.IMAGE, "prompt": "a red fox", "model": "uni-1"}
    fields.update(kw)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


def edit(**kw: object) -> GenerationRequest:
    kw.setdefault("source_image", PNG)
    return req(kind=Kind.IMAGE_EDIT, **kw)


def gen(state: str | None = "queued", **kw: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": "7c1f3a2e-5b8d-4e61-9a0f-2d4c6b8e1f90",
        "created_at": "2026-05-04T12:00:00.123456Z",
        "model": "uni-1",
        "type": "image",
    }
    if state is not None:
        data["state"] = state
    data.update(kw)
    return data


@pytest.fixture
async def fake():
    async with FakeLumaAgents() as server:
        server.timing = Timing(queued_s=0.0, processing_s=0.0)
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def provider(http_session, fake, sleep) -> LumaAgentsProvider:
    return make_provider(http_session, fake, sleep)


def make_provider(session, fake, sleep=None, **retry: object) -> LumaAgentsProvider:
    return LumaAgentsProvider(
        session,
        api_key=fake.api_key,
        base_url=fake.base_url,
        timeouts=Timeouts(connect_s=2, submit_s=retry.pop("submit_s", 2), fetch_s=2),  # type: ignore[arg-type]
        retry=RetryPolicy(**retry),  # type: ignore[arg-type]
        sleep=sleep or RecordingSleep(),
    )


# ===================================================================== capabilities
@pytest.mark.parametrize(("model", "duration"), [("uni-1", 20.0), ("uni-1-max", 35.0)])
def test_capabilities(model, duration):
    caps = LumaAgentsProvider(None, api_key="k").capabilities(model)  # type: ignore[arg-type]
    assert caps.kinds == {Kind.IMAGE, Kind.IMAGE_EDIT}
    assert caps.fields == {"aspect_ratio", "style", "output_format", "reference_images", "source_image", "web_search"}
    assert caps.aspect_ratios == ("3:1", "2:1", "16:9", "3:2", "1:1", "2:3", "9:16", "1:2", "1:3")
    assert caps.output_formats == ("png", "jpeg")
    assert caps.styles == ("auto", "manga")
    assert caps.max_reference_images == 9
    assert caps.prompt_max_length == 6000
    assert caps.typical_duration_s == duration


def test_contract_and_unknown_model():
    p = LumaAgentsProvider(None, api_key="luma-api-secret-xyz")  # type: ignore[arg-type]
    assert isinstance(p, Provider)
    assert p.name == "luma_agents"
    assert p.DEFAULT_BASE_URL == "https://agents.lumalabs.ai/v1"
    assert p.models == ("uni-1", "uni-1-max")
    with pytest.raises(KeyError):
        p.capabilities("ray-3.2")
    assert "secret" not in repr(p)
    assert "secret" not in repr(vars(p))


# ===================================================================== _to_body
PNG_REF = {"data": PNG.base64(), "media_type": "image/png"}
JPEG_REF = {"data": JPEG.base64(), "media_type": "image/jpeg"}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (req(), {"prompt": "a red fox", "model": "uni-1", "type": "image"}),
        (req(model="uni-1-max"), {"model": "uni-1-max"}),
        (req(aspect_ratio="16:9"), {"aspect_ratio": "16:9"}),
        (req(style="manga"), {"style": "manga"}),
        (req(output_format="jpeg"), {"output_format": "jpeg"}),
        (req(user_id="123456789012345678"), {"user_id": "123456789012345678"}),
        (req(web_search=True), {"web_search": True}),
        (req(web_search=False), {"web_search": False}),
        (req(reference_images=(PNG, JPEG)), {"image_ref": [PNG_REF, JPEG_REF]}),
        (edit(), {"type": "image_edit", "source": PNG_REF}),
        (edit(reference_images=(JPEG,) * 8), {"type": "image_edit", "source": PNG_REF, "image_ref": [JPEG_REF] * 8}),
        (req(reference_images=(PNG,) * 9), {"image_ref": [PNG_REF] * 9}),
        (req(prompt="x" * 6000), {"prompt": "x" * 6000}),
    ],
)
def test_to_body_fields(request_, expected):
    body = _to_body(request_)
    for key, value in expected.items():
        assert body[key] == value
    assert set(body) >= {"prompt", "model", "type"}


def test_to_body_omits_unset_and_undocumented_fields():
    body = _to_body(req(seed=4, size=(512, 512), steps=20, duration_s=5, guidance=3.5))
    assert body == {"prompt": "a red fox", "model": "uni-1", "type": "image"}


def test_to_body_sends_images_as_base64_not_urls():
    body = _to_body(edit(reference_images=(JPEG,)))
    assert base64.b64decode(body["source"]["data"]) == PNG.data
    assert base64.b64decode(body["image_ref"][0]["data"]) == JPEG.data
    assert "url" not in body["source"]


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (req(model="ray-3.2"), "not offered"),
        (req(kind=Kind.VIDEO), "images only"),
        (req(prompt=""), "Write a prompt"),
        (req(prompt="   "), "Write a prompt"),
        (req(prompt="x" * 6001), "6000 or fewer"),
        (req(aspect_ratio="21:9"), "3:1, 2:1, 16:9"),
        (req(style="anime"), "auto, manga"),
        (req(output_format="webp"), "png, jpeg"),
        (req(reference_images=(PNG,) * 10), "at most 9"),
        (edit(reference_images=(PNG,) * 9), "at most 8"),
        (req(kind=Kind.IMAGE_EDIT), "Attach the image"),
        (req(source_image=PNG), "edit command"),
        (req(user_id="u" * 257), "operator"),
    ],
)
def test_to_body_refusals(request_, says):
    with pytest.raises(InvalidRequestError) as info:
        _to_body(request_)
    assert says in info.value.user_message
    assert info.value.provider == "luma_agents"


def test_to_body_refuses_input_over_50_mb():
    big = ImageInput(b"\0" * 50_000_001, "image/png")
    with pytest.raises(InputImageError) as info:
        _to_body(edit(source_image=big))
    assert "50 MB" in info.value.user_message


# ===================================================================== _parse
@pytest.mark.parametrize(
    ("state", "status"),
    [("queued", JobStatus.QUEUED), ("processing", JobStatus.RUNNING), ("failed", JobStatus.FAILED)],
)
def test_parse_states(state, status):
    job = _parse(gen(state), request_id="req-1")
    assert job.status is status
    assert job.remote_id == "7c1f3a2e-5b8d-4e61-9a0f-2d4c6b8e1f90"
    assert job.upstream_status == state
    assert job.request_id == "req-1"


def test_parse_unknown_state_is_running_and_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="providers.luma_agents")
    state = f"upscaling-{uuid.uuid4().hex[:8]}"  # the "seen" set lives for the whole process
    assert _parse(gen(state)).status is JobStatus.RUNNING
    assert _parse(gen(state)).status is JobStatus.RUNNING
    assert _parse(gen(None)).status is JobStatus.RUNNING
    assert sum(state in r.getMessage() for r in caplog.records) == 1


def test_parse_completed_outputs():
    job = _parse(
        gen(
            "completed",
            output=[
                {"type": "image", "url": "https://b.s3.amazonaws.com/generations/x/0.png?X-Amz-Expires=3600"},
                {"type": "image", "url": "https://b.s3.amazonaws.com/generations/x/1.jpeg?X-Amz-Signature=s"},
                {"type": "image", "url": "https://cdn.example/opaque"},
                {"type": "image"},
            ],
            failure_code=None,
            failure_reason=None,
            extra_field={"ignored": True},
        )
    )
    assert job.status is JobStatus.SUCCEEDED
    assert [o.media_type for o in job.outputs] == ["image/png", "image/jpeg", None]
    assert job.outputs[0].url.endswith("0.png?X-Amz-Expires=3600")
    assert not any(o.nsfw for o in job.outputs)


@pytest.mark.parametrize("output", [None, [], [{"type": "image", "url": ""}]])
def test_parse_completed_without_output_is_retryable_failure(output):
    job = _parse(gen("completed", output=output))
    assert job.status is JobStatus.FAILED
    assert job.retryable
    assert "no image" in (job.failure_message or "")


@pytest.mark.parametrize(
    ("code", "retryable", "says"),
    [
        ("content_moderated", False, "Change the prompt or image"),
        ("generation_failed", True, "Trying again may work"),
        ("budget_exhausted", False, "run out of funds"),
        ("output_not_found", True, "Trying again may work"),
        ("image_too_large", False, "smaller image"),
        ("unsupported_format", False, "PNG or JPEG"),
        ("corrupt_input", False, "different PNG or JPEG"),
        ("invalid_request", False, "Change the prompt or options"),
        ("rate_limited", True, "try"),
        ("brand_new_code", False, "could not make this image"),
        (None, False, "could not make this image"),
    ],
)
def test_parse_failure_codes(code, retryable, says):
    job = _parse(gen("failed", failure_code=code, failure_reason="RAW upstream text", output=None))
    assert job.status is JobStatus.FAILED
    assert job.failure_code == code
    assert job.retryable is retryable
    assert says.lower() in (job.failure_message or "").lower()
    assert "RAW" not in (job.failure_message or "")


@pytest.mark.parametrize("data", [None, "oops", [], {"state": "queued"}, {"id": 5, "state": "queued"}])
def test_parse_malformed_raises_protocol_error(data):
    with pytest.raises(ProtocolError):
        _parse(data)


# ===================================================================== against the fake
async def test_submit_poll_download_png(provider, fake, http_session):
    state = await provider.submit(req(user_id="222333444555666777", aspect_ratio="16:9"))
    assert state.status is JobStatus.QUEUED
    assert state.request_id
    post = fake.requests_to("POST", GEN_PATH)[0]
    assert post.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert post.json == {"prompt": "a red fox", "model": "uni-1", "type": "image", "aspect_ratio": "16:9",
                         "user_id": "222333444555666777"}  # fmt: skip
    assert fake.created_bodies[0]["user_id"] == "222333444555666777"

    done = await provider.poll(state.remote_id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.upstream_status == "completed"
    assert done.request_id
    assert done.request_id != state.request_id
    (output,) = done.outputs
    assert output.media_type == "image/png"
    async with http_session.get(output.url) as resp:
        assert resp.status == 200
        image = Image.open(io.BytesIO(await resp.read()))
    assert image.format == "PNG"
    assert image.size == (64, 36)


async def test_edit_with_references_to_jpeg(provider, fake, http_session):
    state = await provider.submit(edit(model="uni-1-max", reference_images=(JPEG,), output_format="jpeg"))
    body = fake.created_bodies[0]
    assert body["type"] == "image_edit"
    assert base64.b64decode(body["source"]["data"]) == PNG.data
    done = await provider.poll(state.remote_id)
    async with http_session.get(done.outputs[0].url) as resp:
        assert Image.open(io.BytesIO(await resp.read())).format == "JPEG"
    assert done.outputs[0].media_type == "image/jpeg"


async def test_states_follow_the_timeline(provider, fake):
    clock = ManualClock()
    fake.clock = clock
    fake.timing = Timing(queued_s=2, processing_s=5)
    state = await provider.submit(req())
    assert (await provider.poll(state.remote_id)).status is JobStatus.QUEUED
    clock.advance(3)
    assert (await provider.poll(state.remote_id)).status is JobStatus.RUNNING
    clock.advance(5)
    assert (await provider.poll(state.remote_id)).status is JobStatus.SUCCEEDED


async def test_each_poll_gives_a_fresh_url_and_old_ones_expire(http_session):
    async with FakeLumaAgents(url_ttl_s=60) as fake:
        clock = ManualClock()
        fake.clock = clock
        fake.timing = Timing(0, 0)
        provider = make_provider(http_session, fake)
        remote_id = (await provider.submit(req())).remote_id
        first = (await provider.poll(remote_id)).outputs[0].url
        clock.advance(61)
        second = (await provider.poll(remote_id)).outputs[0].url
        assert first != second
        assert fake.issued_urls[remote_id] == [first, second]
        async with http_session.get(first) as resp:
            assert resp.status == 403
            assert "expired" in await resp.text()
        async with http_session.get(second) as resp:
            assert resp.status == 200


@pytest.mark.parametrize("code", list(FAILURE_REASONS))
async def test_failed_jobs_become_failed_states(provider, fake, code):
    fake.fail_next(code)
    remote_id = (await provider.submit(req())).remote_id
    job = await provider.poll(remote_id)
    assert job.status is JobStatus.FAILED
    assert job.failure_code == code
    assert job.retryable is (code in {"generation_failed", "output_not_found", "rate_limited"})
    assert FAILURE_REASONS[code] not in (job.failure_message or "")


async def test_moderation_message_tells_user_what_to_change(provider, fake):
    fake.fail_next("content_moderated")
    job = await provider.poll((await provider.submit(req())).remote_id)
    assert job.failure_message == ModeratedError.default_user_message


async def test_completed_without_output(provider, fake):
    fake.next_outcome(Outcome(outputs=0))
    job = await provider.poll((await provider.submit(req())).remote_id)
    assert job.status is JobStatus.FAILED
    assert job.retryable


async def test_undecodable_input_image_fails_async_with_corrupt_input(provider, fake):
    broken = ImageInput(b"definitely not a png", "image/png")
    state = await provider.submit(edit(source_image=broken))
    assert state.status is JobStatus.QUEUED
    job = await provider.poll(state.remote_id)
    assert (job.status, job.failure_code, job.retryable) == (JobStatus.FAILED, "corrupt_input", False)


async def test_concurrency_429_is_retried_then_raised(http_session, sleep):
    async with FakeLumaAgents(max_concurrent=1) as fake:
        fake.timing = Timing(queued_s=30, processing_s=30)
        provider = make_provider(http_session, fake, sleep)
        await provider.submit(req())
        with pytest.raises(RateLimitedError) as info:
            await provider.submit(req())
    assert info.value.detail == "Too many concurrent jobs"
    assert info.value.retry_after_s == 5
    assert info.value.retryable
    assert sleep.calls == [5.0, 5.0]
    assert len(fake.requests_to("POST", GEN_PATH)) == 4
    assert len(fake.jobs) == 1


async def test_rpm_429_with_long_retry_after_is_not_slept_on(http_session, sleep):
    async with FakeLumaAgents(rpm_limit=1) as fake:
        provider = make_provider(http_session, fake, sleep)
        await provider.submit(req())
        with pytest.raises(RateLimitedError) as info:
            await provider.submit(req())
    assert info.value.detail == "Rate limit exceeded"
    assert 55 <= (info.value.retry_after_s or 0) <= 60
    assert sleep.calls == []


async def test_429_then_success(provider, fake, sleep):
    fake.script("POST", GEN_PATH, status=429, json={"detail": "Rate limit exceeded"}, headers={"Retry-After": "12"})
    state = await provider.submit(req())
    assert state.status is JobStatus.QUEUED
    assert sleep.calls == [12.0]
    assert len(fake.jobs) == 1


async def test_fake_sends_documented_headers(http_session, fake):
    async with FakeLumaAgents(rpm_limit=30) as limited:
        headers = {"Authorization": f"Bearer {limited.api_key}", "X-Request-Id": "mine-1"}
        async with http_session.post(f"{limited.base_url}/generations", json={"prompt": "x"}, headers=headers) as r:
            assert r.status == 201
            assert r.headers["X-Request-Id"] == "mine-1"
            assert r.headers["X-API-Version"] == "2026-04-01"
            assert r.headers["X-RateLimit-Limit"] == "30"
            body = await r.json()
    assert body["state"] == "queued"
    assert body["output"] is None
    assert body["created_at"].endswith("Z")
    assert len(body["id"]) == 36


@pytest.mark.parametrize(
    ("script", "kwargs"),
    [
        ({"status": 502, "json": {"detail": "Upstream service unavailable"}, "after_handler": True}, {}),
        ({"status": 500, "text": "<html>Internal Server Error</html>", "after_handler": True}, {}),
        ({"drop": True, "after_handler": True}, {}),
        ({"delay_s": 1.0}, {"submit_s": 0.2}),
        ({"status": 201, "text": "<html>ok</html>", "after_handler": True}, {}),
        ({"status": 201, "json": {"state": "queued"}, "after_handler": True}, {}),
    ],
)
async def test_ambiguous_submit_is_sent_exactly_once(http_session, fake, script, kwargs):
    provider = make_provider(http_session, fake, **kwargs)
    fake.script("POST", GEN_PATH, **script)
    with pytest.raises(AmbiguousSubmitError) as info:
        await provider.submit(req())
    assert not info.value.retryable
    assert len(fake.requests_to("POST", GEN_PATH)) == 1
    if not script.get("delay_s"):
        assert len(fake.jobs) == 1  # it did exist upstream


async def test_poll_5xx_is_retried(provider, fake, sleep):
    remote_id = (await provider.submit(req())).remote_id
    fake.script("GET", f"{GEN_PATH}/{remote_id}", status=502, json={"detail": "Upstream service unavailable"})
    fake.script("GET", f"{GEN_PATH}/{remote_id}", status=503, text="<html>down</html>")
    job = await provider.poll(remote_id)
    assert job.status is JobStatus.SUCCEEDED
    assert sleep.calls == [0.5, 1.0]


async def test_poll_html_body_is_protocol_error(provider, fake):
    remote_id = (await provider.submit(req())).remote_id
    fake.script("GET", f"{GEN_PATH}/{remote_id}", status=200, text="<html>maintenance</html>", times=5)
    with pytest.raises(ProtocolError):
        await provider.poll(remote_id)


async def test_poll_unknown_id_is_not_found(provider, fake):
    with pytest.raises(NotFoundError) as info:
        await provider.poll("00000000-0000-0000-0000-000000000000")
    assert info.value.detail == "Generation not found"
    assert len(fake.requests) == 1


async def test_poll_quotes_the_id(provider, fake):
    with pytest.raises(NotFoundError):
        await provider.poll("../files")
    # Sent as ..%2Ffiles (the server records the decoded path); unquoted, it would have become /v1/files.
    assert fake.requests[0].path == f"{GEN_PATH}/../files"


@pytest.mark.parametrize(
    ("setup", "error", "detail"),
    [
        ("bad_key", AuthError, "Invalid or missing API key"),
        ("suspended", AuthError, "Access denied: API client is suspended"),
        ("insufficient_balance", InsufficientFundsError, "Insufficient balance"),
    ],
)
async def test_account_errors(http_session, fake, setup, error, detail):
    if setup == "bad_key":
        fake.api_key = "luma-api-other"
    else:
        setattr(fake, setup, True)
    provider = LumaAgentsProvider(http_session, api_key="luma-api-test-key", base_url=fake.base_url)
    with pytest.raises(error) as info:
        await provider.submit(req())
    assert info.value.detail == detail
    assert info.value.request_id
    assert detail not in info.value.user_message
    assert len(fake.jobs) == 0


async def test_upstream_422_is_invalid_request(provider, fake):
    fake.script("POST", GEN_PATH, status=422, json={"detail": [{"loc": ["body", "style"], "msg": "bad style"}]})
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req())
    assert info.value.detail == "style: bad style"
    assert info.value.status == 422


async def test_413_is_input_image_error(provider, fake):
    fake.script("POST", GEN_PATH, status=413, json={"detail": "Image exceeds 50 MB"})
    with pytest.raises(InputImageError):
        await provider.submit(edit())


async def test_refused_requests_never_reach_the_network(provider, fake):
    with pytest.raises(InvalidRequestError):
        await provider.submit(req(reference_images=(PNG,) * 10))
    assert fake.requests == []


# ===================================================================== the fake's own validation
async def _post(session: aiohttp.ClientSession, fake: FakeLumaAgents, body: object) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with session.post(f"{fake.base_url}/generations", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "prompt"]),
        ({"prompt": ""}, ["body", "prompt"]),
        ({"prompt": "x" * 6001}, ["body", "prompt"]),
        ({"prompt": "x", "style": "anime"}, ["body", "style"]),
        ({"prompt": "x", "model": "uni-2"}, ["body", "model"]),
        ({"prompt": "x", "output_format": "webp"}, ["body", "output_format"]),
        ({"prompt": "x", "aspect_ratio": "5:4"}, ["body", "aspect_ratio"]),
        ({"prompt": "x", "user_id": "u" * 257}, ["body", "user_id"]),
        ({"prompt": "x", "image_ref": [{"data": "aGk=", "url": "https://x/y.png"}]}, ["body", "image_ref", 0]),
        ({"prompt": "x", "image_ref": [{}]}, ["body", "image_ref", 0]),
        ({"prompt": "x", "type": "image_edit", "source": {"data": "aGk="}}, ["body", "source"]),
    ],
)
async def test_fake_schema_errors_use_fastapi_list(http_session, fake, body, loc):
    status, answer = await _post(http_session, fake, body)
    assert status == 422
    assert isinstance(answer, dict)
    assert answer["detail"][0]["loc"] == loc
    assert answer["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"prompt": "x", "type": "image_edit"}, "source is required"),
        ({"prompt": "x", "image_ref": [PNG_REF] * 10}, "at most 9"),
        ({"prompt": "x", "type": "image_edit", "source": PNG_REF, "image_ref": [PNG_REF] * 9}, "at most 8"),
        ({"prompt": "x", "aspect_ratio": "21:9"}, "not supported"),
        ({"prompt": "x", "model": "ray-3.2"}, "does not support"),
        ({"prompt": "x", "source": {"data": "!!!", "media_type": "image/png"}}, "Invalid base64"),
        ({"prompt": "x", "source": {"url": "ftp://x/y.png"}}, "Could not fetch image"),
    ],
)
async def test_fake_semantic_errors_use_string_detail(http_session, fake, body, says):
    status, answer = await _post(http_session, fake, body)
    assert status == 422
    assert isinstance(answer, dict)
    assert says in answer["detail"]


async def test_fake_accepts_the_limits(http_session, fake):
    ok = [
        {"prompt": "x" * 6000, "user_id": "u" * 256, "image_ref": [PNG_REF] * 9},
        {"prompt": "x", "type": "image_edit", "source": PNG_REF, "image_ref": [JPEG_REF] * 8, "web_search": True},
        {"prompt": "x", "source": {"url": "https://example.com/a.png"}},
    ]
    for body in ok:
        status, _ = await _post(http_session, fake, body)
        assert status == 201


# ===================================================================== fidelity: the official SDK against the fake
def sdk(fake: FakeLumaAgents, **kw: object) -> luma_agents.AsyncLuma:
    return luma_agents.AsyncLuma(auth_token=fake.api_key, base_url=fake.base_url, timeout=5, **kw)  # type: ignore[arg-type]


async def test_sdk_image_generation_to_completion(fake, http_session):
    async with sdk(fake) as client:
        created = await client.generations.create(
            prompt="a lighthouse", model="uni-1-max", aspect_ratio="9:16", style="manga", user_id="42", web_search=True
        )
        assert (created.state, created.type, created.model) == ("queued", "image", "uni-1-max")
        done = await client.generations.get(created.id)
    assert done.state == "completed"
    assert done.output
    assert done.output[0].type == "image"
    assert fake.created_bodies[0]["user_id"] == "42"
    async with http_session.get(done.output[0].url) as resp:
        assert Image.open(io.BytesIO(await resp.read())).size == (36, 64)


async def test_sdk_image_edit_and_failure(fake):
    fake.fail_next("content_moderated")
    async with sdk(fake) as client:
        created = await client.generations.create(
            prompt="make it night",
            type="image_edit",
            source={"data": PNG.base64(), "media_type": "image/png"},
            image_ref=[{"data": JPEG.base64(), "media_type": "image/jpeg"}],
            output_format="jpeg",
        )
        failed = await client.generations.get(created.id)
        raw = await client.generations.with_raw_response.get(created.id)
    assert (failed.state, failed.type, failed.failure_code) == ("failed", "image_edit", "content_moderated")
    assert failed.failure_reason
    assert raw.headers["X-API-Version"] == "2026-04-01"


async def test_sdk_typed_errors(fake):
    async with sdk(fake, max_retries=0) as client:
        with pytest.raises(luma_agents.UnprocessableEntityError) as unprocessable:
            await client.generations.create(prompt="x" * 6001)
        fake.max_concurrent = 0
        with pytest.raises(luma_agents.RateLimitError) as limited:
            await client.generations.create(prompt="x")
        fake.max_concurrent = None
        fake.insufficient_balance = True
        with pytest.raises(luma_agents.APIStatusError) as funds:
            await client.generations.create(prompt="x")
        with pytest.raises(luma_agents.NotFoundError):
            await client.generations.get("00000000-0000-0000-0000-000000000000")
    async with luma_agents.AsyncLuma(auth_token="luma-api-wrong", base_url=fake.base_url, max_retries=0) as client:
        with pytest.raises(luma_agents.AuthenticationError) as auth:
            await client.generations.get("x")
    assert unprocessable.value.body["detail"][0]["loc"] == ["body", "prompt"]  # type: ignore[index]
    assert limited.value.body == {"detail": "Too many concurrent jobs"}
    assert limited.value.response.headers["Retry-After"] == "5"
    assert funds.value.status_code == 402
    assert auth.value.body == {"detail": "Invalid or missing API key"}


async def test_sdk_default_retries_resend_post_after_5xx_but_adapter_does_not(fake, http_session, monkeypatch):
    fake.script(
        "POST", GEN_PATH, status=502, json={"detail": "Upstream service unavailable"}, after_handler=True, times=2
    )
    async with sdk(fake) as client:
        assert client.max_retries == 2
        monkeypatch.setattr(client, "_calculate_retry_timeout", lambda *a, **k: 0.0)  # skip the backoff sleeps
        created = await client.generations.create(prompt="a cat")
    assert len(fake.requests_to("POST", GEN_PATH)) == 3
    assert len(fake.jobs) == 3  # three billed generations for one call
    assert created.id in fake.jobs

    fake.requests.clear()
    fake.jobs.clear()
    fake.script("POST", GEN_PATH, status=502, json={"detail": "Upstream service unavailable"}, after_handler=True)
    with pytest.raises(AmbiguousSubmitError):
        await make_provider(http_session, fake).submit(req())
    assert len(fake.requests_to("POST", GEN_PATH)) == 1
    assert len(fake.jobs) == 1
