"""Attachments end to end: every slot refuses what it cannot use (before charging anything) and sends what it can
upstream as data, never as a Discord CDN URL."""

from __future__ import annotations

import pytest

from bot.settings import Settings
from tests.e2e.commands_support import b64, last_body, no_cdn_urls, png, refused, run, submits
from tests.e2e.harness import bot_running
from tests.fakes.media import animated_bytes, image_bytes, polyglot, truncated_png

# (command, the attachment option, other options)
SLOTS = [
    ("imagine", "reference", {"prompt": "a cat", "model": "uni-1"}),
    ("edit", "image", {"prompt": "a cat"}),
    ("edit", "reference", {"prompt": "a cat", "image": "GOOD"}),
    ("video", "start_image", {"prompt": "a cat"}),
    ("video", "end_image", {"prompt": "a cat"}),
]
WHAT = {
    "reference": "reference image",
    "image": "image to edit",
    "start_image": "start image",
    "end_image": "end image",
}


def options_for(fake, slot_options: dict, option: str, attachment: dict) -> dict:
    options = {k: (fake.add_cdn_file("good.png", png()) if v == "GOOD" else v) for k, v in slot_options.items()}
    return {**options, option: attachment}


PROBLEMS = [
    (lambda fake: fake.add_cdn_file("notes.txt", b"just some text"), "(notes.txt) is not a PNG, JPEG, WebP image"),
    (
        lambda fake: fake.add_cdn_file("party.gif", image_bytes("gif", 80, 80)),
        "(party.gif) is not a PNG, JPEG, WebP image",
    ),
    (
        lambda fake: {**fake.add_cdn_file("big.png", png()), "size": 30 * 1024 * 1024},
        "is 30.0 MB; the limit is 20 MB",
    ),
    (
        lambda fake: {**fake.add_cdn_file("huge.png", png()), "width": 12000, "height": 9000},
        "is 12000×9000 pixels; the longest side may be at most 8192",
    ),
    (lambda fake: fake.add_cdn_file("tiny.png", png(32, 32)), "use an image at least 64 pixels on each side"),
]


@pytest.mark.parametrize(("command", "option", "others"), SLOTS)
async def test_what_discord_says_about_an_attachment_is_checked_before_anything(
    fake_discord, fakes, settings, command, option, others
):
    async with bot_running(settings, fake_discord) as bot:
        for make, says in PROBLEMS:
            attachment = make(fake_discord)
            text = await refused(fake_discord, bot, command, options_for(fake_discord, others, option, attachment))
            assert f"The {WHAT[option]}" in text
            assert says in text
            assert not any(str(attachment["id"]) in path for path in fake_discord.cdn_requests)  # never downloaded


@pytest.mark.parametrize(("command", "option", "others"), SLOTS)
async def test_a_lying_attachment_is_refused_from_its_real_bytes(
    fake_discord, fakes, settings, command, option, others
):
    html = b"<!doctype html><html><body>not an image</body></html>"
    attachment = fake_discord.add_cdn_file("photo.png", html, "image/png")
    async with bot_running(settings, fake_discord) as bot:
        text = await refused(fake_discord, bot, command, options_for(fake_discord, others, option, attachment))
    assert f"The {WHAT[option]} (photo.png) is not really a PNG, JPEG, WebP image. Attach one of those." in text
    assert any(str(attachment["id"]) in path for path in fake_discord.cdn_requests)  # it was looked at


async def test_real_pixels_are_checked_when_the_declared_size_lies(fake_discord, fakes, settings):
    wide = image_bytes("png", 9000, 64)
    attachment = {**fake_discord.add_cdn_file("wide.png", wide), "width": 900, "height": 64}
    async with bot_running(settings, fake_discord) as bot:
        text = await refused(fake_discord, bot, "edit", {"prompt": "a cat", "image": attachment})
    assert "is 9000×64 pixels; the longest side may be at most 8192" in text


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
async def test_each_accepted_format_is_sent_upstream_as_data(fake_discord, fakes, settings, fmt):
    data = image_bytes(fmt, 72, 72)
    media_type = f"image/{fmt}"
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(
            fake_discord, bot, "edit", {"prompt": "brighter", "image": fake_discord.add_cdn_file(f"in.{fmt}", data)}
        )
        _, video = await run(
            fake_discord,
            bot,
            "video",
            {"prompt": "it moves", "start_image": fake_discord.add_cdn_file(f"start.{fmt}", data)},
        )
    assert job.status == "succeeded", job.error_message
    assert video.status == "succeeded", video.error_message
    edit_body = last_body(fakes, "luma_agents")
    video_body = last_body(fakes, "luma_reseller")
    assert edit_body["source"] == {"data": b64(data), "media_type": media_type}
    assert video_body["image_url"] == f"data:{media_type};base64,{b64(data)}"
    assert no_cdn_urls(edit_body)
    assert no_cdn_urls(video_body)


HOSTILE = [
    ("cut.png", truncated_png(), "is damaged or incomplete"),
    ("moving.png", animated_bytes("png"), "is animated"),
    ("two-in-one.png", polyglot(png()), "has extra data after the end"),
]


@pytest.mark.parametrize(("command", "option", "others"), [s for s in SLOTS if s[0] in ("edit", "video")])
async def test_truncated_animated_and_polyglot_images_are_refused_before_any_charge(
    fake_discord, fakes, settings, command, option, others
):
    async with bot_running(settings, fake_discord) as bot:
        for filename, data, says in HOSTILE:
            attachment = fake_discord.add_cdn_file(filename, data, "image/png")
            text = await refused(fake_discord, bot, command, options_for(fake_discord, others, option, attachment))
            assert f"The {WHAT[option]} ({filename}) {says}" in text
            assert "again" in text or "instead" in text  # says what to change
    assert last_body_or_none(fakes, "luma_agents") is None
    assert last_body_or_none(fakes, "luma_reseller") is None


def last_body_or_none(fakes, provider: str):
    sent = submits(fakes, provider)
    return sent[-1] if sent else None


async def test_attachments_come_only_from_the_configured_cdn_hosts(fake_discord, fakes, settings):
    attachment = fake_discord.add_cdn_file("elsewhere.png", png())
    moved = {**attachment, "url": attachment["url"].replace("127.0.0.1", "localhost")}
    async with bot_running(settings, fake_discord) as bot:
        text = await refused(fake_discord, bot, "edit", {"prompt": "a cat", "image": moved})
    assert "not on Discord's file server" in text
    assert not fake_discord.cdn_requests


def test_production_attachment_hosts_are_discords_cdn_only():
    assert Settings(_env_file=None).attachment_hosts == {"cdn.discordapp.com", "media.discordapp.net"}  # type: ignore[call-arg]
    assert not Settings(_env_file=None).loopback_fetch_allowed  # type: ignore[call-arg]


def test_the_old_private_network_setting_now_means_loopback_only_and_says_so():
    old = Settings(_env_file=None, allow_private_network_fetch=True)  # type: ignore[call-arg]
    assert old.loopback_fetch_allowed
    assert "ALLOW_LOOPBACK_FETCH" in old.deprecations()[0]
    assert Settings(_env_file=None, allow_loopback_fetch=True).deprecations() == []  # type: ignore[call-arg]
