"""Stored entries -> files under data/public/, written atomically.

Works per output (language x format) so later work can rebuild only what changed;
a file whose bytes did not change is not rewritten, so its Last-Modified and ETag hold.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin

from . import opml
from .config import Config
from .frontpages import frontpage, group_sections, translations_of
from .models import DayRows, StoredEntry
from .pages_plan import (
    ALL,
    ARCHIVE_INDEX,
    FORMATS,
    Calendar,
    archive_neighbours,
    day_path,
    index_path,
    page_count,
    page_stem,
)
from .render import FrontPage, Section, feeds, pages
from .render.common import section_order
from .settings import Site
from .store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one publish did: files rewritten, files left as they were (same bytes), and files
    that could not be rendered or written as (relative path, error in words): each of those
    keeps its last good version."""

    written: tuple[str, ...]
    unchanged: int
    failed: tuple[tuple[str, str], ...] = ()


def output_languages(config: Config) -> list[str]:
    return [*config.site.languages, "all"]


Render = Callable[[], bytes]
DIGEST_DAYS = 14  # items (days) in each daily digest feed


def entry_days(store: Store, language: str | None, today: date) -> list[date]:
    """Days with entries in `language` (None: any), oldest first, never after `today`."""
    return days_by_language(store, today).get(language or ALL, [])


def days_by_language(store: Store, today: date) -> dict[str, list[date]]:
    """Language code (and "all") -> its days with entries, oldest first, never after `today`."""
    per = store.days_with_entries(not_after=today)
    out: dict[str, list[date]] = {code: days for code, days in per.items() if code}
    out["all"] = sorted({d for days in per.values() for d in days})
    return out


def days_from_counts(rows: Iterable[tuple[date, str | None, int]], today: date) -> dict[str, list[date]]:
    """`days_by_language` from the calendar's rows (`Store.day_counts()`, oldest day first), so
    one grouped query serves the front pages' calendar and the day archives' lists."""
    out: dict[str, list[date]] = {}
    every: list[date] = []
    for day, language, n in rows:
        if n <= 0 or day > today:
            continue
        if language:
            out.setdefault(language, []).append(day)
        if not every or every[-1] != day:
            every.append(day)
    out[ALL] = every
    return out


def is_feed_path(rel: str) -> bool:
    """Whether a published path is a feed (what WebSub subscribers follow): entry feeds,
    daily digests and day archives in Atom, RSS or JSON Feed; not pages or `sources.opml`."""
    if rel.endswith((".atom", ".rss", ".feed.json")):
        return True
    return rel.endswith(".json") and rel.startswith(("feeds/", "daily/"))


def index_outputs(
    store: Store,
    config: Config,
    calendar: Calendar,
    language: str,
    today: date,
    now: datetime | None = None,
    reader: DayReader | None = None,
) -> dict[str, Render]:
    """The front page of one page language, path -> renderer: `index.*` (combined) or
    `{lang}/index.*`, showing the calendar's latest day (`Calendar.latest`): its first page
    in a language, or the combined page (capped per language); or the "No entries yet" page
    listing failing feeds. The three formats are rendered together once; if that fails, each
    of the three files fails alone (its last good version stays)."""
    shown = calendar.latest(language, today)
    read = reader or DayReader(store, config.site)

    def page() -> FrontPage:
        if shown is None:  # nothing stored: the empty page, with the failing feeds
            return frontpage(store, config.site, language, None, now=now, feeds=[f.key for f in config.feeds])
        index = read.index(shown)
        if language == ALL:
            return combined_page(store, config, index, read.firsts(index))
        size = config.site.entries_per_page
        return language_page(store, config, language, index, read.entries(index.seqs(language)[:size]), 1)

    return _page_files(
        lambda: pages.index_outputs(page(), config.site, calendar),
        (index_path(language, ext) for ext in FORMATS),
    )


def language_page(
    store: Store, config: Config, language: str, index: DayIndex, entries: list[StoredEntry], number: int
) -> FrontPage:
    """Page `number` of a language's page of `index.day`: `entries` are that page's (the
    `site.entries_per_page` entries from (number - 1) x that many, newest first)."""
    site = config.site
    return FrontPage(
        day=index.day,
        language=language,
        sections=(Section(language, tuple(entries)),) if entries else (),
        also_in=translations_of(store, entries, site.languages),
        page=number,
        pages=page_count(index.count(language), site.entries_per_page),
    )


