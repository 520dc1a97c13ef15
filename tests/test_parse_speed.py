"""Shortcuts in parsing that must not change any result (issue 15): `looks_bad` is ftfy's
`is_bad`, exactly, on every field of the corpus and on generated text."""

from __future__ import annotations

import re
from pathlib import Path

import feedparser
import pytest
from ftfy.badness import BADNESS_RE, MOJIBAKE_CATEGORIES, is_bad
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.parse import BADNESS_WIDTH, MOJIBAKE_TRIGGERS, looks_bad

CORPUS = Path("/work/shared/corpus/real")


def test_the_window_covers_every_match_of_the_installed_ftfy() -> None:
    pattern = BADNESS_RE.pattern
    width = re._parser.parse(pattern, BADNESS_RE.flags).getwidth()[1]  # type: ignore[attr-defined]
    assert width <= BADNESS_WIDTH
    # No lookaround and no end or word anchors: a match depends on its own characters only.
    assert not re.search(r"\(\?[=!<]|\\[bBAZ]|\$", pattern)
    assert not BADNESS_RE.flags & re.MULTILINE


# Characters that make ftfy's patterns match, and ones that do not: mojibake pieces
# (Ã Â Ð € ™ ...), accented letters, Cyrillic, Greek, punctuation, ASCII.
_ALPHABET = st.sampled_from(
    list("abcXYZ .,!?-\n\t'\"<>/=")
    + list("ÃÂÎÐØÙàâéèêëîïôöùûüçÉÈÀÇ×²³°·»«–—€œŠš¢£Ÿž®©´\xa0\xad")
    + list("ВГРСЂўЯндекс√±∂†≠™≤≥¥µøβΆΒΓΞΟ‚Äāāœ“”‘’…•")
    + ["\x80", "\x9d", "\u2500", "\u00a6", "¬", "¦"]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join), st.integers(0, 30))
def test_looks_bad_is_is_bad_on_generated_text(core: str, padding: int) -> None:
    for text in (core, "x" * padding + core, core + " y" * padding, f"<p>{'a' * padding}{core}</p>"):
        assert looks_bad(text) == is_bad(text), text


@pytest.mark.skipif(not CORPUS.exists(), reason=f"the shared corpus is not at {CORPUS}")
def test_looks_bad_is_is_bad_on_every_corpus_field() -> None:
    fields = 0
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file()):
        d = feedparser.parse(path.read_bytes(), resolve_relative_uris=False, sanitize_html=False)
        texts = [str(d.feed.get("title", ""))]
        for e in d.entries:
            texts += [str(e.get("title", "")), str(e.get("summary", ""))]
            texts += [str(c.get("value", "")) for c in e.get("content", [])]
        for text in texts:
            fields += 1
            assert looks_bad(text) == is_bad(text), (path.name, text[:200])
    assert fields > 4000


def _expand(chars: str) -> list[str]:
    """The characters of one of ftfy's category strings, ranges ("а-џ") expanded."""
    out: list[str] = []
    i = 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            out += [chr(c) for c in range(ord(chars[i]), ord(chars[i + 2]) + 1)]
            i += 3
        else:
            out.append(chars[i])
            i += 1
    return out


# Every character ftfy's expression names that is not a trigger, and ASCII of every class
# the expression uses ([a-z], [A-Z], \s, \w, punctuation): what strings without a trigger
# are made of.
_TRIGGERS = set(_expand(MOJIBAKE_TRIGGERS))
_NON_TRIGGERS = sorted(
    (
        {c for chars in MOJIBAKE_CATEGORIES.values() for c in _expand(chars)}
        | {c for c in BADNESS_RE.pattern if not c.isascii()}
        | set("azAZ .,?!\n\t1_-")
    )
    - _TRIGGERS
)


def test_no_string_without_a_trigger_matches_the_installed_ftfy() -> None:
    """`looks_bad` searches only around MOJIBAKE_TRIGGERS: every string of one or two
    characters without one (all of them, over every other character the expression names)
    must not match; longer ones are generated below."""
    assert len(_NON_TRIGGERS) > 100
    for a in _NON_TRIGGERS:
        assert not BADNESS_RE.search(a), a
        for b in _NON_TRIGGERS:
            assert not BADNESS_RE.search(a + b), a + b


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_NON_TRIGGERS), min_size=3, max_size=12).map("".join))
def test_longer_strings_without_a_trigger_never_match(text: str) -> None:
    assert not BADNESS_RE.search(text), text


_CYRILLIC_GREEK = st.sampled_from(
    list("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯЂўђ")
    + list("αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίΆ")
    + list(" .,«»—–…“”№°µ€\xa0")
    + ["\x80", "Ã", "Â", "¦", "ў"]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_CYRILLIC_GREEK, max_size=60).map("".join))
def test_looks_bad_is_is_bad_on_cyrillic_and_greek_text(text: str) -> None:
    """Russian and Greek text is where the trigger windows differ most from windows around
    every non-ASCII character."""
    assert looks_bad(text) == is_bad(text), text
