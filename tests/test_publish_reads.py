"""Publishing does each piece of work once (issue 13's full rebuild): a day's front pages in
every language and its archives are built from one read of the day's entries, and the calendar
and the day archives' lists come from one grouped query. The pages stay those that a read per
(day, language) gives (`frontpages.frontpage`), for any mix of languages (site, other, unknown),
translation keys, hreflang alternates and days ahead of the clock. The answers remembered
across a publish (lede cuts, link checks, source addresses) are the answers computed."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import publish as publishing
from aggregator.models import DayRows, Source, StoredEntry, UpdatePlan
from aggregator.pages_plan import Calendar, day_path, index_path
from aggregator.render import common, pages
from aggregator.store import SQLiteStore
from aggregator.text import cut_lede, publishable
from aggregator.urls import strip_secrets
from tests.test_feeds_valid import entry
from tests.test_publish import config, tree

NOW = datetime(2023, 1, 18, 12, tzinfo=UTC)  # 2023-01-18 in Europe/London (the config's zone)
TODAY = date(2023, 1, 18)
FEED = "https://src.example/feed.xml"


class CountingStore(SQLiteStore):
    """The real SQLite store, counting whole-day reads as (day, language), day index reads and
    entries read by id or by seq (counted by id)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.day_reads: Counter[tuple[date, str | None]] = Counter()
        self.index_reads: Counter[date] = Counter()
        self.entry_reads: Counter[str] = Counter()

    def day(self, day: date, language: str | None) -> list[StoredEntry]:
        self.day_reads[(day, language)] += 1
        return super().day(day, language)

    def day_index(self, day: date) -> DayRows:
        self.index_reads[day] += 1
        return super().day_index(day)

    def entries_by_id(self, ids: Sequence[str]) -> list[StoredEntry]:
        self.entry_reads.update(ids)
        return super().entries_by_id(ids)

    def entries_by_seq(self, seqs: Sequence[int]) -> list[StoredEntry]:
        found = super().entries_by_seq(seqs)
        self.entry_reads.update(e.id for e in found)
        return found


entries_st = st.lists(
    st.tuples(
        st.integers(-20, 1),  # day relative to today: up to a day ahead of the clock
        st.sampled_from(["en", "es", "ru", "de", None]),  # site languages, another, unknown
        st.sampled_from([None, None, "k1", "k2"]),  # translation key
        st.sampled_from(
            [(), (("fr-CA", "https://fr.example.org/a"),), (("es", "https://es.example.org/b"),)]
        ),
        st.integers(0, 23),  # hour
        st.booleans(),  # titled
    ),
    min_size=0,
    max_size=30,
)


