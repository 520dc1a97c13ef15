"""feedparser-rs is used only where it is proven to give what feedparser gives (issue 15).

`parse_feed` takes the fast path (`parse_fast.read`) per document and falls back to
feedparser when the document is outside the proven conditions. These tests run both ways over
every document of the shared corpus (real feeds and feedparser's own test feeds), over a
generated world and over generated documents, and assert the parsed feeds equal (every entry's
id, link, title, summary, content, dates, author, enclosures, categories, language, and the
feed's title, link, language, format and warning), and the candidates after normalisation
equal too; and that the fast path is taken where it should be (it is the point).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import normalise
from aggregator.models import NotAFeed, ParsedFeed
from aggregator.parse import parse_feed
from aggregator.parse_fast import NotProven, read

CORPUS = Path("/work/shared/corpus")
BASE = "http://example.org/dir/feed.xml"
HEADERS = {"content-type": "application/xml"}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class _Taken(logging.Handler):
    """Counts the documents `parse` gave to feedparser-rs (its debug log says which)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.fast = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.fast += record.getMessage().endswith(": parsed by feedparser-rs")


@pytest.fixture
def taken() -> Iterator[_Taken]:
    handler = _Taken()
    logger = logging.getLogger("aggregator.parse")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def both_ways(body: bytes) -> tuple[ParsedFeed | str, ParsedFeed | str]:
    """(feedparser only, fast path where proven); "not a feed" in place of a ParsedFeed."""
    out: list[ParsedFeed | str] = []
    for fast in (False, True):
        try:
            out.append(parse_feed(body, HEADERS, BASE, fast=fast))
        except NotAFeed as e:
            out.append(f"not a feed: {e}")
    return out[0], out[1]


def candidates(feed: ParsedFeed) -> list[normalise.Candidate]:
    return normalise.prepare(
        feed, BASE, "auto", ("en", "es", "it", "fr", "ru"), ZoneInfo("Europe/London"), NOW
    )


def _corpus(part: str) -> list[Path]:
    root = CORPUS / part
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in (".md", ".py"))


@pytest.mark.skipif(not CORPUS.exists(), reason=f"the shared corpus is not at {CORPUS}")
@pytest.mark.parametrize(
    ("part", "documents", "least_fast"), [("real", 72, 10), ("feedparser-tests", 2100, 300)]
)
def test_every_corpus_document_parses_the_same_either_way(
    taken: _Taken, part: str, documents: int, least_fast: int
) -> None:
    files = _corpus(part)
    assert len(files) >= documents
    different = []
    entries = 0
    for path in files:
        slow, fast = both_ways(path.read_bytes())
        if slow != fast:
            different.append(str(path.relative_to(CORPUS)))
        elif isinstance(fast, ParsedFeed):
            entries += len(fast.entries)
            if part == "real":
                assert candidates(slow) == candidates(fast)
    assert different == []
    assert entries > 500
    assert taken.fast >= least_fast  # the fast path is taken, not only proven harmless


def test_the_generated_world_parses_the_same_and_mostly_fast(tmp_path: Path, taken: _Taken) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import world

    feeds = world.write(tmp_path, 30)
    for f in feeds:
        slow, fast = both_ways((tmp_path / f.path).read_bytes())
        assert isinstance(slow, ParsedFeed) and isinstance(fast, ParsedFeed)
        assert slow == fast, f.path
        assert candidates(slow) == candidates(fast), f.path
    # every feed takes the fast path but the Atom ones with an xml:base (relative URLs are
    # resolved as feedparser resolves them)
    assert taken.fast == sum(not (f.relative and f.format == "atom10") for f in feeds)


