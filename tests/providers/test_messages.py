"""An adapter's texts for people: English as a ``str``, the template and parameters kept for the bot to render in
the reader's language, and stored in a job row with their parameters (rows written before keep reading as they
are), on both stores."""

from __future__ import annotations

import json
import pickle

import pytest

from bot.credits.service import QuotaService
from bot.i18n import render
from bot.jobs.transitions import JobTransitions
from bot.server_settings.service import ServerSettingsService
from bot.storage.database import Database
from bot.storage.jobs import JobRepository
from bot.storage.steps import StepRepository
from providers import luma_agents, lumozai, messages, wavespeed
from providers.base import GenerationRequest, Kind
from providers.errors import InvalidRequestError, ModeratedError, ProviderError
from providers.messages import Message, msg
from tests.fakes.clock import ManualClock
from tests.i18n_support import provider_error_classes
from tests.quota.helpers import T0, Jobs, make_settings


def test_a_message_is_its_english_text_and_keeps_its_template_and_parameters():
    text = msg("The prompt is too long ({length} characters). Keep it under {limit}.", length=2100, limit=2000)
    assert text == "The prompt is too long (2100 characters). Keep it under 2000."
    assert text.text == "The prompt is too long ({length} characters). Keep it under {limit}."
    assert text.params == {"length": 2100, "limit": 2000}
    assert pickle.loads(pickle.dumps(text)).params == text.params  # noqa: S301 (our own bytes)


def test_every_provider_error_says_its_default_as_a_message():
    plain = [cls.__name__ for cls in provider_error_classes() if not isinstance(cls.default_user_message, Message)]
    assert not plain, f"default_user_message must be msg(...): {plain}"
    assert isinstance(ProviderError("x").user_message, Message)


def test_a_lumozai_range_refusal_carries_its_values_and_renders_in_japanese_and_chinese():
    request = GenerationRequest(model=lumozai.MODEL, kind=Kind.IMAGE, prompt="a cat", prompt_strength=3.0)
    with pytest.raises(InvalidRequestError) as caught:
        lumozai._to_body(request)
    message = caught.value.user_message
    assert message == "prompt_strength must be between 0 and 1; you gave 3.0."  # English as before
    assert caught.value.detail == "prompt_strength=3.0 outside [0, 1]"  # the log's text stays English
    assert render(message, "ja") == "prompt_strength は 0〜1 の範囲で指定してください（指定値：3.0）。"
    assert render(message, "zh-CN") == "prompt_strength 必须在 0 到 1 之间；你给的是 3.0。"


def test_a_word_inside_a_refusal_is_translated_too():
    request = GenerationRequest(model="uni-1", kind=Kind.IMAGE, prompt="a cat", aspect_ratio="7:5")
    with pytest.raises(InvalidRequestError) as caught:
        luma_agents._to_body(request)
    message = caught.value.user_message
    assert message.startswith("Luma uni-1 does not offer aspect ratio '7:5'. Choose one of: ")
    assert render(message, "zh-CN").startswith("Luma uni-1 不支持宽高比 '7:5'。请从以下选择：")
    assert render(message, "ja").startswith("Luma uni-1 ではアスペクト比 '7:5' は使えません。")


def test_dump_keeps_parameters_and_load_gives_the_message_back():
    inner = msg("aspect ratio")
    text = msg("Luma video does not offer {what} {value}. Choose one of: {choices}.", what=inner, value=7, choices="x")
    stored = messages.dump(text)
    loaded = messages.load(stored)
    assert isinstance(loaded, Message)
    assert loaded == text
    assert loaded.text == text.text
    assert isinstance(loaded.params["what"], Message)
    assert render(loaded, "zh-CN") == "Luma 视频不支持宽高比 7。请从以下选择：x。"


@pytest.mark.parametrize(
    "stored",
    [
        "The job failed.",  # a row written before parameters were kept, or a text without any
        "{not json",
        '{"text": "no params key"}',
        '{"text": "A {missing} value", "params": {"other": 1}}',
        '{"text": 5, "params": {}}',
    ],
)
def test_load_leaves_anything_else_as_it_is(stored):
    loaded = messages.load(stored)
    assert loaded == stored
    assert not isinstance(loaded, Message)


def test_a_text_without_parameters_is_stored_as_plain_english():
    assert messages.dump(ModeratedError.default_user_message) == str(ModeratedError.default_user_message)
    assert messages.dump("plain") == "plain"


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


async def test_a_failed_job_keeps_the_refusals_values_for_any_language_later(db):
    with pytest.raises(InvalidRequestError) as caught:
        wavespeed._to_body(GenerationRequest(model=wavespeed.MODEL, kind=Kind.IMAGE, prompt="x", seed=-5))
    clock = ManualClock(T0)
    quota = QuotaService(db, make_settings(), ServerSettingsService(db, clock=clock), clock=clock)
    jobs = JobRepository(db)
    transitions = JobTransitions(db, jobs, quota, StepRepository(db), clock=clock)
    started = Jobs(db, quota, clock)
    refused = (await started.start(user_id=100)).job_id
    plain = (await started.start(user_id=101)).job_id
    assert await transitions.fail(refused, code="InvalidRequestError", message=caught.value.user_message)
    assert await transitions.fail(plain, code="failed", message="The job failed.")  # as rows written before
    job, old = await jobs.get(refused), await jobs.get(plain)
    assert job is not None
    assert old is not None
    assert job.error_message == caught.value.user_message
    assert render(job.error_message, "ja") == "シードは-1から2147483647までの整数で指定してください（-1 でランダム）。"
    assert render(old.error_message, "zh-CN") == "任务失败。"
    stored = await db.fetch_value("SELECT error_message FROM jobs WHERE id = ?", (refused,))
    assert json.loads(stored)["params"] == {"low": -1, "high": 2147483647}
