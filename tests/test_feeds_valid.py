"""Every feed we write is valid for every reader, whatever is stored.

- Property tests (hypothesis): stored entries with any field empty, absent, huge or holding any
  code point (controls, lone surrogates, U+FFFE), non-http links and odd enclosures go through
  every renderer (Atom, RSS, JSON Feed, daily digests, day archives, and the front pages):
  nothing raises, the XML parses, and the Atom is still valid against RFC 4287's schema.
- Validators: RFC 4287 RELAX NG (tests/fixtures/schemas/atom.rng, from the RFC's Appendix B)
  plus the faults the W3C Feed Validator reports that a schema cannot see; RSS 2.0's required
  elements and RFC 822 dates; JSON Feed 1.1's required fields and types; feedparser without bozo.
- Field cases 13 (Atom enclosures) and 17 (title-less notes) with their right values.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator import render
from aggregator.config import make_site
from aggregator.models import Enclosure, Source, StoredEntry
from aggregator.parse import parse_feed
from aggregator.render import FrontPage, Section, feeds
from aggregator.text import xml_safe


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Left-out entries are logged with tracebacks; thousands of generated ones would swamp."""
    caplog.set_level(logging.CRITICAL, logger="aggregator")


SCHEMAS = Path(__file__).parent / "fixtures" / "schemas"
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SITE = make_site(title="T", languages=["en", "es", "it", "fr", "ru"], timezone="Europe/London")
T = datetime(2023, 1, 17, 9, tzinfo=UTC)
_RNG = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
PLAUSIBLE = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def entry(**kw: Any) -> StoredEntry:
    base: dict[str, Any] = dict(
        id="e1", feed_url="https://src.example/feed", source_key="k", canonical_url=None, fingerprint="fp",
        link="https://example.org/a", title="Title", summary="<p>Lede &amp; more</p>", content="",
        author=None, categories=(), enclosures=(), published=T, updated=None, first_seen=T,
        language="en", language_tag="en-GB", language_evidence="document", day=date(2023, 1, 17),
        content_hash="h",
        sources=(Source("https://src.example/feed", "Feed", "k", "https://example.org/a", T),),
    )  # fmt: skip
    base.update(kw)
    return StoredEntry(**base)


# -- validators ---------------------------------------------------------------------------------
def check_atom(data: bytes, plausible_dates: bool = True) -> etree._Element:
    """RFC 4287: the RELAX NG schema, then what the W3C Feed Validator reports beyond it."""
    root = etree.fromstring(data)
    assert _RNG.validate(root), _RNG.error_log
    feed_author = root.find(f"{ATOM}author") is not None
    dates = [root.findtext(f"{ATOM}updated")]
    for e in root.iter(f"{ATOM}entry"):
        where = e.findtext(f"{ATOM}id")
        alternates = [
            (x.get("type"), x.get("hreflang"))
            for x in e.findall(f"{ATOM}link")
            if x.get("rel", "alternate") == "alternate"
        ]
        assert len(alternates) == len(set(alternates)), f"duplicate alternate links in {where}"
        assert e.find(f"{ATOM}author") is not None or feed_author, f"no author for {where}"
        content = e.find(f"{ATOM}content")
        assert content is not None or alternates, f"neither content nor alternate in {where}"
        if content is not None:
            assert (content.text or "").strip() or len(content), f"blank content in {where}"
        for enc in e.findall(f"{ATOM}link[@rel='enclosure']"):
            assert enc.get("type") and enc.get("href"), f"enclosure without type in {where}"
            assert enc.get("length") is None or enc.get("length", "").isdigit()
        source = e.find(f"{ATOM}source")
        if source is not None:
            assert source.findtext(f"{ATOM}id"), f"source without id in {where}"
            assert source.findtext(f"{ATOM}updated"), f"source without updated in {where}"
            dates.append(source.findtext(f"{ATOM}updated"))
        dates += [e.findtext(f"{ATOM}updated"), e.findtext(f"{ATOM}published")]
    for d in filter(None, dates):
        when = datetime.fromisoformat(d)
        assert when.tzinfo is not None
        if plausible_dates:
            assert PLAUSIBLE[0] <= when <= PLAUSIBLE[1], f"implausible date {d}"
    updated = [datetime.fromisoformat(x.findtext(f"{ATOM}updated") or "") for x in root.iter(f"{ATOM}entry")]
    newest = max(updated, default=None)
    if newest is not None:
        assert datetime.fromisoformat(root.findtext(f"{ATOM}updated") or "") == newest
    return root


