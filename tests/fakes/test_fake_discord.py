"""Proves the fake Discord against the real discord.py client: a minimal AutoShardedBot logs in, receives slash
commands over the gateway and answers through the real interaction/webhook/channel REST routes."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import (
    DEFAULT_SPEC_PATH,
    FakeDiscord,
    RecordedRequest,
    UserOption,
    WaitTimeout,
    running_bot,
)
from tests.fakes.discord.runner import pointed_at
from tests.fakes.media import image_bytes

PNG = image_bytes("png", 64, 48)
HAS_SPEC = DEFAULT_SPEC_PATH.exists()
ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original"


class CancelJob(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"job:cancel:(?P<id>[0-9]+)"):
    """A persistent button whose custom_id carries the job id."""

    def __init__(self, job_id: int) -> None:
        button: discord.ui.Button[Any] = discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"job:cancel:{job_id}"
        )
        super().__init__(button)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelJob:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"job {self.job_id} cancelled", view=None)


class FeedbackModal(discord.ui.Modal, title="Rate this image"):
    comment: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Comment", custom_id="comment")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.comment.value}", ephemeral=True)


class FakeTestBot(commands.AutoShardedBot):
    """The smallest bot using what the real one uses: defer + edits + file, autocomplete, ephemeral + button."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.none(),
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=0.05,
        )
        self.release = asyncio.Event()
        self.hold_final_edit = False
        self.choice_slice = 25
        self.errors: list[discord.HTTPException] = []
        self.downloads: list[bytes] = []
        self.deferred_message_ids: list[int | None] = []
        self.contexts: list[app_commands.AppCommandContext] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(CancelJob)
        commands_ = (self._imagine(), self._style(), self._job(), self._feedback(), self._followups(), self._refuse())
        for command in commands_:
            self.tree.add_command(command)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every re-IDENTIFY; tests don't need to."""

    def _imagine(self) -> app_commands.Command[Any, ..., None]:
        @app_commands.command(name="imagine", description="Generate an image")
        async def imagine(
            interaction: discord.Interaction,
            prompt: app_commands.Range[str, 1, 1000],
            image: discord.Attachment | None = None,
        ) -> None:
            callback = await interaction.response.defer(thinking=True)
            self.deferred_message_ids.append(callback.message_id if callback else None)
            self.contexts.append(interaction.context)
            if image is not None:
                self.downloads.append(await image.read())
            await interaction.edit_original_response(content=f"queued: {prompt}")
            await interaction.edit_original_response(content="processing 50%")
            if self.hold_final_edit:
                await self.release.wait()
            try:
                await interaction.edit_original_response(
                    content=f"done: {prompt}", attachments=[discord.File(io.BytesIO(PNG), "out.png")]
                )
            except discord.HTTPException as exc:
                self.errors.append(exc)
                assert callback is not None
                assert callback.message_id is not None
                channel = self.get_partial_messageable(interaction.channel_id or 0)
                await channel.get_partial_message(callback.message_id).edit(
                    content=f"done: {prompt} (fallback)", attachments=[discord.File(io.BytesIO(PNG), "out.png")]
                )

        return imagine

    def _style(self) -> app_commands.Command[Any, ..., None]:
        @app_commands.command(name="style", description="Pick a style")
        async def style(interaction: discord.Interaction, name: str) -> None:
            await interaction.response.send_message(name, ephemeral=True)

        @style.autocomplete("name")
        async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            choices = [app_commands.Choice(name=f"{current} {i}", value=f"s{i}") for i in range(30)]
            return choices[: self.choice_slice]

        return style

    def _job(self) -> app_commands.Command[Any, ..., None]:
        @app_commands.command(name="job", description="Start a job")
        async def job(interaction: discord.Interaction) -> None:
            view = discord.ui.View(timeout=None)
            view.add_item(CancelJob(42))
            await interaction.response.send_message("job 42 started", ephemeral=True, view=view)

        return job

    def _followups(self) -> app_commands.Command[Any, ..., None]:
        @app_commands.command(name="followups", description="Exercise followup routes")
        async def followups(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send("early")
            extra = await interaction.followup.send("extra", ephemeral=True, wait=True)
            await extra.edit(content="extra, edited")
            original = await interaction.original_response()
            assert original.content == "early"
            await interaction.delete_original_response()

        return followups

    def _refuse(self) -> app_commands.Command[Any, ..., None]:
        @app_commands.command(name="refuse", description="A public defer, then a refusal for the user alone")
        async def refuse(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.delete_original_response()
            await interaction.followup.send("not here", ephemeral=True)
            channel = self.get_partial_messageable(interaction.channel_id or 0)
            for _ in range(2):  # a resend after a crash: the same nonce gets the same message back
                message = await channel.send("result", nonce="genbot-job-7")
                self.deferred_message_ids.append(message.id)

        return refuse

    def _feedback(self) -> app_commands.Command[Any, ..., None]:
        @app_commands.command(name="feedback", description="Rate an image")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(FeedbackModal())

        return feedback


@pytest.fixture
async def bot(fake_discord: FakeDiscord) -> AsyncIterator[FakeTestBot]:
    async with running_bot(FakeTestBot(), fake_discord) as client:
        yield client


def is_final_edit(request: RecordedRequest) -> bool:
    return request.method == "PATCH" and bool(request.files) and request.status == 200


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def assert_responses_match_spec(fake: FakeDiscord) -> None:
    """The fake's own successful answers validate against the spec's response schemas."""
    if fake.spec is None:
        return
    for request in fake.requests:
        if request.status == 200:
            problems = fake.spec.validate_response(request.method, request.path, 200, request.response)
            assert problems == [], (request.summary(), [p.describe() for p in problems])


# --------------------------------------------------------------------------------------------- login + gateway
async def test_login_and_ready(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    assert [(r.method, r.path, r.auth, r.status) for r in fake_discord.requests] == [
        ("GET", "/users/@me", "bot", 200),
        ("GET", "/oauth2/applications/@me", "bot", 200),
        ("GET", "/gateway/bot", "bot", 200),
    ]
    assert bot.user is not None
    assert bot.user.id == fake_discord.bot_user_id
    assert bot.application_id == fake_discord.application_id
    identify = next(frame["d"] for frame in fake_discord.gateway.received if frame["op"] == 2)
    assert identify["token"] == fake_discord.token
    assert identify["shard"] == [0, 1]
    assert fake_discord.gateway.connect_queries[0]["compress"] in ("zlib-stream", "zstd-stream")
    await asyncio.wait_for(bot.wait_until_ready(), 2)
    assert_responses_match_spec(fake_discord)
    with pytest.raises(WaitTimeout, match=r"#0 GET /users/@me auth=bot -> 200"):
        await fake_discord.wait_for(lambda r: r.method == "DELETE", timeout=0.05)


async def test_wrong_token_is_unauthorized(fake_discord: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()
    assert fake_discord.requests[0].auth == "invalid"
    assert fake_discord.requests[0].response == {"message": "401: Unauthorized", "code": 0}


async def test_gateway_resume_and_reidentify(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    (session,) = fake_discord.gateway.sessions.values()
    await fake_discord.reconnect_gateway()
    await eventually(lambda: session.resumes == 1 and session.ws is not None)
    fake_discord.ready.clear()
    await fake_discord.invalidate_session(resumable=False)
    await asyncio.wait_for(fake_discord.ready.wait(), 3)
    assert len(fake_discord.gateway.sessions) == 2
    payload = fake_discord.slash_command("style", {"name": "x"})
    await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)


# --------------------------------------------------------------------------------------------- slash commands
def test_payload_builder_types_options() -> None:
    fake = FakeDiscord(spec_path=None)
    bob = fake.add_user("bob")
    image = {"id": "7", "filename": "a.png", "size": 3, "url": "u", "proxy_url": "p", "content_type": "image/png"}
    options = {"prompt": "a", "seed": 42, "hq": True, "cfg": 7.5, "image": image, "who": UserOption(int(bob["id"]))}
    payload = fake.slash_command("imagine", options, subcommand="new", attachment_size_limit=25 * 1024**2)
    (sub,) = payload["data"]["options"]
    assert (sub["name"], sub["type"]) == ("new", 1)
    assert [(o["name"], o["type"], o["value"]) for o in sub["options"]] == [
        ("prompt", 3, "a"), ("seed", 4, 42), ("hq", 5, True), ("cfg", 10, 7.5), ("image", 11, "7"),
        ("who", 6, bob["id"]),
    ]  # fmt: skip
    resolved = payload["data"]["resolved"]
    assert resolved["attachments"]["7"] == image
    assert resolved["users"][bob["id"]] == bob
    assert "user" not in resolved["members"][bob["id"]]
    assert payload["attachment_size_limit"] == 25 * 1024**2
    assert payload["context"] == 0
    assert payload["member"]["user"]["id"] == str(fake.default_user_id)
    assert payload["authorizing_integration_owners"] == {"0": str(fake.default_guild_id)}
    private = fake.slash_command("imagine", {"prompt": "b"}, guild_id=None, context=2)
    assert private["authorizing_integration_owners"] == {"1": str(fake.default_user_id)}
    assert private["channel"]["type"] == 1
    assert "user" in private


async def test_defer_two_edits_then_file(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    init = fake_discord.add_cdn_file("init.png", PNG)
    payload = fake_discord.slash_command("imagine", {"prompt": "a cat <@1> @everyone", "image": init})
    await fake_discord.dispatch_and_wait(payload, is_final_edit)

    sent = fake_discord.requests_for(payload)
    assert [(r.method, re.sub(r"/\d+/[^/]+", "/ID/TOKEN", r.path), r.status) for r in sent] == [
        ("POST", "/interactions/ID/TOKEN/callback", 200),
        ("PATCH", "/webhooks/ID/TOKEN/messages/@original", 200),
        ("PATCH", "/webhooks/ID/TOKEN/messages/@original", 200),
        ("PATCH", "/webhooks/ID/TOKEN/messages/@original", 200),
    ]
    callback, first, second, final = sent
    assert callback.json == {"type": 5}
    assert callback.query == {"with_response": "1"}
    assert callback.auth == "none"
    assert first.json["content"] == "queued: a cat <@1> @everyone"
    assert second.json["content"] == "processing 50%"
    assert all(r.json["allowed_mentions"] == {"parse": []} for r in (first, second, final))

    assert final.json["attachments"] == [{"id": 0, "filename": "out.png"}]
    (upload,) = final.files
    assert (upload.field, upload.filename, upload.data) == ("files[0]", "out.png", PNG)

    record = fake_discord.interaction(payload)
    assert bot.deferred_message_ids == [record.original_message_id]
    assert bot.downloads == [PNG]
    message = fake_discord.messages[record.original_message_id or 0]
    assert message["content"] == "done: a cat <@1> @everyone"
    assert message["mentions"] == []
    assert message["flags"] == 0
    assert message["mention_everyone"] is False
    (attachment,) = message["attachments"]
    assert (attachment["content_type"], attachment["width"], attachment["height"]) == ("image/png", 64, 48)
    async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as response:
        assert await response.read() == PNG
    assert_responses_match_spec(fake_discord)


async def test_rate_limited_edit_is_retried(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    fake_discord.fail_next("PATCH", ORIGINAL, retry_after=0.05)
    payload = fake_discord.slash_command("imagine", {"prompt": "a dog"})
    await fake_discord.dispatch_and_wait(payload, is_final_edit)
    edits = [r for r in fake_discord.requests_for(payload) if r.method == "PATCH"]
    assert [r.status for r in edits] == [429, 200, 200, 200]
    assert edits[0].json == edits[1].json
    assert edits[0].received_at
    assert edits[1].received_at
    assert (edits[1].received_at - edits[0].received_at).total_seconds() >= 0.05


async def test_429_without_via_header_is_not_retried(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    fake_discord.fail_next("POST", r"/channels/\d+/messages", via=False)
    channel = bot.get_partial_messageable(fake_discord.default_channel_id)
    with pytest.raises(discord.HTTPException) as raised:
        await channel.send("hello")
    assert raised.value.status == 429
    assert len(fake_discord.requests_to("POST", r"/channels/\d+/messages")) == 1


async def test_expired_token_falls_back_to_bot_token_edit(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    bot.hold_final_edit = True
    payload = fake_discord.slash_command("imagine", {"prompt": "slow"})
    await fake_discord.dispatch(payload)
    await fake_discord.wait_for(lambda r: "processing" in str(r.json))
    fake_discord.expire_token(payload["token"])
    bot.release.set()

    fallback = await fake_discord.wait_for(lambda r: r.method == "PATCH" and r.path.startswith("/channels/"))
    (error,) = bot.errors
    assert (error.status, error.code) == (401, 50027)
    expired = fake_discord.requests_for(payload)[-1]
    assert expired.status == 401
    assert expired.response == {"message": "Invalid Webhook Token", "code": 50027}

    message_id = fake_discord.interaction(payload).original_message_id
    assert fallback.path == f"/channels/{fake_discord.default_channel_id}/messages/{message_id}"
    assert fallback.auth == "bot"
    assert fallback.status == 200
    assert fallback.files[0].data == PNG
    assert fallback.json["allowed_mentions"] == {"parse": []}
    assert fake_discord.messages[message_id or 0]["content"] == "done: slow (fallback)"


async def test_token_lifetime_follows_the_interaction_snowflake(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    payload = fake_discord.slash_command("job")
    await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)
    url = f"{fake_discord.api_base}/webhooks/{fake_discord.application_id}/{payload['token']}/messages/@original"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 200
        fake_discord.advance(15 * 60)
        async with session.get(url) as response:
            assert (response.status, await response.json()) == (
                401,
                {"message": "Invalid Webhook Token", "code": 50027},
            )


async def test_late_callback_is_unknown_interaction(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    old = fake_discord.now() - timedelta(seconds=4)
    payload = fake_discord.slash_command("style", {"name": "x"}, created_at=old)
    callback = await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)
    assert (callback.status, callback.response["code"]) == (404, 10062)
    assert len(fake_discord.violations) == 1
    assert "deadline" in fake_discord.violations[0]
    fake_discord.violations.clear()


async def test_edit_keeps_only_the_listed_attachments(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    channel = bot.get_partial_messageable(fake_discord.default_channel_id)
    message = await channel.send(file=discord.File(io.BytesIO(PNG), "a.png"))
    (kept,) = message.attachments
    jpeg = image_bytes("jpeg", 32, 32)
    edited = await message.edit(attachments=[kept, discord.File(io.BytesIO(jpeg), "b.jpg")])
    assert [a["id"] for a in fake_discord.requests[-1].json["attachments"]] == [kept.id, 0]
    assert [(a.id == kept.id, a.filename, a.content_type) for a in edited.attachments] == [
        (True, "a.png", "image/png"),
        (False, "b.jpg", "image/jpeg"),
    ]
    await edited.edit(attachments=[])
    assert fake_discord.messages[message.id]["attachments"] == []


async def test_bot_cannot_edit_someone_elses_message(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    foreign = fake_discord.add_message(fake_discord.default_channel_id, "hello")
    channel = bot.get_partial_messageable(fake_discord.default_channel_id)
    with pytest.raises(discord.Forbidden) as raised:
        await channel.get_partial_message(int(foreign["id"])).edit(content="mine now")
    assert raised.value.code == 50005


async def test_autocomplete_sends_25_choices(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    payload = fake_discord.autocomplete("style", {"name": "wat"}, focused="name")
    callback = await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)
    assert callback.status == 200
    assert callback.json["type"] == 8
    assert len(callback.json["data"]["choices"]) == 25
    assert callback.json["data"]["choices"][0] == {"name": "wat 0", "value": "s0"}


async def test_ephemeral_reply_with_persistent_button(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    payload = fake_discord.slash_command("job")
    reply = await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)
    assert reply.json["type"] == 4
    assert reply.json["data"]["flags"] == 64
    button = reply.json["data"]["components"][0]["components"][0]
    assert (button["custom_id"], button["label"]) == ("job:cancel:42", "Cancel")
    message_id = fake_discord.interaction(payload).original_message_id or 0
    assert fake_discord.messages[message_id]["flags"] == 64

    click = fake_discord.button_click("job:cancel:42", message_id)
    update = await fake_discord.dispatch_and_wait(click, lambda r: "/callback" in r.path)
    assert update.json["type"] == 7
    assert update.json["data"]["content"] == "job 42 cancelled"
    assert fake_discord.messages[message_id]["content"] == "job 42 cancelled"
    assert fake_discord.messages[message_id]["components"] == []
    assert_responses_match_spec(fake_discord)


async def test_modal_round_trip(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    payload = fake_discord.slash_command("feedback")
    modal = await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)
    assert modal.json["type"] == 9
    assert modal.json["data"]["title"] == "Rate this image"
    submit = fake_discord.modal_submit(modal.json["data"]["custom_id"], {"comment": "lovely"})
    answer = await fake_discord.dispatch_and_wait(submit, lambda r: "/callback" in r.path)
    assert answer.json["data"]["content"] == "thanks: lovely"


async def test_followups_original_response_and_delete(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    payload = fake_discord.slash_command("followups")
    await fake_discord.dispatch_and_wait(payload, lambda r: r.method == "DELETE")
    sent = fake_discord.requests_for(payload)
    assert [(r.method, re.sub(r"^/\w+/\d+/[^/]+", "", r.path), r.status) for r in sent] == [
        ("POST", "/callback", 200),
        ("POST", "", 200),
        ("POST", "", 200),
        ("PATCH", f"/messages/{sent[2].response['id']}", 200),
        ("GET", "/messages/@original", 200),
        ("DELETE", "/messages/@original", 204),
    ]
    record = fake_discord.interaction(payload)
    assert sent[1].response["id"] == str(record.original_message_id)
    assert record.original_message_id not in fake_discord.messages
    (extra_id,) = record.followup_ids
    assert fake_discord.messages[extra_id]["content"] == "extra, edited"
    assert fake_discord.messages[extra_id]["flags"] == 64
    (violation,) = fake_discord.violations
    assert "policy: followup sent while the deferred response is loading" in violation
    fake_discord.violations.clear()


async def test_a_followup_after_the_deleted_original_is_a_new_ephemeral_message_and_nonces_dedupe(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    payload = fake_discord.slash_command("refuse")
    await fake_discord.dispatch_and_wait(payload, lambda r: r.method == "POST" and r.path.startswith("/channels/"))
    for _ in range(500):
        if len(bot.deferred_message_ids) >= 2:
            break
        await asyncio.sleep(0.01)
    record = fake_discord.interaction(payload)
    assert record.original_message_id not in fake_discord.messages
    (followup_id,) = record.followup_ids  # not an edit of the (deleted) loading message: a message of its own
    assert fake_discord.messages[followup_id]["content"] == "not here"
    assert fake_discord.messages[followup_id]["flags"] == 64  # and the ephemeral flag counts
    assert fake_discord.violations == []
    first, second = bot.deferred_message_ids[-2:]
    assert first == second  # enforce_nonce: the second send returned the first message
    sends = fake_discord.requests_to("POST", r"/channels/\d+/messages")
    assert sends[0].json["enforce_nonce"] is True


async def test_dm_invocation_and_fallback(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    bot.hold_final_edit = True
    payload = fake_discord.slash_command("imagine", {"prompt": "in a dm"}, guild_id=None)
    assert payload["context"] == 1
    assert payload["channel"]["type"] == 1
    assert "member" not in payload
    await fake_discord.dispatch(payload)
    await fake_discord.wait_for(lambda r: "processing" in str(r.json))
    fake_discord.expire_token(payload["token"])
    bot.release.set()
    fallback = await fake_discord.wait_for(lambda r: r.method == "PATCH" and r.path.startswith("/channels/"))
    dm = fake_discord.dm_channel(fake_discord.default_user_id)
    assert fallback.path.startswith(f"/channels/{dm.id}/")
    assert fallback.status == 200
    (context,) = bot.contexts
    assert context.dm_channel
    assert not context.guild
    assert not context.private_channel


# --------------------------------------------------------------------------------------------- validation
async def test_violations_for_bad_bodies(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    channel = bot.get_partial_messageable(fake_discord.default_channel_id)
    bad_sends: list[dict[str, Any]] = [
        {"content": "x" * 2001},
        {"embed": discord.Embed(title="t" * 300)},
        {"files": [discord.File(io.BytesIO(PNG), f"{i}.png") for i in range(11)]},
    ]
    for kwargs in bad_sends:
        with pytest.raises(discord.HTTPException) as raised:
            await channel.send(**kwargs)
        assert (raised.value.status, raised.value.code) == (400, 50035)

    bot.choice_slice = 26
    payload = fake_discord.autocomplete("style", {"name": "x"}, focused="name")
    callback = await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)
    assert callback.status == 400

    await channel.send("hi <@1>", allowed_mentions=discord.AllowedMentions(users=True))

    text = "\n".join(fake_discord.violations)
    for expected in (
        "limit: content: must be 2000 or fewer in length (got 2001)",
        "limit: embeds[0].title: must be 256 or fewer in length (got 300)",
        "limit: files: at most 10 files allowed (got 11)",
        "spec: attachments: 11 items violate maxItems 10",
        "limit: data.choices: at most 25 choices allowed (got 26)",
        "spec: data.choices: 26 items violate maxItems 25",
        "policy: allowed_mentions: content has mention-like text",
    ):
        if expected.startswith("spec:") and not HAS_SPEC:
            continue
        assert expected in text, f"{expected!r} not in:\n{text}"
    fake_discord.violations.clear()


async def test_command_sync_recorded_and_validated(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    synced = await bot.tree.sync()
    (put,) = fake_discord.requests_to("PUT", r"/applications/\d+/commands")
    assert put.status == 200
    assert put.auth == "bot"
    assert sorted(c["name"] for c in put.json) == ["feedback", "followups", "imagine", "job", "refuse", "style"]
    imagine = next(c for c in put.json if c["name"] == "imagine")
    assert imagine["options"][0] == {
        "type": 3, "name": "prompt", "description": "…", "required": True, "min_length": 1, "max_length": 1000,
    }  # fmt: skip
    assert imagine["options"][1]["type"] == 11
    assert {c.id for c in synced} == {int(c["id"]) for c in fake_discord.commands[None]}

    guild = discord.Object(fake_discord.default_guild_id)
    bot.tree.copy_global_to(guild=guild)
    await bot.tree.sync(guild=guild)
    assert len(fake_discord.commands[fake_discord.default_guild_id]) == 6
    payload = fake_discord.slash_command("style", {"name": "g"})
    assert payload["data"]["guild_id"] == str(fake_discord.default_guild_id)
    callback = await fake_discord.dispatch_and_wait(payload, lambda r: "/callback" in r.path)
    assert callback.json["data"]["content"] == "g"

    bad: list[dict[str, Any]] = [
        {"name": "Bad Name", "description": "", "type": 1},
        {
            "name": "ok",
            "description": "d",
            "options": [
                {"type": 3, "name": "a", "description": "a"},
                {"type": 3, "name": "b", "description": "b", "required": True},
            ],
        },
    ]
    with pytest.raises(discord.HTTPException):
        await bot.http.bulk_upsert_global_commands(fake_discord.application_id, bad)
    text = "\n".join(fake_discord.violations)
    assert "[0].name: name 'Bad Name' must match" in text
    assert "[0].description: must be 1 or more in length" in text
    assert "required option 'b' follows an optional one" in text
    fake_discord.violations.clear()


async def test_unknown_route_is_a_violation(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/guilds/{guild_id}/nope", guild_id=1))
    assert fake_discord.violations == ["GET /guilds/1/nope (#3): route: unknown route GET /guilds/1/nope"]
    fake_discord.violations.clear()


@pytest.mark.parametrize("with_spec", [True, False])
async def test_spec_validation_on_and_off(with_spec: bool) -> None:
    if with_spec and not HAS_SPEC:
        pytest.skip(f"no OpenAPI spec at {DEFAULT_SPEC_PATH}")
    body = {"content": "hi", "allowed_mentions": {"parse": ["nobody"]}}
    fake = FakeDiscord() if with_spec else FakeDiscord(spec_path=None)
    async with fake, aiohttp.ClientSession() as session:
        assert (fake.spec is not None) is with_spec
        url = f"{fake.api_base}/channels/{fake.default_channel_id}/messages"
        headers = {"Authorization": f"Bot {fake.token}"}
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == (400 if with_spec else 200)
            assert response.headers["Content-Type"] == "application/json"
        async with session.post(url, json={"content": "x" * 2001}, headers=headers) as response:
            assert response.status == 400
    spec_violations = [v for v in fake.violations if "spec:" in v]
    if with_spec:
        assert any('allowed_mentions.parse[0]: "nobody" is not one of' in v for v in spec_violations)
    else:
        assert spec_violations == []
    assert any("limit: content" in v for v in fake.violations)


async def test_plain_client_via_gateway_url() -> None:
    async with FakeDiscord() as fake:
        with pointed_at(fake):
            client = discord.Client(intents=discord.Intents.none())
            async with running_bot(client, fake):
                assert fake.requests_to("GET", "/gateway/bot") == []
                assert fake.gateway.sessions


# --------------------------------------------------------------------------------------------- premium apps
async def test_skus_entitlements_consume_and_entitlement_create(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    pack = fake_discord.add_sku("100 credits")
    other = fake_discord.add_sku("a subscription", sku_type=5)
    skus = {sku.id: sku for sku in await bot.fetch_skus()}
    assert skus[pack].type is discord.SKUType.consumable
    assert skus[other].type is discord.SKUType.subscription

    user = discord.Object(id=fake_discord.default_user_id)
    await bot.create_entitlement(discord.Object(id=pack), user, discord.EntitlementOwnerType.user)
    (test_entitlement,) = [e async for e in bot.entitlements(user=user)]
    assert test_entitlement.type is discord.EntitlementType.test_mode_purchase
    bought = [fake_discord.entitle(fake_discord.default_user_id, pack) for _ in range(3)]
    fake_discord.entitle(fake_discord.default_user_id, other)

    listed = [e async for e in bot.entitlements(limit=None, skus=[discord.Object(id=pack)], exclude_ended=True)]
    assert [e.id for e in listed] == sorted([test_entitlement.id, *(int(b["id"]) for b in bought)])
    assert all(e.sku_id == pack and not e.consumed for e in listed)
    first_two = [e.id async for e in bot.entitlements(limit=2)]
    assert first_two == [e.id for e in listed[:2]]

    await listed[0].consume()
    assert fake_discord.monetization.consumed(listed[0].id)
    refreshed = await bot.fetch_entitlement(listed[0].id)
    assert refreshed.consumed
    await listed[1].delete()
    with pytest.raises(discord.NotFound):
        await listed[1].consume()
    remaining = [e.id async for e in bot.entitlements(limit=None, skus=[discord.Object(id=pack)])]
    assert listed[1].id not in remaining

    received: list[discord.Entitlement] = []

    async def on_entitlement_create(entitlement: discord.Entitlement) -> None:
        received.append(entitlement)

    bot.add_listener(on_entitlement_create)
    sent = await fake_discord.purchase(fake_discord.default_user_id, pack)
    await eventually(lambda: bool(received))
    assert (received[0].id, received[0].sku_id, received[0].user_id) == (
        int(sent["id"]),
        pack,
        fake_discord.default_user_id,
    )
    assert not fake_discord.violations
    if fake_discord.spec is not None:  # the spec's EntitlementTypes lists only 8 and 10; purchases are 1, tests 4
        for request in fake_discord.requests:
            if request.status == 200 and "/entitlements" in request.path:
                problems = fake_discord.spec.validate_response(request.method, request.path, 200, request.response)
                assert [p.describe() for p in problems if p.where != "type" and not p.where.endswith(".type")] == []