def combined_page(store: Store, config: Config, index: DayIndex, firsts: list[StoredEntry]) -> FrontPage:
    """The combined page of `index.day` from `firsts`, the day's first
    `site.frontpage_per_language` entries of each language (newest first within a language:
    what the page shows), and the day's counts: sections in site.languages order, other
    languages by code, unknown last, each with its total for the "N more" line."""
    shown = [
        Section(section.language, section.entries, index.count(section.language))
        for section in group_sections(firsts, config.site, ALL)
    ]
    capped = [e for section in shown for e in section.entries[: config.site.frontpage_per_language]]
    return FrontPage(
        day=index.day,
        language=ALL,
        sections=tuple(shown),
        also_in=translations_of(store, capped, config.site.languages),
    )


def site_wide_outputs(store: Store, config: Config, calendar: Calendar) -> dict[str, Render]:
    """The archive index (`archive/index.html`, `.json`) and `sources.opml` (every configured
    feed, grouped by language, with the titles the feeds gave; stable bytes)."""
    site = config.site
    index = _once(lambda: pages.archive_outputs(site, calendar))
    titles = _once(lambda: {url: s.title for url, s in store.feed_states().items() if s.title})
    return {
        ARCHIVE_INDEX: _part(index, ARCHIVE_INDEX),
        "archive/index.json": _part(index, "archive/index.json"),
        "sources.opml": lambda: opml.sources_opml(site, config.feeds, titles(), public=True),
    }


def _part(group: Callable[[], dict[str, bytes]], path: str) -> Render:
    return lambda: group()[path]


def _page_files(make: Callable[[], dict[str, bytes]], paths: Iterable[str]) -> dict[str, Render]:
    """The renderers of one page's files (`paths`, one per format): `make` renders them all
    once, and each file fails alone (its last good version stays)."""
    group = _once(make)
    return {path: _part(group, path) for path in paths}


def feed_outputs(
    store: Store,
    config: Config,
    language: str,
    days: list[date],
    digest_entries: DigestEntries | None = None,
    digests: Digests | None = None,
    calendar: Calendar | None = None,
    elements: feeds.Elements | None = None,
) -> dict[str, Render]:
    """The entry feeds `feeds/{language}.*` (with `prev-archive` to the newest day archive) and
    the daily digests `daily/{language}.*`. `digest_entries` shares what each day's digest
    items list with the day archives and the other languages, so a day is read once;
    `digests` (with the `calendar`, whose counts it checks) gives the items of unchanged days
    from an earlier publish; `elements` shares the Atom and RSS entries made with the other
    languages' feeds."""
    site = config.site
    lang = None if language == "all" else language
    read = digest_entries or DigestEntries(DayReader(store, site), site)
    latest = _once(lambda: feeds.entry_items(store.latest(lang, site.entries_per_feed), site, language))
    prev = urljoin(str(site.base_url), page_stem(days[-1], language) + ".atom") if days else None
    meta = feeds.entry_feed_meta(site, language, prev)

    def make(day: date) -> feeds.FeedItem | None:
        shown, hidden = read(day, language)
        return feeds.digest_item(day, shown, site, language, hidden)

    def digest() -> list[feeds.FeedItem]:
        items = []
        for day in days[::-1][:DIGEST_DAYS]:
            if digests is not None and calendar is not None:
                item = digests.item(day, language, calendar.count(day, language), make)
            else:
                item = make(day)
            if item is not None:
                items.append(item)
        return items

    digest_items = _once(digest)
    daily = feeds.daily_feed_meta(site, language)
    made = feeds.Elements() if elements is None else elements
    return {
        f"feeds/{language}.atom": lambda: feeds.atom_document(meta, latest(), made),
        f"feeds/{language}.rss": lambda: feeds.rss_document(meta, latest(), made),
        f"feeds/{language}.json": lambda: feeds.json_document(meta, latest(), made).encode(),
        f"daily/{language}.atom": lambda: feeds.atom_document(daily, digest_items(), made),
        f"daily/{language}.rss": lambda: feeds.rss_document(daily, digest_items(), made),
        f"daily/{language}.json": lambda: feeds.json_document(daily, digest_items(), made).encode(),
    }