_RFC822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} [+-]\d{4}\Z"
)


def check_rss(data: bytes) -> etree._Element:
    """RSS 2.0: channel title, link, description; each item a title or a description; dates RFC 822."""
    root = etree.fromstring(data)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    for required in ("title", "link", "description"):
        assert (channel.findtext(required) or "").strip(), f"channel without {required}"
    for d in [channel.findtext("lastBuildDate"), *(i.findtext("pubDate") for i in channel.iter("item"))]:
        if d:
            assert _RFC822.match(d), d
            parsedate_to_datetime(d)
    for item in channel.iter("item"):
        assert item.findtext("title") or item.findtext("description"), "item without title or description"
        enc = item.find("enclosure")
        if enc is not None:
            assert enc.get("url") and enc.get("type") and (enc.get("length") or "").isdigit()
        src = item.find("source")
        if src is not None:
            assert src.get("url")
    return root


def check_json_feed(text: str) -> dict[str, Any]:
    """JSON Feed 1.1 (jsonfeed.org/version/1.1): required fields and their types."""
    text.encode("utf-8")  # no lone surrogate can reach the file
    doc = json.loads(text)
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str)
    for key in ("home_page_url", "feed_url", "description", "icon", "favicon", "language"):
        assert key not in doc or isinstance(doc[key], str)
    for a in doc.get("authors", []):
        assert isinstance(a, dict) and isinstance(a.get("name"), str)
    assert isinstance(doc["items"], list)
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item.get("content_html"), str) or isinstance(item.get("content_text"), str)
        assert item.get("content_html", "x").strip() or item.get("content_text", "x").strip()
        for key in ("url", "title", "summary", "language"):
            assert key not in item or isinstance(item[key], str)
        for key in ("date_published", "date_modified"):
            if key in item:
                assert datetime.fromisoformat(item[key]).tzinfo is not None  # RFC 3339
        assert all(isinstance(t, str) for t in item.get("tags", []))
        for a in item.get("authors", []):
            assert isinstance(a.get("name"), str)
        for att in item.get("attachments", []):
            assert isinstance(att["url"], str) and isinstance(att["mime_type"], str)
            assert "size_in_bytes" not in att or isinstance(att["size_in_bytes"], int)
    return doc  # type: ignore[no-any-return]


def check_feedparser(data: bytes | str) -> Any:
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


