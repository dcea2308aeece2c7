"""Lumozai flux-cute-3d-kawaii: body building, response parsing, and the adapter against the fake over real HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math

import aiohttp
import pytest
from PIL import Image

from providers import lumozai
from providers._http import RetryPolicy, Timeouts
from providers.base import GenerationRequest, ImageInput, JobStatus, Kind, Provider
from providers.errors import (
    AmbiguousSubmitError,
    AuthError,
    InsufficientFundsError,
    InvalidRequestError,
    ModeratedError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
)
from providers.lumozai import LumozaiProvider, _number, _parse, _to_body
from tests.fakes.clock import RecordingSleep
from tests.fakes.providers._server import Outcome
from tests.fakes.providers.lumozai import FIRST_REQUEST_ID, FakeLumozai

MODEL = "flux-cute-3d-kawaii"
URL = "https://lumozai.com/storage/outputs/image_12345.jpg"


def req(**changes: object) -> GenerationRequest:
    return GenerationRequest(kind=Kind.IMAGE, prompt="a cat", model=MODEL).replace(**changes)


# ============================================================================ _to_body


def test_to_body_minimal_sends_only_the_required_fields():
    assert _to_body(req()) == {"model_id": MODEL, "prompt": "Cute 3d Kawaii, a cat", "aspect_ratio": "1:1"}


@pytest.mark.parametrize(
    ("changes", "key", "value"),
    [
        ({"aspect_ratio": "16:9"}, "aspect_ratio", "16:9"),
        ({"aspect_ratio": "9:21"}, "aspect_ratio", "9:21"),
        ({"prompt_strength": 0.8}, "prompt_strength", "0.8"),
        ({"prompt_strength": 1.0}, "prompt_strength", "1"),
        ({"steps": 28}, "num_inference_steps", "28"),
        ({"guidance": 3.5}, "guidance", "3.5"),
        ({"guidance": 3.0}, "guidance", "3"),
        ({"guidance": 0}, "guidance", "0"),
        ({"seed": 42}, "seed", "42"),
        ({"seed": 0}, "seed", "0"),
        ({"seed": 2147483647}, "seed", "2147483647"),
        ({"output_format": "webp"}, "output_format", "webp"),
        ({"output_format": "png"}, "output_format", "png"),
        ({"output_format": "jpeg"}, "output_format", "jpg"),
        ({"output_format": "JPG"}, "output_format", "jpg"),
        ({"quality": 80}, "output_quality", "80"),
        ({"quality": 0}, "output_quality", "0"),
        ({"lora_scale": 1.0}, "lora_scale", "1"),
        ({"lora_scale": -0.5}, "lora_scale", "-0.5"),
        ({"lora_scale": 3}, "lora_scale", "3"),
        ({"megapixels": "1"}, "megapixels", "1"),
        ({"megapixels": "0.25"}, "megapixels", "0.25"),
    ],
)
def test_to_body_fields(changes, key, value):
    body = _to_body(req(**changes))
    assert body[key] == value
    assert set(body) == {"model_id", "prompt", "aspect_ratio", key}


def test_to_body_all_fields_like_the_docs_sample():
    body = _to_body(
        req(
            aspect_ratio="1:1",
            prompt_strength=0.8,
            steps=28,
            guidance=3,
            seed=7,
            output_format="webp",
            quality=80,
            lora_scale=1,
            megapixels="1",
        )
    )
    assert body == {
        "model_id": MODEL,
        "prompt": "Cute 3d Kawaii, a cat",
        "aspect_ratio": "1:1",
        "prompt_strength": "0.8",
        "num_inference_steps": "28",
        "guidance": "3",
        "seed": "7",
        "output_format": "webp",
        "output_quality": "80",
        "lora_scale": "1",
        "megapixels": "1",
    }
    assert "api_key" not in body
    assert "webhook" not in body


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [
        ("a cat", "Cute 3d Kawaii, a cat"),
        ("  a cat on a cloud  ", "Cute 3d Kawaii, a cat on a cloud"),
        ("Cute 3d Kawaii, a cat", "Cute 3d Kawaii, a cat"),
        ("a CUTE 3D KAWAII cat", "a CUTE 3D KAWAII cat"),
    ],
)
def test_to_body_trigger_phrase(prompt, sent):
    assert _to_body(req(prompt=prompt))["prompt"] == sent


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"kind": Kind.VIDEO}, "image"),
        ({"kind": Kind.IMAGE_EDIT}, "image"),
        ({"reference_images": (ImageInput(b"x", "image/png"),)}, "image"),
        ({"source_image": ImageInput(b"x", "image/png")}, "image"),
        ({"prompt": "   "}, "prompt"),
        ({"model": "flux-dev"}, ""),
        ({"aspect_ratio": "7:5"}, "aspect_ratio"),
        ({"steps": 0}, "steps"),
        ({"steps": 51}, "steps"),
        ({"guidance": -0.1}, "guidance"),
        ({"guidance": 10.5}, "guidance"),
        ({"guidance": math.nan}, "guidance"),
        ({"quality": 101}, "quality"),
        ({"quality": -1}, "quality"),
        ({"lora_scale": 3.5}, "lora_scale"),
        ({"lora_scale": -1.5}, "lora_scale"),
        ({"prompt_strength": 1.2}, "prompt_strength"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"output_format": "gif"}, "output_format"),
        ({"megapixels": "2"}, "megapixels"),
    ],
)
def test_to_body_refusals(changes, mentions):
    with pytest.raises(InvalidRequestError) as info:
        _to_body(req(**changes))
    assert mentions in info.value.user_message


@pytest.mark.parametrize(
    "changes",
    [
        {"steps": 1},
        {"steps": 50},
        {"guidance": 10},
        {"lora_scale": -1},
        {"quality": 100},
        {"prompt_strength": 0},
        {"size": (512, 512)},  # not a field of this model: ignored
    ],
)
def test_to_body_accepts_range_edges(changes):
    _to_body(req(**changes))


@pytest.mark.parametrize(("value", "text"), [(3.0, "3"), (0.8, "0.8"), (1e-05, "0.00001"), (-1, "-1"), (28, "28")])
def test_number_is_plain(value, text):
    assert _number(value) == text


def test_capabilities(http_session):
    provider = LumozaiProvider(http_session, api_key="k")
    assert isinstance(provider, Provider)
    assert provider.models == (MODEL,)
    caps = provider.capabilities(MODEL)
    assert caps.kinds == {Kind.IMAGE}
    assert caps.aspect_ratios[0] == "1:1"
    assert len(caps.aspect_ratios) == 11
    assert caps.output_formats == ("webp", "jpg", "png")
    assert caps.megapixels == ("1", "0.25")
    assert caps.steps_range == (1, 50)
    assert caps.guidance_range == (0, 10)
    assert caps.quality_range == (0, 100)
    assert caps.lora_scale_range == (-1, 3)
    assert caps.prompt_strength_range == (0, 1)
    assert caps.seed_range == (0, 2147483647)
    assert caps.fields <= set(GenerationRequest.__dataclass_fields__)
    with pytest.raises(KeyError):
        provider.capabilities("flux-dev")


def test_defaults_and_repr_hide_the_key(http_session):
    provider = LumozaiProvider(http_session, api_key="sk-secret-123")
    assert provider._http.timeouts.submit_s >= 180
    assert provider._http.base_url == "https://lumozai.com"
    assert "sk-secret" not in repr(provider)
    assert "sk-secret" not in str(vars(provider))


# ============================================================================ _parse


def test_parse_full_success():
    state = _parse(
        {"success": True, "data": {"request_id": 212121212121212, "output": URL, "output_type": "image"}},
        request_id="hdr-1",
    )
    assert state.status is JobStatus.SUCCEEDED
    assert state.remote_id == "212121212121212"
    assert state.request_id == "hdr-1"
    assert [(o.url, o.media_type) for o in state.outputs] == [(URL, "image/jpeg")]


def test_parse_reduced_success_gets_a_local_id():
    first = _parse({"success": True, "data": {"output": URL}})
    second = _parse({"success": True, "data": {"output": URL}})
    assert first.status is JobStatus.SUCCEEDED
    assert first.remote_id.startswith("sync-")
    assert first.remote_id != second.remote_id


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("https://x/storage/outputs/a.webp", [("https://x/storage/outputs/a.webp", "image/webp")]),
        ("https://x/a.PNG?sig=1", [("https://x/a.PNG?sig=1", "image/png")]),
        ("https://x/a.jpeg", [("https://x/a.jpeg", "image/jpeg")]),
        ("https://x/a", [("https://x/a", None)]),
        (["https://x/a.png", "https://x/b.jpg"], [("https://x/a.png", "image/png"), ("https://x/b.jpg", "image/jpeg")]),
        ([{"url": "https://x/a.webp"}], [("https://x/a.webp", "image/webp")]),
    ],
)
def test_parse_output_shapes(output, expected):
    state = _parse({"success": True, "data": {"request_id": 1, "output": output}})
    assert [(o.url, o.media_type) for o in state.outputs] == expected


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"request_id": 5}, JobStatus.RUNNING),
        ({"request_id": "5"}, JobStatus.RUNNING),
        ({"request_id": 5, "output": ""}, JobStatus.RUNNING),
        ({"request_id": 5, "output": None}, JobStatus.RUNNING),
        ({"request_id": 5, "status": "pending"}, JobStatus.QUEUED),
        ({"request_id": 5, "status": "queued"}, JobStatus.QUEUED),
        ({"request_id": 5, "status": "processing"}, JobStatus.RUNNING),
        ({"request_id": 5, "status": "RUNNING"}, JobStatus.RUNNING),
    ],
)
def test_parse_pending(data, status):
    state = _parse({"success": True, "data": data})
    assert state.status is status
    assert state.remote_id == "5"
    assert state.upstream_status == data.get("status")


def test_parse_unknown_state_is_running_and_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="providers.lumozai")
    lumozai._unknown_states.discard("warming_up")
    for _ in range(3):
        state = _parse({"success": True, "data": {"request_id": 5, "status": "warming_up"}}, remote_id="5")
        assert state.status is JobStatus.RUNNING
    assert sum("warming_up" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("data", "code", "retryable"),
    [
        ({"status": "failed", "error": "CUDA out of memory"}, "failed", True),
        ({"status": "error"}, "failed", True),
        ({"status": "cancelled"}, "failed", True),
        ({"status": "failed", "error": "NSFW content detected"}, "moderated", False),
        ({"status": "failed", "message": {"message": "Flagged by safety checker"}}, "moderated", False),
        ({"status": "succeeded"}, "no_output", True),
        ({"output": ["not a url"]}, "no_output", True),
    ],
)
def test_parse_failed_states(data, code, retryable):
    state = _parse({"success": True, "data": {"request_id": 9, **data}}, remote_id="9", phase="fetch")
    assert state.status is JobStatus.FAILED
    assert state.remote_id == "9"
    assert state.failure_code == code
    assert state.retryable is retryable
    assert "CUDA" not in (state.failure_message or "")
    if code == "moderated":
        assert "prompt" in (state.failure_message or "")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("Invalid API key", AuthError),
        ("Unauthorized", AuthError),
        ("Insufficient credits", InsufficientFundsError),
        ("Your balance is too low", InsufficientFundsError),
        ("NSFW content detected", ModeratedError),
        ("Too many requests", RateLimitedError),
        ("Model not found", InvalidRequestError),
        ("Something went wrong", InvalidRequestError),
        (None, InvalidRequestError),
    ],
)
def test_parse_submit_envelope_errors(message, error):
    with pytest.raises(error) as info:
        _parse({"success": False, "message": message})
    assert type(info.value) is error
    assert (message or "x") not in info.value.user_message


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ("Generation failed", "failed"),
        ("Image flagged as NSFW", "moderated"),
        ("Invalid API key", AuthError),
        ("Insufficient credits", InsufficientFundsError),
        ("Request not found", NotFoundError),
    ],
)
def test_parse_check_envelope_failures(message, outcome):
    body = {"success": False, "message": message}
    if isinstance(outcome, str):
        state = _parse(body, remote_id="3", phase="fetch")
        assert (state.status, state.failure_code, state.remote_id) == (JobStatus.FAILED, outcome, "3")
    else:
        with pytest.raises(outcome):
            _parse(body, remote_id="3", phase="fetch")


def test_parse_check_keeps_the_polled_id():
    state = _parse({"success": True, "data": {"output": URL}}, remote_id="77", phase="fetch")
    assert state.remote_id == "77"
    assert state.status is JobStatus.SUCCEEDED


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "ok",
        {"success": True},
        {"success": True, "data": {}},
        {"data": {"request_id": {"a": 1}}},
        {"data": "x"},
    ],
)
def test_parse_malformed(body):
    with pytest.raises(ProtocolError):
        _parse(body)


# ============================================================================ against the fake


@pytest.fixture
async def fake():
    async with FakeLumozai() as server:
        server.timing.processing_s = 0.01
        yield server


def make(session, fake, sleep=None, *, submit_s=2.0, key=None, **options) -> LumozaiProvider:
    return LumozaiProvider(
        session,
        api_key=key or fake.api_key,
        base_url=fake.base_url,
        timeouts=Timeouts(connect_s=2, submit_s=submit_s, fetch_s=2),
        retry=RetryPolicy(fetch_backoff_s=0.01),
        sleep=sleep or RecordingSleep(),
        **options,
    )


async def download(session, url: str) -> Image.Image:
    async with session.get(url) as response:
        assert response.status == 200
        return Image.open(io.BytesIO(await response.read()))


async def test_submit_is_synchronous_and_the_image_downloads(fake, http_session):
    state = await make(http_session, fake).submit(req(aspect_ratio="16:9", guidance=3.5, seed=1))
    assert state.status is JobStatus.SUCCEEDED
    assert state.remote_id == str(FIRST_REQUEST_ID + 1)
    assert len(state.outputs) == 1
    assert state.outputs[0].media_type == "image/webp"
    assert "/storage/outputs/" in (state.outputs[0].url or "")
    image = await download(http_session, state.outputs[0].url)
    assert (image.format, image.size) == ("WEBP", (64, 36))

    (sent,) = fake.requests_to("POST", "/api/v4/run")
    assert sent.content_type == "application/x-www-form-urlencoded"
    assert sent.headers["Authorization"] == "Bearer test-key"
    assert sent.headers["Accept"] == "application/json"
    assert sent.form == {
        "model_id": MODEL,
        "prompt": "Cute 3d Kawaii, a cat",
        "aspect_ratio": "16:9",
        "guidance": "3.5",
        "seed": "1",
    }
    assert b"test-key" not in sent.raw


@pytest.mark.parametrize(("fmt", "pil", "media_type"), [("png", "PNG", "image/png"), ("jpg", "JPEG", "image/jpeg")])
async def test_output_in_the_requested_format(fake, http_session, fmt, pil, media_type):
    state = await make(http_session, fake).submit(req(output_format=fmt, aspect_ratio="2:3"))
    assert state.outputs[0].media_type == media_type
    image = await download(http_session, state.outputs[0].url)
    assert (image.format, image.size) == (pil, (43, 64))


async def test_reduced_answer_gets_a_sync_id_and_cannot_be_polled(fake, http_session):
    fake.reduced = True
    provider = make(http_session, fake)
    state = await provider.submit(req())
    assert state.status is JobStatus.SUCCEEDED
    assert state.remote_id.startswith("sync-")
    with pytest.raises(NotFoundError):
        await provider.poll(state.remote_id)
    assert fake.requests_to("POST", "/api/v4/check") == []


async def test_several_outputs_arrive_as_a_list(fake, http_session):
    fake.next_outcome(Outcome(outputs=2))
    state = await make(http_session, fake).submit(req())
    assert len(state.outputs) == 2
    for output in state.outputs:
        assert (await download(http_session, output.url)).format == "WEBP"


@pytest.mark.parametrize("check_states", [False, True])
async def test_slow_run_returns_request_id_then_check_polls_to_completion(fake, http_session, check_states):
    fake.slow_after_s, fake.check_states = 0.01, check_states
    fake.timing.processing_s = 0.15
    provider = make(http_session, fake)
    state = await provider.submit(req(output_format="png"))
    assert state.status is JobStatus.RUNNING
    assert state.remote_id.isdigit()
    polled = await provider.poll(state.remote_id)
    assert polled.status is JobStatus.RUNNING
    assert polled.upstream_status == ("processing" if check_states else None)
    await asyncio.sleep(0.2)
    done = await provider.poll(state.remote_id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.remote_id == state.remote_id
    assert (await download(http_session, done.outputs[0].url)).format == "PNG"
    checks = fake.requests_to("POST", "/api/v4/check")
    assert [c.form for c in checks] == [{"request_id": state.remote_id}] * 2
    assert checks[0].content_type == "application/x-www-form-urlencoded"


async def test_check_by_get_and_configurable_path(fake, http_session):
    fake.slow_after_s, fake.timing.processing_s = 0.0, 0.01
    provider = make(http_session, fake, check_method="GET")
    state = await provider.submit(req())
    await asyncio.sleep(0.02)
    assert (await provider.poll(state.remote_id)).status is JobStatus.SUCCEEDED
    assert fake.requests_to("GET", "/api/v4/check")[0].query == {"request_id": state.remote_id}

    moved = make(http_session, fake, check_path="/api/v5/status")
    fake.script("POST", "/api/v5/status", json={"success": True, "data": {"request_id": 1}})
    assert (await moved.poll("1")).status is JobStatus.RUNNING


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (Outcome(success=False, failure=200, message="NSFW content detected"), ModeratedError),
        (Outcome(success=False, failure=200, message="Generation failed"), InvalidRequestError),
        (Outcome(success=False, failure=402, message="Insufficient credits"), InsufficientFundsError),
        (Outcome(success=False, failure=400, message="Insufficient balance"), InsufficientFundsError),
        (Outcome(success=False, failure=400, message="Your API key is not active"), AuthError),
        (Outcome(success=False, failure=403, message="Not enough credits"), InsufficientFundsError),
    ],
)
async def test_sync_failures_raise_from_the_error_tree(fake, http_session, outcome, error):
    fake.next_outcome(outcome)
    with pytest.raises(error) as info:
        await make(http_session, fake).submit(req())
    assert type(info.value) is error
    assert outcome.message not in info.value.user_message


@pytest.mark.parametrize(
    ("check_states", "message", "code"),
    [(False, "Generation failed", "failed"), (True, "Worker crashed", "failed"), (True, "NSFW detected", "moderated")],
)
async def test_slow_failure_is_a_failed_job(fake, http_session, check_states, message, code):
    fake.slow_after_s, fake.check_states = 0.0, check_states
    fake.next_outcome(Outcome(success=False, message=message))
    provider = make(http_session, fake)
    state = await provider.submit(req())
    await asyncio.sleep(0.02)
    failed = await provider.poll(state.remote_id)
    assert (failed.status, failed.failure_code) == (JobStatus.FAILED, code)
    assert message not in (failed.failure_message or "")


async def test_bad_key_is_auth_error_and_sent_once(fake, http_session):
    with pytest.raises(AuthError) as info:
        await make(http_session, fake, key="wrong").submit(req())
    assert info.value.status == 401
    assert info.value.detail == "Invalid API key"
    assert len(fake.requests) == 1
    with pytest.raises(AuthError):
        await make(http_session, fake, key="wrong").poll("1")


async def test_laravel_422_is_invalid_request(fake, http_session):
    fake.script(
        "POST",
        "/api/v4/run",
        status=422,
        json={"message": "The prompt field is required.", "errors": {"prompt": ["The prompt field is required."]}},
    )
    with pytest.raises(InvalidRequestError) as info:
        await make(http_session, fake).submit(req())
    assert info.value.status == 422
    assert info.value.detail == "The prompt field is required."


async def test_submit_429_with_retry_after_is_retried(fake, http_session):
    fake.script("POST", "/api/v4/run", status=429, json={"message": "Too Many Attempts."}, headers={"Retry-After": "2"})
    sleep = RecordingSleep()
    state = await make(http_session, fake, sleep).submit(req())
    assert state.status is JobStatus.SUCCEEDED
    assert sleep.calls == [2.0]
    assert len(fake.requests_to("POST", "/api/v4/run")) == 2
    assert len(fake.jobs) == 1


@pytest.mark.parametrize(
    "script",
    [
        {"status": 500, "text": "<html>Server Error</html>", "after_handler": True},
        {"status": 504, "text": "<html>Gateway Timeout</html>", "after_handler": True},
        {"drop": True, "after_handler": True},
        {"delay_s": 0.5},
        {"status": 200, "text": "<html>ok</html>", "after_handler": True},
        {"status": 200, "json": {"success": True}, "after_handler": True},
        {"status": 200, "json": {"success": True, "data": {"output_type": "image"}}, "after_handler": True},
    ],
)
async def test_ambiguous_submits_are_never_resent(fake, http_session, script):
    fake.script("POST", "/api/v4/run", **script)
    with pytest.raises(AmbiguousSubmitError) as info:
        await make(http_session, fake, submit_s=0.2).submit(req())
    assert not info.value.retryable
    assert len(fake.requests_to("POST", "/api/v4/run")) == 1


async def test_poll_retries_5xx_and_429(fake, http_session):
    fake.slow_after_s = 0.0
    sleep = RecordingSleep()
    provider = make(http_session, fake, sleep)
    state = await provider.submit(req())
    await asyncio.sleep(0.02)
    fake.script("POST", "/api/v4/check", status=503, text="<html>Service Unavailable</html>")
    fake.script(
        "POST", "/api/v4/check", status=429, json={"message": "Too Many Attempts."}, headers={"Retry-After": "1"}
    )
    assert (await provider.poll(state.remote_id)).status is JobStatus.SUCCEEDED
    assert sleep.calls == [0.01, 1.0]
    assert len(fake.requests_to("POST", "/api/v4/check")) == 3


async def test_poll_html_body_is_protocol_error(fake, http_session):
    fake.script("POST", "/api/v4/check", status=200, text="<html>maintenance</html>", times=5)
    with pytest.raises(ProtocolError):
        await make(http_session, fake).poll("1")


async def test_poll_unknown_id_is_not_found(fake, http_session):
    with pytest.raises(NotFoundError):
        await make(http_session, fake).poll("999")
    assert len(fake.requests_to("POST", "/api/v4/check")) == 1


async def test_expiring_output_urls(fake, http_session):
    fake.media_ttl_s = 0.05
    state = await make(http_session, fake).submit(req())
    await download(http_session, state.outputs[0].url)
    await asyncio.sleep(0.08)
    async with http_session.get(state.outputs[0].url) as response:
        assert response.status == 403


# ============================================================================ fake fidelity (no official SDK exists)

DOC_SAMPLE = {
    "model_id": MODEL,
    "prompt": "Cute 3d Kawaii, a cartoon figure stands on a light blue surface.",
    "aspect_ratio": "1:1",
    "prompt_strength": "0.8",
    "num_inference_steps": "28",
    "guidance": "3",
    "seed": "",
    "output_format": "webp",
    "output_quality": "80",
    "lora_scale": "1",
    "megapixels": "1",
}
AUTH = {"Authorization": "Bearer test-key", "Accept": "application/json"}


def multipart(fields: dict[str, str]) -> aiohttp.MultipartWriter:
    """Text fields only, as PHP's CURLOPT_POSTFIELDS array sends them."""
    writer = aiohttp.MultipartWriter("form-data")
    for key, value in fields.items():
        writer.append(value).set_content_disposition("form-data", name=key)
    return writer


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "json"])
async def test_fake_takes_the_docs_sample_in_every_encoding(fake, http_session, encoding):
    kwargs: dict[str, object] = {
        "urlencoded": {"data": DOC_SAMPLE},
        "multipart": {"data": multipart(DOC_SAMPLE)},
        "json": {"json": {**DOC_SAMPLE, "guidance": 3, "num_inference_steps": 28, "seed": None}},
    }[encoding]
    async with http_session.post(f"{fake.base_url}/api/v4/run", headers=AUTH, **kwargs) as response:
        assert response.status == 200
        body = await response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"request_id", "output", "output_type"}
    assert isinstance(body["data"]["request_id"], int)
    assert body["data"]["output_type"] == "image"
    assert fake.runs[-1]["seed"] == ""
    assert fake.runs[-1]["guidance"] == "3"
    assert (await download(http_session, body["data"]["output"])).format == "WEBP"


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"aspect_ratio": ""}, "aspect_ratio"),
        ({"aspect_ratio": "7:5"}, "aspect_ratio"),
        ({"model_id": "nope"}, "model_id"),
        ({"guidance": "lots"}, "guidance"),
        ({"seed": "x"}, "seed"),
        ({"output_format": "gif"}, "output_format"),
    ],
)
async def test_fake_validates_like_laravel(fake, http_session, fields, error_field):
    async with http_session.post(
        f"{fake.base_url}/api/v4/run", headers=AUTH, data={**DOC_SAMPLE, **fields}
    ) as response:
        assert response.status == 422
        body = await response.json()
    assert error_field in body["errors"]
    assert body["message"] == body["errors"][error_field][0]
    assert fake.jobs == {}


async def test_fake_check_takes_json_and_answers_pending_then_output(fake, http_session):
    fake.slow_after_s, fake.timing.processing_s = 0.0, 0.05
    async with http_session.post(f"{fake.base_url}/api/v4/run", headers=AUTH, data=DOC_SAMPLE) as response:
        first = await response.json()
    assert set(first["data"]) == {"request_id"}
    rid = first["data"]["request_id"]
    async with http_session.post(f"{fake.base_url}/api/v4/check", headers=AUTH, json={"request_id": rid}) as response:
        assert await response.json() == {"success": True, "data": {"request_id": rid}}
    await asyncio.sleep(0.06)
    async with http_session.get(f"{fake.base_url}/api/v4/check?request_id={rid}", headers=AUTH) as response:
        assert (await response.json())["data"]["output"].endswith(".webp")
    async with http_session.post(f"{fake.base_url}/api/v4/check", headers=AUTH, data={}) as response:
        assert response.status == 422


async def test_fake_bad_key_shape(fake, http_session):
    async with http_session.post(f"{fake.base_url}/api/v4/run", data=DOC_SAMPLE) as response:
        assert response.status == 401
        assert json.loads(await response.text()) == {"success": False, "message": "Invalid API key"}
