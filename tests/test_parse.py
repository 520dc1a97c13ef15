"""Parsing real captured feeds: every format in use, every encoding, broken-but-usable input."""

from __future__ import annotations

import pytest

from aggregator.models import NotAFeed
from aggregator.parse import parse_feed
from tests.conftest import FIXTURES

CORPUS = FIXTURES / "corpus"

CASES = [
    # file, format, entries, declared language, start of first title
    ("bbcurdu-pakistan.xml", "rss20", 26, "ur", "امریکی عسکری امداد"),
    ("dival-personal-1item.xml", "rss091u", 1, "es-ES", "Oferta de Empleo Público"),
    ("feedparser-atom03-sanitize.xml", "atom03", 1, None, ""),
    ("feedparser-example.json", "json1", 2, None, "post 2"),
    ("heise-developer.atom", "atom10", 15, None, "Java-Anwendungsserver"),
    ("heise-newsticker.rdf", "rss090", 60, None, "OLED-TVs: Vorsichtsmaßnahmen"),
    ("ibash-windows1251.xml", "rss20", 50, "ru", "Цитата #17703"),
    ("kc0011-forum.xml", "rss20", 20, "zh-cn", "建国35周年纪念"),
    ("lecerclepsy-iso8859-1.xml", "rss20", 9, None, "Perturbateurs endocriniens"),  # + 1 empty item
    ("liberal-gr-1item.xml", "rss20", 1, "el", "«Πορτραίτα καραντίνας»"),
    ("osm-polska.xml", "rss20", 8, "pl-PL", "Cyfrowy Kanon Krajoznawczy"),
    ("zeit-homepage-rss091.xml", "rss091u", 76, "de-de", "Wo guckst du?"),
]


@pytest.mark.parametrize(("name", "fmt", "count", "language", "title"), CASES)
def test_real_feeds(name: str, fmt: str, count: int, language: str | None, title: str) -> None:
    ctype = "application/feed+json" if name.endswith(".json") else "application/xml"
    feed = parse_feed((CORPUS / name).read_bytes(), {"content-type": ctype}, f"http://127.0.0.1/{name}")
    assert (feed.format, len(feed.entries), feed.language) == (fmt, count, language)
    assert feed.entries[0].title.startswith(title)
    for e in feed.entries:
        assert e.link is None or e.link.startswith(("http://", "https://"))


def test_broken_but_usable_feed_keeps_entries_with_a_warning() -> None:
    feed = parse_feed((CORPUS / "osm-polska.xml").read_bytes(), {}, "http://127.0.0.1/osm")
    assert len(feed.entries) == 8 and feed.warning and "not well-formed" in feed.warning


def test_http_charset_is_honoured() -> None:
    xml = '<rss version="2.0"><channel><title>t</title><item><title>Борьба</title></item></channel></rss>'
    body = xml.encode("windows-1251")
    feed = parse_feed(body, {"content-type": "application/rss+xml; charset=windows-1251"}, "http://h/")
    assert feed.entries[0].title == "Борьба"


def test_json_feed_fields() -> None:
    feed = parse_feed((CORPUS / "feedparser-example.json").read_bytes(), {}, "https://example.org/feed.json")
    second, first = feed.entries
    assert second.source_id == "2" and second.link == "https://example.org/second-item"
    assert second.categories == ("test", "JSON") and second.enclosures[0].length == 12000000
    assert second.content == "This is a second item."
    assert first.author == "you" and "<script>" in first.content  # stored raw; sanitised on output


def test_relative_links_resolve_against_the_feed_url() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>a</title><link>/a.htm</link></item></channel></rss>"
    )
    feed = parse_feed(body, {}, "https://example.org/feeds/main.xml")
    assert feed.entries[0].link == "https://example.org/a.htm"


def test_entry_level_language_and_translations() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>t</title><id>x</id>
    <entry xml:lang="it"><id>1</id><title>Ciao</title>
      <link rel="alternate" href="https://e.org/it/1"/>
      <link rel="alternate" hreflang="es" href="https://e.org/es/1"/></entry></feed>"""
    [e] = parse_feed(body, {}, "https://e.org/feed").entries
    assert e.language == "it" and e.translations == (("es", "https://e.org/es/1"),)


@pytest.mark.parametrize(
    ("body", "ctype", "words"),
    [
        (b"", "application/xml", "empty body"),
        (b"   \n", "application/xml", "empty body"),
        (b'{"hello": "world"}', "application/json", "JSON Feed"),
        (b"{not json", "application/json", "does not parse"),
        (bytes(range(256)) * 4, "application/xml", "not a feed"),
    ],
)
def test_not_a_feed(body: bytes, ctype: str, words: str) -> None:
    with pytest.raises(NotAFeed, match=words):
        parse_feed(body, {"content-type": ctype}, "http://h/")


def test_html_page_offers_its_feed_links() -> None:
    page = b"""<!DOCTYPE html><html><head><title>Site</title>
    <link rel="alternate" type="application/rss+xml" href="/rss.xml" title="RSS">
    <link rel="alternate" type="application/atom+xml" href="https://e.org/atom.xml">
    </head><body><p>Hello</p></body></html>"""
    with pytest.raises(NotAFeed) as info:
        parse_feed(page, {"content-type": "text/html"}, "https://e.org/news/")
    assert info.value.alternates == ("https://e.org/rss.xml", "https://e.org/atom.xml")
    assert "web page, not a feed" in str(info.value)


def test_doctype_internal_subset_is_never_expanded() -> None:
    body = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><item><title>x &c; &secret;</title></item></channel></rss>"""
    feed = parse_feed(body, {}, "http://h/")
    title = feed.entries[0].title
    assert "aaaaaaaaaa" not in title and "root:" not in title and len(title) < 50