# -- generated documents: every field varies ------------------------------------------------

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn")).filter(
        lambda c: c in "\t\n" or ord(c) >= 0x20
    ),
    max_size=40,
)
_WORDS = st.sampled_from(
    [
        "Ünïcödé",
        "a & b",
        "List<String>",
        "x &amp; y",
        "<b>bold</b>",
        "FranÃ§oise",
        "caf\x80",
        "Москва",
        "  ",
        "",
    ]
)
_URL = st.builds(
    lambda host, path, query: f"https://{host}.example/{path}{query}",
    st.sampled_from(["news", "www.site", "a-b"]),
    st.sampled_from(["", "story/1", "a b", "ü", "x;y"]),
    st.sampled_from(["", "?a=1&b=2", "?utm_source=rss&x=%20", "#frag"]),
)
_RELATIVE = st.sampled_from(
    ["/rel/1", "story?a=1&b=2", "../up", "http:///x.example/a/../b", "HTTP://x.example/"]
)
_HTML = st.sampled_from(
    [
        "<p>Hello <a href='https://x.example/'>x</a></p>",
        '<p>A <a href="/a?b=1&amp;c=2">link</a> and <img src="img/1.jpg" alt="i"></p>',
        "<p>Line one\r\nline two\r\n<br/>three</p>",
        '<a href=" https://x.example/sp ">spaces</a><a href="HTTP://X.example/">up</a>',
        "<blockquote cite='q.html'>quote</blockquote></br><p/>",
    ]
)
_DATE = st.sampled_from(
    [
        "Fri, 30 Dec 2016 07:00:00 +0100",
        "Fri, 30 Dec 2016 07:00:00 GMT",
        "Fri, 30 Dec 2016 07:00:00 CEST",
        "Fri, 30 Dec 2016 07:00:00",
        "2016-12-30T07:00:00Z",
        "2016-12-30T07:00:00+02:00",
        "2016-12-30",
        "yesterday",
        "",
    ]
)
_ENTRY = st.fixed_dictionaries(
    {
        "title": st.one_of(_TEXT, _WORDS),
        "link": st.one_of(st.none(), _URL, _RELATIVE),
        "id": st.one_of(st.none(), _URL, _RELATIVE, st.sampled_from(["tag:example.org,2024:1", "12345"])),
        "permalink": st.sampled_from([None, "true", "false", "True"]),
        "summary": st.one_of(_TEXT, _WORDS, _HTML),
        "kind": st.sampled_from(["", ' type="html"', ' type="text"']),
        "published": _DATE,
        "updated": st.one_of(st.none(), _DATE),
        "author": st.one_of(st.none(), _WORDS),
        "categories": st.lists(st.one_of(_WORDS, _TEXT), max_size=3),
        "enclosure": st.one_of(st.none(), _URL),
        "cdata": st.booleans(),
        # elements neither parser reads into our fields, and an RSS item's atom:link
        "extras": st.lists(
            st.sampled_from(
                [
                    '<media:thumbnail url="https://img.example/t.jpg?w=1&amp;h=2" width="100"/>',
                    "<slash:comments>12</slash:comments>",
                    "<wfw:commentRss>https://news.example/c?a=1&amp;b=2</wfw:commentRss>",
                    "<feedburner:origLink>https://orig.example/story</feedburner:origLink>",
                    "<georss:point>45.5 -73.6</georss:point>",
                    # read alike by both: a Dublin Core subject is a category, an RSS source
                    # names where the item came from
                    "<dc:subject>Politics &amp; Law</dc:subject>",
                    "<dc:subject>Ünïcödé</dc:subject>",
                    '<source url="https://src.example/feed?a=1&amp;b=2">The Source</source>',
                    # elements feedparser has no handler for, of no namespace it knows
                    "<company>ACME &amp; Co</company>",
                    "<byline>By <![CDATA[Someone]]></byline>",
                    "<bigimage>https://img.example/b.jpg</bigimage>",
                    "<yandex:full-text>The whole text</yandex:full-text>",
                    "<x:empty/>",
                    # ... and some it has, or that hold elements: refused, never misread
                    "<image><title>Image title</title><url>https://img.example/i.jpg</url></image>",
                    "<url>https://img.example/u.jpg</url>",
                    "<dc:title>Dublin title</dc:title>",
                    "<fullitem>&lt;p&gt;Full&lt;/p&gt;</fullitem>",
                    "<comments>See <b>this</b></comments>",
                ]
            ),
            max_size=3,
        ),
        "atom_link": st.one_of(st.none(), _URL),
    }
)
_NAMESPACES = (
    'xmlns:media="http://search.yahoo.com/mrss/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
    'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
    'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0" '
    'xmlns:georss="http://www.georss.org/georss" xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:yandex="http://news.yandex.ru" xmlns:x="urn:example:x" xmlns:dc="http://purl.org/dc/elements/1.1/"'
)