def _entries(
    rows: list[tuple[int, str | None, str | None, tuple[tuple[str, str], ...], int, bool]],
) -> list[StoredEntry]:
    out = []
    for n, (back, lang, key, alternates, hour, titled) in enumerate(rows):
        day = TODAY + timedelta(days=back)
        when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour, minutes=n)
        eid = f"e{n}"
        out.append(
            entry(
                id=eid, feed_url=FEED, source_key=eid, fingerprint=eid, language=lang, language_tag=lang,
                day=day, title=f"{lang} {day} {eid}" if titled else "", link=f"https://news.example.org/{eid}",
                published=when, first_seen=when, translation_key=key, translations=alternates,
                sources=(Source(FEED, "Source", eid, f"https://news.example.org/{eid}", when),),
            )
        )  # fmt: skip
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=entries_st)
def test_a_full_rebuild_pages_through_each_day_once_and_gives_the_pages_of_per_language_reads(
    rows: list[tuple[int, str | None, str | None, tuple[tuple[str, str], ...], int, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = config(root)
        store = CountingStore(root / "aggregator.db")
        try:
            store.apply(UpdatePlan(inserts=tuple(_entries(rows))))
            report = publishing.publish(store, cfg, root / "public", now=NOW)
            assert not report.failed
            calendar = Calendar.from_counts(store.day_counts(), cfg.site.languages)
            # No day is read whole: each day's index once (the front pages' days are kept for
            # the day loop), its entries by seq, each once in the day loop and at most once more
            # for each front page showing it (its language's, the combined one); never a day
            # read per language.
            assert not store.day_reads
            assert set(store.index_reads) == set(calendar.days["all"])
            assert all(n == 1 for n in store.index_reads.values()), store.index_reads
            assert set(store.entry_reads) == {f"e{n}" for n in range(len(rows))}
            assert all(n <= 3 for n in store.entry_reads.values()), store.entry_reads

            published = tree(root / "public")
            expected: dict[str, bytes] = {}
            for language in calendar.page_languages():
                shown = calendar.latest(language, TODAY)
                page = publishing.frontpage(store, cfg.site, language, shown, now=NOW)
                expected.update(pages.index_outputs(page, cfg.site, calendar))
                for day in calendar.days[language]:
                    page = publishing.frontpage(store, cfg.site, language, day, now=NOW)
                    expected.update(pages.day_outputs(page, cfg.site, calendar))
            for path, data in expected.items():
                assert published[path] == data, path
            page_files = {
                p
                for p in published
                if p.endswith((".html", ".txt", ".json")) and not p.endswith(".feed.json")
            }
            assert {p for p in page_files if p.startswith("archive/20") or "index." in p} - {
                "archive/index.html",
                "archive/index.json",
            } == set(expected)
            assert all(index_path(lang, "html") in published for lang in calendar.page_languages())
            for language in calendar.page_languages():
                for day in calendar.days[language]:
                    assert day_path(day, language, "txt") in published
        finally:
            store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=entries_st, today=st.integers(-25, 3).map(lambda d: TODAY + timedelta(days=d)))
def test_day_lists_from_the_calendar_query_equal_the_days_with_entries(
    rows: list[tuple[int, str | None, str | None, tuple[tuple[str, str], ...], int, bool]], today: date
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "aggregator.db")
        try:
            store.apply(UpdatePlan(inserts=tuple(_entries(rows))))
            expected = publishing.days_by_language(store, today)
            assert publishing.days_from_counts(store.day_counts(), today) == expected
        finally:
            store.close()


@settings(max_examples=200, deadline=None)
@given(
    url=st.one_of(
        st.text(max_size=40).map(lambda s: "https://example.org/" + s),
        st.sampled_from(["http://[", "javascript:alert(1)", " http://a.example/", "ftp://a.example/"]),
        st.text(max_size=20),
    ),
    long=st.booleans(),
)
def test_remembered_link_checks_answer_as_the_checks_do(url: str, long: bool) -> None:
    """The per-publish caches (ordinary URLs remembered, long ones checked each time) change
    no answer: `safe_link` is the urlsplit scheme check, `public_url` is `strip_secrets`."""
    if long:
        url += "x" * common.CACHED_URL_LENGTH
    assert common.safe_link(url) == common._check_safe_link(url)
    assert common.safe_link(url) == common.safe_link(url)  # the remembered answer
    assert common.public_url(url) == strip_secrets(url)


@settings(max_examples=200, deadline=None)
@given(
    text_=st.text(alphabet="ab. …\u00a0", max_size=300),
    limits=st.lists(st.integers(1, 200), min_size=1, max_size=4),
)
def test_remembered_lede_cuts_are_the_cuts(text_: str, limits: list[int]) -> None:
    """A lede cut remembered on the entry's Publishable is the cut, for every length asked in
    any order; the memo is not part of the Publishable's equality."""
    safe = publishable(text_, "")
    for limit in [*limits, *reversed(limits)]:
        assert common.cut_of(safe, limit) == cut_lede(safe.lede_text, limit)
    assert set(safe.ledes) == set(limits)
    assert safe == publishable(text_, "")


def test_a_changed_days_neighbours_are_left_alone_while_their_links_to_it_hold(tmp_path: Path) -> None:
    """An incremental publish rebuilds a changed day's neighbours only when what links them to
    it changed: the day appeared, or its archive gained a page (the day before links the new
    last page). 50 new entries on a 40,000-entry day rebuilt the day before too (issue 15)."""
    cfg = config(tmp_path)
    cfg = cfg.model_copy(update={"site": replace(cfg.site, entries_per_page=3)})
    rows = [(back, "en", None, (), hour, True) for back, hour in [(-2, 1), (-2, 2), (-1, 1), (-1, 2)]]
    rows += [(0, "en", None, (), hour, True) for hour in range(1, 8)]  # today: 4, then 5, then 7
    made = _entries(rows)  # type: ignore[arg-type]
    store = CountingStore(tmp_path / "aggregator.db")
    digests = publishing.Digests()
    yesterday = TODAY - timedelta(days=1)
    try:
        store.apply(UpdatePlan(inserts=tuple(made[:8])))
        publishing.publish(store, cfg, tmp_path / "inc", now=NOW, digests=digests)
        for batch, neighbour_rebuilt in ((made[8:9], False), (made[9:11], True)):  # 2 pages; 3
            store.apply(UpdatePlan(inserts=tuple(batch)))
            store.index_reads.clear()
            report = publishing.publish(
                store, cfg, tmp_path / "inc", now=NOW, changed_days={TODAY}, digests=digests
            )
            assert not report.failed
            assert (yesterday in store.index_reads) is neighbour_rebuilt, store.index_reads
            assert TODAY in store.index_reads
            publishing.publish(store, cfg, tmp_path / "full", now=NOW)
            assert tree(tmp_path / "inc") == tree(tmp_path / "full")
    finally:
        store.close()