# -- property tests: any stored entry, every renderer ---------------------------------------------
NASTY = "\x00\x01\x08\x0b\x0c\x1f\x7f\ud800\udbff\udc00\udfff\ufffe\uffff\u2028\u202e\u0301 <>&\"'a]]>"
text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.text(st.sampled_from(NASTY), max_size=20),
    st.text(st.characters(min_codepoint=0xD700, max_codepoint=0xE100, exclude_categories=()), max_size=10),
    st.sampled_from(["", " ", "<p></p>", "<script>x</script>", "<img src='x'>", "a" * 5000]),
)
links = st.one_of(
    st.none(),
    text,
    st.sampled_from([
        "https://example.org/a", "http://example.org/a b", "javascript:alert(1)", "data:text/html,x",
        "ftp://example.org/x", "mailto:a@b.c", "http://[", "https://", "//example.org/x", "/relative",
        "https://example.org/\x00x", "https://ex\ud800ample.org/",
    ]),
)  # fmt: skip
zones = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))
instants = st.one_of(
    st.datetimes(timezones=zones),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.sampled_from([datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
                     datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))]),
)  # fmt: skip
enclosures = st.builds(
    Enclosure,
    url=st.one_of(links.filter(lambda x: x is not None), st.just("https://cdn.example/a.mp3")),
    type=st.one_of(st.none(), text, st.sampled_from(["audio/mpeg", "image/jpeg", "bogus", "a/b c"])),
    length=st.one_of(st.none(), st.integers(-10, 10**30)),
)
sources = st.builds(Source, feed_url=text, feed_name=text, source_key=text, link=links, first_seen=instants)
stored = st.builds(
    StoredEntry,
    id=text.filter(bool), feed_url=text, source_key=text, canonical_url=links, fingerprint=text,
    link=links, title=text, summary=text, content=text, author=st.one_of(st.none(), text),
    categories=st.lists(text, max_size=3).map(tuple), enclosures=st.lists(enclosures, max_size=3).map(tuple),
    published=instants, updated=st.one_of(st.none(), instants), first_seen=instants,
    language=st.one_of(st.none(), st.sampled_from(["en", "es", "ur", "xx"]), text),
    language_tag=st.one_of(st.none(), st.sampled_from(["en-GB", "pt_BR", "zh-Hant-TW"]), text),
    language_evidence=text, day=st.dates(), content_hash=text,
    sources=st.lists(sources, max_size=2).map(tuple), date_only=st.booleans(),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stored, min_size=1, max_size=4), st.sampled_from(["all", "en"]))
def test_no_stored_entry_makes_any_renderer_raise(entries: list[StoredEntry], language: str) -> None:
    atom = render.atom_feed(entries, SITE, language, prev_archive="http://127.0.0.1:8080/archive/x.atom")
    check_atom(atom, plausible_dates=False)
    check_rss(render.rss_feed(entries, SITE, language))
    check_json_feed(render.json_feed(entries, SITE, language))
    day = entries[0].day
    digest = feeds.digest_item(day, entries, SITE, language)
    items = [digest] if digest else []
    check_atom(feeds.atom_document(feeds.daily_feed_meta(SITE, language), items), plausible_dates=False)
    check_rss(feeds.rss_document(feeds.daily_feed_meta(SITE, language), items))
    check_json_feed(feeds.json_document(feeds.daily_feed_meta(SITE, language), items))
    archive = feeds.archive_feed_meta(SITE, language, day, None, (day, 1), complete=True)
    check_atom(
        feeds.atom_document(archive, feeds.entry_items(entries, SITE, language)), plausible_dates=False
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stored, min_size=1, max_size=4), st.sampled_from(["atom", "rss", "json"]))
def test_entries_made_once_give_every_document_the_bytes_it_has_alone(
    entries: list[StoredEntry], fmt: str
) -> None:
    """A publish makes each item's Atom entry / RSS item / JSON Feed item once
    (`feeds.Elements`) and copies it into every document carrying the item: its language's day
    archive, the combined one, the entry feeds. Whatever the items and the order of documents,
    each document has the bytes it has when made alone, only feeds of several languages say
    each entry's language, each item was made once, and JSON Feed documents are exactly what
    `json.dumps` writes for them."""
    items = feeds.entry_items(entries, SITE, "all")
    day = entries[0].day
    documents = [
        (feeds.archive_feed_meta(SITE, "all", day, None, None, complete=True), items),
        (feeds.archive_feed_meta(SITE, "en", day, (day, 1), None, complete=False), items[::-1]),
        (feeds.entry_feed_meta(SITE, "all", "http://127.0.0.1:8080/archive/x.atom"), items[:2]),
        (feeds.entry_feed_meta(SITE, "en"), items[1:]),
    ]
    shared = feeds.Elements()
    for meta, chosen in documents:
        expected_langs = [it.language if meta.language is None else None for it in chosen]
        if fmt == "json":
            text = feeds.json_document(meta, chosen, shared)
            assert text == feeds.json_document(meta, chosen)
            doc = json.loads(text)
            assert text == json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
            assert [i.get("language") for i in doc["items"]] == expected_langs
            continue
        write = feeds.atom_document if fmt == "atom" else feeds.rss_document
        data = write(meta, chosen, shared)
        assert data == write(meta, chosen)
        if fmt == "atom":
            langs = [e.get(XML_LANG) for e in etree.fromstring(data).iter(f"{ATOM}entry")]
            assert langs == expected_langs
    if fmt != "json":
        assert len(shared) == len(set(items))


