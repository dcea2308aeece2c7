"""The fake Discord's rate limits (``ratelimits.py``): per-route buckets with their headers, the global limit for
bot-token routes (interaction and webhook-token routes exempt), 429 bodies discord.py honours, and a real
discord.py client that stays within them."""

from __future__ import annotations

import aiohttp
import discord
import pytest

from tests.fakes.clock import ManualClock
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.ratelimits import RateLimiter
from tests.fakes.discord.runner import pointed_at

SEND = "/channels/{}/messages"


def test_a_channel_takes_five_messages_per_five_seconds_then_refuses_until_the_reset():
    clock = ManualClock(100.0)
    limiter = RateLimiter(clock=clock)
    verdicts = [limiter.check("POST", SEND.format(1), bot_auth=True) for _ in range(6)]
    assert [v.refused for v in verdicts] == [False] * 5 + [True]
    assert [v.headers["X-RateLimit-Remaining"] for v in verdicts[:5]] == ["4", "3", "2", "1", "0"]
    assert verdicts[0].headers["X-RateLimit-Limit"] == "5"
    assert verdicts[0].headers["X-RateLimit-Reset-After"] == "5.000"
    refused = verdicts[5]
    assert refused.body == {"message": "You are being rate limited.", "retry_after": 5.0, "global": False}
    assert refused.headers["X-RateLimit-Scope"] == "user"
    assert "X-RateLimit-Global" not in refused.headers
    assert refused.headers["Via"]  # without it discord.py takes the 429 for a Cloudflare ban
    assert refused.headers["X-RateLimit-Bucket"] == verdicts[0].headers["X-RateLimit-Bucket"]

    assert not limiter.check("POST", SEND.format(2), bot_auth=True).refused  # another channel: its own bucket
    clock.advance(2.5)
    assert limiter.check("POST", SEND.format(1), bot_auth=True).body == {
        "message": "You are being rate limited.",
        "retry_after": 2.5,
        "global": False,
    }
    clock.advance(2.5)
    assert not limiter.check("POST", SEND.format(1), bot_auth=True).refused
    assert limiter.refused == [("POST", SEND.format(1), "user")] * 2


def test_an_interactions_token_routes_share_one_bucket_of_five_per_two_seconds():
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    token = "tok" * 20
    paths = [
        ("POST", f"/interactions/1/{token}/callback"),
        ("PATCH", f"/webhooks/9/{token}/messages/@original"),
        ("POST", f"/webhooks/9/{token}"),
        ("PATCH", f"/webhooks/9/{token}/messages/@original"),
        ("PATCH", f"/webhooks/9/{token}/messages/@original"),
        ("PATCH", f"/webhooks/9/{token}/messages/@original"),
    ]
    refused = [limiter.check(method, path, bot_auth=False).refused for method, path in paths]
    assert refused == [False, False, False, False, False, True]
    assert not limiter.check("PATCH", f"/webhooks/9/{'x' * 60}/messages/@original", bot_auth=False).refused
    clock.advance(2.0)
    assert not limiter.check("PATCH", f"/webhooks/9/{token}/messages/@original", bot_auth=False).refused


def test_fifty_bot_token_requests_per_second_globally_but_interaction_routes_are_exempt():
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    for user in range(50):  # 50 different routes: no per-route bucket is full
        assert not limiter.check("GET", f"/users/{user}", bot_auth=True).refused
    refused = limiter.check("GET", "/users/999", bot_auth=True)
    assert refused.refused
    assert refused.scope == "global"
    assert refused.headers["X-RateLimit-Global"] == "true"
    assert refused.headers["X-RateLimit-Scope"] == "global"
    assert refused.body is not None
    assert refused.body["global"] is True
    assert not limiter.check("POST", f"/interactions/1/{'t' * 60}/callback", bot_auth=False).refused
    assert not limiter.check("PATCH", f"/webhooks/9/{'t' * 60}/messages/@original", bot_auth=False).refused
    clock.advance(1.0)
    assert not limiter.check("GET", "/users/999", bot_auth=True).refused


async def test_the_server_answers_429_with_headers_only_when_rate_limits_are_on():
    async with FakeDiscord(spec_path=None, rate_limits=True) as fake, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {fake.token}"}
        url = f"{fake.api_base}/channels/{fake.default_channel_id}/messages"
        answers = []
        for n in range(6):
            async with http.post(url, json={"content": f"hi {n}"}, headers=headers) as response:
                answers.append((response.status, dict(response.headers), await response.json()))
        assert [status for status, _, _ in answers] == [200] * 5 + [429]
        assert answers[0][1]["X-RateLimit-Remaining"] == "4"
        _status, refused_headers, body = answers[5]
        assert body["global"] is False
        assert 0 < body["retry_after"] <= 5
        assert refused_headers["X-RateLimit-Scope"] == "user"
        assert len(fake.messages) == 5  # the refused message was not posted
        assert [r.status for r in fake.requests] == [200] * 5 + [429]

    async with FakeDiscord(spec_path=None) as fake, aiohttp.ClientSession() as http:  # off by default
        headers = {"Authorization": f"Bot {fake.token}"}
        url = f"{fake.api_base}/channels/{fake.default_channel_id}/messages"
        for n in range(7):
            async with http.post(url, json={"content": f"hi {n}"}, headers=headers) as response:
                assert response.status == 200
                assert "X-RateLimit-Limit" not in response.headers


@pytest.mark.slow
async def test_discord_py_waits_out_the_bucket_instead_of_collecting_429s():
    async with FakeDiscord(spec_path=None, rate_limits=True) as fake:
        with pointed_at(fake):
            client = discord.Client(intents=discord.Intents.none())
            await client.login(fake.token)
            try:
                channel = client.get_partial_messageable(fake.default_channel_id)
                for n in range(6):
                    await channel.send(f"message {n}")
            finally:
                await client.close()
        assert len(fake.messages) == 6
        # The sixth message waited for the channel's bucket to refill (it read the headers) instead of a 429.
        assert fake.rate_limiter is not None
        assert fake.rate_limiter.refused == []
        assert [r.status for r in fake.requests_to("POST", r"/channels/\d+/messages")] == [200] * 6
