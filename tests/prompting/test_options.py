"""Inline flags and slash options → provider options (bot/prompting/flags.py, options.py), against each adapter's
real capabilities."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalogue import ModelEntry, model_defs
from bot.errors import InvalidInput
from bot.prompting.flags import FLAGS, ParsedPrompt, flags_for, model_from, parse_prompt
from bot.prompting.options import resolve_options
from providers import luma_agents, luma_reseller, lumozai, wavespeed
from providers.base import GenerationRequest, Kind
from providers.luma_agents import LumaAgentsProvider
from providers.luma_reseller import LumaResellerProvider
from providers.lumozai import LumozaiProvider
from providers.wavespeed import WaveSpeedProvider, size_for_aspect_ratio

# Nothing is ever sent, so the adapters need no session.
PROVIDERS: dict[str, Any] = {
    "wavespeed": WaveSpeedProvider(None, api_key="x"),  # type: ignore[arg-type]
    "luma_agents": LumaAgentsProvider(None, api_key="x"),  # type: ignore[arg-type]
    "luma_reseller": LumaResellerProvider(None, api_key="x"),  # type: ignore[arg-type]
    "lumozai": LumozaiProvider(None, api_key="x"),  # type: ignore[arg-type]
}
ENTRIES: dict[str, ModelEntry] = {
    model.key: ModelEntry(
        key=model.key,
        provider=model.provider,
        upstream_model=model.upstream_model,
        kinds=model.kinds,
        title=model.title,
        blurb=model.blurb,
        cost=1,
        capabilities=PROVIDERS[model.provider].capabilities(model.upstream_model),
    )
    for model in model_defs()
}
KIND = {"neta-lumina": Kind.IMAGE, "uni-1": Kind.IMAGE, "uni-1-max": Kind.IMAGE, "kawaii-3d": Kind.IMAGE}
KIND["luma-video"] = Kind.VIDEO

TAKES = {
    "neta-lumina": ["--ar", "--seed", "--format", "--size"],
    "uni-1": ["--ar", "--style", "--format", "--web"],
    "uni-1-max": ["--ar", "--style", "--format", "--web"],
    "kawaii-3d": ["--ar", "--seed", "--format", "--steps", "--guidance", "--quality", "--lora", "--mp", "--strength"],
    "luma-video": ["--ar", "--duration", "--res", "--loop", "--enhance"],
}

# One good value per flag, and the option it becomes (on every model that takes the flag).
SAMPLES: dict[str, tuple[str | bool, str, Any]] = {
    "ar": ("1:1", "aspect_ratio", "1:1"),
    "seed": ("42", "seed", 42),
    "style": ("manga", "style", "manga"),
    "format": ("png", "output_format", "png"),
    "size": ("1024x768", "size", (1024, 768)),
    "steps": ("28", "steps", 28),
    "guidance": ("3.5", "guidance", 3.5),
    "quality": ("90", "quality", 90),
    "duration": ("5s", "duration_s", 5),
    "res": ("720p", "resolution", "720p"),
    "loop": (True, "loop", True),
    "enhance": (True, "enhance_prompt", True),
    "lora": ("0.8", "lora_scale", 0.8),
    "mp": ("1", "megapixels", "1"),
    "strength": ("0.5", "prompt_strength", 0.5),
    "web": (True, "web_search", True),
}


def resolve(key: str, flags: dict[str, Any] | None = None, slash: dict[str, Any] | None = None):
    return resolve_options(ENTRIES[key], KIND[key], flags or {}, slash or {})


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidInput) as info:
        call(*args)
    return info.value.user_message


# ---------------------------------------------------------------------------------------------------- parse_prompt

PARSES: list[tuple[str, str, dict[str, str | bool]]] = [
    ("a cat", "a cat", {}),
    ("a cat --ar 16:9", "a cat", {"ar": "16:9"}),
    ("--ar 16:9 a cat", "a cat", {"ar": "16:9"}),
    ("a --ar 16:9 cat", "a cat", {"ar": "16:9"}),
    ("a cat --aspect 2:3", "a cat", {"ar": "2:3"}),
    ("a cat --seed 42", "a cat", {"seed": "42"}),
    ("a cat --seed -1", "a cat", {"seed": "-1"}),
    ("a cat --model uni-1", "a cat", {"model": "uni-1"}),
    ("a cat --style manga", "a cat", {"style": "manga"}),
    ("a cat --format png", "a cat", {"format": "png"}),
    ("a cat --size 1024x768", "a cat", {"size": "1024x768"}),
    ("a cat --size 1024*768", "a cat", {"size": "1024*768"}),
    ("a cat --steps 28", "a cat", {"steps": "28"}),
    ("a cat --guidance 3.5", "a cat", {"guidance": "3.5"}),
    ("a cat --quality 90", "a cat", {"quality": "90"}),
    ("a cat --duration 10s", "a cat", {"duration": "10s"}),
    ("a cat --duration 10", "a cat", {"duration": "10"}),
    ("a cat --res 1080p", "a cat", {"res": "1080p"}),
    ("a cat --resolution 720p", "a cat", {"res": "720p"}),
    ("a cat --loop", "a cat", {"loop": True}),
    ("a cat --enhance", "a cat", {"enhance": True}),
    ("a cat --lora 0.8", "a cat", {"lora": "0.8"}),
    ("a cat --lora -0.5", "a cat", {"lora": "-0.5"}),
    ("a cat --mp 0.25", "a cat", {"mp": "0.25"}),
    ("a cat --megapixels 1", "a cat", {"mp": "1"}),
    ("a cat --strength 0.7", "a cat", {"strength": "0.7"}),
    ("a cat --web", "a cat", {"web": True}),
    # case, dashes, "=" form
    ("a cat --AR 16:9 --Seed 7", "a cat", {"ar": "16:9", "seed": "7"}),
    ("a cat —ar 16:9", "a cat", {"ar": "16:9"}),
    ("a cat –seed 5", "a cat", {"seed": "5"}),
    ("a cat —loop —enhance", "a cat", {"loop": True, "enhance": True}),
    ("a cat --ar=16:9", "a cat", {"ar": "16:9"}),
    ("a cat —seed=3 more", "a cat more", {"seed": "3"}),
    ("a cat --loop=no", "a cat", {"loop": False}),
    ("a cat --web=yes", "a cat", {"web": True}),
    ("a cat --ar 16 : 9 tail", "a cat tail", {"ar": "16 : 9"}),
    ("a cat --size 1024 x 768", "a cat", {"size": "1024 x 768"}),
    # several, repeated (last wins, aliases included), switches between values
    ("--ar 1:1 a --loop cat --seed 9 --res 720p", "a cat", {"ar": "1:1", "loop": True, "seed": "9", "res": "720p"}),
    ("a cat --ar 1:1 --ar 16:9", "a cat", {"ar": "16:9"}),
    ("a cat --ar 1:1 --aspect 2:1", "a cat", {"ar": "2:1"}),
    ("a cat --res 720p --resolution 1080p", "a cat", {"res": "1080p"}),
    ("a cat --loop --loop=off", "a cat", {"loop": False}),
    ("--seed 1 --seed 2 --seed 3", "", {"seed": "3"}),
    ("a cat --loop --ar 16:9", "a cat", {"loop": True, "ar": "16:9"}),
    # not flags
    ("rock--n--roll", "rock--n--roll", {}),
    ("A -- B", "A -- B", {}),
    ("A — B – C", "A — B – C", {}),
    ("an em—dash and en–dash", "an em—dash and en–dash", {}),
    ("she said —wait", "she said —wait", {}),
    ("price --5 off", "price --5 off", {}),
    ("x---ar 2:1", "x---ar 2:1", {}),
    ("a-b --ar 2:1", "a-b", {"ar": "2:1"}),
    # whitespace, newlines and unicode
    ("  a   cat  ", "a cat", {}),
    ("a cat\nin a hat", "a cat\nin a hat", {}),
    ("line one --ar 16:9\nline two", "line one\nline two", {"ar": "16:9"}),
    ("line one\n--ar 16:9 --seed 4\nline two", "line one\nline two", {"ar": "16:9", "seed": "4"}),
    ("line one\n\nline two --loop", "line one\n\nline two", {"loop": True}),
    ("a cat\r\nin a hat", "a cat\nin a hat", {}),
    ("\n\na cat\n\n", "a cat", {}),
    ("1girl, solo, 桜 --ar 2:3", "1girl, solo, 桜", {"ar": "2:3"}),
    ("可爱的猫 —seed 12 ねこ", "可爱的猫 ねこ", {"seed": "12"}),
    ("émoji 🐱 --format webp", "émoji 🐱", {"format": "webp"}),
    ("日本\u3000語 --loop", "日本 語", {"loop": True}),
    ("", "", {}),
]


@pytest.mark.parametrize(("text", "prompt", "flags"), PARSES)
def test_parse_prompt(text: str, prompt: str, flags: dict[str, str | bool]) -> None:
    assert parse_prompt(text) == ParsedPrompt(prompt=prompt, flags=flags)


REFUSED_PARSES: list[tuple[str, str]] = [
    ("a cat --foo 3", "`--foo` is not a flag."),
    ("a cat --sed 3", "Did you mean --seed?"),
    ("a cat --Aspectratio 3:2", "`--Aspectratio` is not a flag."),
    ("--n--roll", "`--n--roll` is not a flag."),
    ("a cat --ar", "--ar needs a ratio like 16:9."),
    ("a cat --ar=", "--ar needs a ratio like 16:9."),
    ("a cat --ar --seed 4", "--ar needs a ratio like 16:9."),
    ("a cat --ar —seed 4", "--ar needs a ratio like 16:9."),
    ("a cat --ar\n16:9", "--ar needs a ratio like 16:9."),
    ("a cat --seed", "--seed needs a whole number like 42."),
    ("a cat --model", "--model needs a model key like uni-1."),
    ("a cat --size", "--size needs a size like 1024x768."),
    ("a cat --duration", "--duration needs a length like 10s."),
    ("a cat —guidance", "--guidance needs a number like 3.5."),
    ("a cat --loop=maybe", "--loop is a switch"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED_PARSES)
def test_parse_prompt_refuses(text: str, message: str) -> None:
    assert message in refusal(parse_prompt, text)


def test_unknown_flag_lists_every_flag() -> None:
    message = refusal(parse_prompt, "a --zoom 2")
    assert message.endswith("The flags are: " + ", ".join(f"--{flag.name}" for flag in FLAGS) + ".")


# ---------------------------------------------------------------------------------------------------- hypothesis

_DASHES = "-—–"
plain_words = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), min_size=1, max_size=12
).filter(lambda word: word.split() == [word] and word[0] not in _DASHES)
words = st.lists(
    plain_words | st.sampled_from(["rock--n--roll", "A—B", "x–y", "--", "—", "a=b", "16:9", "-1"]), max_size=12
)
flag_tokens = st.sampled_from(
    [
        ("--ar 16:9", "ar", "16:9"),
        ("—ar=2:3", "ar", "2:3"),
        ("--aspect 1:1", "ar", "1:1"),
        ("--seed 42", "seed", "42"),
        ("–seed -1", "seed", "-1"),
        ("--STEPS 28", "steps", "28"),
        ("--loop", "loop", True),
        ("—enhance", "enhance", True),
        ("--web=no", "web", False),
        ("--model uni-1", "model", "uni-1"),
        ("--res 1080p", "res", "1080p"),
        ("--size 1024*768", "size", "1024*768"),
    ]
)


@settings(max_examples=300)
@given(
    st.text(max_size=80)
    | st.lists(st.sampled_from(["a", " ", "\n", "--", "—", "–", "ar", "=", "16:9", "x"])).map("".join)
)
def test_parse_prompt_raises_only_invalid_input(text: str) -> None:
    try:
        parsed = parse_prompt(text)
    except InvalidInput:
        return
    assert set(parsed.flags) <= {flag.name for flag in FLAGS}
    if not any(dash in text for dash in _DASHES):
        assert parsed.prompt.split() == text.split()
        assert parsed.flags == {}


@settings(max_examples=300)
@given(words, st.lists(st.tuples(st.integers(0, 12), flag_tokens), max_size=5), st.booleans())
def test_parse_prompt_keeps_every_non_flag_word(
    kept: list[str], inserted: list[tuple[int, tuple[str, str, str | bool]]], newlines: bool
) -> None:
    tokens = list(kept)
    for position, (token, _, _) in sorted(inserted, key=lambda item: item[0]):
        tokens.insert(min(position, len(tokens)), token)
    meaning = {token: (name, value) for _, (token, name, value) in inserted}
    expected = dict(meaning[token] for token in tokens if token in meaning)  # the last occurrence wins
    parsed = parse_prompt(("\n" if newlines else " ").join(tokens))
    assert parsed.prompt.split() == kept
    assert parsed.flags == expected


# ------------------------------------------------------------------------------------------ flags_for, model_from


@pytest.mark.parametrize("key", list(TAKES))
def test_flags_for(key: str) -> None:
    assert flags_for(ENTRIES[key]) == ["--model", *TAKES[key]]


@pytest.mark.parametrize(
    ("flags", "slash", "expected"),
    [
        ({}, None, None),
        ({"model": "Uni-1"}, None, "uni-1"),
        ({"model": "uni-1"}, "Kawaii-3D ", "kawaii-3d"),
        ({}, "luma-video", "luma-video"),
        ({"model": " NETA-Lumina "}, "", "neta-lumina"),
    ],
)
def test_model_from(flags: dict[str, str], slash: str | None, expected: str | None) -> None:
    assert model_from(flags, slash) == expected


# ---------------------------------------------------------------------------------------------------- resolve_options


@pytest.mark.parametrize("key", list(TAKES))
@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_model_takes_or_refuses_each_flag(key: str, name: str) -> None:
    raw, field, value = SAMPLES[name]
    if f"--{name}" in TAKES[key]:
        resolved = resolve(key, {name: raw})
        got = resolved.size if field == "size" else resolved.options[field]
        assert got == value
        assert resolved.notes == ()
    else:
        message = refusal(resolve, key, {name: raw})
        assert message == f"`--{name}` does not work with `{key}`. {key} takes: {', '.join(TAKES[key])}"


@pytest.mark.parametrize("key", list(TAKES))
def test_model_flag_is_always_fine(key: str) -> None:
    assert resolve(key, {"model": key}, {"model": "anything"}).options == {}


@pytest.mark.parametrize("key", list(TAKES))
def test_everything_a_model_takes_is_accepted_by_its_adapter(key: str) -> None:
    flags = {name[2:]: SAMPLES[name[2:]][0] for name in TAKES[key]}
    resolved = resolve(key, flags)
    entry = ENTRIES[key]
    request = GenerationRequest(
        kind=KIND[key], prompt="a cat", model=entry.upstream_model, size=resolved.size, **resolved.options
    )
    body_of = {
        "wavespeed": wavespeed._to_body,
        "luma_agents": luma_agents._to_body,
        "luma_reseller": luma_reseller._to_body,
        "lumozai": lumozai._to_body,
    }[entry.provider]
    assert body_of(request)


def test_wrong_kind_is_refused() -> None:
    message = refusal(resolve_options, ENTRIES["uni-1"], Kind.VIDEO, {}, {})
    assert message == "`uni-1` does not make videos. Pick another model with --model."


CLAMPS: list[tuple[str, str, str, Any, str]] = [
    ("kawaii-3d", "steps", "80", 50, "--steps 80 is more than kawaii-3d allows; used 50."),
    ("kawaii-3d", "steps", "0", 1, "--steps 0 is less than kawaii-3d allows; used 1."),
    ("kawaii-3d", "guidance", "12.5", 10.0, "--guidance 12.5 is more than kawaii-3d allows; used 10."),
    ("kawaii-3d", "guidance", "-1", 0.0, "--guidance -1 is less than kawaii-3d allows; used 0."),
    ("kawaii-3d", "quality", "150", 100, "--quality 150 is more than kawaii-3d allows; used 100."),
    ("kawaii-3d", "lora", "5", 3.0, "--lora 5 is more than kawaii-3d allows; used 3."),
    ("kawaii-3d", "lora", "-2.5", -1.0, "--lora -2.5 is less than kawaii-3d allows; used -1."),
    ("kawaii-3d", "strength", "1.5", 1.0, "--strength 1.5 is more than kawaii-3d allows; used 1."),
    ("kawaii-3d", "seed", "-1", 0, "--seed -1 is less than kawaii-3d allows; used 0."),
    ("kawaii-3d", "seed", "9" * 30, 2147483647, "is more than kawaii-3d allows; used 2147483647."),
    ("neta-lumina", "seed", "-5", -1, "--seed -5 is less than neta-lumina allows; used -1."),
    ("neta-lumina", "seed", "3000000000", 2147483647, "--seed 3000000000 is more than neta-lumina allows"),
    ("luma-video", "duration", "7s", 5, "--duration 7s is not offered by luma-video; used 5s (it takes 5s or 10s)."),
    ("luma-video", "duration", "30", 10, "--duration 30 is not offered by luma-video; used 10s (it takes 5s or 10s)."),
    ("luma-video", "duration", "1 sec", 5, "--duration 1 sec is not offered by luma-video; used 5s"),
]


@pytest.mark.parametrize(("key", "name", "raw", "value", "note"), CLAMPS)
def test_numbers_out_of_range_are_clamped_with_a_note(key: str, name: str, raw: str, value: Any, note: str) -> None:
    resolved = resolve(key, {name: raw})
    field = {flag.name: flag.field for flag in FLAGS}[name]
    assert resolved.options[field] == value
    assert type(resolved.options[field]) is type(value)
    assert len(resolved.notes) == 1
    assert note in resolved.notes[0]


@pytest.mark.parametrize(
    ("key", "name", "raw", "value"),
    [
        ("kawaii-3d", "steps", "50", 50),
        ("kawaii-3d", "steps", "+7", 7),
        ("kawaii-3d", "guidance", "10", 10.0),
        ("kawaii-3d", "guidance", ".5", 0.5),
        ("kawaii-3d", "lora", "-1", -1.0),
        ("kawaii-3d", "seed", "0", 0),
        ("neta-lumina", "seed", "-1", -1),
        ("luma-video", "duration", "10", 10),
        ("luma-video", "duration", "10.0s", 10),
        ("luma-video", "duration", "5 seconds", 5),
        ("luma-video", "duration", "10S", 10),
    ],
)
def test_numbers_in_range_pass_without_notes(key: str, name: str, raw: str, value: Any) -> None:
    resolved = resolve(key, {name: raw})
    field = {flag.name: flag.field for flag in FLAGS}[name]
    assert resolved.options[field] == value
    assert type(resolved.options[field]) is type(value)
    assert resolved.notes == ()


@pytest.mark.parametrize(
    ("key", "name", "raw", "message"),
    [
        ("kawaii-3d", "steps", "many", "--steps needs a whole number like 28; “many” is not one."),
        ("kawaii-3d", "steps", "28.5", "--steps needs a whole number like 28; “28.5” is not one."),
        ("kawaii-3d", "steps", "1e3", "--steps needs a whole number like 28"),
        ("kawaii-3d", "seed", "0x10", "--seed needs a whole number like 42"),
        ("kawaii-3d", "quality", "", "--quality needs a whole number like 90"),
        ("kawaii-3d", "guidance", "3,5", "--guidance needs a number like 3.5; “3,5” is not one."),
        ("kawaii-3d", "guidance", "nan", "--guidance needs a number like 3.5"),
        ("kawaii-3d", "guidance", "inf", "--guidance needs a number like 3.5"),
        ("kawaii-3d", "lora", "9" * 400, "--lora needs a number like 0.8; “99999999999999999999999…”"),
        ("kawaii-3d", "strength", "half", "--strength needs a number like 0.8"),
        ("luma-video", "duration", "long", "--duration needs a length like 10s; “long” is not one."),
        ("luma-video", "duration", "0s", "--duration needs a length like 10s"),
        ("neta-lumina", "size", "big", "--size needs a size like 1024x768; “big” is not one."),
        ("neta-lumina", "size", "0x512", "--size needs a size like 1024x768"),
        ("neta-lumina", "ar", "wide", "--ar needs a ratio like 16:9; “wide” is not one."),
        ("neta-lumina", "ar", "16:0", "--ar needs a ratio like 16:9"),
        ("luma-video", "loop", "maybe", "--loop is a switch"),
    ],
)
def test_bad_values_are_refused(key: str, name: str, raw: str, message: str) -> None:
    assert message in refusal(resolve, key, {name: raw})


@pytest.mark.parametrize(
    ("key", "name", "raw", "value"),
    [
        ("uni-1", "style", "MANGA", "manga"),
        ("uni-1", "style", " Auto ", "auto"),
        ("uni-1", "format", "jpg", "jpeg"),
        ("uni-1", "format", "JPEG", "jpeg"),
        ("uni-1", "format", ".png", "png"),
        ("kawaii-3d", "format", "jpeg", "jpg"),
        ("kawaii-3d", "format", "jpg", "jpg"),
        ("kawaii-3d", "format", "WebP", "webp"),
        ("neta-lumina", "format", "jpg", "jpeg"),
        ("luma-video", "res", "1080P", "1080p"),
        ("luma-video", "res", "1080", "1080p"),
        ("kawaii-3d", "mp", "0.25", "0.25"),
        ("kawaii-3d", "mp", ".25", "0.25"),
        ("kawaii-3d", "mp", "1.0", "1"),
    ],
)
def test_choices_are_matched_loosely(key: str, name: str, raw: str, value: str) -> None:
    field = {flag.name: flag.field for flag in FLAGS}[name]
    assert resolve(key, {name: raw}).options[field] == value


@pytest.mark.parametrize(
    ("key", "name", "raw", "message"),
    [
        ("uni-1", "style", "anime", "`uni-1` has no --style “anime”; it takes: auto, manga."),
        ("uni-1-max", "format", "webp", "`uni-1-max` has no --format “webp”; it takes: png, jpeg."),
        ("kawaii-3d", "format", "gif", "`kawaii-3d` has no --format “gif”; it takes: webp, jpg, png."),
        ("neta-lumina", "format", "tiff", "`neta-lumina` has no --format “tiff”; it takes: jpeg, png, webp."),
        ("luma-video", "res", "4k", "`luma-video` has no --res “4k”; it takes: 720p, 1080p."),
        ("kawaii-3d", "mp", "2", "`kawaii-3d` has no --mp “2”; it takes: 1, 0.25."),
    ],
)
def test_choices_not_offered_are_refused_with_the_list(key: str, name: str, raw: str, message: str) -> None:
    assert refusal(resolve, key, {name: raw}) == message


@pytest.mark.parametrize(
    ("key", "raw", "ratio"),
    [
        ("uni-1", "16:9", "16:9"),
        ("uni-1", "16x9", "16:9"),
        ("uni-1", " 16 : 9 ", "16:9"),
        ("uni-1", "32:18", "16:9"),
        ("uni-1", "1920x1080", "16:9"),
        ("uni-1", "2:2", "1:1"),
        ("uni-1", "1.5:1", "3:2"),
        ("kawaii-3d", "10:8", "5:4"),
        ("luma-video", "42:18", "21:9"),
        ("luma-video", "7:3", "21:9"),
        ("kawaii-3d", "3:7", "9:21"),
        ("neta-lumina", "9X21", "9:21"),
        ("neta-lumina", "3/1", "3:1"),
    ],
)
def test_ratios_are_normalised_and_reduced(key: str, raw: str, ratio: str) -> None:
    assert resolve(key, {"ar": raw}).options == {"aspect_ratio": ratio}


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("uni-1", "4:3", "--ar 4:3 is not available with `uni-1`. `uni-1` can do: 3:1, 2:1, 16:9, 3:2, 1:1, 2:3, "),
        ("uni-1-max", "21:9", "`uni-1-max` can do: 3:1, 2:1, 16:9, 3:2, 1:1, 2:3, 9:16, 1:2, 1:3."),
        ("kawaii-3d", "2:1", "`kawaii-3d` can do: 1:1, 16:9, 21:9, 3:2, 2:3, 4:5, 5:4, 3:4, 4:3, 9:16, 9:21."),
        ("luma-video", "3:2", "`luma-video` can do: 16:9, 9:16, 1:1, 4:3, 3:4, 21:9, 9:21."),
        ("neta-lumina", "7:5", "--ar 7:5 is not available with `neta-lumina`. `neta-lumina` can do: 1:1, 16:9, "),
        ("uni-1", "8:6", "--ar 4:3 is not available with `uni-1`."),
    ],
)
def test_ratios_a_model_cannot_do_are_refused_with_the_list(key: str, raw: str, message: str) -> None:
    assert message in refusal(resolve, key, {"ar": raw})


@pytest.mark.parametrize("ratio", ENTRIES["neta-lumina"].capabilities.aspect_ratios)
def test_every_neta_lumina_ratio_is_accepted_and_gives_a_size(ratio: str) -> None:
    assert resolve("neta-lumina", {"ar": ratio}).options == {"aspect_ratio": ratio}
    low, high = ENTRIES["neta-lumina"].capabilities.size_range or (0, 0)
    assert all(low <= side <= high for side in size_for_aspect_ratio(ratio))


@pytest.mark.parametrize(
    ("raw", "size", "note"),
    [
        ("1024x768", (1024, 768), None),
        ("1024*768", (1024, 768), None),
        ("1024 X 768", (1024, 768), None),
        ("256x1536", (256, 1536), None),
        ((640, 480), (640, 480), None),
        (
            "2048x768",
            (1536, 768),
            "--size 2048x768 is outside what neta-lumina allows (256–1536 a side); used 1536x768.",
        ),
        (
            "100x4000",
            (256, 1536),
            "--size 100x4000 is outside what neta-lumina allows (256–1536 a side); used 256x1536.",
        ),
    ],
)
def test_size(raw: Any, size: tuple[int, int], note: str | None) -> None:
    resolved = resolve("neta-lumina", {"size": raw} if isinstance(raw, str) else {}, {"size": raw})
    assert resolved.size == size
    assert "size" not in resolved.options
    assert resolved.notes == ((note,) if note else ())


def test_size_wins_over_ratio() -> None:
    resolved = resolve("neta-lumina", {"ar": "16:9", "size": "1024x768", "seed": "5"})
    assert resolved.size == (1024, 768)
    assert resolved.options == {"seed": 5}
    assert resolved.notes == ("--ar 16:9 was ignored: --size 1024x768 sets the exact size.",)


def test_a_model_without_size_refuses_it_even_with_a_ratio() -> None:
    message = refusal(resolve, "uni-1", {"ar": "16:9", "size": "1024x768"})
    assert message == "`--size` does not work with `uni-1`. uni-1 takes: --ar, --style, --format, --web"


@pytest.mark.parametrize(
    ("key", "flags", "slash", "options"),
    [
        ("uni-1", {"ar": "1:1", "style": "auto"}, {"ar": "16:9"}, {"aspect_ratio": "16:9", "style": "auto"}),
        ("uni-1", {"ar": "1:1"}, {"ar": None, "style": "manga"}, {"aspect_ratio": "1:1", "style": "manga"}),
        ("uni-1", {"format": "png"}, {"format": "jpg", "web": True}, {"output_format": "jpeg", "web_search": True}),
        ("kawaii-3d", {"seed": "1"}, {"seed": 42}, {"seed": 42}),
        ("kawaii-3d", {"guidance": "1"}, {"guidance": 4}, {"guidance": 4.0}),
        ("kawaii-3d", {}, {"lora": 0.5, "steps": 20}, {"lora_scale": 0.5, "steps": 20}),
        (
            "luma-video",
            {"duration": "5s", "res": "720p", "loop": True},
            {"duration": "10s", "res": "1080p", "loop": False, "enhance": True},
            {"duration_s": 10, "resolution": "1080p", "loop": False, "enhance_prompt": True},
        ),
        ("luma-video", {"duration": "5"}, {"duration": 10}, {"duration_s": 10}),
    ],
)
def test_slash_options_win_over_inline_flags(
    key: str, flags: dict[str, Any], slash: dict[str, Any], options: dict[str, Any]
) -> None:
    assert resolve(key, flags, slash).options == options


def test_slash_refusal_uses_the_same_message() -> None:
    message = refusal(resolve, "luma-video", {}, {"seed": 42})
    assert (
        message
        == "`--seed` does not work with `luma-video`. luma-video takes: --ar, --duration, --res, --loop, --enhance"
    )


def test_slash_numbers_must_be_numbers() -> None:
    assert "--steps needs a whole number like 28" in refusal(resolve, "kawaii-3d", {}, {"steps": True})
    assert "--steps needs a whole number like 28" in refusal(resolve, "kawaii-3d", {}, {"steps": 2.5})


def test_the_first_refused_flag_is_reported_in_table_order() -> None:
    message = refusal(resolve, "uni-1", {"web": True, "steps": "28", "seed": "1"})
    assert message.startswith("`--seed` does not work with `uni-1`.")


def test_from_prompt_to_options() -> None:
    parsed = parse_prompt("Cute 3d Kawaii fox —ar 32:18 --steps 80 --format JPEG --mp=0.25 --lora .5")
    resolved = resolve_options(ENTRIES["kawaii-3d"], Kind.IMAGE, parsed.flags, {"seed": 7})
    assert parsed.prompt == "Cute 3d Kawaii fox"
    assert resolved.options == {
        "aspect_ratio": "16:9",
        "seed": 7,
        "output_format": "jpg",
        "steps": 50,
        "lora_scale": 0.5,
        "megapixels": "0.25",
    }
    assert resolved.size is None
    assert resolved.notes == ("--steps 80 is more than kawaii-3d allows; used 50.",)
