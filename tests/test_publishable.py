"""Each entry made safe to publish once, at ingest (issues 13 and 15), with outputs unchanged.

- The kind, by property: for any stored (XML-safe) summary and content and any
  `site.lede_length`, the stored text gives the lede and the content HTML that computing them
  at publish time gives (`text.make_lede`, `sanitize_html`), however long the text.
- A world built from every feed of tests/fixtures/corpus (through the real parse, normalise,
  dedupe and store), plus entries past the stored text's length, publishes byte-identical
  outputs from the stored text and from the old per-publish computation, at two lede lengths;
  and publishing from stored text runs no HTML pass per entry.
- Text carried or stored for other summary/content or under other rules is never used; text
  normalise made is written by the store as it is, for new and corrected entries.
- What else publishing no longer recomputes keeps its output: ledes cut from the right equal
  the cuts of the old left-to-right search; digest HTML is what the sanitiser would give back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import annotated_types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import dedupe, normalise, text
from aggregator import publish as publishing
from aggregator.config import Config, SiteModel, load_config
from aggregator.models import Publishable, StoredEntry, UpdatePlan
from aggregator.parse import parse_feed
from aggregator.render import common, feeds, pages
from aggregator.render.i18n import Phrase
from aggregator.store import SQLiteStore
from aggregator.text import (
    LEDE_MIN_SHARE,
    LEDE_TEXT_KEEP,
    RENDER_VERSION,
    cut_lede,
    html_to_text,
    make_lede,
    publishable,
    publishable_for,
    sanitize_html,
    shorten,
    xml_safe,
)
from tests.conftest import FIXTURES

NOW = datetime(2024, 7, 10, 12, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")

# Markup, entities, sentence ends in several scripts, white space, controls XML cannot carry,
# what the sanitiser removes (script, handlers, javascript: URLs), comments, CJK without spaces.
_PIECES = [
    "<p>", "</p>", "<br>", "<div>", "</div>", "<b>", "</b>", "<li>", "<h2>", "</h2>", "<pre>",
    '<a href="https://example.org/a?x=1&amp;y=2">', '<a href="javascript:alert(1)">', "</a>",
    '<img src="https://example.org/i.jpg" onerror="x()">', "<script>evil()</script>",
    "<!-- note -->", "<style>p{}</style>", "&amp;", "&lt;", "&nbsp;", "&eacute;", "&#8230;", "&bogus;",
    "Word", "palabra", "слово", "語", "नमस्ते", "كلمة", " ", "  ", "\n", "\t", ".", "!", "?", "…",
    "。", "।", "؟", "»", ")", '"', "\x0b", "\x0c", "\x01", "\ufffe", "<", ">", "&",
]  # fmt: skip
_HTML = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)
# repeated, so some texts are far longer than what is stored (LEDE_TEXT_KEEP)
_LONG = st.tuples(_HTML, st.integers(1, 600)).map(lambda t: t[0] * t[1])
_LIMITS = st.integers(40, 10_000) | st.sampled_from([40, 80, 600, 700, 9_999, 10_000])


@settings(max_examples=300, deadline=None)
@given(summary=_HTML | _LONG, content=_HTML | _LONG, limit=_LIMITS)
def test_stored_text_gives_the_lede_and_content_computed_at_publish(
    summary: str, content: str, limit: int
) -> None:
    s, c = xml_safe(summary), xml_safe(content)  # what the store holds
    made = publishable(s, c)
    assert cut_lede(made.lede_text, limit) == make_lede(s, c, limit)
    assert made.content_html == xml_safe(sanitize_html(c) or sanitize_html(s))
    assert len(made.lede_text) <= LEDE_TEXT_KEEP
    assert made.render_version == RENDER_VERSION


_OLD_SENTENCE_END = re.compile(r"[.!?…。！？।؟](?:[\"'»”’)\]]*)(?=\s|$)")


def _cut_lede_as_before(text: str, limit: int) -> str:
    """cut_lede as it was written before it searched from the right: every sentence end."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    ends = [m.end() for m in _OLD_SENTENCE_END.finditer(head) if m.end() <= limit]
    if ends and ends[-1] >= limit * LEDE_MIN_SHARE:
        return text[: ends[-1]].rstrip()
    return shorten(text, limit - 1)