class Digests:
    """The daily digests' items, one per (day, language), kept by the caller from one publish
    to the next (the service's `schedule.Publisher`), so that an incremental publish makes
    only the items of changed days: making the 84 items of a five-language site read 14 days
    of entries and was half of an incremental publish (docs/benchmarks.md, issue 13).

    An item is reused only when its day is not in the publish's `changed_days`, the site
    settings are equal to those it was made under, and the calendar still counts as many
    entries of its language that day as when it was made (entries stored by another process
    without telling the publisher are seen that way). A full rebuild (`changed_days` None)
    makes every item anew. Items of days no longer in a digest are dropped.

    It also keeps what the last publish linked day pages and day archives by (`links`): the
    days of each language and their pages, so an incremental publish rebuilds a changed day's
    neighbours only when their links to it changed (`_around`)."""

    def __init__(self) -> None:
        self.site: Site | None = None
        self.changed: frozenset[date] = frozenset()
        self.items: dict[tuple[date, str], tuple[int, feeds.FeedItem | None]] = {}
        self.made = 0  # items made rather than reused, in all publishes so far
        self.links: Links | None = None  # the last publish's, None after a failed or partial one

    def begin(
        self, site: Site, changed_days: Collection[date] | None, window: Collection[tuple[date, str]]
    ) -> None:
        """Start a publish: forget what `site`'s change or a full rebuild makes stale, and the
        items outside `window` (the (day, language) pairs this publish's digests hold)."""
        if changed_days is None or site != self.site:
            self.items.clear()
            self.links = None
        self.site = site
        self.changed = frozenset(changed_days or ())
        keep = set(window)
        for key in [k for k in self.items if k not in keep]:
            del self.items[key]

    def item(
        self, day: date, language: str, count: int, make: Callable[[date], feeds.FeedItem | None]
    ) -> feeds.FeedItem | None:
        """The digest item of (`day`, `language`): the kept one if still good, else `make(day)`
        (kept for the next publish). `count`: the day's entries in `language` now."""
        kept = self.items.get((day, language))
        if kept is not None and kept[0] == count and day not in self.changed:
            return kept[1]
        made = make(day)
        self.items[(day, language)] = (count, made)
        self.made += 1
        return made


def archive_outputs(
    config: Config,
    language: str,
    days: list[date],
    i: int,
    today: date,
    items: Callable[[], list[feeds.FeedItem]],
    elements: feeds.Elements | None = None,
    page: int = 1,
    counts: Callable[[date], int] | None = None,
) -> dict[str, Render]:
    """Page `page` of day archive `archive/YYYY/MM/DD/{language}.atom` and `.feed.json` (further
    pages `{language}.{page}.atom`) for `days[i]`, holding `items`. RFC 5005: prev/next archive
    are the day's neighbouring pages, then the neighbouring days with entries
    (`pages_plan.archive_neighbours`); a day before today is complete. `counts(day)`: the day's
    entries in `language`, for its number of pages (None: every day one page). `elements`: the
    Atom entries and JSON Feed items made for the day's other archives (`feeds.Elements`)."""
    site = config.site
    day = days[i]

    def pages_of(d: date) -> int:
        return page_count(counts(d), site.entries_per_page) if counts else 1

    older, newer = archive_neighbours(
        day,
        page,
        pages_of(day),
        (days[i - 1], 1) if i > 0 else None,
        (days[i + 1], pages_of(days[i + 1])) if i + 1 < len(days) else None,
    )
    meta = feeds.archive_feed_meta(
        site, language, day, older, newer, complete=day < today, page=page, pages=pages_of(day)
    )
    path = page_stem(day, language, page)
    return {
        f"{path}.atom": lambda: feeds.atom_document(meta, items(), elements),
        f"{path}.feed.json": lambda: feeds.json_document(meta, items(), elements).encode(),
    }


