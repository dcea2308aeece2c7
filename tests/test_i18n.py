"""Languages: every message the code uses (the adapters' in ``providers/`` too) and every command text has a zh-CN
and a ja translation with the same placeholders; no text reaches people unwrapped; command names follow Discord's
rules; the lookup picks the language and falls back to English."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.errors import NotFound
from bot.i18n import Msg, language, msg, plural, render, tr
from bot.i18n.commands import translate_command_text
from bot.i18n.core import CATALOGUES, NAMES
from bot.jobs.outcomes import GENERIC_FAILURE
from bot.render.job import RenderContext, job_locale, render_job
from bot.render.replies import error_text
from tests.fakes.discord.limits import check_command_name
from tests.i18n_support import (
    Where,
    bare_provider_texts_in,
    code_messages,
    command_strings,
    missing_report,
    msg_calls,
    placeholders,
    provider_texts,
    unwrapped_provider_texts,
    unwrapped_texts,
)
from tests.jobs.jobs_factory import make_job
from tests.jobs.virtual import T0

TRANSLATED = ("zh-CN", "ja")


@pytest.fixture(scope="module")
def commands() -> tuple[set[str], set[str]]:
    import asyncio

    return asyncio.run(command_strings())


def test_every_message_id_in_the_code_is_a_literal():
    computed = [found.where for found in code_messages() if found.text is None]
    assert not computed, f"msg/tr/N_/plural need a literal English text (values go in params): {computed}"


def test_no_text_reaches_people_without_going_through_the_catalogues():
    found = unwrapped_texts()
    assert not found, f"wrap these texts in msg(...) or tr(locale, ...) (see ARCHITECTURE.md, Languages): {found}"


def test_no_provider_gives_people_a_bare_text():
    found = unwrapped_provider_texts()
    assert not found, (
        f"an adapter's text for people must be msg(...) from providers.messages, values in params: {found}"
    )


def test_the_provider_check_finds_bare_and_f_string_texts():
    source = """
class TooBig(InvalidRequestError):
    default_user_message = "The file is too big."
class Fine(InvalidRequestError):
    default_user_message = msg("The file is fine.")
FAILED_MESSAGE = "The service failed."
_FAILURES = {"code": ("The service broke.", True), "ok": (msg("Fine."), False)}
_GOOD_MESSAGE = msg("Good.")
def check(label, low):
    raise InvalidRequestError("x", user_message=f"{label} must be over {low}.")
    raise InvalidRequestError(f"{label} below {low}", user_message=msg("{label} is under {low}.", label=label, low=low))
    raise _refuse("detail", f"{label} is wrong.")
    raise _refuse(f"detail {label}", msg("{label} is wrong.", label=label))
    return JobState("r", JobStatus.FAILED, failure_message="It failed.")