_SENTENCES = st.lists(
    st.sampled_from(["a", "word", "語", " ", "\xa0", "\u2028", ".", "!", "?", "…", "。", "！", "।", "؟",
                     '"', "'", "»", "”", "’", ")", "]", "(", "x.y", "e.g."]),
    max_size=300,
).map("".join)  # fmt: skip


@settings(max_examples=1_000, deadline=None)
@given(text=_SENTENCES, limit=st.integers(1, 320))
def test_ledes_are_cut_where_they_were_before(text: str, limit: int) -> None:
    assert cut_lede(text, limit) == _cut_lede_as_before(text, limit)


@settings(max_examples=300, deadline=None)
@given(summary=_HTML | st.just(""), content=_HTML | st.just(""))
def test_text_the_caller_extracted_already_gives_the_same(summary: str, content: str) -> None:
    """normalise hands over `html_to_text(summary or content)` (from before anything was made
    XML-safe): the result is the same as extracting it here, controls or not."""
    assert publishable(summary, content, html_to_text(summary or content)) == publishable(summary, content)


@pytest.mark.parametrize("length", [9_998, 9_999, 10_000, 10_001, 10_002, 30_000])
@pytest.mark.parametrize("limit", [9_999, 10_000])
def test_ledes_at_the_longest_limit_are_cut_as_from_the_whole_text(length: int, limit: int) -> None:
    """Around the cut: a sentence ending exactly at the limit, and text just over it."""
    for filler in ("a" * (length - 1) + ".", ("word " * length)[:length], "語" * length):
        summary = f"<p>{filler}</p>"
        assert cut_lede(publishable(summary, "").lede_text, limit) == make_lede(summary, "", limit)


def test_the_stored_text_covers_the_longest_lede_the_configuration_allows() -> None:
    bounds = [
        m.le for m in SiteModel.model_fields["lede_length"].metadata if isinstance(m, annotated_types.Le)
    ]
    assert bounds and all(isinstance(b, int) and b + 1 <= LEDE_TEXT_KEEP for b in bounds)


def test_the_render_version_names_the_rules() -> None:
    """Stable within a run and across processes (no set order, no hash seed), and different
    when a rule changes."""
    assert text._render_version() == RENDER_VERSION
    allowed = set(text.ALLOWED_TAGS)
    text.ALLOWED_TAGS.add("iframe")
    try:
        assert text._render_version() != RENDER_VERSION
    finally:
        text.ALLOWED_TAGS.clear()
        text.ALLOWED_TAGS.update(allowed)


def test_carried_text_is_used_only_for_its_own_summary_content_and_rules() -> None:
    made = publishable("<p>One.</p>", "")
    assert publishable_for("<p>One.</p>", "", made) is made
    assert publishable_for("<p>Two.</p>", "", made).lede_text == "Two."
    assert publishable_for("<p>One.</p>", "<p>Body</p>", made).content_html == "<p>Body</p>"
    old = replace(made, render_version="0.old", lede_text="stale")
    assert publishable_for("<p>One.</p>", "", old).lede_text == "One."
    assert publishable_for("<p>One.</p>", "", None) == made


# Any XML-safe text: every plane, controls XML allows (tab, LF, CR), C1 controls, U+00A0,
# quotes, markup characters and entities.
_ANY_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(list("\r\n\t\xa0&<>\"'")),
    max_size=40,
).map(xml_safe)
_URLS = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Cc")), max_size=30),
).map(feeds.http_link)