def _whole_tree_atom(meta: feeds.FeedMeta, items: list[feeds.FeedItem]) -> bytes:
    """An Atom document the way lxml writes a whole tree: feedgen's feed with each item's
    entry element in it (what publishing wrote before entries were spliced in as bytes)."""
    mixed = meta.language is None
    elements = [(feeds._entry_element(it, "atom"), it.language if mixed else None) for it in items]
    fg = feeds._generator(meta, elements, "atom")
    newest = max((it.updated for it in items), default=feeds.EMPTY_FEED_UPDATED)
    fg.updated(newest)
    return bytes(fg.atom_str(pretty=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stored, max_size=4), st.sampled_from(["all", "en"]), st.booleans())
def test_atom_entries_spliced_as_bytes_are_what_lxml_writes_for_the_whole_tree(
    entries: list[StoredEntry], language: str, archive: bool
) -> None:
    """Each Atom entry is serialised once and its bytes put into every document carrying it:
    for any items (text of any script, markup, line breaks, languages), in an archive (its
    `fh` namespace) or not, the document is byte for byte what lxml writes for the tree."""
    items = feeds.entry_items(entries, SITE, "all")
    day = date(2023, 1, 17)
    meta = (
        feeds.archive_feed_meta(SITE, language, day, (day, 1), None, complete=True)
        if archive
        else feeds.entry_feed_meta(SITE, language)
    )
    assert feeds.atom_document(meta, items) == _whole_tree_atom(meta, items)


def test_an_item_feedgen_cannot_make_costs_that_item_in_every_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = feeds.entry_items(realistic(), SITE, "all")
    real = feeds._entry_element

    def failing(item: feeds.FeedItem, fmt: str) -> Any:
        if item.id.endswith(":b"):
            raise ValueError("injected")
        return real(item, fmt)

    monkeypatch.setattr(feeds, "_entry_element", failing)
    shared = feeds.Elements()
    for language in ("all", "en"):
        meta = feeds.entry_feed_meta(SITE, language)
        root = check_atom(feeds.atom_document(meta, items, shared))
        kept = [it.id for it in items if not it.id.endswith(":b")]
        assert [e.findtext(f"{ATOM}id") for e in root.iter(f"{ATOM}entry")] == kept
        rss = check_rss(feeds.rss_document(meta, items, shared))
        assert [i.findtext("guid") for i in rss.iter("item")] == kept


def as_stored(e: StoredEntry) -> StoredEntry:
    """What the store can hold: text XML-safe (`text.xml_safe` on the way in) and dates it
    accepts (1990 to a day ahead, else first-seen time)."""

    def fix(d: datetime) -> datetime:
        try:
            ok = PLAUSIBLE[0] <= d.astimezone(UTC) <= PLAUSIBLE[1]
        except OverflowError:
            ok = False
        return d if ok else T

    def clean(v: Any) -> Any:
        return xml_safe(v) if isinstance(v, str) else v

    changes = {f.name: clean(getattr(e, f.name)) for f in fields(e)}
    changes |= {
        "categories": tuple(map(clean, e.categories)),
        "published": fix(e.published),
        "day": fix(e.published).astimezone(SITE.zone).date(),  # the store derives the day
        "updated": e.updated and fix(e.updated),
        "first_seen": fix(e.first_seen),
        "enclosures": tuple(Enclosure(clean(x.url), clean(x.type), x.length) for x in e.enclosures),
        "sources": tuple(
            replace(s, feed_url=clean(s.feed_url), feed_name=clean(s.feed_name), link=clean(s.link),
                    first_seen=fix(s.first_seen))
            for s in e.sources
        ),
    }  # fmt: skip
    return replace(e, **changes)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stored.map(as_stored), min_size=1, max_size=4), st.sampled_from(["all", "en"]))
