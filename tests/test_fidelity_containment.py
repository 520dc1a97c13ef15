"""Item-level containment (issue 11): an entry that cannot be read costs that entry, never its
feed. Hostile JSON Feed items and RSS/Atom items of every shape go through the real
`parse_feed` + `normalise.prepare_feed`; neither may raise, the good entries survive, and a
skipped entry is named in the feed's warning."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import language, normalise
from aggregator.parse import parse_feed

NOW = datetime(2024, 3, 5, 12, tzinfo=UTC)
ZONE = ZoneInfo("Europe/London")
SITE = ("en", "es", "it", "fr", "ru")
GOOD_ITEM = {"id": "good", "url": "https://example.org/good", "title": "A good entry about the harbour"}

# Any JSON value, including the ones that broke whole feeds: huge floats (1e999 is inf),
# lone surrogates, dates past year 9999 once converted to UTC.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "9999-12-31T23:30-05:00",
            "0001-01-01T00:00:00+01:00",
            "2024-05-01",
            "2024-05-01T10:00:00",
            "\ud800",
            "\x00\x0b\ufffe",
            "javascript:alert(1)",
            "/relative/path",
            "http://[::1",
            "https://user:pw@example.org/a?token=s3cret&id=1",
        ]
    ),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = [
    "id", "url", "external_url", "title", "content_html", "content_text", "summary", "image",
    "date_published", "date_modified", "author", "authors", "tags", "language", "attachments",
]  # fmt: skip
_items = st.dictionaries(
    st.sampled_from(_FIELDS),
    _json_values
    | st.lists(
        st.dictionaries(
            st.sampled_from(["url", "mime_type", "size_in_bytes", "name"]), _json_values, max_size=4
        ),
        max_size=2,
    ),
    max_size=len(_FIELDS),
)


def _prepare(body: bytes, ctype: str) -> tuple[list[Any], str | None]:
    feed = parse_feed(body, {"content-type": ctype}, "https://example.org/feed")
    return normalise.prepare_feed(feed, "https://example.org/feed", "auto", SITE, ZONE, NOW)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_items)
def test_hostile_json_feed_item_never_costs_the_feed(item: dict[str, Any]) -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [item, GOOD_ITEM]}
    body = json.dumps(doc).encode("utf-8", "surrogatepass")
    candidates, _ = _prepare(body, "application/feed+json")
    assert any(c.source_key == "good" for c in candidates)
    for c in candidates:
        assert c.link is None or c.link.startswith(("http://", "https://"))
        for text in (c.title, c.summary, c.content):
            text.encode("utf-8")  # no lone surrogate survives


_xml_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30
) | st.sampled_from(
    [
        "Wed, 10 Jul 2024 00:30:00 CEST",
        "Wed, 27 Nov 2013 20:17:55",
        "Fri, 31 Dec 9999 23:59:59 -1200",
        "2024-05-01",
        "not a date",
        "&lt;![CDATA[x]]&gt;",
        "<b>bold</b>",
    ]
)
_XML_FIELDS = ["title", "link", "guid", "pubDate", "description", "author", "category", "dc:language"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_XML_FIELDS), _xml_text, max_size=len(_XML_FIELDS)), st.booleans())
def test_hostile_rss_and_atom_items_never_cost_the_feed(fields: dict[str, str], atom: bool) -> None:
    hostile = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items() if k != "dc:language")
    if atom:
        hostile = (
            hostile.replace("pubDate>", "updated>")
            .replace("guid>", "id>")
            .replace("description>", "summary>")
        )
        body = (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            f"<entry>{hostile}</entry>"
            "<entry><id>good</id><title>A good entry about the harbour</title>"
            '<link href="https://example.org/good"/></entry></feed>'
        )
    else:
        body = (
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>'
            f"<item>{hostile}</item>"
            "<item><guid>good</guid><title>A good entry about the harbour</title>"
            "<link>https://example.org/good</link></item></channel></rss>"
        )
    candidates, _ = _prepare(body.encode("utf-8"), "application/xml")
    assert any(c.title == "A good entry about the harbour" for c in candidates)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date_published", "9999-12-31T23:30-05:00"),  # OverflowError once converted to UTC
        ("title", "\ud800 lone surrogate"),  # the language check raised UnicodeEncodeError
        ("attachments", [{"url": "https://example.org/a.mp3", "size_in_bytes": 1e999}]),
    ],
)
def test_issue_11_examples_keep_the_item_and_its_feed(field: str, value: Any) -> None:
    item = {"id": "bad", "url": "https://example.org/bad", "title": "Bad item", field: value}
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [item, GOOD_ITEM]}
    body = json.dumps(doc).encode("utf-8", "surrogatepass")
    candidates, _ = _prepare(body, "application/json")
    keys = {c.source_key for c in candidates}
    assert keys == {"bad", "good"}  # read as far as it can be: nothing lost
    bad = next(c for c in candidates if c.source_key == "bad")
    if field == "date_published":
        assert bad.published == NOW  # an unbelievable date falls back to first-seen
    if field == "attachments":
        assert bad.enclosures[0].length is None


def test_unpreparable_entry_is_skipped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "boom", "title": "explodes in language"}, GOOD_ITEM],
    }
    real = language.resolve

    def resolve(entry_language: str | None, *args: Any) -> language.Resolved:
        if "explodes" in args[2]:
            raise RuntimeError("model failure")
        return real(entry_language, *args)

    monkeypatch.setattr(language, "resolve", resolve)
    candidates, warning = _prepare(json.dumps(doc).encode(), "application/feed+json")
    assert [c.source_key for c in candidates] == ["good"]
    assert warning and "1 entry skipped" in warning and "RuntimeError: model failure" in warning


def test_empty_items_are_skipped_with_a_warning() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title><item><title></title><link></link></item>'
        b"<item><title>Kept</title></item></channel></rss>"
    )
    feed = parse_feed(body, {}, "https://example.org/feed")
    assert [e.title for e in feed.entries] == ["Kept"]
    assert feed.warning and "1 entry skipped: an item with no title, no link and no text" in feed.warning


def test_language_model_loads_once_under_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from py3langid import langid

    loads = []
    real = langid.LanguageIdentifier.from_model_file

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(language, "_MODEL", None)
    monkeypatch.setattr(langid.LanguageIdentifier, "from_model_file", counting)
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        language.identify("Le gouvernement a annoncé une nouvelle réforme des retraites", SITE)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(loads) == 1


def test_document_scans_stay_linear_on_hostile_input() -> None:
    """The work-arounds that read raw bytes (escaped CDATA, guids that are no URL) and the date
    reader must not go quadratic on a body of repeated markers (10 MiB is the fetch limit)."""
    import time

    from aggregator.parse import read_date, relative_guids, unescape_cdata

    started = time.monotonic()
    unescape_cdata(b"&lt;![CDATA[" * 500_000)
    relative_guids(b"<guid" * 1_000_000, "https://example.org/")
    assert read_date("1" * 100_000 + " CEST") is None
    assert time.monotonic() - started < 5
