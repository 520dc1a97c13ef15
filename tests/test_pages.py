"""Front pages for every day: which days exist, how pages link, what they say and in which
language, the bounded combined page, and byte-identical rebuilds.

`build_pages` is the wiring publish needs (store -> every page output); the tests run it on a
real SQLite store.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import Config, load_config, make_site
from aggregator.frontpages import frontpage
from aggregator.models import Source, StoredEntry, UpdatePlan
from aggregator.pages_plan import ALL, Calendar, day_path, index_path, pages_to_rebuild, relative
from aggregator.render import FrontPage, Section
from aggregator.render import heading as render_heading
from aggregator.render.i18n import MESSAGES, say
from aggregator.render.pages import (
    archive_outputs,
    day_outputs,
    frontpage_html,
    frontpage_json,
    frontpage_text,
    index_outputs,
    site_outputs,
)
from aggregator.store import SQLiteStore, Store
from tests.conftest import run_cli
from tests.feedserver import FeedServer
from tests.test_end_to_end import SEED, _paragraphs, serve_seed, write_config

LANGS = ["en", "es", "it", "fr", "ru"]
SITE = make_site(title="In Defence of Marxism", languages=LANGS, timezone="Europe/London")
TODAY = date(2023, 1, 17)


def build_pages(
    store: Store, config: Config, today: date, only: set[tuple[date, str]] | None = None
) -> dict[str, bytes]:
    """Every front-page output as publish is to write them (`site_outputs` with publish's own
    `frontpage`): each language's and the combined front page, every day's archive pages (or
    `only` those), and the archive index."""
    calendar = Calendar.from_counts(store.day_counts(), config.site.languages)
    return site_outputs(
        config.site,
        calendar,
        lambda language, day: frontpage(store, config.site, language, day, now=at(today, 23)),
        today,
        only=only,
    )


def entry(n: int, language: str | None, published: datetime, **kw: object) -> StoredEntry:
    base: dict[str, object] = dict(
        id=f"{language}-{n}-{published:%Y%m%d%H%M}", feed_url=f"https://{language}.example/feed",
        source_key=f"k{n}", canonical_url=None, fingerprint=f"fp{n}{published}",
        link=f"https://{language}.example/{n}", title=f"{language} story {n}",
        summary=f"<p>Lede of {language} story {n}.</p>", content="", author=None, categories=(),
        enclosures=(), published=published, updated=None, first_seen=published, language=language,
        language_tag=language, language_evidence="config",
        day=published.astimezone(SITE.zone).date(), content_hash="h",
        sources=(Source(f"https://{language}.example/feed", f"{language} feed", f"k{n}", None, published),),
    )  # fmt: skip
    base.update(kw)
    return StoredEntry(**base)  # type: ignore[arg-type]


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return SQLiteStore(tmp_path / "aggregator.db")


def fill(store: Store, entries: list[StoredEntry]) -> None:
    store.apply(UpdatePlan(inserts=tuple(entries)))


CONFIG = Config(site=SITE)


# -- which days exist ----------------------------------------------------------------------------
def test_latest_day_never_comes_from_the_future_and_skips_languages_outside_the_site() -> None:
    rows = [
        (date(2023, 1, 16), "en", 3),
        (date(2023, 1, 17), "de", 1),  # outside the site: the combined page only
        (date(2023, 1, 18), "en", 2),  # a day ahead of the clock (normalise allows one)
    ]
    cal = Calendar.from_counts(rows, LANGS)
    assert cal.latest("en", TODAY) == date(2023, 1, 16)
    assert cal.latest(ALL, TODAY) == date(2023, 1, 17)
    assert cal.latest("es", TODAY) is None
    assert cal.next(date(2023, 1, 16), "en") == date(2023, 1, 18)  # still reachable
    assert not cal.exists(date(2023, 1, 17), "de") and cal.count(date(2023, 1, 17), ALL) == 1


def test_a_language_whose_only_entries_are_a_day_ahead_still_has_a_front_page() -> None:
    # Issue 12: never "No entries yet" while the feeds list entries dated a little ahead.
    cal = Calendar.from_counts([(date(2023, 1, 18), "it", 2)], LANGS)
    assert cal.latest("it", TODAY) == date(2023, 1, 18)
    assert cal.latest(ALL, TODAY) == date(2023, 1, 18)


@given(
    st.lists(
        st.tuples(
            st.dates(date(2000, 1, 1), date(2030, 1, 1)),
            st.sampled_from([*LANGS, "de", None]),
            st.integers(0, 5),
        ),
        max_size=60,
    ),
    st.dates(date(2000, 1, 1), date(2030, 1, 1)),
)
def test_previous_and_next_walk_every_day_with_entries_and_no_other(
    rows: list[tuple[date, str | None, int]], today: date
) -> None:
    cal = Calendar.from_counts(rows, LANGS)
    for language in cal.page_languages():
        expected = sorted({d for d, lang, n in rows if n > 0 and (language == ALL or lang == language)})
        assert list(cal.days[language]) == expected
        walk, day = [], expected[0] if expected else None
        while day is not None:
            walk.append(day)
            day = cal.next(day, language)
        assert walk == expected
        back, day = [], expected[-1] if expected else None
        while day is not None:
            back.append(day)
            day = cal.previous(day, language)
        assert back == expected[::-1]
        past = [d for d in expected if d <= today]
        # the newest day up to today; only when there is none, the earliest (ahead) day
        assert cal.latest(language, today) == (past[-1] if past else (expected[0] if expected else None))
        for d in expected:
            n = sum(c for dd, lang, c in rows if dd == d and (language == ALL or lang == language))
            assert cal.count(d, language) == n


_segment = st.text("abcdef0123", min_size=1, max_size=4)


@given(st.lists(_segment, min_size=1, max_size=5), st.lists(_segment, min_size=0, max_size=5), st.booleans())
def test_relative_links_resolve_to_their_target_from_any_page(
    here: list[str], there: list[str], to_dir: bool
) -> None:
    from_file = "/".join(here) + ".html"
    target = "/".join(there) + ("/" if to_dir and there else "")
    rel = relative(from_file, target)
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(from_file), rel))
    assert resolved == (posixpath.normpath(target) if target else ".")
    assert not rel.startswith("/")


# -- the pages of a store ------------------------------------------------------------------------
def test_every_day_has_pages_and_latest_day_is_right_for_a_sparse_language(store: Store) -> None:
    """The field report: an `en` front page with one entry (a straggler that one feed dated
    later than the rest) showed nothing else, because only the newest day had a page at all.
    Now the index shows that newest day and every other day has its page, one link away."""
    older = [entry(i, "en", at(date(2022, 9, 1) + timedelta(days=i % 40), 8 + i % 10)) for i in range(199)]
    straggler = entry(999, "en", at(date(2022, 12, 20)))
    early = entry(1000, "en", at(TODAY + timedelta(days=1), 1))  # tomorrow: never the front page
    fill(store, [*older, straggler, early, entry(1, "es", at(TODAY))])
    out = build_pages(store, CONFIG, TODAY)

    en_index = json.loads(out[index_path("en", "json")])
    assert en_index["date"] == "2022-12-20" and len(en_index["entries"]) == 1
    # Walking "previous" from the index reaches every English entry exactly once.
    seen, ref = {e["id"] for e in en_index["entries"]}, en_index["previous"]
    while ref:
        page = json.loads(out[day_path(date.fromisoformat(ref["date"]), "en", "json")])
        ids = {e["id"] for e in page["entries"]}
        assert not ids & seen
        seen |= ids
        ref = page["previous"]
    assert seen == {e.id for e in [*older, straggler]}
    # Tomorrow's entry has its page, linked as "next day" from the straggler's day.
    assert en_index["next"] == {"date": "2023-01-18", "href": "../archive/2023/01/18/en.json"}
    assert day_path(date(2023, 1, 18), "en", "html") in out
    assert json.loads(out["index.json"])["date"] == "2023-01-17"


HREF = re.compile(r'(?:href|src)="([^"]+)"')
FEED_OUTPUTS = re.compile(r"^(feeds|daily)/[a-z]+\.(atom|rss|json)$|^archive/\d{4}/\d\d/\d\d/[a-z]+\.atom$")


def test_every_link_between_pages_resolves_and_the_current_language_is_marked(store: Store) -> None:
    days = [TODAY - timedelta(days=k) for k in (0, 1, 3)]
    fill(
        store, [entry(i, lang, at(d, 9 + i)) for d in days for i, lang in enumerate(LANGS) if i <= d.day % 6]
    )
    out = build_pages(store, CONFIG, TODAY)
    for path, data in out.items():
        if not path.endswith(".html"):
            continue
        html = data.decode()
        for href in HREF.findall(html):
            if href.startswith(("https://", "http://")):
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), href.replace("&amp;", "&")))
            if href.endswith("/"):
                target = posixpath.join(target, "index.html") if target != "." else "index.html"
            assert target in out or FEED_OUTPUTS.match(target), (path, href, target)
        if path == "archive/index.html":
            continue
        current = re.findall(r'<a [^>]*aria-current="page"[^>]*>', html)
        language = path.rsplit("/", 1)[-1].split(".")[0] if path.startswith("archive/") else None
        language = language or (path.split("/")[0] if "/" in path else ALL)
        assert len(current) == 1, path
        assert (f'lang="{language}"' in current[0]) == (language != ALL), (path, current)


def test_navigation_links_previous_next_archive_and_feeds(store: Store) -> None:
    fill(store, [entry(1, "en", at(date(2023, 1, 10))), entry(2, "en", at(TODAY)), entry(3, "es", at(TODAY))])
    out = build_pages(store, CONFIG, TODAY)
    html = out["archive/2023/01/17/en.html"].decode()
    assert '<a rel="prev" href="../10/en.html">' in html and 'rel="next"' not in html
    assert '<a href="../../../index.html">Archive</a>' in html
    for href, mime in [
        ("../../../../feeds/en.atom", "application/atom+xml"),
        ("../../../../feeds/en.rss", "application/rss+xml"),
        ("../../../../feeds/en.json", "application/feed+json"),
        ("../../../../daily/en.atom", "application/atom+xml"),
        ("../../../../daily/en.json", "application/feed+json"),
        ("en.atom", "application/atom+xml"),
    ]:
        assert f'<link rel="alternate" type="{mime}" href="{href}"' in html
    # The Spanish link goes to the same day; Italian, with nothing that day, to its front page.
    assert 'href="es.html" hreflang="es"' in html and 'href="../../../../it/" hreflang="it"' in html
    # The front page at / links down into the tree, the archive back up.
    root = out["index.html"].decode()
    assert 'href="archive/index.html"' in root and 'href="feeds/all.atom"' in root
    assert 'href="archive/2023/01/17/all.atom"' in root
    assert 'href="../2023/01/17/all.html"' not in out["archive/index.html"].decode()
    assert 'href="2023/01/17/all.html"' in out["archive/index.html"].decode()


def test_archive_index_lists_days_by_month_with_counts(store: Store) -> None:
    fill(store, [
        entry(1, "en", at(date(2022, 12, 30))), entry(2, "en", at(TODAY)), entry(3, "es", at(TODAY)),
        entry(4, "de", at(TODAY)),
    ])  # fmt: skip
    out = build_pages(store, CONFIG, TODAY)
    html = out["archive/index.html"].decode()
    assert html.index("January 2023") < html.index("December 2022")
    assert '<time datetime="2023-01-17">Tue 17 January</time></a> <span class="count">(3)</span>' in html
    assert 'href="2023/01/17/en.html" hreflang="en"' in html and 'href="2023/01/17/es.html"' in html
    days = json.loads(out["archive/index.json"])["days"]
    assert days[0] == {
        "date": "2023-01-17", "count": 3, "languages": {"en": 1, "es": 1}, "href": "2023/01/17/all.json",
    }  # fmt: skip


# -- the combined page is bounded ------------------------------------------------------------------
def test_combined_page_caps_each_language_and_links_to_the_rest(store: Store) -> None:
    site = replace(SITE, frontpage_per_language=4)
    config = Config(site=site)
    fill(store, [entry(i, "en", at(TODAY, 1 + i % 20)) for i in range(10)] + [entry(1, "es", at(TODAY))])
    out = build_pages(store, config, TODAY)
    combined = out["archive/2023/01/17/all.html"].decode()
    assert combined.count('<article lang="en"') == 4 and combined.count('<article lang="es"') == 1
    assert '<p class="more"><a href="en.html">6 more in English →</a></p>' in combined
    assert out["archive/2023/01/17/en.html"].decode().count("<article") == 10
    text = out["archive/2023/01/17/all.txt"].decode()
    assert "6 more in English: en.txt" in text
    page = json.loads(out["archive/2023/01/17/all.json"])
    assert len(page["entries"]) == 5 and page["more"] == [{"lang": "en", "count": 6, "href": "en.json"}]
    # The newest four stay; the cap never applies to a language's own page.
    shown = [e["published"] for e in page["entries"] if e["language"] == "en"]
    assert shown == sorted(shown, reverse=True)


def test_combined_page_size_is_bounded_by_the_cap() -> None:
    many = tuple(
        entry(i, "en", at(TODAY, i % 24), summary="<p>" + "word " * 200 + "</p>") for i in range(400)
    )
    page = FrontPage(TODAY, ALL, (Section("en", many),))
    capped = len(frontpage_html(page, SITE).encode())
    one_language = len(frontpage_html(FrontPage(TODAY, "en", (Section("en", many),)), SITE).encode())
    assert capped < one_language / 10 and capped < 60_000


# -- a page a person wants to read -----------------------------------------------------------------
@pytest.mark.parametrize("language", [k for k in MESSAGES if k != "en"])
def test_pages_speak_the_page_language(language: str) -> None:
    site = make_site(title="T", languages=["en", language], timezone="Europe/London")
    calendar = Calendar.from_counts([(TODAY, language, 1), (date(2023, 1, 10), language, 1)], site.languages)
    e = entry(1, language, at(TODAY), sources=(Source("F", "Feed", "k", None, at(TODAY)),))
    out = day_outputs(FrontPage(TODAY, language, (Section(language, (e,)),)), site, calendar)
    html = out[day_path(TODAY, language, "html")].decode()
    for key in ("previous_day", "archive", "via", "all_languages", "feeds", "daily_feed"):
        assert say(key, language).text in html, key
        english = say(key, "en").text
        if english != say(key, language).text:
            assert not re.search(rf"(?<!\w){re.escape(english)}(?!\w)", html.replace("JSON Feed", "")), key
    assert f'<html lang="{language}"' in html
    heading = re.search(r'<h1><time datetime="2023-01-17">([^<]+)</time></h1>', html)
    assert (
        heading
        and heading.group(1)[0].isupper()
        and heading.group(1)[1:] == render_heading(TODAY, language, site)[1:]
    )
    archive = archive_outputs(replace(site, languages=[language, "en"]), calendar)
    assert MESSAGES[language]["archive"] in archive["archive/index.html"].decode()


def test_every_phrase_is_in_every_catalogue_language() -> None:
    assert all(set(table) == set(MESSAGES["en"]) for table in MESSAGES.values())


def test_month_names_and_times_come_from_the_locale() -> None:
    site = make_site(title="T", languages=["ru", "en"], timezone="Europe/Moscow")
    calendar = Calendar.from_counts([(TODAY, "ru", 1)], site.languages)
    archive = archive_outputs(site, calendar)["archive/index.html"].decode()
    assert "январь 2023" in archive.lower()
    e = entry(1, "ru", datetime(2023, 1, 17, 13, 51, tzinfo=UTC), language_tag="ru")
    html = frontpage_html(FrontPage(TODAY, "ru", (Section("ru", (e,)),)), site)
    assert ">16:51 MSK</time>" in html


def test_right_to_left_sections_isolate_left_to_right_bits() -> None:
    """ "16:51 GMT · via BBC Urdu" inside an Urdu article is a left-to-right line of the page's
    own words, and the time and the feed's name are isolated, so it cannot display as
    "GMT · via BBC Urdu 16:51"."""
    ur = entry(1, "ur", datetime(2023, 1, 17, 16, 51, tzinfo=UTC), title="پاکستان میں بارش",
               sources=(Source("F", "BBC Urdu", "k", None, at(TODAY)),))  # fmt: skip
    html = frontpage_html(FrontPage(TODAY, ALL, (Section("ur", (ur,)),)), SITE)
    assert '<section lang="ur" dir="rtl">' in html and '<article lang="ur" dir="rtl">' in html
    assert (
        '<p class="meta" lang="en" dir="ltr"><bdi><time datetime="2023-01-17T16:51:00+00:00">16:51 GMT'
        "</time></bdi> · via <bdi>BBC Urdu</bdi></p>"
    ) in html
    # On an Urdu page the catalogue has no Urdu: its English words are marked as English.
    site = make_site(title="T", languages=["ur", "en"], timezone="Asia/Karachi")
    cal = Calendar.from_counts([(TODAY, "ur", 1), (date(2023, 1, 16), "ur", 1)], site.languages)
    page = day_outputs(FrontPage(TODAY, "ur", (Section("ur", (ur,)),)), site, cal)
    ur_html = page[day_path(TODAY, "ur", "html")].decode()
    assert '<html lang="ur" dir="rtl">' in ur_html
    assert '→ <span lang="en" dir="ltr">Previous day</span>' in ur_html
    assert '<p class="meta" lang="en" dir="ltr"><bdi><time' in ur_html


def test_date_only_entries_show_no_time() -> None:
    e = entry(1, "en", at(TODAY, 0), date_only=True)
    html = frontpage_html(FrontPage(TODAY, "en", (Section("en", (e,)),)), SITE)
    assert '<time datetime="2023-01-17T00' not in html and "via <bdi>en feed</bdi>" in html
    assert json.loads(frontpage_json(FrontPage(TODAY, "en", (Section("en", (e,)),)), SITE))["entries"][0][
        "date_only"
    ]


def test_title_less_entries_link_with_the_start_of_their_lede() -> None:
    note = entry(1, "fr", at(TODAY), title="", summary="<p>" + "Une note sans titre. " * 10 + "</p>")
    photo = entry(2, "fr", at(TODAY), title="", summary='<img src="https://e.org/a.jpg">')
    html = frontpage_html(FrontPage(TODAY, "fr", (Section("fr", (note, photo)),)), SITE)
    assert '<a href="https://fr.example/1">Une note sans titre. Une note sans titre. Une note sans' in html
    assert '<a href="https://fr.example/2">(sans titre)</a>' in html
    text = frontpage_text(FrontPage(TODAY, "fr", (Section("fr", (note, photo)),)), SITE)
    assert "\n(sans titre)\n" in text


def test_seed_shaped_text_is_unchanged_below_the_cap() -> None:
    es = tuple(entry(i, "en", at(TODAY, 10 - i)) for i in range(2))
    text = frontpage_text(FrontPage(TODAY, ALL, (Section("en", es),)), SITE)
    assert text == (
        "Tuesday, 17 January 2023\n\n\nen story 0\n\nLede of en story 0.\n"
        "\nen story 1\n\nLede of en story 1.\n"
    )


# -- any entry, any page: never raises, always well-formed, always the same bytes ---------------------
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40) | st.text(max_size=40)
_entries = st.builds(
    lambda title, summary, content, link, lang, name, date_only, minute: entry(
        minute,
        lang,
        at(TODAY, 0) + timedelta(minutes=minute),
        title=title,
        summary=summary,
        content=content,
        link=link,
        date_only=date_only,
        language_tag=lang,
        sources=(Source("F", name, "k", link, at(TODAY)),) if name else (),
    ),
    _text,
    _text,
    _text,
    st.sampled_from([None, "", "javascript:alert(1)", "https://e.org/a?b=1&c=<2>", "ftp://x", "//evil"]),
    st.sampled_from([*LANGS, "ur", "ar", None]),
    _text,
    st.booleans(),
    st.integers(0, 1439),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_entries, min_size=0, max_size=6), st.sampled_from([*LANGS, ALL]))
def test_any_entries_render_to_well_formed_identical_pages(entries: list[StoredEntry], language: str) -> None:
    from lxml import etree

    page = FrontPage(
        TODAY if entries else None, language, (Section("en", tuple(entries)),) if entries else ()
    )
    calendar = Calendar.from_counts([(TODAY, "en", len(entries))], LANGS)
    first = day_outputs(page, SITE, calendar) | index_outputs(page, SITE, calendar)
    assert first == day_outputs(page, SITE, calendar) | index_outputs(page, SITE, calendar)
    for path, data in first.items():
        if path.endswith(".json"):
            json.loads(data)
        elif path.endswith(".html"):
            doc = etree.fromstring(data, etree.HTMLParser(recover=False))
            assert doc is not None and "<script" not in data.decode().lower()
            for href in HREF.findall(data.decode()):
                assert not href.lower().startswith(("javascript:", "ftp:", "//")), href


# -- incremental: rebuilding what a poll touched gives the same tree as rebuilding everything --------
_poll = st.lists(
    st.tuples(st.integers(0, 12), st.sampled_from([*LANGS, "de", None]), st.integers(0, 23)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None)
@given(_poll, _poll)
def test_rebuilding_only_touched_pages_equals_a_full_rebuild(
    first: list[tuple[int, str | None, int]], second: list[tuple[int, str | None, int]]
) -> None:
    def entries(poll: list[tuple[int, str | None, int]], offset: int) -> list[StoredEntry]:
        return [
            entry(offset + i, lang, at(TODAY - timedelta(days=back), hour))
            for i, (back, lang, hour) in enumerate(poll)
        ]

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "a.db")
        fill(store, entries(first, 0))
        before = Calendar.from_counts(store.day_counts(), LANGS)
        tree = build_pages(store, CONFIG, TODAY)
        new = entries(second, 100)
        fill(store, new)
        after = Calendar.from_counts(store.day_counts(), LANGS)
        touched = pages_to_rebuild(before, after, [(e.day, e.language) for e in new])
        tree.update(build_pages(store, CONFIG, TODAY, only=touched))
        full = build_pages(store, CONFIG, TODAY)
        store.close()
    assert tree == full  # byte for byte: also two builds of one store are identical


# -- end to end: fetched by the real program, rendered as publish will ------------------------------
@pytest.mark.slow
def test_seed_day_pages_from_a_real_fetch(tmp_path: Path, feed_server: FeedServer) -> None:
    serve_seed(feed_server)
    config_path = write_config(tmp_path / "feeds.yaml", feed_server)
    data = tmp_path / "data"
    assert run_cli("fetch", "--no-publish", config=config_path, data=data).returncode == 0
    store = SQLiteStore(data / "aggregator.db")
    try:
        out = build_pages(store, load_config(config_path), TODAY)
    finally:
        store.close()
    seed = (SEED / "seed-frontpage-2023-01-17.txt").read_text(encoding="utf-8")
    # The seed day's combined text page, the archive copy and the front page, is the seed.
    for path in ("archive/2023/01/17/all.txt", "index.txt"):
        assert _paragraphs(out[path].decode()) == _paragraphs(seed), path
    # Monday's English entry is one "previous day" away from the English page.
    en = json.loads(out["en/index.json"])
    assert en["date"] == "2023-01-17" and en["previous"]["date"] == "2023-01-16"
    monday = json.loads(out["archive/2023/01/16/en.json"])
    assert len(monday["entries"]) == 1 and monday["next"]["href"] == "../17/en.json"