def publish(
    store: Store,
    config: Config,
    public_dir: Path,
    now: datetime | None = None,
    changed_days: Collection[date] | None = None,
    digests: Digests | None = None,
) -> PublishReport:
    """Render and write every output under `public_dir`; each file alone.

    A file whose renderer or write raises keeps its last good version; the error is logged and
    returned in `PublishReport.failed`; every other file is still written. `changed_days`
    (days in site.timezone whose entries changed since the last publish) limits the day
    archives rebuilt to those days and their neighbours (whose prev/next links may change);
    None rebuilds everything. Entry feeds, digests and latest pages are always rebuilt (an
    unchanged file is not rewritten). `digests`, kept by the caller across publishes of one
    store, spares remaking the digest items of days not in `changed_days` (`Digests`)."""
    site = config.site
    now = now or datetime.now(UTC)
    today = now.astimezone(site.zone).date()
    written: list[str] = []
    failed: list[tuple[str, str]] = []
    unchanged = 0

    def emit(outputs: dict[str, Render]) -> None:
        nonlocal unchanged
        for rel, make in outputs.items():
            try:
                data = make()
                fresh = write_atomic(public_dir / rel, data)
                del data  # a day archive can be 100 MB: not alive while the next one is made
                if fresh:
                    written.append(rel)
                else:
                    unchanged += 1
            except Exception as exc:  # a failing output costs that file, never the run
                words = failure_words(exc)
                if isinstance(exc, OSError):  # the disk's answer, not a bug: no traceback but with -v
                    log.warning("publishing %s failed; its last good version stays: %s", rel, words)
                    log.debug("publishing %s failed", rel, exc_info=True)
                else:
                    log.exception("publishing %s failed; its last good version stays", rel)
                failed.append((rel, words))

    languages = output_languages(config)
    try:
        counts: list[tuple[date, str | None, int]] | None = store.day_counts()
    except Exception as exc:  # no calendar, no day lists; the entry feeds still go out
        log.exception("reading the calendar of days with entries failed")
        failed.append(("archive/", f"{type(exc).__name__}: {exc}"))
        failed.append(("archive/index.html", f"{type(exc).__name__}: {exc}"))
        counts = None
    # One grouped query serves both: the pages' calendar includes days a little ahead of the
    # clock (normalise accepts entries up to a day early): their pages exist, their archive
    # feeds come on the day.
    known = days_from_counts(counts, today) if counts is not None else {}
    calendar = Calendar.from_counts(counts, site.languages) if counts is not None else None
    days_of = {language: known.get(language, []) for language in languages}
    # A day is read as its index (ids and languages) and then a page of entries at a time;
    # the digests keep what their items list (capped per language, `DigestEntries`), taken
    # from the day loop's read of each day. Memory is then a few pages of entries, whatever a
    # day holds and the digests span (issue 15: 14 days kept whole held 450 MB at 2,500 entries
    # a day, and one day of 40,000 entries 3 GB).
    shown = (calendar.latest(language, today) for language in calendar.page_languages()) if calendar else ()
    reader = DayReader(store, site, keep={d for d in shown if d is not None})
    digest_entries = DigestEntries(reader, site)
    digest_days = set().union(*(days[-DIGEST_DAYS:] for days in days_of.values()))
    if digests is not None:
        window = {(d, language) for language in languages for d in days_of[language][-DIGEST_DAYS:]}
        digests.begin(site, changed_days if calendar is not None else None, window)
    if calendar is not None:
        for language in languages:
            emit(index_outputs(store, config, calendar, language, today, now, reader))
        emit(site_wide_outputs(store, config, calendar))

    # Day pages and day archives, day by day: every day, or the changed days and their
    # neighbours (prev/next links). One pass over a day serves its pages in every language and
    # its archives; one rendering of each item, and one Atom entry per item, serve the combined
    # archive and its language's (`publish_day`).
    page_days: dict[str, set[date]] = {}
    before = digests.links if digests is not None else None
    links = Links.of(calendar, days_of, site.entries_per_page) if calendar is not None else None
    if digests is not None:
        digests.links = None  # until this publish is done: a failure leaves no stale links
    if calendar is not None and links is not None:
        for language in calendar.page_languages():
            page_days[language] = _around(
                list(calendar.days.get(language, ())),
                changed_days,
                before.pages.get(language) if before else None,
                links.pages.get(language),
            )
    wanted = {
        language: _around(
            days_of[language],
            changed_days,
            before.archives.get(language) if before else None,
            links.archives.get(language) if links else None,
        )
        for language in languages
    }
    for day in sorted(set().union(*page_days.values(), *wanted.values())):
        if calendar is None:  # no calendar, no days (for the type checker)
            break
        publish_day(
            emit,
            store,
            config,
            calendar,
            reader,
            day,
            {language for language, days in page_days.items() if day in days},
            {language for language in languages if day in wanted[language]},
            days_of,
            today,
            digest_entries if day in digest_days else None,
        )
    # The entry feeds and digests last: the day loop has taken each digest day's lists (an
    # incremental publish reads only the days whose items must be made again).
    elements = feeds.Elements()  # the entry feeds' and digests' Atom and RSS entries
    for language in languages:
        emit(
            feed_outputs(
                store, config, language, days_of[language], digest_entries, digests, calendar, elements
            )
        )
    _stamp(public_dir, config, today, whole=changed_days is None, failed=bool(failed))
    if digests is not None and not failed:
        digests.links = links
    return PublishReport(tuple(written), unchanged, tuple(failed))


