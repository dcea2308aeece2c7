"""Personal defaults (bot/prompting/preferences.py): the precedence slash option > inline flag > preference >
server default, for the model and every option; preferences that do not fit a command skipped (with a note),
never refused; and the checks when they are set, with the messages a prompt gets."""

from __future__ import annotations

from typing import Any

import pytest

from bot.catalogue import Catalogue
from bot.errors import InvalidInput
from bot.prompting.flags import parse_prompt
from bot.prompting.models import pick_model
from bot.prompting.options import resolve_options
from bot.prompting.preferences import apply_preferences, check_preferences, merged, model_note
from bot.server_settings.config import ServerConfig
from bot.storage.preferences import Preferences
from providers.base import Kind
from tests.prompting.test_options import ENTRIES

CATALOGUE = Catalogue(ENTRIES)
LIMIT = 1500


def job(
    text: str,
    preferences: Preferences,
    *,
    kind: Kind = Kind.IMAGE,
    slash: dict[str, Any] | None = None,
    slash_model: str | None = None,
    server_default: str | None = None,
    banned: tuple[str, ...] = (),
) -> tuple[str, str, dict[str, Any], tuple[str, ...]]:
    """What a command would run: (model, prompt, options, notes), as ``SpecBuilder.for_command`` composes it."""
    slash = slash or {}
    parsed = parse_prompt(text)
    asked = slash_model or parsed.flags.get("model")
    config = ServerConfig(guild_id=1, default_model=server_default, banned_words=banned)
    entry = pick_model(CATALOGUE, config, kind, asked, preferred=preferences.model_key)  # type: ignore[arg-type]
    applied = apply_preferences(
        preferences, entry, kind, prompt=parsed.prompt, flags=parsed.flags, slash=slash, prompt_limit=LIMIT,
        banned_word=config.banned_word_in,
    )  # fmt: skip
    resolved = resolve_options(entry, kind, applied.flags, slash)
    note = model_note(preferences, entry, kind, asked)  # type: ignore[arg-type]
    options = {**resolved.options, **({"size": resolved.size} if resolved.size else {})}
    return entry.key, applied.prompt, options, (*resolved.notes, *applied.notes, *([note] if note else []))


PREFS = Preferences(1, model_key="kawaii-3d", aspect_ratio="3:4", suffix="soft light --ar 9:16 --seed 7")


@pytest.mark.parametrize(
    ("slash", "text", "preferences", "expected"),
    [
        # aspect ratio: slash > inline > preference option > suffix flag > none (the model's own default)
        ({"ar": "1:1"}, "a cat --ar 16:9", PREFS, "1:1"),
        ({}, "a cat --ar 16:9", PREFS, "16:9"),
        ({}, "a cat", PREFS, "3:4"),
        ({}, "a cat", Preferences(1, suffix="--ar 9:16"), "9:16"),
        ({}, "a cat", Preferences(1), None),
        ({"ar": None}, "a cat", PREFS, "3:4"),  # a slash option left out is not given
    ],
)
def test_aspect_ratio_precedence(slash, text, preferences, expected):
    _, _, options, notes = job(text, preferences, slash=slash, slash_model="neta-lumina")
    assert options.get("aspect_ratio") == expected
    assert notes == ()


@pytest.mark.parametrize(
    ("slash_model", "text", "preferred", "server_default", "kind", "expected"),
    [
        ("uni-1", "a cat --model neta-lumina", "kawaii-3d", "uni-1-max", Kind.IMAGE, "uni-1"),
        (None, "a cat --model neta-lumina", "kawaii-3d", "uni-1-max", Kind.IMAGE, "neta-lumina"),
        (None, "a cat", "kawaii-3d", "uni-1-max", Kind.IMAGE, "kawaii-3d"),
        (None, "a cat", None, "uni-1-max", Kind.IMAGE, "uni-1-max"),
        (None, "a cat", None, None, Kind.IMAGE, "neta-lumina"),  # the catalogue's default
        (None, "a cat", "kawaii-3d", "uni-1-max", Kind.IMAGE_EDIT, "uni-1-max"),  # kawaii-3d cannot edit
        (None, "a cat", "uni-1", None, Kind.VIDEO, "luma-video"),  # an image model preferred, /video used
    ],
)
def test_model_precedence(slash_model, text, preferred, server_default, kind, expected):
    preferences = Preferences(1, model_key=preferred)
    model, _, _, notes = job(text, preferences, kind=kind, slash_model=slash_model, server_default=server_default)
    assert model == expected
    skipped = [n for n in notes if "preferred model" in n]
    if preferred and model != preferred and slash_model is None and "--model" not in text:
        assert skipped == [f"Your preferred model `{preferred}` was skipped: it does not make {_words(kind)} here."]
    else:
        assert skipped == []


def _words(kind: Kind) -> str:
    return {Kind.IMAGE: "images", Kind.IMAGE_EDIT: "image edits", Kind.VIDEO: "videos"}[kind]


def test_the_suffix_is_appended_and_its_flags_sit_under_the_prompts():
    model, prompt, options, notes = job("a cat --seed 1", PREFS)
    assert model == "kawaii-3d"
    assert prompt == "a cat soft light"
    assert options["seed"] == 1  # inline beats the suffix's --seed 7
    assert options["aspect_ratio"] == "3:4"  # the aspect_ratio preference beats the suffix's --ar
    assert notes == ()
    assert job("a dog", PREFS)[2]["seed"] == 7


