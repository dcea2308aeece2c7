"""Languages end to end, through the real discord.py client: refusals in the user's locale, the public job message
(and its buttons) in the server's locale while the user's own texts follow theirs, a service's refusal translated
with its values (also after a restart), the synced command payload with zh-CN and ja localizations, and the locales
kept with a job across a restart."""

from __future__ import annotations

from typing import Any

from bot.__main__ import sync_commands
from bot.i18n.core import CATALOGUES, NAMES
from providers import wavespeed
from tests.e2e.commands_support import refused
from tests.e2e.harness import bot_running, delivered, latest_job_id
from tests.fakes.discord.limits import check_commands
from tests.fakes.providers._server import Timing


def _labels(message: dict[str, Any]) -> list[str]:
    return [c.get("label") for row in message.get("components", []) for c in row["components"]]


async def test_a_zh_cn_user_is_refused_in_chinese_and_an_en_us_user_in_english(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        chinese = await refused(fake_discord, bot, "imagine", {"prompt": "--ar 16:9"}, locale="zh-CN")
        english = await refused(fake_discord, bot, "imagine", {"prompt": "--ar 16:9"}, locale="en-US")
        japanese = await refused(fake_discord, bot, "job", {"id": 404}, subcommand="show", locale="ja")
        other = await refused(fake_discord, bot, "imagine", {"prompt": "--ar 16:9"}, locale="fr")

    assert chinese == "请在提示词里描述你想要的内容，不能只有参数。"
    assert english == "Describe what you want in the prompt; it cannot be only flags."
    assert japanese.startswith("あなたが見られるジョブ #404 はありません。")
    assert other == english  # any other locale: English


async def test_a_refusal_built_deep_in_bot_keeps_its_values_in_every_language(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        text = await refused(
            fake_discord, bot, "imagine", {"prompt": "a cat", "model": "uni-1", "format": "webp"}, locale="zh-CN"
        )
    assert text == "`uni-1` 没有 --format “webp”；可选：png, jpeg。"


async def test_a_ja_servers_public_message_is_japanese_while_the_en_us_user_reads_english(
    fake_discord, fakes, settings
):
    guild = fake_discord.add_guild("日本語サーバー")
    guild.locale = "ja"
    async with bot_running(settings, fake_discord) as bot:
        record = await fake_discord.dispatch(
            fake_discord.slash_command("imagine", {"prompt": "a lighthouse"}, guild_id=guild.id, locale="en-US")
        )
        job = await delivered(bot, await latest_job_id(bot))
        assert job.status == "succeeded", job.error_message
        assert (job.user_locale, job.guild_locale) == ("en-US", "ja")
        # Details is addressed to whoever clicks: English for this en-US user.
        details = await fake_discord.dispatch(
            fake_discord.button_click(f"gen:details:{job.id}", job.message_id, guild_id=guild.id, locale="en-US")
        )
        details_reply = await fake_discord.wait_for(
            lambda r: r.interaction_token == details.token and r.method == "PATCH" and r.path.endswith("@original")
        )

    requests = fake_discord.requests_for(record.token)
    # The job's message is the answer (no receipt in the common case); what the user alone reads (Details) is
    # English, the public message Japanese.
    assert not [r for r in requests if r.method == "POST" and r.path.startswith("/webhooks")]
    message = fake_discord.messages[job.message_id]  # the public message: the server's language
    assert f"ジョブ #{job.id}" in message["embeds"][0]["footer"]["text"]
    assert message["embeds"][0]["fields"][0]["name"] == "モデル"
    assert _labels(message) == ["再生成", "編集", "動画化", "詳細", "削除"]
    first_render = next(r for r in requests if r.method == "PATCH")
    assert "⏳ 開始待ち" in first_render.json["content"] or "生成中" in first_render.json["content"]
    assert details_reply.json["embeds"][0]["title"] == f"Job #{job.id}"


async def test_a_private_job_follows_the_users_locale_not_the_servers(fake_discord, fakes, settings):
    guild = fake_discord.add_guild("English server")
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(
            fake_discord.slash_command(
                "imagine", {"prompt": "a lighthouse", "private": True}, guild_id=guild.id, locale="zh-CN"
            )
        )
        job = await delivered(bot, await latest_job_id(bot))
    message = fake_discord.messages[job.message_id]
    assert job.ephemeral
    assert job.status == "succeeded"
    assert _labels(message) == ["重新生成", "改图", "生成动画", "详情", "删除"]


async def test_the_locales_stored_with_a_job_render_it_after_a_restart(fake_discord, fakes, settings):
    guild = fake_discord.add_guild("サーバー")
    guild.locale = "ja"
    fakes.wavespeed.timing = Timing(0.0, 1.5)  # still running when the bot stops
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(
            fake_discord.slash_command("imagine", {"prompt": "a lighthouse"}, guild_id=guild.id, locale="en-US")
        )
        job_id = await latest_job_id(bot)
    async with bot_running(settings, fake_discord) as bot:  # another process renders it: only the row knows
        job = await delivered(bot, job_id, timeout=15)
    assert job.status == "succeeded"
    assert _labels(fake_discord.messages[job.message_id])[0] == "再生成"


async def test_the_synced_commands_carry_zh_cn_and_ja_localizations(fake_discord, fakes, settings):
    guild_id = 1200000000000000300
    async with bot_running(settings, fake_discord) as bot:
        assert await sync_commands(bot, guild_id) == 0
    [put] = fake_discord.requests_to("PUT", rf"/applications/\d+/guilds/{guild_id}/commands")
    assert put.status == 200
    assert not check_commands(put.json, global_scope=False)
    commands = {command["name"]: command for command in put.json}
    imagine = commands["imagine"]
    assert imagine["name_localizations"] == {"zh-CN": NAMES["zh-CN"]["imagine"], "ja": NAMES["ja"]["imagine"]}
    assert imagine["description_localizations"] == {
        "zh-CN": CATALOGUES["zh-CN"]["Make an image from a text prompt"],
        "ja": CATALOGUES["ja"]["Make an image from a text prompt"],
    }
    prompt = next(o for o in imagine["options"] if o["name"] == "prompt")
    assert prompt["name_localizations"] == {"zh-CN": "提示词", "ja": "プロンプト"}
    assert set(prompt["description_localizations"]) == {"zh-CN", "ja"}
    style = next(o for o in imagine["options"] if o["name"] == "style")
    manga = next(c for c in style["choices"] if c["value"] == "manga")
    assert manga["name_localizations"] == {"zh-CN": "漫画", "ja": "マンガ"}
    for command in put.json:  # every command, group and option, at every level
        stack = [command]
        while stack:
            item = stack.pop()
            assert set(item.get("name_localizations") or {}) == {"zh-CN", "ja"}, item["name"]
            stack += item.get("options") or []


async def test_a_services_refusal_reaches_a_japanese_server_and_a_chinese_user_translated_with_its_values(
    fake_discord, fakes, settings, monkeypatch
):
    # The service takes shorter prompts than the bot knew when it started: WaveSpeed refuses at submit.
    monkeypatch.setattr(wavespeed, "PROMPT_MAX_LENGTH", 10)
    guild = fake_discord.add_guild("日本語サーバー")
    guild.locale = "ja"
    async with bot_running(settings, fake_discord) as bot:
        await fake_discord.dispatch(
            fake_discord.slash_command(
                "imagine", {"prompt": "a lighthouse at dusk", "model": "neta-lumina"}, guild_id=guild.id, locale="en-US"
            )
        )
        job = await delivered(bot, await latest_job_id(bot))
    assert job.status == "failed"
    assert job.error_message == "The prompt is too long (20 characters). Keep it under 10."  # English for en readers
    assert not fakes.wavespeed.requests_to("POST", "/api/v3/wavespeed-ai/neta-lumina")
    public = fake_discord.messages[job.message_id]["content"]
    assert "❌ プロンプトが長すぎます（20文字）。10文字以内にしてください。" in public

    async with bot_running(settings, fake_discord) as bot:  # read back from the row by another process
        details = await fake_discord.dispatch(
            fake_discord.button_click(f"gen:details:{job.id}", job.message_id, guild_id=guild.id, locale="zh-CN")
        )
        reply = await fake_discord.wait_for(
            lambda r: r.interaction_token == details.token and r.method == "PATCH" and r.path.endswith("@original")
        )
    fields = {field["name"]: field["value"] for field in reply.json["embeds"][0]["fields"]}
    assert fields["失败原因"] == "提示词太长了（20 个字符）。请控制在 10 个字符以内。"
