"""Relative URLs are resolved only where there are any (issue 15), and that changes nothing.

feedparser's relative-URI pass re-parses every HTML field of every entry. `parse_feed` skips
it when `has_relative_references` finds nothing it would change; these tests prove the result
equal to feedparser's own way (the pass always on) after normalisation: the same entries,
ids, links, titles, dates, enclosures, and the same HTML as published (sanitised, compared as
elements, attributes and text: the pass also sorts attributes, which no reader sees).
"""

from __future__ import annotations

import sys
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.models import NotAFeed, ParsedFeed
from aggregator.parse import has_relative_references, parse_feed
from aggregator.text import html_to_text, sanitize_html

CORPUS = Path("/work/shared/corpus")
BASE = "http://example.org/dir/feed.xml"
HEADERS = {"content-type": "application/xml"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[tuple[Any, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(("<", tag, tuple(sorted(attrs, key=lambda a: (a[0], a[1] or "")))))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.out.append((">", tag))

    def handle_data(self, data: str) -> None:
        if data.split():
            self.out.append(("text", " ".join(data.split())))


def published(html: str) -> list[tuple[Any, ...]]:
    """HTML as the outputs publish it (sanitised), as a sequence of elements with sorted
    attributes and folded text."""
    parser = _Elements()
    parser.feed(sanitize_html(html))
    parser.close()
    return parser.out


def normalised(feed: ParsedFeed) -> tuple[Any, ...]:
    entries = [
        (
            e.source_id,
            e.link,
            e.title,
            e.author,
            e.categories,
            e.published,
            e.published_zone,
            e.updated,
            e.enclosures,
            e.translations,
            e.language,
            e.date_only,
            published(e.summary),
            published(e.content),
            html_to_text(e.summary),
            html_to_text(e.content),
        )
        for e in feed.entries
    ]
    return feed.title, feed.link, feed.language, feed.format, feed.warning, entries


def both_ways(body: bytes) -> tuple[ParsedFeed, ParsedFeed] | None:
    try:
        always = parse_feed(body, HEADERS, BASE, resolve_relative=True)
    except NotAFeed:
        return None
    return always, parse_feed(body, HEADERS, BASE)


def _corpus() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".md", ".py"))


@pytest.mark.skipif(not CORPUS.exists(), reason=f"the shared corpus is not at {CORPUS}")
def test_every_corpus_feed_gives_the_same_entries_with_the_pass_skipped() -> None:
    files = _corpus()
    assert len(files) > 2000
    compared = skipped_pass = 0
    different = []
    for path in files:
        both = both_ways(path.read_bytes())
        if both is None:
            continue
        compared += 1
        always, chosen = both
        if not has_relative_references(path.read_bytes()):
            skipped_pass += 1
        if always != chosen and normalised(always) != normalised(chosen):
            different.append(str(path.relative_to(CORPUS)))
    assert different == []
    assert compared > 1900
    assert skipped_pass > 500  # the point: most documents skip the pass


@pytest.mark.skipif(not CORPUS.exists(), reason=f"the shared corpus is not at {CORPUS}")
def test_most_real_feeds_skip_the_pass() -> None:
    real = [p for p in _corpus() if "/real/" in str(p)]
    needs = [p.name for p in real if has_relative_references(p.read_bytes())]
    assert len(real) == 72 and len(needs) <= 36, needs
    # the relative ones among them are found: images and links of these feeds are relative
    for name in ("fcutrecht.xml", "craigslist-sfbay.rdf", "daringfireball.atom", "kc0011-forum.xml"):
        assert name in needs


def test_generated_world_gives_the_same_entries(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import world

    feeds = world.write(tmp_path, 15)
    skipped = 0
    for f in feeds:
        body = (tmp_path / f.path).read_bytes()
        both = both_ways(body)
        assert both is not None
        assert normalised(both[0]) == normalised(both[1]), f.path
        if f.relative:
            assert has_relative_references(body)
        skipped += not has_relative_references(body)
    assert skipped >= 10  # the four of five with absolute URLs only


# What the check must answer True for, each kind in the forms feeds write it: raw (XHTML,
# CDATA) and escaped (&lt;a href=&quot;...).
NEEDS_THE_PASS = [
    '<a href="/story/1">x</a>',
    "<a href='story/1'>x</a>",
    '<img src="//cdn.example.org/a.jpg">',
    '<a href="HTTP://example.org/">x</a>',  # feedparser drops an upper-case scheme
    '<a href=" https://example.org/">x</a>',  # and strips spaces
    '<a href="https://example.org/x?">x</a>',  # urljoin drops an empty query
    '<a href="javascript:alert(1)">x</a>',  # dropped by the pass
    '<a href="mailto:a@example.org">x</a>',
    "<a href=https://example.org/>x</a>",  # unquoted
    '<blockquote cite="/src">q</blockquote>',
    '<video poster="p.jpg" src="https://example.org/v.mp4"></video>',
    "<p>one</br>two</p>",
    "<p/>text",
    "a <> b",
    "<!DOCTYPE ~",
]


def _rss(description: str, escaped: bool) -> bytes:
    cdata = description.replace("]]>", "]]&gt;")
    body = escape(description, quote=False) if escaped else f"<![CDATA[{cdata}]]>"
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<link>https://example.org/</link><item><title>one</title><link>https://example.org/1</link>"
        f"<description>{body}</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize("escaped", [False, True], ids=["raw", "escaped"])
@pytest.mark.parametrize("html", NEEDS_THE_PASS)
def test_what_the_pass_would_change_is_found(html: str, escaped: bool) -> None:
    assert has_relative_references(_rss(html, escaped))


def test_entity_quoted_attributes_are_read() -> None:
    for quote in ("&quot;", "&#34;", "&#x22;", "&QUOT;"):
        rel = f"<description>&lt;a href={quote}/x{quote}&gt;y&lt;/a&gt;</description>".encode()
        absolute = (
            f"<description>&lt;a href={quote}https://e.org/x{quote}&gt;y&lt;/a&gt;</description>".encode()
        )
        assert has_relative_references(rel)
        assert not has_relative_references(absolute)


def test_absolute_links_only_skip_the_pass() -> None:
    html = (
        '<p>Read <a href="https://example.org/a?b=1&amp;c=2" title="x">this</a> and '
        "<img alt='' src='http://img.example.org/p.jpg'><br/><br></p>"
    )
    for escaped in (False, True):
        assert not has_relative_references(_rss(html, escaped))


_ATTRS = ["href", "src", "cite", "poster", "data", "action", "title", "class", "alt"]
_VALUES = st.one_of(
    st.sampled_from(["https://example.org/a", "http://e.org/b?c=d", "/rel", "rel/x", "//host/p", "#frag",
                     "https://e.org/x#", " https://e.org/", "HTTPS://E.ORG/", "mailto:x@e.org", ""]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12),
)  # fmt: skip
_TAGS = ["a", "img", "p", "blockquote", "video", "span", "br", "q"]


@st.composite
def fragments(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        tag = draw(st.sampled_from(_TAGS))
        attrs = draw(
            st.lists(st.tuples(st.sampled_from(_ATTRS), _VALUES), max_size=3, unique_by=lambda a: a[0])
        )
        quote = draw(st.sampled_from(['"', "'"]))
        rendered = "".join(f" {k}={quote}{escape(v, quote=True)}{quote}" for k, v in attrs)
        text = escape(draw(st.text(max_size=10)), quote=False)
        close = draw(st.sampled_from(["", f"</{tag}>", "/"]))
        parts.append(f"<{tag}{rendered}{'/' if close == '/' else ''}>{text}{close if close != '/' else ''}")
    return "".join(parts)


@settings(max_examples=150, deadline=None)
@given(fragments(), st.booleans())
def test_whenever_the_pass_is_skipped_the_result_is_the_same(html: str, escaped: bool) -> None:
    """The property itself, on generated HTML: attributes the pass resolves and others, every
    kind of value (absolute, relative, spaced, upper-case, empty, any text), void and other
    elements closed in every way, raw and escaped."""
    body = _rss(html, escaped)
    both = both_ways(body)
    assert both is not None
    always, chosen = both
    if not has_relative_references(body):
        assert normalised(always) == normalised(chosen)