def publish_day(
    emit: Callable[[dict[str, Render]], None],
    store: Store,
    config: Config,
    calendar: Calendar,
    reader: DayReader,
    day: date,
    page_languages: Collection[str],
    archive_languages: Collection[str],
    days_of: Mapping[str, list[date]],
    today: date,
    digest_entries: DigestEntries | None = None,
) -> None:
    """Emit one day's pages (the languages in `page_languages`; "all" is the combined page) and
    day archives (`archive_languages`, "all" included), page by page (`site.entries_per_page`),
    from one pass over the day: its index, then its entries a page at a time, language by
    language in the combined page's order (which the combined archive follows too), each made
    into a feed item once for its language's archive and the combined one. Memory is two pages
    of entries whatever the day holds. `digest_entries`: given the day's first entries of each
    language for the digests, from the same read."""
    site = config.site
    size = site.entries_per_page
    index = reader.index(day)
    own = {code for code in (*page_languages, *archive_languages) if code != ALL}
    all_archive = ALL in archive_languages
    wants_firsts = ALL in page_languages or digest_entries is not None
    first_order = index.first_seqs(site.frontpage_per_language) if wants_firsts else []
    first_seqs = set(first_order)
    firsts_by_seq: dict[int | None, StoredEntry] = {}
    buffers: dict[str, list[tuple[StoredEntry, feeds.FeedItem | None]]] = {}
    numbers: dict[str, int] = {}
    elements = feeds.Elements()  # each entry's Atom and JSON Feed forms, until both archives have it
    uses: dict[feeds.FeedItem, int] = {}

    def counts(language: str) -> Callable[[date], int]:
        return lambda d: index.count(language) if d == day else calendar.count(d, language)

    def flush(language: str) -> None:
        chunk = buffers.pop(language, [])
        number = numbers[language] = numbers.get(language, 0) + 1
        if language != ALL and language in page_languages:
            page = language_page(store, config, language, index, [e for e, _ in chunk], number)
            emit(
                _page_files(
                    lambda: pages.day_outputs(page, site, calendar),
                    (day_path(day, language, ext, number) for ext in FORMATS),
                )
            )
        if language in archive_languages:
            items = [it for _, it in chunk if it is not None]
            days = days_of[language]
            i = bisect.bisect_left(days, day)
            emit(
                archive_outputs(
                    config, language, days, i, today, lambda: items, elements, number, counts(language)
                )
            )
            for it in items:
                uses[it] -= 1
                if not uses[it]:
                    del uses[it]
                    elements.forget(it)

    def add(language: str, entry: StoredEntry, item: feeds.FeedItem | None) -> None:
        buffer = buffers.setdefault(language, [])
        buffer.append((entry, item))
        if len(buffer) >= size:
            flush(language)

    # Language by language, in the combined page's section order: a language's pages and the
    # combined archive's fill together, so at most two pages of entries are alive (in the
    # day's order, each language's page would wait while the others' filled: six pages).
    for code in section_order(index.counts, site.languages):
        seqs: Sequence[int] = index.seqs(code)
        if not (all_archive or code in own):  # only what the combined page and digests show
            seqs = seqs[: site.frontpage_per_language] if wants_firsts else ()
        for start in range(0, len(seqs), size):
            for e in reader.entries(seqs[start : start + size]):
                if e.seq in first_seqs:
                    firsts_by_seq[e.seq] = e
                archived = all_archive + (e.language in archive_languages)
                item = feeds.entry_item_or_none(e, site, ALL) if archived else None
                if item is not None:
                    uses[item] = uses.get(item, 0) + archived
                if e.language in own:
                    add(e.language, e, item)
                if all_archive:
                    add(ALL, e, item)
        if code in buffers:  # the language's last page, before the next language's come
            flush(code)
    for language in list(buffers):
        flush(language)
    # The day's order, as the digests list them (one deleted since the index was read is left out).
    firsts = [firsts_by_seq[s] for s in first_order if s in firsts_by_seq]
    if ALL in page_languages:
        page = combined_page(store, config, index, firsts)
        emit(
            _page_files(
                lambda: pages.day_outputs(page, site, calendar), (day_path(day, ALL, ext) for ext in FORMATS)
            )
        )
    if digest_entries is not None:
        digest_entries.take(day, firsts)