@settings(max_examples=400, deadline=None)
@given(
    title=_ANY_TEXT,
    lede=_ANY_TEXT,
    link=_URLS | st.none(),
    tag=st.sampled_from([None, "en", "pt-BR", "zh-Hant-TW"]),
    via=_ANY_TEXT,
)
def test_digest_lines_are_written_as_the_sanitiser_gives_them_back(
    title: str, lede: str, link: str | None, tag: str | None, via: str
) -> None:
    """The daily digest's HTML skips the sanitiser: for any titles, ledes, links and source
    names, the sanitiser would not change a byte of it."""
    html = feeds.digest_html(title, lede, link, tag, via)
    assert sanitize_html(html) == html


@settings(max_examples=200, deadline=None)
@given(text_=_ANY_TEXT, link=_URLS | st.none(), lang=st.sampled_from(["en", "pt-BR", "ru"]))
def test_digest_more_lines_are_written_as_the_sanitiser_gives_them_back(
    text_: str, link: str | None, lang: str
) -> None:
    """A capped digest's "N more in Language" line skips the sanitiser too."""
    html = feeds.more_html(Phrase(text_, lang), link)
    assert sanitize_html(html) == html


# -- a world from the corpus, published both ways ------------------------------------------------


def _config(tmp: Path, lede_length: int) -> Config:
    path = tmp / f"feeds-{lede_length}.yaml"
    path.write_text(
        "site:\n  title: W\n  link: https://news.example.org/\n  base_url: http://127.0.0.1:8080/\n"
        f"  timezone: Europe/London\n  languages: [en, es, it, fr, ru, de]\n  lede_length: {lede_length}\n"
        "  frontpage_per_language: 1000\n"
        "feeds:\n  - url: https://corpus.example/feed\n    name: corpus\n    language: auto\n"
    )
    return load_config(path)


def _long_entries(base: StoredEntry) -> list[StoredEntry]:
    """Entries past what is stored of their text, title-less ones, content without summary."""
    sentence = "Una frase que termina aquí. "
    out = []
    for i, (summary, content, title) in enumerate(
        [
            (f"<p>{sentence * 600}</p>", "", "Long summary"),
            ("", f"<div>{'word ' * 5_000}</div>", ""),
            ("<p><img src='https://example.org/i.jpg'></p>", f"<p>{'語' * 12_000}</p>", ""),
            (f"<p>{'x' * 10_000}.</p>", "<p>Body</p>", "Exactly at the limit"),
        ]
    ):
        eid = f"long{i}"
        out.append(
            replace(base, id=eid, source_key=eid, fingerprint=eid, canonical_url=None, link=f"https://l.example/{i}",
                    title=title, summary=summary, content=content, translation_key=None, publishable=None)
        )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SQLiteStore, Path]]:
    tmp = tmp_path_factory.mktemp("world")
    cfg = _config(tmp, 700)
    store = SQLiteStore(tmp / "aggregator.db")
    for path in sorted((FIXTURES / "corpus").iterdir()):
        url = f"https://corpus.example/{path.name}"
        parsed = parse_feed(path.read_bytes(), {}, url)
        candidates, _ = normalise.prepare_feed(
            parsed, url, "auto", tuple(cfg.site.languages), cfg.site.zone, NOW
        )
        store.apply(dedupe.decide(candidates, store.lookup(url, candidates), path.stem, NOW, cfg.site.zone))
    [some] = store.latest("en", 1)
    store.apply(UpdatePlan(inserts=tuple(_long_entries(some))))
    try:
        yield store, tmp
    finally:
        store.close()