def test_no_stored_entry_makes_a_front_page_raise(entries: list[StoredEntry], language: str) -> None:
    """The page renderers (render/pages.py) with any entry the store can hold."""
    page = FrontPage(entries[0].day, language, (Section(entries[0].language, tuple(entries)),))
    render.frontpage_text(page, SITE).encode()
    render.frontpage_html(page, SITE).encode()
    json.loads(render.frontpage_json(page))
    check_atom(render.atom_feed(entries, SITE, language))  # stored dates are plausible dates


@settings(max_examples=60, deadline=None)
@given(st.lists(stored, min_size=1, max_size=3))
def test_every_item_is_kept_unless_it_has_nothing_to_show(entries: list[StoredEntry]) -> None:
    """An entry is left out only when it has no title, no text, no link and no enclosure."""
    items = feeds.entry_items(entries, SITE, "all")
    root = etree.fromstring(render.atom_feed(entries, SITE, "all"))
    assert len(root.findall(f"{ATOM}entry")) == len(items)
    for e in entries:
        if feeds.http_link(e.link) or ((e.title or "").strip(" \t\n\r") and xml_safe(e.title).strip()):
            assert any(i.id == xml_safe(render.atom_id(e, SITE)) for i in items)


# -- realistic feeds: valid for the W3C validator's rules, readable by feedparser ----------------
def realistic() -> list[StoredEntry]:
    src = Source("https://src.example/feed.xml", "Source feed", "k", "https://src.example/a", T)
    return [
        entry(id="a", author="Jane Doe", categories=("Politics", "Europe"),
              enclosures=(Enclosure("https://cdn.example/a.jpg", "image/jpeg", 1234),), sources=(src,)),
        entry(id="b", language="es", language_tag="es", title="Título", summary="", content="<p>Texto</p>",
              published=T - timedelta(hours=3), updated=T + timedelta(hours=1), author="j@example.org (J)"),
        entry(id="c", title="", summary="<p>A note with no title.</p>", link=None, sources=()),
        entry(id="d", title="Dated only", date_only=True, day=date(2023, 1, 16), published=T - timedelta(1)),
        entry(id="e", language="ur", language_tag="ur", title="پاکستان", link="javascript:alert(1)"),
    ]  # fmt: skip


@pytest.mark.parametrize("language", ["all", "en"])
def test_entry_feeds_are_valid(language: str) -> None:
    entries = [e for e in realistic() if language == "all" or e.language == language]
    assert entries
    root = check_atom(render.atom_feed(entries, SITE, language))
    check_feedparser(render.atom_feed(entries, SITE, language))
    check_rss(render.rss_feed(entries, SITE, language))
    check_feedparser(render.rss_feed(entries, SITE, language))
    check_json_feed(render.json_feed(entries, SITE, language))
    parsed = parse_feed(render.json_feed(entries, SITE, language).encode(), {}, "http://127.0.0.1:8080/")
    assert parsed.format.startswith("json") and len(parsed.entries) == len(
        entries
    )  # feedparser 6.0 reads no JSON
    assert root.find(f"{ATOM}author/{ATOM}name").text == "T"  # every entry has an author
    assert root.find(f"{ATOM}generator").text == "aggregator"