def test_a_preferred_flag_the_model_does_not_take_is_skipped_with_a_note_not_refused():
    preferences = Preferences(1, suffix="--style manga --seed 3", aspect_ratio="4:5")
    model, prompt, options, notes = job("a fox", preferences, slash_model="uni-1")
    assert (model, prompt) == ("uni-1", "a fox")
    assert options == {"style": "manga"}
    assert notes == (
        "Your preference --seed 3 was skipped: `uni-1` does not take it.",
        "Your preference --ar 4:5 was skipped: `uni-1` does not take it.",  # uni-1 has no 4:5
    )
    # The same flag typed in the prompt is the member's error, refused as always.
    with pytest.raises(InvalidInput, match="`--seed` does not work with `uni-1`"):
        job("a fox --seed 3", Preferences(1), slash_model="uni-1")


def test_an_exact_size_given_leaves_the_preferred_ratio_out_without_a_note():
    _, _, options, notes = job("a cat --size 1024x768", PREFS, slash_model="neta-lumina")
    assert options == {"size": (1024, 768), "seed": 7}
    assert notes == ()


def test_a_suffix_that_does_not_fit_the_prompt_or_the_server_is_skipped():
    long_prompt = "x" * (LIMIT - 5)
    _, prompt, _, notes = job(long_prompt, Preferences(1, suffix="soft light"))
    assert prompt == long_prompt
    assert notes == (f"Your suffix was skipped: with it the prompt is over {LIMIT} characters.",)
    _, prompt, _, notes = job("a cat", Preferences(1, suffix="gory scene"), banned=("gory",))
    assert prompt == "a cat"
    assert notes == ("Your suffix was skipped: it has a word this server does not allow.",)


def test_private_is_not_an_option_of_the_prompt():
    # private is applied by the command (slash option > preference > public); nothing here reads it.
    assert job("a cat", Preferences(1, private=True)) == job("a cat", Preferences(1))


# ---------------------------------------------------------------------------------------------- checks when set
@pytest.mark.parametrize(
    ("preferences", "message"),
    [
        (Preferences(1, model_key="dall-e"), "There is no model `dall-e`. Choose one of: neta-lumina, uni-1"),
        (Preferences(1, suffix="soft --foo 2"), "`--foo` is not a flag."),
        (Preferences(1, suffix="soft --sead 2"), "Did you mean --seed?"),
        (Preferences(1, suffix="soft --ar"), "--ar needs a ratio like 16:9."),
        (Preferences(1, suffix="--seed many"), "--seed needs a whole number like 42; “many” is not one."),
        (Preferences(1, suffix="--model uni-1"), "Choose the model with the `model` option, not --model"),
        (Preferences(1, model_key="uni-1", aspect_ratio="4:5"), "--ar 4:5 is not available with `uni-1`."),
        (Preferences(1, aspect_ratio="7:5"), "--ar 7:5 is not available with `neta-lumina`."),
        (Preferences(1, suffix="--style sketch"), "`uni-1` has no --style “sketch”; it takes: auto, manga."),
        (Preferences(1, suffix="x" * 501), "The suffix is 501 characters long; at most 500."),
    ],
)
def test_what_cannot_work_is_refused_when_set_with_the_prompts_messages(preferences, message):
    with pytest.raises(InvalidInput) as caught:
        check_preferences(CATALOGUE, preferences)
    assert message in caught.value.user_message


def test_a_flag_is_checked_against_the_preferred_model_when_it_takes_it_else_any_model_that_does():
    # --seed: uni-1 takes none, but /imagine with neta-lumina would use it: accepted.
    assert check_preferences(CATALOGUE, Preferences(1, model_key="UNI-1", suffix="--seed 5 --style manga")) == (
        Preferences(1, model_key="uni-1", suffix="--seed 5 --style manga")
    )
    assert check_preferences(CATALOGUE, Preferences(1, aspect_ratio="4:5"))  # kawaii-3d and neta-lumina have it


def test_set_changes_only_what_is_given_and_none_removes_one():
    old = Preferences(1, model_key="uni-1", aspect_ratio="16:9", private=True, suffix="ink")
    assert merged(old, model_key=None, aspect_ratio="1:1", private=None, suffix=None) == Preferences(
        1, model_key="uni-1", aspect_ratio="1:1", private=True, suffix="ink"
    )
    assert merged(old, model_key="", aspect_ratio=None, private=False, suffix="") == Preferences(
        1, aspect_ratio="16:9", private=False
    )


@pytest.mark.parametrize(("slash", "text"), [({}, "a cat --ar 16:9"), ({"ar": "16:9"}, "a cat")])
def test_a_ratio_given_leaves_the_preferred_size_out_without_a_note(slash, text):
    # --size overrides --ar when both are given: a --size from the suffix must not override the member's own ratio.
    preferences = Preferences(1, suffix="--size 1024x768 --seed 7")
    _, _, options, notes = job(text, preferences, slash=slash, slash_model="neta-lumina")
    assert options == {"aspect_ratio": "16:9", "seed": 7}
    assert notes == ()
