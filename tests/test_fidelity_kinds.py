"""What goes in comes out right (issue 12), tested by kind beyond each field case: every
format, field, zone and encoding the rule is about, through the real parse_feed and
normalise.prepare_feed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import language, normalise
from aggregator.models import Candidate, entry_day
from aggregator.parse import ZONE_ABBREVIATIONS, parse_feed, read_date
from aggregator.text import _SPACE, cut_lede, fold, html_to_text, make_lede
from aggregator.urls import strip_secrets
from tests.conftest import FIXTURES

CORPUS = FIXTURES / "corpus"
NOW = datetime(2024, 7, 10, 12, tzinfo=UTC)
SITE = ("en", "es", "it", "fr", "ru")
LONDON = ZoneInfo("Europe/London")


def prepare(
    body: bytes | str, ctype: str = "application/xml", configured: str = "auto", **headers: str
) -> list[Candidate]:
    data = body.encode("utf-8") if isinstance(body, str) else body
    feed = parse_feed(data, {"content-type": ctype, **headers}, "https://example.org/feed")
    candidates, _ = normalise.prepare_feed(feed, "https://example.org/feed", configured, SITE, LONDON, NOW)
    return candidates


def rss(item: str, channel: str = "") -> str:
    return f'<rss version="2.0"><channel><title>t</title>{channel}<item>{item}</item></channel></rss>'


def atom(entry: str, root: str = "") -> str:
    return f'<feed xmlns="http://www.w3.org/2005/Atom"{root}><title>t</title><entry>{entry}</entry></feed>'


def jsonfeed(item: dict[str, object]) -> str:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [item]})


# -- text and markup -------------------------------------------------------------------------

_PIECES = [
    "a",
    "b",
    " ",
    "X",
    "<",
    ">",
    "&",
    ";",
    "'",
    '"',
    "/",
    "=",
    "é",
    "<script>",
    "<svg>",
    "&amp;",
    "</b>",
]
_plain_titles = (
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12)
    .map(lambda parts: " ".join("".join(parts).split()))
    .filter(lambda t: any(c.isalpha() for c in t))
)


@settings(max_examples=60, deadline=None)
@given(_plain_titles)
def test_plain_text_titles_are_kept_as_written_in_every_format(title: str) -> None:
    """Atom type="text" (RFC 4287 3.1.1.1) and JSON Feed titles are text, whatever they hold."""
    link = "<link href='https://example.org/a'/>"
    [a] = prepare(atom(f'<id>x</id><title type="text">{escape(title)}</title>{link}'))
    [j] = prepare(
        jsonfeed({"id": "x", "title": title, "url": "https://example.org/a"}), "application/feed+json"
    )
    assert a.title == title and j.title == title


def test_rss_titles_with_literal_brackets_are_text_and_html_titles_lose_their_tags() -> None:
    [c] = prepare(rss("<title>List&lt;String&gt; in Java &amp; Kotlin</title><link>https://e.org/a</link>"))
    assert c.title == "List<String> in Java & Kotlin"
    [h] = prepare(atom('<id>x</id><title type="html">&lt;b&gt;Bold&lt;/b&gt; move</title>'))
    assert h.title == "Bold move"
    [x] = prepare(
        atom(
            '<id>x</id><title type="xhtml">'
            '<div xmlns="http://www.w3.org/1999/xhtml"><i>Ital</i> text</div></title>'
        )
    )
    assert x.title == "Ital text"


@pytest.mark.parametrize("element", ["content", "summary"])
def test_atom_text_constructs_stay_text_with_their_lines(element: str) -> None:
    [c] = prepare(
        atom(
            f'<id>x</id><title>T</title><{element} type="text">one &lt;two&gt;\nthree &amp; four</{element}>'
        )
    )
    html = c.content or c.summary
    assert html == "one &lt;two&gt;<br>three &amp; four"
    assert make_lede(c.summary, c.content, 600) == "one <two> three & four"


def test_json_feed_text_fields_are_escaped() -> None:
    [c] = prepare(
        jsonfeed({"id": "x", "title": "T", "summary": "a <b> & c", "content_text": "l1\nl2 <i>"}),
        "application/feed+json",
    )
    assert c.summary == "a &lt;b&gt; &amp; c" and c.content == "l1<br>l2 &lt;i&gt;"


@pytest.mark.parametrize("element", ["description", "content:encoded"])
def test_escaped_cdata_gives_its_text(element: str) -> None:
    ns = ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    body = rss(f"<title>T</title><{element}>&lt;![CDATA[Some &lt;b&gt;bold&lt;/b&gt; text.]]&gt;</{element}>")
    [c] = prepare(body.replace("<rss ", f"<rss{ns} "))
    assert make_lede(c.summary, c.content, 600) == "Some bold text."


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_titleless_entries_stay_titleless_and_empty_ones_are_skipped(fmt: str) -> None:
    if fmt == "rss":
        body, ctype = rss("<description>A note.</description>") + "", "application/xml"
        empty = rss("<title></title>")
    elif fmt == "atom":
        body, ctype = atom("<id>n</id><content>A note.</content>"), "application/xml"
        empty = atom("<title></title>")
    else:
        body, ctype = jsonfeed({"id": "n", "content_html": "A note."}), "application/feed+json"
        empty = jsonfeed({"id": "e"})
    [c] = prepare(body, ctype)
    assert c.title == "" and "A note." in c.summary + c.content
    feed = parse_feed(empty.encode(), {"content-type": ctype}, "https://example.org/feed")
    assert feed.entries == () and feed.warning and "no title, no link and no text" in feed.warning


# -- ledes ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcdefgh  .!?,")), max_size=900), st.integers(40, 700))
def test_ledes_stay_under_the_limit_and_open_the_text(text: str, limit: int) -> None:
    text = " ".join(text.split())
    lede = cut_lede(text, limit)
    grace = len(text) <= limit * 1.125
    assert len(lede) <= limit or (grace and lede == text)
    assert text.startswith(lede.removesuffix("…").rstrip(" ,;:."))


def test_a_whole_article_in_the_description_becomes_a_lede_cut_at_a_sentence() -> None:
    sentence = "El movimiento obrero se organiza en todo el país contra la reforma laboral. "
    article = f"<p>{sentence * 60}</p>"
    lede = make_lede(article, "", 600)
    assert len(lede) <= 600 and lede.endswith("laboral.") and lede.count("laboral.") == 7
    words = make_lede("<p>" + "palabra " * 200 + "</p>", "", 600)
    assert len(words) <= 600 and words.endswith("palabra…")


# -- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("abbr", "minutes"), sorted(ZONE_ABBREVIATIONS.items()))
def test_every_zone_abbreviation_gives_its_offset(abbr: str, minutes: int) -> None:
    reading = read_date(f"Wed, 10 Jul 2024 00:30:00 {abbr}")
    assert reading is not None
    when, zone, date_only, warning = reading
    assert when == datetime(2024, 7, 10, 0, 30, tzinfo=UTC) - timedelta(minutes=minutes)
    sign = "-" if minutes < 0 else "+"
    assert zone == f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}" and not date_only and not warning


def test_zone_abbreviations_come_through_rss_and_atom() -> None:
    [r] = prepare(rss("<title>T</title><pubDate>Wed, 10 Jul 2024 09:00:00 JST</pubDate>"))
    assert r.published == datetime(2024, 7, 10, 0, 0, tzinfo=UTC) and r.published_zone == "+09:00"
    [a] = prepare(atom("<id>x</id><title>T</title><updated>Wed, 10 Jul 2024 00:30:00 CEST</updated>"))
    assert a.published == datetime(2024, 7, 9, 22, 30, tzinfo=UTC) and a.published_zone == "+02:00"


def test_a_known_zone_is_never_recorded_as_utc_when_unknown() -> None:
    [c] = prepare(rss("<title>T</title><pubDate>Wed, 10 Jul 2024 09:00:00 XYZT</pubDate>"))
    assert c.published_zone is None


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (rss("<title>T</title><pubDate>Wed, 27 Nov 2013 20:17:55</pubDate>"), "application/xml"),
        (atom("<id>x</id><title>T</title><updated>2013-11-27T20:17:55</updated>"), "application/xml"),
        (jsonfeed({"id": "x", "title": "T", "date_published": "2013-11-27T20:17:55"}), "application/json"),
    ],
)
def test_a_date_without_a_zone_is_read_as_utc_with_a_warning(body: str, ctype: str) -> None:
    feed = parse_feed(body.encode(), {"content-type": ctype}, "https://example.org/feed")
    assert feed.entries[0].published == datetime(2013, 11, 27, 20, 17, 55, tzinfo=UTC)
    assert feed.warning and "without a time zone read as UTC" in feed.warning


def test_zoneless_dates_of_a_real_feed_keep_their_days() -> None:
    feed = parse_feed((CORPUS / "maliki-iso8859-1.xml").read_bytes(), {}, "http://www.maliki.com/rss")
    assert feed.entries[0].published == datetime(2013, 11, 27, 20, 17, 55, tzinfo=UTC)
    assert all(e.published and e.published.year == 2013 for e in feed.entries[:5])


@pytest.mark.parametrize(
    "zone", ["Pacific/Kiritimati", "America/Los_Angeles", "Europe/London", "Asia/Tokyo", "Pacific/Pago_Pago"]
)
@pytest.mark.parametrize("fmt", ["rss-dc", "atom", "json"])
def test_date_only_entries_belong_to_their_day_in_every_zone(zone: str, fmt: str) -> None:
    if fmt == "rss-dc":
        body = rss("<title>T</title><dc:date>2024-05-01</dc:date>").replace(
            "<rss ", '<rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        )
        ctype = "application/xml"
    elif fmt == "atom":
        body, ctype = atom("<id>x</id><title>T</title><published>2024-05-01</published>"), "application/xml"
    else:
        body, ctype = jsonfeed({"id": "x", "title": "T", "date_published": "2024-05-01"}), "application/json"
    feed = parse_feed(body.encode(), {"content-type": ctype}, "https://example.org/feed")
    [c] = normalise.prepare(feed, "f", "en", SITE, ZoneInfo(zone), datetime(2024, 5, 3, tzinfo=UTC))
    assert c.date_only and c.published_zone is None
    assert entry_day(c.published, c.date_only, ZoneInfo(zone)) == date(2024, 5, 1)


def test_an_entry_dated_up_to_a_day_ahead_keeps_its_date() -> None:
    ahead = (NOW + timedelta(hours=20)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    [c] = prepare(rss(f"<title>T</title><pubDate>{ahead}</pubDate>"))
    assert c.published == NOW + timedelta(hours=20)


# -- links ----------------------------------------------------------------------------------


def test_an_entry_whose_only_alternate_is_a_pdf_keeps_it() -> None:
    feed = parse_feed((CORPUS / "pappacoda-blog.atom").read_bytes(), {}, "https://andrea.pappacoda.it/blog/")
    thesis = next(e for e in feed.entries if "tesi" in (e.source_id or ""))
    assert thesis.link == "https://andrea.pappacoda.it/blog/tesi.pdf"


def test_a_non_url_guid_never_becomes_a_link() -> None:
    [c] = prepare(rss("<title>T</title><guid>12345</guid>"))
    assert c.link is None and c.source_key == "12345"
    [u] = prepare(rss("<title>T</title><guid>https://example.org/p/1</guid>"))
    assert u.link == "https://example.org/p/1"  # a permalink guid is the link


def test_an_entrys_link_is_its_own_alternate_not_a_translations() -> None:
    links = (
        '<link rel="alternate" href="https://e.org/en/a"/>'
        '<link rel="alternate" hreflang="es" href="https://e.org/es/a"/>'
        '<link rel="alternate" hreflang="it" href="https://e.org/it/a"/>'
    )
    [c] = prepare(atom(f"<id>x</id><title>T</title>{links}"))
    assert c.link == "https://e.org/en/a"
    assert dict(c.translations) == {"es": "https://e.org/es/a", "it": "https://e.org/it/a"}


@pytest.mark.parametrize(
    "href",
    ["javascript:alert(1)", "data:text/html,x", "ftp://e.org/a", "mailto:a@e.org", "file:///etc/passwd"],
)
@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_non_web_links_never_become_an_entrys_link(href: str, fmt: str) -> None:
    if fmt == "rss":
        [c] = prepare(rss(f"<title>T</title><link>{escape(href)}</link>"))
    elif fmt == "atom":
        [c] = prepare(atom(f'<id>x</id><title>T</title><link href="{escape(href)}"/>'))
    else:
        [c] = prepare(
            jsonfeed({"id": "x", "title": "T", "url": href, "attachments": [{"url": href}]}),
            "application/json",
        )
        assert c.enclosures == ()
    assert c.link is None


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:pw@example.org/a", "https://example.org/a"),
        ("https://example.org/a?token=s3&id=1", "https://example.org/a?id=1"),
        ("https://example.org/a?id=1&key=abc", "https://example.org/a?id=1"),
        ("https://example.org/a?API_KEY=abc", "https://example.org/a"),
        ("https://example.org/a?id=1", "https://example.org/a?id=1"),
        ("https://u@[::1]:8080/a", "https://[::1]:8080/a"),
    ],
)
def test_credentials_in_urls_are_never_stored(url: str, clean: str) -> None:
    assert strip_secrets(url) == clean
    [c] = prepare(jsonfeed({"id": "x", "title": "T", "url": url}), "application/json")
    assert c.link == clean


def test_json_feed_relative_urls_resolve_against_the_item() -> None:
    item = {
        "id": "x",
        "title": "T",
        "url": "/posts/1",
        "content_html": '<img src="img/a.png"><a href="/b">b</a><a href="https://other.org/c">c</a>',
        "attachments": [{"url": "/audio/1.mp3", "mime_type": "audio/mpeg"}],
    }
    [c] = prepare(jsonfeed(item), "application/json")
    assert c.link == "https://example.org/posts/1"
    assert 'src="https://example.org/posts/img/a.png"' in c.content
    assert 'href="https://example.org/b"' in c.content and 'href="https://other.org/c"' in c.content
    assert c.enclosures[0].url == "https://example.org/audio/1.mp3"


# -- languages ------------------------------------------------------------------------------

FRENCH = (
    "Le gouvernement a présenté mardi une réforme des retraites qui repousse l'âge légal de départ, "
    "malgré l'opposition des syndicats et de la majorité des Français."
)


def test_a_root_xml_lang_is_document_evidence_checked_against_the_text() -> None:
    [c] = prepare(
        atom(f"<id>x</id><title>Réforme des retraites</title><summary>{FRENCH}</summary>", ' xml:lang="en"')
    )
    assert (c.language, c.language_evidence) == ("fr", "identified")
    [en] = prepare(
        atom(
            "<id>x</id><title>Pension reform</title><summary>The government presented a reform.</summary>",
            ' xml:lang="en"',
        )
    )
    assert (en.language, en.language_evidence) == ("en", "document")
    [own] = prepare(atom('<id>x</id><title xml:lang="es">Hola</title>', ' xml:lang="en"'))
    assert (own.language, own.language_evidence) == ("es", "entry")


def test_http_content_language_is_document_evidence() -> None:
    body = rss(f"<title>Réforme des retraites</title><description>{FRENCH}</description>")
    [c] = prepare(body, **{"content-language": "en"})
    assert (c.language, c.language_evidence) == ("fr", "identified")
    [d] = prepare(
        rss(
            "<title>Pension reform</title><description>The government presented a reform today.</description>"
        ),
        **{"content-language": "en"},
    )
    assert (d.language, d.language_evidence) == ("en", "document")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("eng", ("en", "en")),
        ("iw", ("he", "he")),
        ("in", ("id", "id")),
        ("en_us", ("en", "en-US")),
        ("fre", ("fr", "fr")),
        ("und", None),
        ("xx-bogus-", None),
    ],
)
def test_language_codes_are_canonicalised(tag: str, expected: tuple[str, str] | None) -> None:
    assert language.normalise(tag) == expected


def test_garbled_text_never_overrules_a_configured_language() -> None:
    feed = parse_feed((CORPUS / "yandexnews-moscow-mojibake.xml").read_bytes(), {}, "https://news.yandex.ru/")
    candidates, _ = normalise.prepare_feed(feed, "y", "ru", SITE, LONDON, NOW)
    assert {c.language for c in candidates} == {"ru"}


# -- encodings ------------------------------------------------------------------------------


def test_western_european_feeds_are_not_read_as_central_european() -> None:
    fr = parse_feed(
        (CORPUS / "lecerclepsy-iso8859-1.xml").read_bytes(), {"content-type": "application/xml"}, "http://h/"
    )
    assert "très complexe" in fr.entries[1].title and "à" in fr.entries[2].title
    assert fr.warning and "declares no encoding; read as windows-1252" in fr.warning
    pt = parse_feed(
        (CORPUS / "uol-noticias.xml").read_bytes(), {"content-type": "application/xml"}, "http://h/"
    )
    assert "simulações" in pt.entries[0].title


def test_central_european_text_is_still_detected() -> None:
    text = "Zażółć gęślą jaźń. Źródło łączności między Łodzią a Poznaniem. " * 5
    body = rss(f"<title>Wiadomości</title><description>{text}</description>", "<language>pl</language>")
    feed = parse_feed(body.encode("cp1250"), {"content-type": "application/xml; charset=utf-8"}, "http://h/")
    assert "Zażółć" in feed.entries[0].summary


def test_mojibake_in_the_source_is_repaired_with_a_warning() -> None:
    feed = parse_feed((CORPUS / "yandexnews-moscow-mojibake.xml").read_bytes(), {}, "https://news.yandex.ru/")
    assert feed.title == "Яндекс.Новости: Москва"
    assert "В Москве" in feed.entries[0].title or "Москв" in feed.entries[0].title
    assert (
        feed.warning and "mojibake in the source" in feed.warning and "repaired in 15 entries" in feed.warning
    )
    es = parse_feed(jsonfeed({"id": "x", "title": "Nuevo rÃ©cord de visitas"}).encode(), {}, "http://h/")
    assert es.entries[0].title == "Nuevo récord de visitas"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir() if "mojibake" not in p.name))
def test_no_clean_fixture_is_changed_by_the_repair(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from aggregator import parse

    body = (CORPUS / name).read_bytes()
    ctype = "application/feed+json" if name.endswith(".json") else "application/xml"
    repaired = parse_feed(body, {"content-type": ctype}, "http://h/")
    monkeypatch.setattr(parse, "repair_mojibake", lambda text: text)
    raw = parse_feed(body, {"content-type": ctype}, "http://h/")
    assert [html_to_text(e.title) for e in repaired.entries] == [html_to_text(e.title) for e in raw.entries]


def test_when_every_alternate_names_another_language_the_first_is_taken() -> None:
    links = (
        '<link rel="alternate" hreflang="it" href="https://e.org/it/a"/>'
        '<link rel="alternate" hreflang="es" href="https://e.org/es/a"/>'
    )
    [c] = prepare(atom(f"<id>x</id><title>Titolo</title>{links}"))
    assert c.link == "https://e.org/it/a"  # document order, not feedparser's last


def test_json_feed_takes_http_content_language_as_document_evidence() -> None:
    item = {"id": "x", "title": "Réforme des retraites", "content_text": FRENCH}
    [c] = prepare(jsonfeed(item), "application/feed+json", **{"content-language": "en"})
    assert (c.language, c.language_evidence) == ("fr", "identified")
    [d] = prepare(
        jsonfeed({"id": "y", "title": "Pension reform announced today"}),
        "application/json",
        **{"content-language": "en"},
    )
    assert (d.language, d.language_evidence) == ("en", "document")


JSON_TEXT_FIELDS = ("id", "title", "summary", "content_text", "content_html", "url", "language")


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(JSON_TEXT_FIELDS),
    text=st.text(alphabet=st.characters(codec=None), max_size=30),
    bad=st.sampled_from(["\ud800", "\udfff", "\x0b", "\x02", "\ufffe", "\uffff"]),
)
def test_any_code_point_in_any_json_feed_string_costs_that_code_point_not_the_item(
    field: str, text: str, bad: str
) -> None:
    """JSON Feed strings are made XML-safe as the document is read, whatever the field: an item
    with a code point XML cannot carry is read (cases/04, audit of issue 11), never skipped."""
    item: dict[str, object] = {"id": "x", "title": "A title that stays", "content_text": "Body."}
    item[field] = f"{text}{bad}{text}"
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [item]})
    feed = parse_feed(
        body.encode(), {"content-type": "application/feed+json"}, "https://example.org/feed.json"
    )
    [entry] = feed.entries
    for value in (entry.source_id, entry.title, entry.summary, entry.content, entry.link, entry.language):
        assert value is None or bad not in value, (field, value)


def test_fold_splits_on_exactly_the_whitespace_of_its_rule() -> None:
    """text.fold uses str.split() for speed; the published rule is text._SPACE (re's \\s):
    the same code points, every one of them checked."""
    split_on = {c for c in range(sys.maxunicode + 1) if len(f"a{chr(c)}b".split()) == 2}
    matched = {c for c in range(sys.maxunicode + 1) if _SPACE.fullmatch(chr(c))}
    assert split_on == matched and 0x20 in matched and 0xA0 in matched


_SPACES = list("ab \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000\u200b")


@given(st.text(alphabet=st.sampled_from(_SPACES), max_size=60) | st.text())
def test_fold_is_the_rule_on_any_text(text: str) -> None:
    assert fold(text) == _SPACE.sub(" ", text).strip()  # what fold was before (issue 15)