def test_atom_entries_carry_source_language_and_one_alternate() -> None:
    root = check_atom(render.atom_feed(realistic(), SITE, "all"))
    a = root.find(f"{ATOM}entry")
    assert a.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-GB"
    links = a.findall(f"{ATOM}link")
    assert [x.get("rel", "alternate") for x in links].count("alternate") == 1
    assert a.find(f"{ATOM}author/{ATOM}name").text == "Jane Doe"
    source = a.find(f"{ATOM}source")
    assert source.findtext(f"{ATOM}id") == "https://src.example/feed.xml"
    assert source.findtext(f"{ATOM}title") == "Source feed"
    assert source.find(f"{ATOM}link").get("href") == "https://src.example/feed.xml"
    assert source.findtext(f"{ATOM}updated")
    # a javascript: link is dropped: the entry keeps its content, no alternate
    urdu = root.findall(f"{ATOM}entry")[-1]
    assert not [x for x in urdu.findall(f"{ATOM}link") if x.get("rel", "alternate") == "alternate"]
    assert urdu.findtext(f"{ATOM}content")


def test_feed_updated_is_the_newest_entry_and_stable_when_empty() -> None:
    root = check_atom(render.atom_feed(realistic(), SITE, "all"))
    assert root.findtext(f"{ATOM}updated") == (T + timedelta(hours=1)).isoformat()
    empty = check_atom(render.atom_feed([], SITE, "all"))
    assert empty.findtext(f"{ATOM}updated") == "2023-01-01T00:00:00+00:00"
    assert render.atom_feed([], SITE, "all") == render.atom_feed([], SITE, "all")


def test_rss_authors_sources_and_dates() -> None:
    rss = check_rss(render.rss_feed(realistic(), SITE, "all"))
    items = rss.findall("channel/item")
    dc = "{http://purl.org/dc/elements/1.1/}creator"
    assert items[0].findtext(dc) == "Jane Doe"  # name-only: dc:creator (RSS <author> needs an email)
    assert items[0].find("author") is None
    assert items[1].findtext("author") == "j@example.org (J)"
    assert items[0].find("source").get("url") == "https://src.example/feed.xml"
    assert items[0].findtext("pubDate") == "Tue, 17 Jan 2023 09:00:00 +0000"
    assert rss.findtext("channel/link") == "http://127.0.0.1:8080/"


def test_json_feed_authors_sources_and_titleless() -> None:
    doc = check_json_feed(render.json_feed(realistic(), SITE, "all"))
    assert doc["authors"] == [{"name": "T"}]
    a, _, note, dated, _ = doc["items"]
    assert a["authors"] == [{"name": "Jane Doe"}]
    assert a["_aggregator"]["sources"][0]["feed_url"] == "https://src.example/feed.xml"
    assert a["attachments"] == [
        {"url": "https://cdn.example/a.jpg", "mime_type": "image/jpeg", "size_in_bytes": 1234}
    ]
    assert "title" not in note and note["content_html"]
    assert dated["date_published"] == "2023-01-16T00:00:00+00:00"  # date only: 00:00 UTC, no invented hour


def test_entry_summaries_are_the_lede_at_site_length() -> None:
    site = make_site(title="T", languages=["en"], lede_length=60)
    e = entry(summary="", content="<p>" + "word " * 100 + "</p>")
    root = etree.fromstring(render.atom_feed([e], site, "en"))
    summary = root.findtext(f"{ATOM}entry/{ATOM}summary")
    assert summary == render.lede(e, 60) and len(summary) <= 61


def test_date_only_entries_get_the_date_at_midnight_utc_everywhere() -> None:
    e = entry(date_only=True, day=date(2024, 5, 1), published=datetime(2024, 4, 30, 23, tzinfo=UTC))
    root = etree.fromstring(render.atom_feed([e], SITE, "en"))
    assert root.findtext(f"{ATOM}entry/{ATOM}published") == "2024-05-01T00:00:00+00:00"
    rss = etree.fromstring(render.rss_feed([e], SITE, "en"))
    assert rss.findtext("channel/item/pubDate") == "Wed, 01 May 2024 00:00:00 +0000"


