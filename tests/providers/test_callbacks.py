"""Reading provider callbacks in the adapters: WaveSpeed's signature (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v3,<hex>``) checked against the documented scheme and a 300 s age, the reseller's and
Lumozai's bodies read the way a poll reads them, and the callback URL sent where each API takes it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from pydantic import SecretStr

from providers import signed_callbacks
from providers.base import CallbackRefused, GenerationRequest, JobStatus, Kind
from providers.luma_reseller import LumaResellerProvider
from providers.luma_reseller import _to_body as reseller_body
from providers.lumozai import LumozaiProvider
from providers.lumozai import _to_body as lumozai_body
from providers.wavespeed import WaveSpeedProvider
from tests.fakes.providers.callbacks import WAVESPEED_SECRET, wavespeed_headers

PREDICTION = {
    "id": "e6832d4abffb4d79bfbca19783fca133",
    "model": "wavespeed-ai/neta-lumina",
    "input": {"prompt": "a cat"},
    "outputs": ["https://cdn.example/output_0.jpeg"],
    "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/e6832d4abffb4d79bfbca19783fca133/result"},
    "has_nsfw_contents": [False],
    "status": "completed",
    "created_at": "2025-08-12T09:41:07.123456789Z",
    "error": "",
    "timings": {"inference": 2300},
}


def wavespeed(secret: str | None = WAVESPEED_SECRET) -> WaveSpeedProvider:
    return WaveSpeedProvider(None, api_key="k", webhook_secret=None if secret is None else SecretStr(secret))  # type: ignore[arg-type]


def test_the_signature_is_the_documented_hmac():
    body = b'{"id":"x"}'
    expected = signed_callbacks.signature("whsec_abc", "msg_1", "1700000000", body)
    assert expected == hmac.new(b"abc", b"msg_1.1700000000." + body, hashlib.sha256).hexdigest()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": f"v3,{expected}"}
    assert signed_callbacks.verify("whsec_abc", headers, body, now=1700000100) == "msg_1"
    rotated = {**headers, "webhook-signature": f"v3,{'0' * 64} v3,{expected}"}
    assert signed_callbacks.verify("whsec_abc", rotated, body, now=1700000000) == "msg_1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": "v3," + "0" * 64}, "signature does not match"),
        ({"webhook-signature": ""}, "unsigned"),
        ({"webhook-timestamp": "soon"}, "not a number"),
        ({"webhook-timestamp": "nan"}, "not a number"),
        ({"webhook-timestamp": "inf"}, "not a number"),
        ({"webhook-id": "msg_other"}, "signature does not match"),
    ],
)
def test_a_wrong_or_missing_signature_is_refused(change, reason):
    body = json.dumps(PREDICTION).encode()
    headers = {**wavespeed_headers(body, delivery_id="msg_1"), **change}
    headers = {k.lower(): v for k, v in headers.items()}
    with pytest.raises(CallbackRefused, match=reason) as refused:
        wavespeed().read_callback(headers, body, now=time.time())
    assert refused.value.status == 401


def test_a_stale_or_future_timestamp_is_refused_even_when_signed():
    body = json.dumps(PREDICTION).encode()
    for skew in (-301, 301):
        headers = {k.lower(): v for k, v in wavespeed_headers(body, timestamp=time.time() + skew).items()}
        with pytest.raises(CallbackRefused, match="replayed or stale"):
            wavespeed().read_callback(headers, body, now=time.time())


def test_a_signed_wavespeed_callback_reads_as_the_poll_would():
    body = json.dumps(PREDICTION).encode()
    headers = {k.lower(): v for k, v in wavespeed_headers(body, delivery_id="msg_9").items()}
    callback = wavespeed().read_callback(headers, body, now=time.time())
    assert callback.delivery_id == "msg_9"
    assert callback.state.remote_id == PREDICTION["id"]
    assert callback.state.status is JobStatus.SUCCEEDED
    assert [o.url for o in callback.state.outputs] == PREDICTION["outputs"]


def test_wavespeed_takes_callbacks_only_with_its_signing_secret():
    assert wavespeed().callbacks_supported
    assert not wavespeed(None).callbacks_supported
    assert not wavespeed("  ").callbacks_supported
    with pytest.raises(CallbackRefused):
        wavespeed(None).read_callback({}, b"{}", now=time.time())


def test_the_reseller_sends_notify_hook_and_reads_its_callback():
    request = GenerationRequest(kind=Kind.VIDEO, prompt="waves", model="luma", callback_url="https://bot/cb/1/s")
    assert reseller_body(request)["notify_hook"] == "https://bot/cb/1/s"
    assert "notify_hook" not in reseller_body(request.replace(callback_url=None))
    adapter = LumaResellerProvider(None, api_key="k")  # type: ignore[arg-type]
    done = {"id": "g1", "state": "completed", "video": {"url": "https://cdn/v.mp4", "download_url": "https://r2/v.mp4"}}
    callback = adapter.read_callback({}, json.dumps(done).encode(), now=0)
    assert (callback.state.remote_id, callback.state.status) == ("g1", JobStatus.SUCCEEDED)
    assert callback.delivery_id is None
    with pytest.raises(CallbackRefused):
        adapter.read_callback({}, b"not json", now=0)


def test_lumozai_sends_webhook_and_reads_its_callback():
    request = GenerationRequest(
        kind=Kind.IMAGE, prompt="a cat", model="flux-cute-3d-kawaii", callback_url="https://bot/cb/1/s"
    )
    assert lumozai_body(request)["webhook"] == "https://bot/cb/1/s"
    adapter = LumozaiProvider(None, api_key="k")  # type: ignore[arg-type]
    body = {"success": True, "data": {"request_id": 212, "output": "https://lumozai.com/storage/outputs/a.jpg"}}
    callback = adapter.read_callback({}, json.dumps(body).encode(), now=0)
    assert (callback.state.remote_id, callback.state.status) == ("212", JobStatus.SUCCEEDED)
    with pytest.raises(CallbackRefused):  # no request id: it cannot be matched to a job
        adapter.read_callback({}, json.dumps({"success": True, "data": {"output": "https://x/a.jpg"}}).encode(), now=0)