def _rss(entries: list[dict[str, object]], language: str) -> bytes:
    items = []
    for e in entries:
        parts = [f"<title>{escape(str(e['title']))}</title>"]
        if e["link"]:
            parts.append(f"<link>{escape(str(e['link']))}</link>")
        if e["id"]:
            permalink = f" isPermaLink='{e['permalink']}'" if e["permalink"] else ""
            parts.append(f"<guid{permalink}>{escape(str(e['id']))}</guid>")
        summary = str(e["summary"])
        if e["cdata"] and "]]>" not in summary:
            parts.append(f"<description><![CDATA[{summary}]]></description>")
        else:
            parts.append(f"<description>{escape(summary)}</description>")
        if e["published"]:
            parts.append(f"<pubDate>{e['published']}</pubDate>")
        if e["updated"]:
            parts.append(f"<dc:date>{e['updated']}</dc:date>")
        if e["author"]:
            parts.append(f"<dc:creator>{escape(str(e['author']))}</dc:creator>")
        parts += [f"<category>{escape(str(c))}</category>" for c in e["categories"]]  # type: ignore[attr-defined]
        if e["enclosure"]:
            parts.append(f'<enclosure url="{escape(str(e["enclosure"]))}" type="audio/MPEG" length="12"/>')
        if e["atom_link"]:
            parts.append(f'<atom:link rel="alternate" href="{escape(str(e["atom_link"]))}"/>')
        parts += e["extras"]  # type: ignore[arg-type]
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {_NAMESPACES}>'
        "<channel><title>T &amp; U</title>"
        f"<link>https://site.example/</link><language>{language}</language>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def _atom(entries: list[dict[str, object]], language: str) -> bytes:
    items = []
    for e in entries:
        parts = [f"<title>{escape(str(e['title']))}</title>"]
        if e["link"]:
            parts.append(f'<link rel="alternate" type="text/HTML" href="{escape(str(e["link"]))}"/>')
        if e["id"]:
            parts.append(f"<id>{escape(str(e['id']))}</id>")
        kind = e["kind"]
        parts.append(f"<summary{kind}>{escape(str(e['summary']))}</summary>")
        if e["published"]:
            parts.append(f"<published>{e['published']}</published>")
        if e["updated"]:
            parts.append(f"<updated>{e['updated']}</updated>")
        if e["author"]:
            parts.append(f"<author><name>{escape(str(e['author']))}</name></author>")
        parts += [f'<category term="{escape(str(c))}"/>' for c in e["categories"]]  # type: ignore[attr-defined]
        if e["enclosure"]:
            parts.append(f'<link rel="enclosure" type="audio/mpeg" href="{escape(str(e["enclosure"]))}"/>')
        parts += e["extras"]  # type: ignore[arg-type]
        items.append("<entry>" + "".join(parts) + "</entry>")
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" {_NAMESPACES} '
        f'xml:lang="{language}"><title>T</title><link href="https://site.example/"/>'
        "<id>https://site.example/</id>" + "".join(items) + "</feed>"
    ).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(_ENTRY, min_size=1, max_size=4),
    atom=st.booleans(),
    language=st.sampled_from(["en", "fr", "ru-RU"]),
)
def test_generated_documents_parse_the_same_either_way(
    entries: list[dict[str, object]], atom: bool, language: str
) -> None:
    body = (_atom if atom else _rss)(entries, language)
    slow, fast = both_ways(body)
    assert slow == fast


def test_documents_outside_the_conditions_go_to_feedparser(taken: _Taken) -> None:
    relative = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>a</title><link>/a.htm</link></item></channel></rss>"
    )
    unknown_element = relative.replace(b"<link>/a.htm</link>", b"<itunes:summary>s</itunes:summary>").replace(
        b"<rss ", b'<rss xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
    )
    based = relative.replace(b"<channel>", b'<channel xml:base="https://example.org/sub/">')
    for body in (unknown_element, based):
        with pytest.raises(NotProven):
            read(body, body.lower(), BASE, resolve_html=False)
        parse_feed(body, HEADERS, BASE)
    assert taken.fast == 0
    # an HTTP Content-Language is feedparser's default xml:lang: feedparser reads it
    feed = parse_feed(relative, {**HEADERS, "content-language": "fr"}, BASE)
    assert taken.fast == 0 and feed.language == "fr"
    # a relative link is resolved as feedparser resolves it
    feed = parse_feed(relative, HEADERS, "https://example.org/feeds/x.xml")
    assert taken.fast == 1 and feed.entries[0].link == "https://example.org/a.htm"
    assert parse_feed(based, HEADERS, BASE).entries[0].link == "https://example.org/a.htm"


def test_a_bad_item_on_the_fast_path_costs_that_item(taken: _Taken) -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>good</title><link>https://example.org/1</link></item>"
        b"<item></item>"
        b"</channel></rss>"
    )
    feed = parse_feed(body, HEADERS, BASE)
    assert taken.fast == 1
    assert [e.title for e in feed.entries] == ["good"]
    assert feed.warning and "1 entry skipped" in feed.warning


def test_without_the_fast_path_feedparser_reads_everything(
    taken: _Taken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When feedparser-rs or feedparser's internals it relies on are missing (a newer
    feedparser), every document is read by feedparser: nothing fails."""
    from aggregator import parse_fast

    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>one</title><link>https://example.org/1</link></item></channel></rss>"
    )
    fast = parse_feed(body, HEADERS, BASE)
    assert taken.fast == 1
    monkeypatch.setattr(parse_fast, "UNAVAILABLE", "ImportError: No module named 'feedparser_rs'")
    with pytest.raises(NotProven, match="unavailable"):
        read(body, body.lower(), BASE, resolve_html=False)
    assert parse_feed(body, HEADERS, BASE) == fast
    assert taken.fast == 1


def test_a_fault_in_the_fast_path_costs_the_fast_path_not_the_feed(
    taken: _Taken, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aggregator import parse_fast

    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>one</title><link>https://example.org/1</link></item>"
        b"<item><title>two</title><link>https://example.org/2</link></item></channel></rss>"
    )
    expected = parse_feed(body, HEADERS, BASE, fast=False)

    def broken(self: object, e: object, span: bytes) -> dict[str, object]:
        raise RuntimeError("a bug in the conversion")

    monkeypatch.setattr(parse_fast._Document, "entry", broken)
    assert parse_feed(body, HEADERS, BASE) == expected
    assert taken.fast == 0
    assert "feedparser-rs path failed, parsed by feedparser: RuntimeError" in caplog.text