# -- field cases ------------------------------------------------------------------------------------
def test_case_13_atom_enclosures_are_enclosure_links_with_type_and_length() -> None:
    podcast = entry(
        id="p",
        title="Episode 88: caching and the thundering herd",
        link="https://podcast.example.fm/88",
        enclosures=(Enclosure("https://cdn.example.fm/audio/88.mp3", "audio/mpeg", 48211763),),
    )
    photos = entry(
        id="h", title="Harbour at low tide, in three pictures", link="https://photos.example.org/harbour",
        enclosures=(Enclosure("https://photos.example.org/img/harbour-1.jpg", "image/jpeg", 512000),
                    Enclosure("https://photos.example.org/img/harbour-2.jpg", "image/jpeg", 498000)),
    )  # fmt: skip
    atom = render.atom_feed([podcast, photos], SITE, "all")
    root = check_atom(atom)
    first, second = root.findall(f"{ATOM}entry")
    assert [(x.get("rel"), x.get("type"), x.get("href")) for x in first.findall(f"{ATOM}link")] == [
        ("alternate", "text/html", "https://podcast.example.fm/88"),
        ("enclosure", "audio/mpeg", "https://cdn.example.fm/audio/88.mp3"),
    ]
    enc = first.find(f"{ATOM}link[@rel='enclosure']")
    assert (enc.get("type"), enc.get("length")) == ("audio/mpeg", "48211763")
    photo_links = second.findall(f"{ATOM}link[@rel='enclosure']")
    assert [(x.get("href"), x.get("type"), x.get("length")) for x in photo_links] == [
        ("https://photos.example.org/img/harbour-1.jpg", "image/jpeg", "512000"),
        ("https://photos.example.org/img/harbour-2.jpg", "image/jpeg", "498000"),
    ]
    parsed = check_feedparser(atom)
    assert parsed.entries[0].link == "https://podcast.example.fm/88"
    assert parsed.entries[0].enclosures[0].href == "https://cdn.example.fm/audio/88.mp3"
    # RSS: one enclosure per item, the first; JSON Feed: all of them
    rss = check_rss(render.rss_feed([podcast, photos], SITE, "all"))
    assert rss.findall("channel/item")[1].find("enclosure").get("url").endswith("harbour-1.jpg")
    doc = check_json_feed(render.json_feed([podcast, photos], SITE, "all"))
    assert len(doc["items"][1]["attachments"]) == 2


def test_case_17_titleless_notes_stay_titleless_in_rss_and_json() -> None:
    text_note = entry(
        id="n1", title="", link="https://notes.example.blog/2024/03/05/081500.html",
        summary="<p>Finished re-reading the first chapter of the field guide this morning. The drawings "
        "of moss on the third page are still the best thing in it.</p>",
    )  # fmt: skip
    photo_note = entry(
        id="n2",
        title="",
        link="https://notes.example.blog/2024/03/05/121000.html",
        summary='<p><img src="https://notes.example.blog/uploads/2024/heron.jpg" width="600"></p>',
    )
    notes = [text_note, photo_note]
    rss = check_rss(render.rss_feed(notes, SITE, "all"))
    assert [i.find("title") for i in rss.findall("channel/item")] == [None, None]
    assert "heron.jpg" in rss.findall("channel/item")[1].findtext("description")
    doc = check_json_feed(render.json_feed(notes, SITE, "all"))
    assert ["title" in i for i in doc["items"]] == [False, False]
    root = check_atom(render.atom_feed(notes, SITE, "all"))
    titles = [e.findtext(f"{ATOM}title") for e in root.findall(f"{ATOM}entry")]
    assert titles[0].startswith("Finished re-reading the first chapter") and titles[0].endswith("…")
    assert titles[1] == ""  # nothing to derive a title from: an empty title keeps it a note
    assert "(untitled)" not in render.rss_feed(notes, SITE, "all").decode()


def test_case_04_control_characters_never_stop_the_feeds() -> None:
    e = entry(
        title="Terminal colours\x08 explained", content="<p>Locations\u0002 of every bus stop\u000b</p>"
    )
    root = check_atom(render.atom_feed([e], SITE, "en"))
    assert root.findtext(f"{ATOM}entry/{ATOM}title") == "Terminal colours explained"
    check_rss(render.rss_feed([e], SITE, "en"))
    check_json_feed(render.json_feed([e], SITE, "en"))


