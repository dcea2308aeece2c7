"""WaveSpeed neta-lumina adapter: pure body/parse functions, then the adapter and the official SDK against the fake."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import re

import aiohttp
import pytest
from PIL import Image

from providers import wavespeed as ws
from providers._http import Response, RetryPolicy, Timeouts
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
    UnavailableError,
)
from providers.wavespeed import WaveSpeedProvider, size_for_aspect_ratio
from tests.fakes.clock import RecordingSleep
from tests.fakes.media import image_bytes
from tests.fakes.providers._server import Outcome
from tests.fakes.providers.wavespeed import FakeWaveSpeed

MODEL = "wavespeed-ai/neta-lumina"
SUBMIT = "/api/v3/wavespeed-ai/neta-lumina"
FLAGS = {"enable_base64_output": False, "enable_sync_mode": False}


def req(**changes: object) -> GenerationRequest:
    return GenerationRequest(kind=Kind.IMAGE, prompt="a fox in the snow", model=MODEL).replace(**changes)


def data(**changes: object) -> dict[str, object]:
    """A ``data`` object shaped like providers.md §1.11."""
    base: dict[str, object] = {
        "id": "e6832d4abffb4d79bfbca19783fca133",
        "model": MODEL,
        "outputs": [],
        "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/e6832d4abffb4d79bfbca19783fca133/result"},
        "has_nsfw_contents": [],
        "status": "created",
        "created_at": "2025-08-12T09:41:07.123456789Z",
        "error": "",
        "timings": {"inference": 0},
    }
    base.update(changes)
    return base


# --------------------------------------------------------------------------- size_for_aspect_ratio


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("1:1", (1024, 1024)),
        ("16:9", (1344, 768)),
        ("9:16", (768, 1344)),
        ("4:3", (1152, 896)),
        ("3:2", (1280, 832)),
        ("21:9", (1536, 640)),
        ("3:1", (1536, 512)),
        ("1:3", (512, 1536)),
        (" 2.39 : 1 ", (1536, 640)),
        ("20:1", (1536, 256)),
    ],
)
def test_size_for_aspect_ratio(ratio, size):
    assert size_for_aspect_ratio(ratio) == size


@pytest.mark.parametrize("ratio", ws.ASPECT_RATIOS)
def test_every_advertised_ratio_gives_a_valid_size(ratio):
    width, height = size_for_aspect_ratio(ratio)
    w, h = (int(p) for p in ratio.split(":"))
    assert width % 64 == 0
    assert height % 64 == 0
    assert 256 <= width <= 1536
    assert 256 <= height <= 1536
    assert 0.75e6 <= width * height <= 1.1e6
    assert abs(width / height - w / h) / (w / h) < 0.15


@pytest.mark.parametrize("ratio", ["", "16x9", "16:", ":9", "0:1", "1:0", "a:b", "-1:2", "1:2:3"])
def test_size_for_aspect_ratio_rejects_malformed(ratio):
    with pytest.raises(ValueError, match="aspect ratio"):
        size_for_aspect_ratio(ratio)


# --------------------------------------------------------------------------- _to_body


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {}),
        ({"size": (1024, 1024)}, {"size": "1024*1024"}),
        ({"size": (256, 1536)}, {"size": "256*1536"}),
        ({"aspect_ratio": "16:9"}, {"size": "1344*768"}),
        ({"aspect_ratio": "9:16", "size": (512, 768)}, {"size": "512*768"}),
        ({"seed": 42}, {"seed": 42}),
        ({"seed": -1}, {"seed": -1}),
        ({"seed": 2_147_483_647}, {"seed": 2_147_483_647}),
        ({"seed": None}, {}),
        ({"output_format": "jpeg"}, {"output_format": "jpeg"}),
        ({"output_format": "png"}, {"output_format": "png"}),
        ({"output_format": "WEBP"}, {"output_format": "webp"}),
        ({"output_format": "jpg"}, {"output_format": "jpeg"}),
        ({"user_id": "1234", "style": "anime"}, {}),
    ],
)
def test_to_body_fields(changes, expected):
    assert ws._to_body(req(**changes)) == {"prompt": "a fox in the snow", **expected, **FLAGS}


@pytest.mark.parametrize(("b64", "sync"), [(True, False), (False, True), (True, True)])
def test_to_body_sends_both_flags_explicitly(b64, sync):
    body = ws._to_body(req(), base64_output=b64, sync_mode=sync)
    assert body["enable_base64_output"] is b64
    assert body["enable_sync_mode"] is sync


IMG = ImageInput(image_bytes("png"), "image/png")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"kind": Kind.IMAGE_EDIT}, "image edits"),
        ({"kind": Kind.VIDEO}, "videos"),
        ({"model": "wavespeed-ai/flux-dev"}, "not served"),
        ({"prompt": "   "}, "Write a prompt"),
        ({"prompt": "x" * (ws.PROMPT_MAX_LENGTH + 1)}, "too long"),
        ({"size": (255, 1024)}, "between 256 and 1536"),
        ({"size": (1024, 1537)}, "between 256 and 1536"),
        ({"size": (2048, 2048)}, "2048×2048"),
        ({"seed": -2}, "-1 to 2147483647"),
        ({"seed": 2_147_483_648}, "-1 to 2147483647"),
        ({"output_format": "gif"}, "jpeg, png, webp"),
        ({"aspect_ratio": "wide"}, "16:9"),
        ({"aspect_ratio": "0:1"}, "width:height"),
        ({"reference_images": (IMG,)}, "does not take input images"),
        ({"source_image": IMG}, "does not take input images"),
    ],
)
def test_to_body_refuses_what_the_api_would(changes, says):
    with pytest.raises(InvalidRequestError) as info:
        ws._to_body(req(**changes))
    assert says in info.value.user_message
    assert info.value.provider == "wavespeed"


def test_prompt_at_the_limit_is_accepted():
    assert ws._to_body(req(prompt="x" * ws.PROMPT_MAX_LENGTH))["prompt"] == "x" * ws.PROMPT_MAX_LENGTH


# --------------------------------------------------------------------------- _parse


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("created", JobStatus.QUEUED),
        ("pending", JobStatus.QUEUED),
        ("processing", JobStatus.RUNNING),
        ("PROCESSING", JobStatus.RUNNING),
        ("warming_up", JobStatus.RUNNING),
        (None, JobStatus.RUNNING),
    ],
)
def test_parse_non_terminal_states(status, expected):
    state = ws._parse(data(status=status), request_id="r-1")
    assert state.status is expected
    assert state.remote_id == "e6832d4abffb4d79bfbca19783fca133"
    assert state.upstream_status == status
    assert state.request_id == "r-1"
    assert state.poll_after_s is None  # no hint: WaveSpeed's advice (≥2 s) is the operator's poll interval
    assert state.outputs == ()


def test_unknown_state_is_logged_once(caplog):
    ws._unknown_statuses_logged.discard("brand_new_state")
    with caplog.at_level(logging.WARNING, logger="providers.wavespeed"):
        for _ in range(3):
            assert ws._parse(data(status="brand_new_state")).status is JobStatus.RUNNING
    assert sum("brand_new_state" in r.getMessage() for r in caplog.records) == 1


def test_parse_completed_with_urls_and_nsfw_flags():
    state = ws._parse(
        data(
            status="completed",
            outputs=[
                "https://d11ewybssaphwx.cloudfront.net/output/abc/output_0.jpeg",
                "https://cdn.example/out/1.PNG?sig=x",
                "https://cdn.example/out/2.webp",
                "https://cdn.example/out/3.jpg",
            ],
            has_nsfw_contents=[False, True],
        )
    )
    assert state.status is JobStatus.SUCCEEDED
    assert [o.media_type for o in state.outputs] == ["image/jpeg", "image/png", "image/webp", "image/jpeg"]
    assert [o.nsfw for o in state.outputs] == [False, True, False, False]
    assert state.outputs[1].url == "https://cdn.example/out/1.PNG?sig=x"
    assert state.failure_code is None
    assert state.poll_after_s is None


@pytest.mark.parametrize(
    ("output_format", "input_", "expected"),
    [("png", None, "image/png"), (None, {"output_format": "webp"}, "image/webp"), (None, None, None)],
)
def test_parse_media_type_falls_back_to_requested_format(output_format, input_, expected):
    state = ws._parse(
        data(status="completed", outputs=["https://cdn.example/out/abc"], input=input_), output_format=output_format
    )
    assert state.outputs[0].media_type == expected


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("prefixed", [False, True])
def test_parse_base64_outputs(fmt, prefixed):
    raw = image_bytes(fmt)
    encoded = base64.b64encode(raw).decode()
    media_type = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}[fmt]
    item = f"data:{media_type};base64,{encoded}" if prefixed else encoded
    state = ws._parse(data(status="completed", outputs=[item], has_nsfw_contents=[True]))
    assert state.status is JobStatus.SUCCEEDED
    (output,) = state.outputs
    assert output.data == raw
    assert output.url is None
    assert output.media_type == media_type
    assert output.nsfw


def test_parse_base64_without_padding_and_with_declared_type():
    encoded = base64.b64encode(b"not an image!").decode().rstrip("=")
    state = ws._parse(data(status="completed", outputs=[f"data:image/png;base64,{encoded}"]))
    assert state.outputs[0].data == b"not an image!"
    assert state.outputs[0].media_type == "image/png"


@pytest.mark.parametrize(
    "outputs",
    [[], None, [""], [None], ["data:image/png;base64"], ["!!!not base64!!!"], ["/output/x.png"], [{"foo": 1}], [42]],
)
def test_parse_completed_without_usable_output_is_a_retryable_failure(outputs):
    state = ws._parse(data(status="completed", outputs=outputs))
    assert state.status is JobStatus.FAILED
    assert state.retryable
    assert state.failure_code == "no_output"
    assert "no image" in (state.failure_message or "")


def test_parse_skips_unusable_outputs_but_keeps_good_ones():
    state = ws._parse(data(status="completed", outputs=["", {"url": "https://cdn.example/a.png"}]))
    assert [o.url for o in state.outputs] == ["https://cdn.example/a.png"]


@pytest.mark.parametrize(
    ("code", "retryable", "says"),
    [
        (1200, False, "content rules"),
        (1400, False, "Change the prompt or options"),
        (1401, False, "Change the prompt or options"),
        (1402, False, "input file"),
        (1403, False, "Change the prompt"),
        (1405, False, "Change the prompt"),
        (5000, True, "Try again"),
        (5003, True, "Try again"),
        (5004, True, "too long"),
        (5999, True, "Try again"),
        (1999, False, "Change the prompt or options"),
        (7777, False, "Try again"),
        ("1200", False, "content rules"),
    ],
)
def test_parse_failure_codes(code, retryable, says):
    secret_text = "internal: node gpu-17 exploded"
    state = ws._parse(data(status="failed", code=code, error=secret_text))
    assert state.status is JobStatus.FAILED
    assert state.failure_code == str(code)
    assert state.retryable is retryable
    assert says in (state.failure_message or "")
    assert secret_text not in (state.failure_message or "")


def test_moderation_failure_uses_the_moderated_message():
    state = ws._parse(data(status="failed", code=1200, error="The content contains sensitive information."))
    assert state.failure_message == ModeratedError.default_user_message


def test_failed_task_error_text_goes_to_logs_only(caplog):
    with caplog.at_level(logging.INFO, logger="providers.wavespeed"):
        state = ws._parse(data(status="failed", code=1405, error="CUDA out of memory"))
    assert "CUDA" in caplog.text
    assert "CUDA" not in (state.failure_message or "")


@pytest.mark.parametrize(
    ("error", "retryable"), [("upstream HTTP 503 from worker", True), ("HTTP 429 upstream", True), ("boom", False)]
)
def test_failures_naming_upstream_http_5xx_or_429_are_retryable_like_the_sdk(error, retryable):
    assert ws._parse(data(status="failed", code=1405, error=error)).retryable is retryable
    assert ws._parse(data(status="failed", error=error)).retryable is retryable


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [("cancelled", "cancelled", False), ("timeout", "timeout", True), ("deleted", "deleted", False)],
)
def test_parse_other_terminal_statuses(status, code, retryable):
    state = ws._parse(data(status=status))
    assert state.status is JobStatus.FAILED
    assert state.failure_code == code
    assert state.retryable is retryable
    assert state.failure_message


def test_parse_failed_without_a_code():
    state = ws._parse(data(status="failed", code=0, error=""))
    assert state.failure_code == "failed"
    assert not state.retryable
    assert state.failure_message == ws._GENERIC_FAILURE


def test_parse_sync_timeout_fixture_is_still_running():
    state = ws._parse(
        {
            "id": "req-timeout",
            "status": "processing",
            "code": 5004,
            "error": "Sync mode timed out after 90 seconds. The prediction is still processing asynchronously.",
            "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/req-timeout/result"},
        }
    )
    assert state.status is JobStatus.RUNNING
    assert state.remote_id == "req-timeout"
    assert state.failure_code is None


@pytest.mark.parametrize("bad", [None, [], "text", {"status": "completed"}, {"id": None}])
def test_parse_without_an_id_is_a_protocol_error(bad):
    with pytest.raises(ProtocolError):
        ws._parse(bad)


# --------------------------------------------------------------------------- envelope


def resp(body: object, status: int = 200) -> Response:
    return Response(status=status, headers={}, body=body, text="")


@pytest.mark.parametrize(
    ("code", "phase", "error"),
    [
        (400, "submit", InvalidRequestError),
        (401, "submit", AuthError),
        (402, "submit", InsufficientFundsError),
        (429, "submit", RateLimitedError),
        (500, "submit", AmbiguousSubmitError),
        (404, "fetch", NotFoundError),
        (503, "fetch", UnavailableError),
        ("401", "fetch", AuthError),
    ],
)
def test_envelope_code_maps_like_an_http_status(code, phase, error):
    with pytest.raises(error) as info:
        ws._unwrap(resp({"code": code, "message": "Insufficient credits", "data": None}), phase=phase)
    assert info.value.code == str(code)
    assert info.value.detail == "Insufficient credits"
    assert "Insufficient" not in info.value.user_message


@pytest.mark.parametrize("body", [{"code": 200, "data": {"id": "x"}}, {"data": {"id": "x"}}, {"code": 0, "data": {}}])
def test_envelope_success_forms(body):
    assert ws._unwrap(resp(body), phase="fetch") == body["data"]


@pytest.mark.parametrize("body", [[1, 2], "ok", {"code": 200, "data": {"id": "x"}, "extra": 1}])
def test_envelope_shapes(body):
    if isinstance(body, dict):
        assert ws._unwrap(resp(body), phase="fetch") == {"id": "x"}
    else:
        with pytest.raises(ProtocolError):
            ws._unwrap(resp(body), phase="fetch")


# --------------------------------------------------------------------------- adapter basics


def test_capabilities_and_models():
    provider = WaveSpeedProvider(None, api_key="k")  # type: ignore[arg-type]
    assert isinstance(provider, Provider)
    assert provider.name == "wavespeed"
    assert provider.DEFAULT_BASE_URL == "https://api.wavespeed.ai"
    assert provider.models == (MODEL,)
    caps = provider.capabilities(MODEL)
    assert caps.kinds == frozenset({Kind.IMAGE})
    assert caps.fields == frozenset({"aspect_ratio", "size", "seed", "output_format"})
    assert caps.size_range == (256, 1536)
    assert caps.seed_range == (-1, 2147483647)
    assert caps.output_formats == ("jpeg", "png", "webp")
    assert len(caps.aspect_ratios) == 15
    assert caps.typical_duration_s == 8
    with pytest.raises(KeyError):
        provider.capabilities("wavespeed-ai/flux-dev")


def test_repr_hides_the_key():
    provider = WaveSpeedProvider(None, api_key="sk-very-secret")  # type: ignore[arg-type]
    assert "sk-very-secret" not in repr(provider)
    assert "sk-very-secret" not in str(vars(provider))


# --------------------------------------------------------------------------- against the fake


@pytest.fixture
async def fake():
    async with FakeWaveSpeed() as server:
        server.timing.processing_s = 0.05
        yield server


def make(session, fake, *, sleep=None, key="test-key", submit_s=2.0, fetch_s=2.0, **options) -> WaveSpeedProvider:
    return WaveSpeedProvider(
        session,
        api_key=key,
        base_url=fake.base_url,
        timeouts=Timeouts(connect_s=2, submit_s=submit_s, fetch_s=fetch_s),
        retry=RetryPolicy(fetch_backoff_s=0.01),
        sleep=sleep or RecordingSleep(),
        **options,
    )


async def until_terminal(provider: WaveSpeedProvider, remote_id: str, limit_s: float = 3.0):
    seen = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        state = await provider.poll(remote_id)
        seen.append(state.status)
        if state.status.terminal or loop.time() > deadline:
            return state, seen
        await asyncio.sleep(0.01)


async def download(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def test_submit_poll_download(http_session, fake):
    fake.timing.queued_s = 0.05
    provider = make(http_session, fake)
    submitted = await provider.submit(req(aspect_ratio="16:9", seed=7, output_format="png"))
    assert submitted.status is JobStatus.QUEUED
    assert submitted.upstream_status == "created"
    assert re.fullmatch(r"[0-9a-f]{32}", submitted.remote_id)

    (recorded,) = fake.requests_to("POST", SUBMIT)
    assert recorded.headers["Authorization"] == "Bearer test-key"
    assert recorded.json == {
        "prompt": "a fox in the snow",
        "size": "1344*768",
        "seed": 7,
        "output_format": "png",
        "enable_base64_output": False,
        "enable_sync_mode": False,
    }

    state, seen = await until_terminal(provider, submitted.remote_id)
    assert JobStatus.RUNNING in seen
    assert state.status is JobStatus.SUCCEEDED
    (output,) = state.outputs
    assert output.media_type == "image/png"
    assert not output.nsfw
    assert output.url is not None
    status, raw = await download(http_session, output.url)
    assert status == 200
    assert Image.open(io.BytesIO(raw)).format == "PNG"
    assert fake.requests_to("GET", rf"/api/v3/predictions/{submitted.remote_id}/result")


async def test_nsfw_and_several_outputs(http_session, fake):
    fake.next_outcome(Outcome(nsfw=True, outputs=2))
    provider = make(http_session, fake)
    state, _ = await until_terminal(provider, (await provider.submit(req())).remote_id)
    assert [o.nsfw for o in state.outputs] == [True, True]
    assert all(o.media_type == "image/jpeg" for o in state.outputs)


async def test_pending_status_quirk_is_queued(http_session, fake):
    fake.queued_status = "pending"
    fake.timing.queued_s = 5
    assert (await make(http_session, fake).submit(req())).status is JobStatus.QUEUED


async def test_unknown_status_over_http_keeps_running(http_session, fake):
    provider = make(http_session, fake)
    submitted = await provider.submit(req())
    fake.force_status(submitted.remote_id, "starting_gpu")
    state = await provider.poll(submitted.remote_id)
    assert state.status is JobStatus.RUNNING
    assert state.upstream_status == "starting_gpu"


@pytest.mark.parametrize(
    ("failure", "code", "retryable", "says"),
    [
        (1200, "1200", False, "content rules"),
        (1401, "1401", False, "Change the prompt or options"),
        (5003, "5003", True, "Try again"),
        ("cancelled", "cancelled", False, "cancelled"),
        ("timeout", "timeout", True, "too long"),
        (None, "failed", False, "could not make"),
    ],
)
async def test_failed_jobs(http_session, fake, failure, code, retryable, says):
    fake.next_outcome(Outcome(success=False, failure=failure))
    provider = make(http_session, fake)
    state, _ = await until_terminal(provider, (await provider.submit(req())).remote_id)
    assert state.status is JobStatus.FAILED
    assert state.failure_code == code
    assert state.retryable is retryable
    assert says in (state.failure_message or "")


async def test_completed_without_outputs_is_a_retryable_failure(http_session, fake):
    fake.next_outcome(Outcome(outputs=0))
    provider = make(http_session, fake)
    state, _ = await until_terminal(provider, (await provider.submit(req())).remote_id)
    assert state.status is JobStatus.FAILED
    assert state.retryable


async def test_invalid_request_is_refused_before_sending(http_session, fake):
    with pytest.raises(InvalidRequestError):
        await make(http_session, fake).submit(req(size=(2048, 512)))
    assert fake.requests == []


@pytest.mark.parametrize("prefixed", [False, True])
async def test_base64_output(http_session, fake, prefixed):
    fake.base64_data_uri = prefixed
    provider = make(http_session, fake, base64_output=True)
    submitted = await provider.submit(req(output_format="webp"))
    assert fake.submissions[0]["enable_base64_output"] is True
    state, _ = await until_terminal(provider, submitted.remote_id)
    (output,) = state.outputs
    assert output.url is None
    assert output.media_type == "image/webp"
    assert Image.open(io.BytesIO(output.data or b"")).format == "WEBP"


async def test_sync_mode_returns_the_finished_job_from_submit(http_session, fake):
    provider = make(http_session, fake, sync_mode=True)
    state = await provider.submit(req())
    assert fake.submissions[0]["enable_sync_mode"] is True
    assert state.status is JobStatus.SUCCEEDED
    status, raw = await download(http_session, state.outputs[0].url or "")
    assert status == 200
    assert Image.open(io.BytesIO(raw)).format == "JPEG"
    assert fake.requests_to("GET", "/api/v3/predictions/.+") == []


async def test_sync_mode_failure_comes_back_from_submit(http_session, fake):
    fake.next_outcome(Outcome(success=False, failure=1200))
    state = await make(http_session, fake, sync_mode=True).submit(req())
    assert state.status is JobStatus.FAILED
    assert state.failure_code == "1200"


async def test_sync_mode_timeout_returns_running_and_then_polls(http_session, fake):
    fake.sync_timeout_s = 0.02
    fake.timing.processing_s = 0.2
    provider = make(http_session, fake, sync_mode=True)
    state = await provider.submit(req())
    assert state.status is JobStatus.RUNNING
    assert state.remote_id in fake.jobs
    final, _ = await until_terminal(provider, state.remote_id)
    assert final.status is JobStatus.SUCCEEDED


async def test_sync_mode_gateway_504_is_ambiguous(http_session, fake):
    fake.script("POST", SUBMIT, status=504, text="<html>504 Gateway Time-out</html>", after_handler=True)
    with pytest.raises(AmbiguousSubmitError):
        await make(http_session, fake, sync_mode=True).submit(req())
    assert len(fake.requests_to("POST", SUBMIT)) == 1


async def test_submit_429_with_retry_after_is_retried(http_session, fake):
    fake.rate_limit(times=1, retry_after=2)
    sleep = RecordingSleep()
    state = await make(http_session, fake, sleep=sleep).submit(req())
    assert state.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert sleep.calls == [2.0]
    assert len(fake.requests_to("POST", SUBMIT)) == 2
    assert len(fake.jobs) == 1


async def test_submit_429_that_persists_raises_rate_limited(http_session, fake):
    fake.rate_limit(times=5)
    with pytest.raises(RateLimitedError):
        await make(http_session, fake).submit(req())
    assert len(fake.requests_to("POST", SUBMIT)) == 3
    assert fake.jobs == {}


@pytest.mark.parametrize(
    "script",
    [
        {"status": 500, "json": {"code": 500, "message": "internal error", "data": None}},
        {"status": 502, "text": "<html><h1>502 Bad Gateway</h1></html>"},
        {"drop": True},
        {"status": 200, "text": "<html>ok</html>"},
        {"status": 200, "json": {"code": 200, "message": "success", "data": {"status": "created"}}},
    ],
)
async def test_ambiguous_submits_are_sent_once(http_session, fake, script):
    fake.script("POST", SUBMIT, after_handler=True, **script)
    with pytest.raises(AmbiguousSubmitError) as info:
        await make(http_session, fake).submit(req())
    assert not info.value.retryable
    assert len(fake.requests_to("POST", SUBMIT)) == 1
    assert len(fake.jobs) == 1


async def test_submit_timeout_is_ambiguous_and_sent_once(http_session, fake):
    fake.script("POST", SUBMIT, delay_s=0.3)
    with pytest.raises(AmbiguousSubmitError):
        await make(http_session, fake, submit_s=0.1).submit(req())
    assert len(fake.requests_to("POST", SUBMIT)) == 1


async def test_poll_5xx_is_retried(http_session, fake):
    sleep = RecordingSleep()
    provider = make(http_session, fake, sleep=sleep)
    submitted = await provider.submit(req())
    fake.script("GET", "/api/v3/predictions/.+", status=502, text="<html>bad gateway</html>")
    fake.script("GET", "/api/v3/predictions/.+", status=429, json={"code": 429, "message": "slow down", "data": None})
    state = await provider.poll(submitted.remote_id)
    assert state.remote_id == submitted.remote_id
    assert len(sleep.calls) == 2


async def test_poll_html_is_a_protocol_error(http_session, fake):
    provider = make(http_session, fake)
    submitted = await provider.submit(req())
    fake.script("GET", "/api/v3/predictions/.+", status=200, text="<html>maintenance</html>", times=5)
    with pytest.raises(ProtocolError):
        await provider.poll(submitted.remote_id)


async def test_poll_unknown_id_is_not_found(http_session, fake):
    with pytest.raises(NotFoundError):
        await make(http_session, fake).poll("0" * 32)


async def test_poll_timeout_is_unavailable(http_session, fake):
    provider = make(http_session, fake, fetch_s=0.1)
    submitted = await provider.submit(req())
    fake.script("GET", "/api/v3/predictions/.+", delay_s=0.25, times=5)
    with pytest.raises(UnavailableError):
        await provider.poll(submitted.remote_id)


async def test_bad_key_is_an_auth_error(http_session, fake):
    provider = make(http_session, fake, key="wrong-key")
    with pytest.raises(AuthError) as info:
        await provider.submit(req())
    assert info.value.status == 401
    assert "invalid API key" in info.value.detail
    with pytest.raises(AuthError):
        await provider.poll("0" * 32)
    assert "wrong-key" not in str(info.value)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (400, InvalidRequestError),
        (429, RateLimitedError),
        (500, AmbiguousSubmitError),
    ],
)
async def test_envelope_errors_under_http_200_on_submit(http_session, fake, code, error):
    fake.envelope_error(code, "Insufficient credits")
    with pytest.raises(error) as info:
        await make(http_session, fake).submit(req())
    assert info.value.status == code
    assert len(fake.requests_to("POST", SUBMIT)) == 1


async def test_envelope_error_under_http_200_on_poll(http_session, fake):
    provider = make(http_session, fake)
    submitted = await provider.submit(req())
    fake.envelope_error(404, "prediction not found", method="GET")
    with pytest.raises(NotFoundError):
        await provider.poll(submitted.remote_id)


# --------------------------------------------------------------------------- the fake's own behaviour


async def post(session: aiohttp.ClientSession, fake: FakeWaveSpeed, body: object, key: str = "test-key"):
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(f"{fake.base_url}{SUBMIT}", json=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": ""},
        {"prompt": "x", "size": "1024x1024"},
        {"prompt": "x", "size": "128*1024"},
        {"prompt": "x", "size": "1024*1600"},
        {"prompt": "x", "seed": -2},
        {"prompt": "x", "seed": 2_147_483_648},
        {"prompt": "x", "seed": "7"},
        {"prompt": "x", "output_format": "gif"},
        {"prompt": "x", "enable_sync_mode": "yes"},
        ["prompt"],
    ],
)
async def test_fake_validates_like_the_docs(http_session, fake, body):
    status, answer = await post(http_session, fake, body)
    assert status == 400
    assert answer["code"] == 400
    assert answer["data"] is None
    assert answer["message"]
    assert fake.jobs == {}


async def test_fake_envelope_shape_and_both_result_paths(http_session, fake):
    status, answer = await post(http_session, fake, {"prompt": "x"})
    assert status == 200
    assert answer["code"] == 200
    assert answer["message"] == "success"
    job = answer["data"]
    assert re.fullmatch(r"[0-9a-f]{32}", job["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", job["created_at"])
    assert job["urls"]["get"] == f"{fake.root_url}/api/v3/predictions/{job['id']}/result"
    assert job["model"] == MODEL
    assert job["outputs"] == []
    await asyncio.sleep(0.08)
    headers = {"Authorization": "Bearer test-key"}
    answers = []
    for url in (job["urls"]["get"], f"{fake.base_url}/api/v3/predictions/{job['id']}"):
        async with http_session.get(url, headers=headers) as response:
            answers.append(await response.json())
    assert answers[0] == answers[1]
    assert answers[0]["data"]["status"] == "completed"
    assert answers[0]["data"]["has_nsfw_contents"] == [False]
    assert answers[0]["data"]["outputs"][0].endswith(".jpeg")


async def test_fake_401_body(http_session, fake):
    status, answer = await post(http_session, fake, {"prompt": "x"}, key="nope")
    assert status == 401
    assert answer == {"code": 401, "message": "Unauthorized: invalid API key", "data": None}


# --------------------------------------------------------------------------- fidelity: the official SDK


@pytest.fixture
def sdk(fake):
    wavespeed = pytest.importorskip("wavespeed")
    return wavespeed.Client(api_key="test-key", base_url=fake.base_url, max_connection_retries=2, retry_interval=0.01)


async def test_sdk_run_completes_against_the_fake(http_session, fake, sdk):
    fake.timing.queued_s = 0.03
    result = await asyncio.to_thread(
        sdk.run, MODEL, {"prompt": "a fox", "size": "512*768", "output_format": "png"}, poll_interval=0.01, timeout=5
    )
    (url,) = result["outputs"]
    status, raw = await download(http_session, url)
    assert status == 200
    assert Image.open(io.BytesIO(raw)).format == "PNG"
    (recorded,) = fake.requests_to("POST", SUBMIT)
    assert recorded.headers["X-Client-Name"] == "wavespeed-python"
    assert len(fake.requests_to("GET", r"/api/v3/predictions/[0-9a-f]{32}/result")) >= 2


async def test_sdk_sees_a_failed_task(fake, sdk):
    fake.next_outcome(Outcome(success=False, failure=1200))
    result = await asyncio.to_thread(sdk.run_no_throw, MODEL, {"prompt": "x"}, poll_interval=0.01, timeout=5)
    assert result["status"] == "failed"
    assert result["task_id"] in fake.jobs
    assert "sensitive information" in result["error"]
    fake.next_outcome(Outcome(success=False, failure=5000))
    with pytest.raises(RuntimeError, match="Prediction failed"):
        await asyncio.to_thread(sdk.run, MODEL, {"prompt": "x"}, poll_interval=0.01, timeout=5)


async def test_sdk_sync_mode_and_sync_timeout(fake, sdk):
    result = await asyncio.to_thread(sdk.run, MODEL, {"prompt": "x"}, enable_sync_mode=True)
    assert len(result["outputs"]) == 1
    assert fake.requests_to("GET", "/api/v3/predictions/.+") == []

    fake.sync_timeout_s = 0.02
    fake.timing.processing_s = 0.2
    timed_out = await asyncio.to_thread(sdk.run_no_throw, MODEL, {"prompt": "x"}, enable_sync_mode=True)
    assert timed_out["status"] == "processing"
    assert timed_out["task_id"] in fake.jobs
    assert fake.result_url(timed_out["task_id"]) in timed_out["error"]
    await asyncio.sleep(0.25)
    later = await asyncio.to_thread(sdk.get_result, timed_out["task_id"])
    assert later["data"]["status"] == "completed"


async def test_sdk_retries_result_5xx_and_refuses_bad_key(fake, sdk):
    fake.script("GET", "/api/v3/predictions/.+", status=503, text="<html>down</html>")
    result = await asyncio.to_thread(sdk.run, MODEL, {"prompt": "x"}, poll_interval=0.01, timeout=5)
    assert result["outputs"]
    sdk.api_key = "bad"
    with pytest.raises(RuntimeError, match="HTTP 401"):
        await asyncio.to_thread(sdk.run, MODEL, {"prompt": "x"}, poll_interval=0.01, timeout=5)


async def test_sdk_base64_output(fake, sdk):
    result = await asyncio.to_thread(
        sdk.run, MODEL, {"prompt": "x", "enable_base64_output": True}, poll_interval=0.01, timeout=5
    )
    raw = base64.b64decode(result["outputs"][0])
    assert Image.open(io.BytesIO(raw)).format == "JPEG"


async def test_balance_reads_the_accounts_usd(http_session, fake):
    fake.balance = 7.5
    assert await make(http_session, fake).balance() == 7.5
    (recorded,) = fake.requests_to("GET", "/api/v3/balance")
    assert recorded.headers["Authorization"].startswith("Bearer ")