class DayIndex:
    """One day's entries without their text (`DayRows`: seq and language, newest first), with
    its count of each language. A publish reads a day's index whole (ten bytes an entry) and
    its entries a page at a time (issue 15: a day read whole held 3 GB at 10,000 feeds)."""

    def __init__(self, day: date, rows: DayRows) -> None:
        self.day = day
        self.rows = rows
        found = Counter(rows.codes)
        self.counts: dict[str | None, int] = {rows.languages[code]: n for code, n in found.items()}

    def count(self, language: str | None) -> int:
        """Entries in `language` ("all": every language; None: unknown)."""
        return len(self.rows) if language == ALL else self.counts.get(language, 0)

    def seqs(self, language: str | None) -> Sequence[int]:
        """The seqs of `language`'s entries ("all": every one; None: unknown), newest first."""
        rows = self.rows
        if language == ALL:
            return rows.seqs
        if language not in rows.languages:
            return ()
        code = rows.languages.index(language)
        return array("q", (seq for seq, c in zip(rows.seqs, rows.codes, strict=True) if c == code))

    def first_seqs(self, limit: int) -> list[int]:
        """The first `limit` seqs of each language, in the day's order: what the combined page
        and the digests show."""
        seen = [0] * len(self.rows.languages)
        out = []
        for seq, code in zip(self.rows.seqs, self.rows.codes, strict=True):
            seen[code] += 1
            if seen[code] <= limit:
                out.append(seq)
        return out


class DayReader:
    """Day indexes and entries for one publish: the indexes of the days in `keep` (the front
    pages') and of the day asked last are kept (a publish goes day by day); entries are read
    by seq and given back in the order asked."""

    def __init__(self, store: Store, site: Site, keep: Collection[date] = ()) -> None:
        self.store = store
        self.site = site
        self.keep = set(keep)
        self.kept: dict[date, DayIndex] = {}
        self.last: DayIndex | None = None

    def index(self, day: date) -> DayIndex:
        if self.last is not None and self.last.day == day:
            return self.last
        found = self.kept.get(day)
        if found is None:
            found = DayIndex(day, self.store.day_index(day))
            if day in self.keep:
                self.kept[day] = found
        self.last = found
        return found

    def entries(self, seqs: Sequence[int]) -> list[StoredEntry]:
        """The entries of `seqs`, in that order (one deleted since the index was read is left
        out)."""
        if not seqs:
            return []
        by_seq = {e.seq: e for e in self.store.entries_by_seq(seqs)}
        return [by_seq[s] for s in seqs if s in by_seq]

    def firsts(self, index: DayIndex) -> list[StoredEntry]:
        """The day's first `site.frontpage_per_language` entries of each language, in the
        day's order."""
        return self.entries(index.first_seqs(self.site.frontpage_per_language))


class DigestEntries:
    """What the digest items of each day list (`feeds.digest_entries`: capped per language,
    and how many were left out), for every output language at once, from the day's index and
    its first entries of each language; only these are kept, never the day's other entries.

    `take(day, firsts)` fills a day from what the publish's day loop read; calling the object
    with (day, language) gives that language's lists, reading the day's first entries when
    nothing took it (an incremental publish's unchanged days, whose items must be made again
    only when `Digests` cannot reuse them)."""

    def __init__(self, reader: DayReader, site: Site) -> None:
        self.reader = reader
        self.site = site
        self.days: dict[date, dict[str, tuple[list[StoredEntry], feeds.Hidden]]] = {}

    def take(self, day: date, firsts: list[StoredEntry] | None = None) -> None:
        if day in self.days:
            return
        index = self.reader.index(day)
        entries = self.reader.firsts(index) if firsts is None else firsts
        counts = index.counts
        languages = {ALL, *self.site.languages, *(code for code in counts if code)}
        self.days[day] = {code: feeds.digest_entries(entries, code, self.site, counts) for code in languages}

    def __call__(self, day: date, language: str) -> tuple[list[StoredEntry], feeds.Hidden]:
        self.take(day)
        return self.days[day].get(language) or ([], ())