def test_rss_item_without_link_from_the_corpus_is_published() -> None:
    """`dival-personal-1item.xml`: valid RSS 2.0 with a title and description but no <link>."""
    body = (Path(__file__).parent / "fixtures" / "corpus" / "dival-personal-1item.xml").read_bytes()
    parsed = parse_feed(body, {"content-type": "application/rss+xml"}, "https://dival.example/feed")
    p = parsed.entries[0]
    e = entry(
        title=p.title, link=p.link, summary=p.summary, content=p.content, language="es", language_tag="es"
    )
    assert not feeds.http_link(e.link)
    root = check_atom(render.atom_feed([e], SITE, "es"))
    assert root.findtext(f"{ATOM}entry/{ATOM}content")
    check_rss(render.rss_feed([e], SITE, "es"))
    check_json_feed(render.json_feed([e], SITE, "es"))


def test_archive_and_digest_feeds_are_valid_and_linked() -> None:
    d1, d2, d3 = date(2023, 1, 15), date(2023, 1, 16), date(2023, 1, 17)
    meta = feeds.archive_feed_meta(SITE, "en", d2, (d1, 1), (d3, 1), complete=True)
    root = check_atom(feeds.atom_document(meta, feeds.entry_items(realistic(), SITE, "en")))
    rels = {x.get("rel"): x.get("href") for x in root.findall(f"{ATOM}link")}
    assert rels["prev-archive"] == "http://127.0.0.1:8080/archive/2023/01/15/en.atom"
    assert rels["next-archive"] == "http://127.0.0.1:8080/archive/2023/01/17/en.atom"
    assert rels["current"] == "http://127.0.0.1:8080/feeds/en.atom"
    assert rels["self"] == "http://127.0.0.1:8080/archive/2023/01/16/en.atom"
    assert root.find("{http://purl.org/syndication/history/1.0}archive") is not None
    doc = check_json_feed(feeds.json_document(meta, []))
    assert doc["feed_url"] == "http://127.0.0.1:8080/archive/2023/01/16/en.feed.json"
    assert doc["_aggregator"]["prev_archive"] == "http://127.0.0.1:8080/archive/2023/01/15/en.feed.json"
    item = feeds.digest_item(d3, realistic(), SITE, "all")
    assert item is not None and item.id == "tag:127.0.0.1,2023:daily:all:2023-01-17"
    assert item.title == "Tuesday, 17 January 2023"
    daily = feeds.daily_feed_meta(SITE, "all")
    check_atom(feeds.atom_document(daily, [item]))
    check_rss(feeds.rss_document(daily, [item]))
    check_feedparser(feeds.rss_document(daily, [item]))
    check_json_feed(feeds.json_document(daily, [item]))


def test_icon_and_logo_when_configured() -> None:
    site = make_site(
        title="T", languages=["en"], icon="https://example.org/icon.png", logo="https://example.org/logo.png"
    )
    root = check_atom(render.atom_feed(realistic()[:1], site, "en"))
    assert root.findtext(f"{ATOM}icon") == "https://example.org/icon.png"
    assert root.findtext(f"{ATOM}logo") == "https://example.org/logo.png"
    rss = check_rss(render.rss_feed(realistic()[:1], site, "en"))
    assert rss.findtext("channel/image/url") == "https://example.org/logo.png"
    check_feedparser(render.rss_feed(realistic()[:1], site, "en"))
    doc = check_json_feed(render.json_feed(realistic()[:1], site, "en"))
    assert (doc["icon"], doc["favicon"]) == ("https://example.org/logo.png", "https://example.org/icon.png")
    plain = check_atom(render.atom_feed(realistic()[:1], SITE, "en"))
    assert plain.find(f"{ATOM}icon") is None and plain.find(f"{ATOM}logo") is None
