"""Rendering is a pure function of stored entries: safe HTML, localised dates, stable bytes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import render
from aggregator.config import make_site
from aggregator.models import Source, StoredEntry
from aggregator.render import FrontPage, Section, common, feeds
from aggregator.text import xml_safe

SITE = make_site(title="T", languages=["en", "es", "it", "fr", "ru"], timezone="Europe/London")
T = datetime(2023, 1, 17, 9, tzinfo=UTC)

DANGEROUS = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<iframe src="https://evil.example/"></iframe>',
    '<div style="width: expression(alert(1))">x</div>',
    "<svg onload=alert(1)></svg>",
    '<form action="https://evil.example/"><input name="p"></form>',
    '<object data="x.swf"></object>',
]
SAFE = [
    '<a href="https://example.org/" rel="noopener noreferrer nofollow">link</a>',
    '<img src="https://example.org/a.png" alt="a">',
    "<ul><li>one</li></ul>",
    "<em>e</em>",
    "<strong>s</strong>",
    "<blockquote>q</blockquote>",
]


def entry(**kw: object) -> StoredEntry:
    base: dict[str, object] = dict(
        id="e1", feed_url="F", source_key="k", canonical_url=None, fingerprint="fp",
        link="https://example.org/a", title="Title", summary="<p>Lede &amp; more</p>", content="",
        author=None, categories=(), enclosures=(), published=T, updated=None, first_seen=T,
        language="en", language_tag="en-GB", language_evidence="document", day=date(2023, 1, 17),
        content_hash="h", sources=(Source("F", "Feed", "k", "https://example.org/a", T),),
    )  # fmt: skip
    base.update(kw)
    return StoredEntry(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "Tuesday, 17 January 2023"),
    ("all", "Tuesday, 17 January 2023"),
    ("es", "martes, 17 de enero de 2023"),
    ("it", "martedì 17 gennaio 2023"),
    ("fr", "mardi 17 janvier 2023"),
    ("ru", "вторник, 17 января 2023\u202fг."),  # CLDR: narrow no-break space
])  # fmt: skip
def test_date_heading_in_each_language(lang: str, expected: str) -> None:
    assert render.heading(date(2023, 1, 17), lang, SITE) == expected


def test_text_front_page_strips_html_and_decodes_entities() -> None:
    page = FrontPage(date(2023, 1, 17), "en", (Section("en", (entry(),)),))
    assert render.frontpage_text(page, SITE) == "Tuesday, 17 January 2023\n\n\nTitle\n\nLede & more\n"


def test_lede_falls_back_to_content() -> None:
    e = entry(summary="", content="<p>" + "word " * 400 + "</p>")
    text = render.lede(e)
    assert text.startswith("word word") and text.endswith("…") and len(text) <= 601


@pytest.mark.parametrize("bad", DANGEROUS)
def test_dangerous_html_never_reaches_any_output(bad: str) -> None:
    e = entry(summary=bad + "<p>ok</p>", content=bad + "<p>body</p>")
    page = FrontPage(date(2023, 1, 17), "en", (Section("en", (e,)),))
    outputs = [
        render.atom_feed([e], SITE, "en").decode(),
        render.rss_feed([e], SITE, "en").decode(),
        render.json_feed([e], SITE, "en"),
        render.frontpage_html(page, SITE),
    ]
    for out in outputs:
        parsed = feedparser.parse(out) if out.startswith("<?xml") else None
        text = (
            out
            if parsed is None
            else " ".join(
                x.get("summary", "") + " ".join(c.value for c in x.get("content", [])) for x in parsed.entries
            )
        )
        for needle in ("<script", "onerror", "javascript:", "data:text", "<iframe", "expression(",
                       "onload", "<form", "<object"):  # fmt: skip
            assert needle not in text.lower(), (needle, out[:300])


@pytest.mark.parametrize("good", SAFE)
def test_ordinary_html_survives(good: str) -> None:
    from aggregator.text import sanitize_html

    assert sanitize_html(good) == good


def test_titles_are_text_and_escaped_in_markup() -> None:
    e = entry(title="Why <script> tags & co.")
    page = FrontPage(date(2023, 1, 17), "en", (Section("en", (e,)),))
    assert "Why &lt;script&gt; tags &amp; co." in render.frontpage_html(page, SITE)
    assert "<title>Why &lt;script&gt; tags &amp; co.</title>" in render.atom_feed([e], SITE, "en").decode()


def test_rtl_and_language_marked_in_html() -> None:
    e = entry(language="ur", language_tag="ur", title="پاکستان")
    page = FrontPage(date(2023, 1, 17), "all", (Section("ur", (e,)),))
    html = render.frontpage_html(page, SITE)
    assert '<article lang="ur" dir="rtl">' in html and 'section lang="ur" dir="rtl"' in html


def test_rendering_is_deterministic() -> None:
    es = [entry(id=f"e{i}") for i in range(3)]
    assert render.atom_feed(es, SITE, "all") == render.atom_feed(es, SITE, "all")
    assert render.json_feed(es, SITE, "all") == render.json_feed(es, SITE, "all")


def test_feed_credits_sources() -> None:
    e = entry(sources=(Source("F", "First", "k", None, T), Source("G", "Second", "k2", None, T)))
    rss = render.rss_feed([e], SITE, "en").decode()
    assert '<source url="F">First</source>' in rss
    assert '"name":"Second"' in render.json_feed([e], SITE, "en")


# Links of every shape: the checks' quick path for plain http(s) URLs must answer as urlsplit does.
_URL_PARTS = st.sampled_from(
    ["http://", "https://", "HTTP://", "Https://", "ftp://", "javascript:", "http:", "//", " http://",
     "example.org", "ex-ample.org:8080", "user@host", "[::1]", "[", "]", "/", "?", "#", "a", "é",
     "\u00a0", " ", "\t", "\n", "\x7f", "%20", "&amp;", ":", "@", "\u2028", "ｅ", "＠", "／", "℀"]
)  # fmt: skip
_URLS = st.lists(_URL_PARTS, max_size=6).map("".join) | st.text(max_size=30)


@settings(max_examples=500, deadline=None)
@given(st.one_of(_URLS, st.tuples(st.sampled_from(["http://", "https://"]), _URLS).map("".join)))
def test_plain_links_are_judged_as_urlsplit_judges_them(url: str) -> None:
    """`feeds.http_link` and `common.safe_link` take a plain http(s) URL without urlsplit (most
    links; a publish checks tens of thousands): the answer is the one urlsplit's check gives."""
    assert feeds._check_link(url) == feeds._split_link(xml_safe(url).strip())
    assert common._check_safe_link(url) == common._split_safe_link(url)