NEW_DAY_SPAN = 31  # days: a longer gap since the last publish (a suspended machine) rebuilds all


def days_to_rebuild(
    touched: Collection[date], last_today: date | None, today: date
) -> frozenset[date] | None:
    """What an incremental publish passes as `changed_days`: the days whose entries changed
    since the last publish (`touched`), plus, when the day changed since that publish (in
    site.timezone), the old "today", the new one and any day between (their "latest" and
    "complete" marks move: RFC 5005 archives of days before today are complete). None (rebuild
    everything) when this process never published (`last_today` None) or the gap exceeds
    NEW_DAY_SPAN days."""
    if last_today is None:
        return None
    days = set(touched)
    if today != last_today:
        gap = (today - last_today).days
        if abs(gap) > NEW_DAY_SPAN:
            return None
        step = 1 if gap > 0 else -1
        days.update(last_today + timedelta(days=i) for i in range(0, gap + step, step))
    return frozenset(days)


@dataclass(frozen=True)
class Links:
    """What a publish linked days by, language -> day -> what a neighbour's link to that day
    depends on. `pages`: the day pages link the previous and next day by date, so only that
    the day exists (1). `archives`: a day archive's RFC 5005 next-archive leads to the next
    newer day's last page, so also the day's number of pages (`pages_plan.page_count`)."""

    pages: Mapping[str, Mapping[date, int]]
    archives: Mapping[str, Mapping[date, int]]

    @classmethod
    def of(cls, calendar: Calendar, days_of: Mapping[str, list[date]], size: int) -> Links:
        return cls(
            {code: dict.fromkeys(calendar.days.get(code, ()), 1) for code in calendar.page_languages()},
            {
                code: {d: page_count(calendar.count(d, code), size) for d in days}
                for code, days in days_of.items()
            },
        )


def _around(
    days: list[date],
    changed: Collection[date] | None,
    before: Mapping[date, int] | None = None,
    after: Mapping[date, int] | None = None,
) -> set[date]:
    """The days of `days` to rebuild: those in `changed` and the days next to each, whose
    prev/next links may have changed (a day that gained its first entry is new in `days`,
    between two old ones; a day archive that gained a page is linked by its older neighbour
    at its new last page). `before`/`after`: day -> what links to it depend on, at the last
    publish and now (`Links`); with both, a changed day's neighbours are left alone when the day was
    there before with as many pages, so 50 new entries on a 40,000-entry day rebuild that day
    and not the one before it (issue 15, incremental publish)."""
    if changed is None:
        return set(days)
    wanted: set[date] = set()
    for day in changed:
        # `days` is sorted; a changed day no longer in it (its last entry in this language was
        # relabelled) still changes its old neighbours' links, which now meet.
        i = bisect.bisect_left(days, day)
        present = i < len(days) and days[i] == day
        if present and before is not None and after is not None and before.get(day) == after.get(day):
            wanted.add(day)  # there before, with as many pages: what links to it is unchanged
            continue
        wanted.update(days[max(i - 1, 0) : i + (2 if present else 1)])
    return wanted


def _once(make: Callable[[], T]) -> Callable[[], T]:
    """`make` evaluated on first call only (outputs of one group share one store read)."""
    box: list[T] = []

    def get() -> T:
        if not box:
            box.append(make())
        return box[0]

    return get


STAMP_FILE = ".published.json"  # a dot file: never served (serve.py)
_RENDERERS = ("feedgen", "nh3", "babel", "lxml", "langcodes")  # their versions shape the bytes


