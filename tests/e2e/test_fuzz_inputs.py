"""Hostile input, fuzzed (hypothesis), through the real stack: every slash option and inline flag of /imagine, /edit
and /video, with attachments of arbitrary bytes, dispatched by the fake Discord to the real bot.

For every input: no unexpected exception (no "Something went wrong", no ERROR logged) — either a job starts or the
user gets a refusal that says what to change; a refused input charges nothing (no job, no ledger row); no message
pings anyone although the prompts try to. At the end every accepted job is settled exactly once.

The stack (fake Discord, fake providers, bot, SQLite) runs once for the module on an event loop in a thread, so
hypothesis drives plain synchronous tests. ``RELIABILITY_FUZZ_EXAMPLES`` raises the number of examples (the
reliability script does); the default keeps the suite fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import Bot
from bot.errors import BotError
from bot.prompting.flags import FLAGS
from bot.prompting.specs import JobSpec
from providers.base import Kind
from tests.e2e.commands_support import ack_text
from tests.e2e.harness import bot_running, e2e_settings, eventually, provider_fakes
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.runner import pointed_at
from tests.fakes.media import animated_bytes, image_bytes, mp4_bytes, polyglot, truncated_png
from tests.reliability import record

T = TypeVar("T")
EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "0")) or None
OTHER_USER_ID = 222_222_222_222_222_222
ROLE_ID = 333_333_333_333_333_333
PROMPT_MAX = 6000


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Stack:
    """The bot and its fakes on an event loop of their own."""

    loop: asyncio.AbstractEventLoop
    fake: FakeDiscord
    bot: Bot
    errors: _Errors
    accepted: list[int] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("fuzz")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-stack", daemon=True)
    thread.start()
    exits = contextlib.AsyncExitStack()
    errors = _Errors()
    logging.getLogger().addHandler(errors)

    async def start() -> Stack:
        fake = await exits.enter_async_context(FakeDiscord())
        exits.enter_context(pointed_at(fake))
        fakes = await exits.enter_async_context(provider_fakes())
        fake.state.add_user("bob", user_id=OTHER_USER_ID)
        config = e2e_settings(Path(tmp), fake, fakes, daily_credits=1_000_000, max_running_jobs_per_user=1000)
        bot = await exits.enter_async_context(bot_running(config, fake))
        return Stack(loop, fake, bot, errors)

    started = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    try:
        yield started
        started.run(_all_settled(started), timeout=120)
    finally:
        asyncio.run_coroutine_threadsafe(exits.aclose(), loop).result(60)
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(60)
        logging.getLogger().removeHandler(errors)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _cancel_the_rest() -> None:
    current = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not current]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


# --------------------------------------------------------------------------------------------- strategies
FLAG_NAMES = sorted({name for flag in FLAGS for name in (flag.name, *flag.aliases)})
VALUES = [
    "16:9",
    "1:1",
    "9:16",
    "21:9",
    "0:0",
    "1:0",
    "99999:1",
    "16 : 9",
    "16/9",
    "4x3",
    "-1",
    "0",
    "42",
    "2147483648",
    "-99999999999999999999",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "3.5",
    "0.0001",
    "abc",
    "1024x768",
    "0x0",
    "99999x99999",
    "10s",
    "5s",
    "5",
    "7s",
    "1080p",
    "720p",
    "4k",
    "on",
    "off",
    "yes",
    "manga",
    "auto",
    "png",
    "jpeg",
    "webp",
    "gif",
    "uni-1",
    "luma-video",
    "neta-lumina",
    "kawaii-3d",
    "nope",
    "",
    "--",
    "—",
    "\u0000",
    "٣",
    "１６:９",
]
WORDS = [
    "a",
    "red",
    "fox",
    "cat",
    "--",
    "—",
    "–",
    "-",
    "---ar",
    "--AR",
    "--Seed",
    "--unknown",
    "--ar--seed",
    "@everyone",
    "@here",
    f"<@{OTHER_USER_ID}>",
    f"<@!{OTHER_USER_ID}>",
    f"<@&{ROLE_ID}>",
    "<#1>",
    "`",
    "```",
    "||x||",
    "\n",
    "\t",
    "🦊",
    "\u200b",
    "\u202e",
    "%s",
    "{0}",
    "' OR 1=1 --",
    "<script>",
    "x" * 300,
]
flag_token = st.builds(
    lambda dash, name, value: f"{dash}{name} {value}",
    st.sampled_from(["--", "—", "–", "-- ", "---"]),
    st.sampled_from([*FLAG_NAMES, "model", "nope", "a"]),
    st.sampled_from(VALUES) | st.text(max_size=6),
)
prompt_text = st.lists(
    st.sampled_from(WORDS) | flag_token | st.text(min_size=1, max_size=12), min_size=1, max_size=12
).map(lambda parts: " ".join(parts)[:PROMPT_MAX] or "a")
model_text = st.sampled_from(
    ["uni-1", "uni-1-max", "neta-lumina", "kawaii-3d", "luma-video", "UNI-1", " uni-1 ", "nope", "--model", "@everyone"]
) | st.text(min_size=1, max_size=20)
free_text = st.sampled_from(VALUES) | st.text(min_size=1, max_size=12)


def _bitflip(data: bytes, at: int) -> bytes:
    index = at % len(data)
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


IMAGE = st.sampled_from(["png", "jpeg", "webp", "gif"]).map(lambda fmt: image_bytes(fmt, 96, 80))
attachment_bytes = st.one_of(
    IMAGE,
    st.just(truncated_png()),
    st.sampled_from(["png", "webp", "gif"]).map(animated_bytes),
    IMAGE.map(polyglot),
    st.tuples(IMAGE, st.integers(0, 10_000)).map(lambda t: _bitflip(*t)),
    st.tuples(IMAGE, st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),
    st.binary(max_size=512),
    st.just(mp4_bytes()),
    st.just(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
    st.just(b"<html><body>not an image</body></html>"),
)
attachment = st.tuples(
    st.sampled_from(["in.png", "in.jpg", "in.webp", "in.gif", "doc.txt", "noext", "clip.mp4", "in.PNG"]),
    attachment_bytes,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


imagine_options = st.fixed_dictionaries(
    {"prompt": prompt_text},
    optional={
        "model": model_text,
        "aspect_ratio": free_text,
        "seed": st.integers(-1, 2_147_483_647),
        "style": st.sampled_from(["auto", "manga"]),
        "format": st.sampled_from(["png", "jpeg", "webp"]),
        "reference": attachment,
        "private": st.booleans(),
    },
)
edit_options = st.fixed_dictionaries(
    {"prompt": prompt_text, "image": attachment},
    optional={"model": model_text, "reference": attachment, "private": st.booleans()},
)
video_options = st.fixed_dictionaries(
    {"prompt": prompt_text},
    optional={
        "start_image": attachment,
        "end_image": attachment,
        "aspect_ratio": free_text,
        "duration": st.sampled_from(["5s", "10s"]),
        "resolution": st.sampled_from(["720p", "1080p"]),
        "loop": st.booleans(),
        "enhance": st.booleans(),
        "private": st.booleans(),
    },
)
COMMANDS = {"imagine": imagine_options, "edit": edit_options, "video": video_options}


# --------------------------------------------------------------------------------------------- checks
def pinged(message: dict[str, Any]) -> bool:
    return bool(message.get("mention_everyone") or message.get("mention_roles") or message.get("mentions"))


async def _counts(bot: Bot) -> tuple[int, int]:
    db = bot.services.database
    return (
        int(await db.fetch_value("SELECT COALESCE(MAX(id), 0) FROM jobs")),
        int(await db.fetch_value("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'reserve'")),
    )


async def attempt(stack: Stack, name: str, options: dict[str, Any]) -> dict[str, Any]:
    fake, bot = stack.fake, stack.bot
    sent = {}
    for key, value in options.items():
        if isinstance(value, tuple):
            value = fake.add_cdn_file(value[0], value[1])
        sent[key] = value
    last_job, reserves = await _counts(bot)
    start = len(fake.requests)
    stack.errors.records.clear()
    interaction = await fake.dispatch(fake.slash_command(name, sent))
    text = await ack_text(fake, interaction)
    now_job, now_reserves = await _counts(bot)
    accepted = now_job > last_job
    if accepted:
        stack.accepted.extend(range(last_job + 1, now_job + 1))
    answers = [r.response for r in fake.requests[start:] if isinstance(r.response, dict) and "content" in r.response]
    return {
        "accepted": accepted,
        "text": text,
        "charged_when_refused": (not accepted) and now_reserves != reserves,
        "unexpected": [a["content"][:120] for a in answers if "Something went wrong" in (a.get("content") or "")]
        + [f"{r.name}: {r.getMessage()[:160]}" for r in stack.errors.records],
        "pings": [a["content"][:120] for a in answers if pinged(a)],
    }


def check(stack: Stack, name: str, options: dict[str, Any]) -> None:
    outcome = stack.run(attempt(stack, name, options))
    record(
        "input",
        command=name,
        accepted=outcome["accepted"],
        refused=not outcome["accepted"],
        charged_when_refused=int(outcome["charged_when_refused"]),
        unexpected=len(outcome["unexpected"]),
        pings=len(outcome["pings"]),
    )
    assert outcome["unexpected"] == [], outcome
    assert not outcome["charged_when_refused"], outcome
    assert outcome["pings"] == [], outcome
    if not outcome["accepted"]:
        assert outcome["text"].strip(), "a refusal must say what to change"


async def _all_settled(stack: Stack) -> None:
    """Every accepted job ends, with one reserve and exactly one commit or refund."""
    db = stack.bot.services.database

    async def idle() -> bool:
        left = await db.fetch_value("SELECT COUNT(*) FROM jobs WHERE finished_at IS NULL")
        return int(left) == 0

    await eventually(idle, timeout=90, interval=0.1)
    rows = await db.fetch_all(
        "SELECT job_id, SUM(kind = 'reserve') AS reserves, SUM(kind IN ('commit', 'refund')) AS settled"
        " FROM credit_ledger WHERE job_id IS NOT NULL GROUP BY job_id"
    )
    doubles = [dict(row) for row in rows if row["reserves"] != 1 or row["settled"] != 1]
    pings = [m["content"][:120] for m in stack.fake.messages.values() if pinged(m)]
    record("settlement", jobs=len(rows), double_charges=len(doubles), pings=len(pings))
    assert doubles == []
    assert pings == []


def fuzz_settings(default: int) -> settings:
    return settings(
        max_examples=EXAMPLES or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


@fuzz_settings(12)
@given(options=imagine_options)
def test_fuzz_imagine(stack: Stack, options: dict[str, Any]) -> None:
    check(stack, "imagine", options)


@fuzz_settings(12)
@given(options=edit_options)
def test_fuzz_edit(stack: Stack, options: dict[str, Any]) -> None:
    check(stack, "edit", options)


@fuzz_settings(12)
@given(options=video_options)
def test_fuzz_video(stack: Stack, options: dict[str, Any]) -> None:
    check(stack, "video", options)


# --------------------------------------------------------------------------------------------- the spec layer
KINDS = [Kind.IMAGE, Kind.IMAGE_EDIT, Kind.VIDEO]
slash_values = st.dictionaries(
    st.sampled_from(FLAG_NAMES), st.none() | st.sampled_from(VALUES) | st.integers() | st.booleans(), max_size=5
)


@fuzz_settings(150)
@given(kind=st.sampled_from(KINDS), text=prompt_text, slash=slash_values, model=maybe(model_text))
def test_fuzz_spec_builder(stack: Stack, kind: Kind, text: str, slash: dict[str, Any], model: str | None) -> None:
    """Every flag and option value, straight into the builder /imagine, /edit and /video share."""

    async def build() -> JobSpec | BotError:
        try:
            return await stack.bot.services.specs.for_command(
                guild_id=stack.fake.default_guild_id, kind=kind, text=text, slash=slash, slash_model=model
            )
        except BotError as exc:
            return exc

    result = stack.run(build())
    record("spec", refused=isinstance(result, BotError))
    if isinstance(result, BotError):
        assert result.user_message.strip()
    else:
        assert isinstance(result, JobSpec)
        assert result.prompt.strip()