def _old_style(entry: StoredEntry) -> Publishable:
    """What publishing computed for every entry on every publish before this change: the content
    sanitised and the whole text extracted, nothing stored, nothing cut."""
    s, c = xml_safe(entry.summary or ""), xml_safe(entry.content or "")
    whole = html_to_text(s) or html_to_text(c)
    return Publishable(
        entry.summary, entry.content, xml_safe(sanitize_html(c) or sanitize_html(s)), whole, ""
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("lede_length", [700, 60])
def test_a_corpus_world_publishes_byte_identical_outputs_from_stored_text(
    world: tuple[SQLiteStore, Path], monkeypatch: pytest.MonkeyPatch, lede_length: int
) -> None:
    store, tmp = world
    cfg = _config(tmp, lede_length)
    stored, old = tmp / f"stored-{lede_length}", tmp / f"old-{lede_length}"
    assert all(e.publishable is not None for e in store.latest(None, 10_000))
    report = publishing.publish(store, cfg, stored, now=NOW)
    assert not report.failed and len(report.written) > 500
    with monkeypatch.context() as m:
        for module in (common, feeds):
            m.setattr(module, "publishable", _old_style)
        publishing.publish(store, cfg, old, now=NOW)
    a, b = _tree(stored), _tree(old)
    assert a.keys() == b.keys()
    assert [p for p in a if a[p] != b[p]] == []


def test_publishing_from_stored_text_runs_no_html_pass_per_entry(
    world: tuple[SQLiteStore, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, tmp = world

    def refuse(summary: str, content: str) -> Publishable:
        raise AssertionError("an entry's text was made at publish time")

    monkeypatch.setattr(text, "publishable", refuse)
    report = publishing.publish(store, _config(tmp, 700), tmp / "refused", now=NOW)
    assert not report.failed


def test_a_new_lede_length_changes_the_ledes_without_re_ingesting(world: tuple[SQLiteStore, Path]) -> None:
    store, tmp = world
    [long] = store.entries_by_id(["long0"])
    for limit in (60, 700, 10_000):
        page = publishing.frontpage(store, _config(tmp, limit).site, "all", long.day, now=NOW)
        body = pages.frontpage_text(page, _config(tmp, limit).site)
        want = make_lede(long.summary, long.content, limit)
        assert len(want) <= limit and f"\n{want}\n" in body


# -- ingest: made once, in normalise, carried to the store ----------------------------------------


def test_candidates_carry_their_text_made_safe_to_publish() -> None:
    body = (FIXTURES / "corpus" / "heise-developer.atom").read_bytes()
    parsed = parse_feed(body, {}, "https://corpus.example/h")
    candidates, _ = normalise.prepare_feed(parsed, "https://corpus.example/h", "de", ("de",), UTC_ZONE, NOW)
    assert candidates
    for c in candidates:
        assert c.publishable is not None
        assert c.publishable == publishable(c.summary, c.content)
        assert publishable_for(c.summary, c.content, c.publishable) is c.publishable


def test_the_store_writes_carried_text_without_making_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (FIXTURES / "corpus" / "heise-developer.atom").read_bytes()
    url = "https://corpus.example/h"
    candidates, _ = normalise.prepare_feed(parse_feed(body, {}, url), url, "de", ("de",), UTC_ZONE, NOW)
    store = SQLiteStore(tmp_path / "a.db")
    made, calls = text.publishable, []

    def counted(summary: str, content: str) -> Publishable:
        calls.append(summary)
        return made(summary, content)

    monkeypatch.setattr(text, "publishable", counted)
    plan = dedupe.decide(candidates, [], "heise", NOW, UTC_ZONE)
    store.apply(plan)
    assert calls == []  # nothing made again: normalise's text was written
    stored = store.entries_by_id([e.id for e in plan.inserts])
    assert len(stored) == len(candidates)
    for e in stored:
        assert e.publishable is not None and e.publishable == publishable(e.summary, e.content)
    # a correction: the feed's next poll brings new text for its first entry
    fixed = replace(candidates[0], summary="<p>Korrigiert.</p>", content_hash="changed")
    fixed = replace(fixed, publishable=made(fixed.summary, fixed.content))
    plan = dedupe.decide([fixed], store.lookup(url, [fixed]), "heise", NOW, UTC_ZONE)
    assert len(plan.updates) == 1
    store.apply(plan)
    assert calls == []
    [again] = store.entries_by_id([plan.updates[0].id])
    assert again.publishable is not None and again.publishable.lede_text == "Korrigiert."
    store.close()