@functools.cache
def _code_digest() -> str:
    """This program's source files and its renderers' versions, hashed: outputs made by other
    code may differ in any file, so they are never updated incrementally."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.relative_to(Path(__file__).parent).as_posix().encode() + b"\0" + path.read_bytes())
    for name in _RENDERERS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            h.update(f"{name}={importlib.metadata.version(name)}".encode())
    return h.hexdigest()


def build_stamp(config: Config) -> str:
    """What every output depends on besides the stored entries: this code (`_code_digest`)
    and the whole configuration (site settings, feed names and languages show on day pages).
    A hex digest; equal stamps mean a full rebuild would make the same files from the same
    entries."""
    return hashlib.sha256(f"{_code_digest()}|{config.model_dump_json()}".encode()).hexdigest()


def _stamp(public_dir: Path, config: Config, today: date, *, whole: bool, failed: bool) -> None:
    """Record in `public_dir` what the tree was made by and for which "today", after a whole
    rebuild that failed nowhere (then an incremental publish may follow: `owed_changes`);
    keep it up to date after a good incremental one; remove it when files failed (they keep
    older versions: the next publish must be whole)."""
    path = public_dir / STAMP_FILE
    try:
        if failed:
            path.unlink(missing_ok=True)
        elif whole or _read_stamp(public_dir)[0] == build_stamp(config):
            doc = {"stamp": build_stamp(config), "today": today.isoformat()}
            write_atomic(path, json.dumps(doc).encode())
    except OSError as e:  # only costs the next publish being whole
        log.warning("could not record the publish stamp %s: %s", path, e)


def _read_stamp(public_dir: Path) -> tuple[str | None, date | None]:
    try:
        doc = json.loads((public_dir / STAMP_FILE).read_bytes())
        return str(doc["stamp"]), date.fromisoformat(doc["today"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def owed_changes(
    store: Store, config: Config, public_dir: Path, now: datetime
) -> tuple[frozenset[date], frozenset[date] | None]:
    """For a publish by a process that did not make the last one (`fetch`): the days the store
    says are owed (taken from it: give them back with `store.mark_unpublished` if the publish
    fails), and the `changed_days` to publish with: None (everything) unless `public_dir` was
    last published whole, successfully, by this code with this configuration, and its index
    pages are there (`days_to_rebuild` from the "today" recorded then)."""
    owed = store.take_unpublished()
    stamp, last_today = _read_stamp(public_dir)
    present = all((public_dir / page).is_file() for page in ("index.html", ARCHIVE_INDEX))
    if stamp != build_stamp(config) or not present:
        return owed, None
    today = now.astimezone(config.site.zone).date()
    return owed, days_to_rebuild(owed, last_today, today)


def nothing_to_publish(store: Store, config: Config, changed_days: frozenset[date] | None) -> bool:
    """Whether a publish with these `changed_days` (from `owed_changes`) would rewrite nothing:
    none owed and the same "today" (an empty set, not None), and every language's page shows
    entries. A language without entries shows "No entries yet" and the failing feeds, which a
    poll may have changed without touching any day."""
    if changed_days is None or changed_days:
        return False
    counts = store.language_counts()
    return all(counts.get(code, 0) > 0 for code in config.site.languages) and sum(counts.values()) > 0


def failure_words(exc: BaseException) -> str:
    """Why an output failed, the same for the same cause: an OSError by its class and the
    system's words, without the file names it carries (a temporary file's name is random, and
    the Publisher logs once per distinct reason: audit of issue 11); else class and message."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _holds(path: Path, data: bytes, chunk: int = 1 << 20) -> bool:
    """Whether the file at `path` holds exactly `data`, read a MiB at a time (not a second
    copy of a day archive in memory)."""
    view = memoryview(data)
    with path.open("rb") as f:
        for start in range(0, len(view), chunk):
            if f.read(chunk) != view[start : start + chunk]:
                return False
        return not f.read(1)


def write_atomic(path: Path, data: bytes) -> bool:
    """Write via a temporary file and rename, so readers never see half a file; the directory
    is made when missing. Returns False (and touches nothing) when the file already holds
    these bytes."""
    try:
        if path.stat().st_size == len(data) and _holds(path, data):
            return False
    except FileNotFoundError:
        pass
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:
        # Made only when missing: a publish writes 30 files into each day's directory, and
        # asking to make one that exists took 70 us a file on a busy disk (docs/benchmarks.md).
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, 0o644)
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        # No fsync: the rename is atomic for readers and survives the process being killed;
        # after a power cut a file may come back empty, and the next publish rewrites it
        # (outputs are derived from the store, and any file whose bytes differ is rewritten).
        # An fsync per file cost 6 ms each, most of a full rebuild (docs/benchmarks.md).
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
