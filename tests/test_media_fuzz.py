"""Attachment bytes, fuzzed: ``sniff`` answers a media type or None, ``inspect_image`` a (type, width, height) or
``BadImage`` with a sentence for the user — never any other exception, whatever the bytes."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.media_check import BadImage, inspect_image
from bot.media_sniff import sniff
from tests.fakes.media import animated_bytes, image_bytes, mp4_bytes, polyglot, truncated_png
from tests.reliability import record

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "0")) * 2 or 150
VALID = st.sampled_from(["png", "jpeg", "webp", "gif"]).map(lambda fmt: image_bytes(fmt, 96, 80))


def _mutate(data: bytes, at: int, value: int) -> bytes:
    index = at % len(data)
    return data[:index] + bytes([value]) + data[index + 1 :]


hostile = st.one_of(
    VALID,
    st.binary(max_size=2048),
    st.tuples(VALID, st.integers(0, 1 << 16), st.integers(0, 255)).map(lambda t: _mutate(*t)),
    st.tuples(VALID, st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),
    st.tuples(VALID, st.binary(min_size=1, max_size=64)).map(lambda t: t[0] + t[1]),
    st.sampled_from(["png", "webp", "gif"]).map(animated_bytes),
    VALID.map(polyglot),
    st.just(truncated_png()),
    st.just(mp4_bytes()[:200]),
    st.binary(max_size=64).map(lambda tail: b"\x89PNG\r\n\x1a\n" + tail),
    st.binary(max_size=64).map(lambda tail: b"RIFF\x00\x00\x00\x00WEBPVP8 " + tail),
    st.binary(max_size=64).map(lambda tail: b"\xff\xd8\xff" + tail),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=hostile, still_only=st.booleans(), exact_end=st.booleans())
def test_attachment_bytes_are_read_or_refused_with_a_message(data: bytes, still_only: bool, exact_end: bool) -> None:
    sniffed = sniff(data)
    assert sniffed is None or isinstance(sniffed[0], str)
    problem = ""
    try:
        media_type, width, height = inspect_image(data, still_only=still_only, exact_end=exact_end)
    except BadImage as exc:
        problem = exc.problem
    if problem:
        record("bytes", refused=True)
        assert problem.strip()
    else:
        record("bytes", refused=False)
        assert media_type.startswith("image/")
        assert width > 0
        assert height > 0