"""
    assert bare_provider_texts_in(source, "p.py") == ["p.py:3", "p.py:6", "p.py:7", "p.py:10", "p.py:12", "p.py:14"]


def test_every_msg_call_passes_exactly_the_placeholders_of_its_text():
    wrong = [
        (call.where, sorted(call.params), sorted(placeholders(call.text)))
        for call in msg_calls()
        if call.params is not None and call.params != placeholders(call.text)
    ]
    assert not wrong, f"msg(text, **params): the params must name the text's placeholders (where, given, text): {wrong}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_in_the_code_has_a_translation(lang):
    used = {found.text for found in code_messages() if found.text is not None}
    missing = sorted(used - set(CATALOGUES[lang]))
    assert not missing, missing_report(lang, missing)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_provider_error_and_model_blurb_has_a_translation(lang):
    missing = sorted(provider_texts() - set(CATALOGUES[lang]))
    assert not missing, missing_report(lang, missing)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_command_text_has_a_translation(lang, commands):
    names, texts = commands
    missing_names = sorted(names - set(NAMES[lang]))
    missing_texts = sorted(texts - set(CATALOGUES[lang]))
    assert not missing_names, missing_report(lang, missing_names, section="names")
    assert not missing_texts, missing_report(lang, missing_texts)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_the_placeholders(lang):
    wrong = {
        english: (sorted(placeholders(english)), sorted(placeholders(translated)))
        for english, translated in CATALOGUES[lang].items()
        if placeholders(english) != placeholders(translated)
    }
    assert not wrong, f"{lang}: placeholders differ (English, translation): {wrong}"
    empty = [english for english, translated in CATALOGUES[lang].items() if not translated.strip()]
    assert not empty, f"{lang}: empty translations: {empty}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_command_names_descriptions_and_choices_follow_discords_rules(lang, commands):
    names, texts = commands
    problems = [p for name in names for p in check_command_name(NAMES[lang].get(name, name), name)]
    assert not problems, problems
    long = [t for t in texts if not 1 <= len(CATALOGUES[lang].get(t, t)) <= 100]
    assert not long, f"{lang}: descriptions and choice names must be 1-100 characters: {long}"


def test_localized_names_are_unique_where_discord_needs_them(commands):
    for lang in TRANSLATED:
        table = NAMES[lang]
        # Names that share a level in some command (top-level commands; options of /imagine and /video).
        for level in (
            [
                "imagine",
                "edit",
                "video",
                "help",
                "history",
                "job",
                "quota",
                "quota-admin",
                "server-settings",
                "operator",
                "prefer",
            ],
            ["prompt", "model", "aspect_ratio", "seed", "style", "format", "reference", "private"],
            ["prompt", "start_image", "end_image", "aspect_ratio", "duration", "resolution", "loop", "enhance"],
            ["view", "set-limit", "grant", "reset", "ban", "unban", "role-limit", "server-default", "audit"],
            ["show", "default-model", "nsfw", "completion-ping", "models", "channels", "moderator-roles"],
            ["show", "set", "clear"],
            ["model", "aspect_ratio", "private", "suffix"],
        ):
            shown = [table[name] for name in level]
            assert len(set(shown)) == len(shown), (lang, shown)


def test_the_locale_picks_the_language_and_anything_else_is_english():
    assert language("zh-CN") == "zh-CN"
    assert language("ja") == "ja"
    assert [language(x) for x in ("en-US", "en-GB", "zh-TW", "fr", "", None)] == ["en"] * 6
    text = msg("There is no job #{job_id}.", job_id=7)
    assert text == "There is no job #7."  # a Msg is its English text
    assert text.render("zh-CN") == "没有任务 #7。"
    assert text.render("ja") == "ジョブ #7 は存在しません。"
    assert text.render("de") == "There is no job #7."
    assert tr("ja", "Cancel") == "キャンセル"


def test_a_message_can_carry_messages_and_plural_picks_the_english_form():
    refunded = plural(3, "{count} credit was refunded", "{count} credits were refunded")
    assert tr("en-US", " Your {credits}.", credits=refunded) == " Your 3 credits were refunded."
    assert tr("zh-CN", " Your {credits}.", credits=refunded) == "已退还 3 积分。"
    assert str(plural(1, "{count} credit", "{count} credits")) == "1 credit"


def test_a_stored_failure_text_is_translated_when_known_and_shown_as_is_otherwise():
    assert render("The job failed.", "ja") == "ジョブが失敗しました。"
    assert render("upstream said: no", "ja") == "upstream said: no"
    assert render(None, "ja") == ""


def test_errors_raised_deep_are_rendered_in_the_readers_language():
    error = NotFound(msg("There is no job #{job_id}.", job_id=3))
    assert error.user_message == "There is no job #3."
    shown = error_text(error, where="test")
    assert isinstance(shown, Msg)
    assert render(shown, "zh-CN") == "没有任务 #3。"


def test_the_command_translator_answers_names_and_texts():
    assert translate_command_text("imagine", "zh-CN", Where.command_name) == NAMES["zh-CN"]["imagine"]
    assert (
        translate_command_text("Only you see the result", "ja", Where.parameter_description) == "結果を自分だけに表示"
    )
    assert translate_command_text("imagine", "en-US", Where.command_name) is None
    assert translate_command_text("imagine", "zh-TW", Where.command_name) is None


def test_a_public_job_is_shown_in_the_servers_language_a_private_one_or_a_dm_in_the_users():
    job = make_job(user_locale="zh-CN", guild_locale="ja")
    assert job_locale(job) == "ja"
    assert job_locale(job, in_dm=True) == "zh-CN"
    assert job_locale(dataclasses.replace(job, ephemeral=True)) == "zh-CN"
    assert job_locale(dataclasses.replace(job, guild_id=0)) == "zh-CN"
    assert job_locale(make_job()) == "en-US"  # a job from before languages were stored


def test_a_failed_jobs_message_translates_its_stored_failure_text_and_refund():
    job = make_job(status="failed", error_message=GENERIC_FAILURE, cost=2, finished_at=T0 + 5)
    ctx = RenderContext(now=T0 + 10, media_root=Path("/nonexistent"), locale="zh-CN")
    content = render_job(job, ctx).content
    assert "❌ 运行这个任务时我们这边出了问题。已退还 2 积分。" in content
    assert next(b.label for row in render_job(job, ctx).rows for b in row) == "重试"
