"""/prefer show, /prefer set and /prefer clear end to end, and what the preferences do to the requests /imagine,
/edit and /video send: per user (the same in every server and in DMs), checked when set with a prompt's messages,
under the slash options and inline flags, and skipped (with a note, at the usual price) where they do not fit."""

from __future__ import annotations

from typing import Any

from tests.e2e.commands_support import ack_text, body_of, charges, ledger, png, run, submits
from tests.e2e.harness import bot_running, e2e_settings
from tests.e2e.moderation_support import command

OTHER_GUILD = 1_200_000_000_000_000_201


async def prefer(fake, subcommand: str, options: dict[str, Any] | None = None, **context: Any) -> str:
    _, text = await command(fake, "prefer", options or {}, subcommand=subcommand, **context)
    return text


async def test_set_show_and_clear_are_personal_and_visible_only_to_me(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        before = await prefer(fake_discord, "show")
        saved = await prefer(
            fake_discord,
            "set",
            {"model": "uni-1", "aspect_ratio": "2:3", "private": True, "suffix": "ink wash --style manga"},
        )
        elsewhere = await prefer(fake_discord, "show", guild_id=OTHER_GUILD)
        in_dms = await prefer(fake_discord, "show", guild_id=None)
        someone_else = await prefer(fake_discord, "show", user_id=1_200_000_000_000_000_555)
        changed = await prefer(fake_discord, "set", {"aspect_ratio": "none", "private": False})
        cleared = await prefer(fake_discord, "clear")
        after = await prefer(fake_discord, "show")
        again = await prefer(fake_discord, "clear")
        assert await charges(bot) == (0, 0)
    assert "You have no preferences" in before
    assert "Your preferences are saved" in saved
    for shown in (saved, elsewhere, in_dms):
        assert "Model\n`uni-1`" in shown
        assert "Aspect ratio\n2:3" in shown
        assert "Private\nyes: only you see your results" in shown
        assert "`ink wash --style manga`" in shown
    assert "You have no preferences" in someone_else
    assert "Model\n`uni-1`" in changed
    assert "Aspect ratio\nnot set" in changed
    assert "Private\nno: results are public" in changed
    assert cleared == "Your preferences are cleared: commands start from this server's defaults again."
    assert "You have no preferences" in after
    assert again == "You had no preferences to clear."


async def test_prefer_answers_in_the_members_language(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord):
        empty = await prefer(fake_discord, "show", locale="zh-CN")
        await prefer(fake_discord, "set", {"model": "uni-1", "private": True}, locale="zh-CN")
        shown = await prefer(fake_discord, "show", locale="zh-CN")
        refused = await prefer(fake_discord, "set", locale="ja")
        english = await prefer(fake_discord, "show", locale="en-US")
    assert "你还没有设置偏好" in empty
    assert "你的偏好" in shown
    assert "模型\n`uni-1`" in shown
    assert "仅自己可见\n是：结果仅自己可见" in shown
    assert "宽高比\n未设置" in shown
    assert refused == "設定するオプションを1つ以上指定してください。`/prefer clear` ですべて削除できます。"
    assert "Model\n`uni-1`" in english


async def test_what_cannot_work_is_refused_when_set_and_nothing_is_stored(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord):
        unknown_flag = await prefer(fake_discord, "set", {"suffix": "soft light --sead 3"})
        bad_value = await prefer(fake_discord, "set", {"suffix": "--seed many"})
        bad_ratio = await prefer(fake_discord, "set", {"model": "uni-1", "aspect_ratio": "4:5"})
        no_model = await prefer(fake_discord, "set", {"model": "dall-e"})
        nothing = await prefer(fake_discord, "set")
        shown = await prefer(fake_discord, "show")
    assert "`--sead` is not a flag. Did you mean --seed?" in unknown_flag
    assert bad_value == "--seed needs a whole number like 42; “many” is not one."
    assert "--ar 4:5 is not available with `uni-1`." in bad_ratio
    assert no_model.startswith("There is no model `dall-e`. Choose one of:")
    assert nothing == "Give at least one option to set. `/prefer clear` removes them all."
    assert "You have no preferences" in shown


async def test_preferences_shape_the_requests_under_slash_options_and_inline_flags(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, daily_credits=100)
    async with bot_running(settings, fake_discord) as bot:
        await prefer(fake_discord, "set", {"model": "uni-1", "aspect_ratio": "2:3", "suffix": "ink wash --style manga"})
        _, plain = await run(fake_discord, bot, "imagine", {"prompt": "a crane"})
        plain_body = body_of(submits(fakes, "luma_agents")[-1])
        _, overridden = await run(
            fake_discord, bot, "imagine", {"prompt": "a crane --ar 16:9 --style auto", "aspect_ratio": "1:1"}
        )
        overridden_body = body_of(submits(fakes, "luma_agents")[-1])
        record, other_model = await run(fake_discord, bot, "imagine", {"prompt": "a heron", "model": "neta-lumina"})
        skipped_receipt = await ack_text(fake_discord, record, contains="✅")
        other_ledger = await ledger(bot, other_model.id)
        record, clip = await run(fake_discord, bot, "video", {"prompt": "a crane flies"})
        video_receipt = await ack_text(fake_discord, record, contains="✅")
        video_body = body_of(submits(fakes, "luma_reseller")[-1])
        await prefer(fake_discord, "set", {"model": "uni-1-max"})
        _, edited = await run(
            fake_discord, bot, "edit", {"image": fake_discord.add_cdn_file("s.png", png()), "prompt": "make it red"}
        )
        edit_body = body_of(submits(fakes, "luma_agents")[-1])
    assert (plain.model_key, plain.prompt) == ("uni-1", "a crane ink wash")
    assert (plain_body["prompt"], plain_body["aspect_ratio"], plain_body["style"]) == (
        "a crane ink wash",
        "2:3",
        "manga",
    )
    assert (overridden_body["aspect_ratio"], overridden_body["style"]) == ("1:1", "auto")  # slash, then inline
    assert overridden.prompt == "a crane ink wash"
    # neta-lumina takes no --style: skipped, said in the receipt, the usual price.
    assert other_model.status == "succeeded"
    assert other_model.prompt == "a heron ink wash"
    assert "ℹ️ Your preference --style manga was skipped: `neta-lumina` does not take it." in skipped_receipt
    assert "Job #" in skipped_receipt
    assert "started: 1 credit." in skipped_receipt
    assert other_ledger == [("reserve", fake_discord.default_user_id), ("commit", fake_discord.default_user_id)]
    assert body_of(submits(fakes, "wavespeed")[-1])["prompt"] == "a heron ink wash"
    # /video: the image model and the 2:3 ratio do not fit luma-video; the suffix's words still do.
    assert (clip.status, clip.model_key) == ("succeeded", "luma-video")
    assert "Your preferred model `uni-1` was skipped: it does not make videos here." in video_receipt
    assert "Your preference --ar 2:3 was skipped: `luma-video` does not take it." in video_receipt
    assert (video_body["user_prompt"], video_body["aspect_ratio"]) == ("a crane flies ink wash", "16:9")
    assert (edited.kind, edited.model_key) == ("image_edit", "uni-1-max")
    assert edit_body["prompt"] == "make it red ink wash"


async def test_private_preference_unless_the_command_says_otherwise(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        await prefer(fake_discord, "set", {"private": True})
        record, hidden = await run(fake_discord, bot, "imagine", {"prompt": "a secret"})
        hidden_ack = fake_discord.requests_for(record.token)[0].json
        record, shown = await run(fake_discord, bot, "imagine", {"prompt": "not a secret", "private": False})
        shown_ack = fake_discord.requests_for(record.token)[0].json
    assert hidden.ephemeral
    assert hidden_ack == {"type": 5, "data": {"flags": 64}}
    assert not shown.ephemeral
    assert shown_ack == {"type": 5}
