"""Which front pages exist and how they link: days per language, the latest day, previous and
next, and where each page lives in the published tree. Pure: plain data in, plain data out.

A front page exists for a (day, language) when at least one stored entry of that language has
that day (its publication date in `site.timezone`); the combined page ("all") of a day exists
when any entry has that day. Everything here is computed from one list of `DayCount` rows
(`Store.day_counts()`), so the whole calendar of a 100,000-entry store costs one grouped query.
"""

from __future__ import annotations

import posixpath
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import NamedTuple

ALL = "all"  # the combined page's "language"
FORMATS = ("html", "txt", "json")


class DayCount(NamedTuple):
    """`entries` entries of `language` (primary subtag; None: unknown) on `day`: one row of
    `Store.day_counts()`."""

    day: date
    language: str | None
    entries: int


@dataclass(frozen=True, slots=True)
class Calendar:
    """The days that have front pages, per page language ("all" and each site language).

    `days[lang]` is sorted oldest first; `counts[(day, lang)]` is the number of entries on that
    page before any cap. Languages outside the site's own count towards "all" only, since only
    site languages have pages of their own."""

    languages: tuple[str, ...]  # site.languages, in order
    days: dict[str, tuple[date, ...]] = field(default_factory=dict)
    counts: dict[tuple[date, str], int] = field(default_factory=dict)

    @classmethod
    def from_counts(cls, rows: Iterable[tuple[date, str | None, int]], languages: Sequence[str]) -> Calendar:
        """From (day, language, count) rows (`Store.day_counts()`) and site.languages."""
        counts: dict[tuple[date, str], int] = {}
        site = set(languages)
        for day, language, n in rows:
            if n <= 0:
                continue
            counts[(day, ALL)] = counts.get((day, ALL), 0) + n
            if language in site:
                counts[(day, language)] = counts.get((day, language), 0) + n
        days: dict[str, list[date]] = {lang: [] for lang in (*languages, ALL)}
        for day, lang in counts:
            days[lang].append(day)
        return cls(
            languages=tuple(languages),
            days={lang: tuple(sorted(ds)) for lang, ds in days.items()},
            counts=counts,
        )

    def page_languages(self) -> tuple[str, ...]:
        """Every page language: the site's, then "all"."""
        return (*self.languages, ALL)

    def count(self, day: date, language: str) -> int:
        return self.counts.get((day, language), 0)

    def exists(self, day: date, language: str) -> bool:
        return (day, language) in self.counts

    def latest(self, language: str, today: date) -> date | None:
        """The page `index.*` shows: the newest day with entries in `language` that is not after
        `today` (the current day in site.timezone). Entries up to a day ahead of the clock are
        accepted by normalise, so a later day can exist; it is reachable as "next day" and is
        the front page before its time only when no earlier day exists: a page must never say
        "No entries yet" while the feeds list entries (issue 12)."""
        days = self.days.get(language, ())
        i = bisect_right(days, today)
        if i:
            return days[i - 1]
        return days[0] if days else None

    def previous(self, day: date, language: str) -> date | None:
        """The nearest earlier day with a page in `language` (days without entries are skipped)."""
        days = self.days.get(language, ())
        i = bisect_left(days, day)
        return days[i - 1] if i else None

    def next(self, day: date, language: str) -> date | None:
        """The nearest later day with a page in `language`."""
        days = self.days.get(language, ())
        i = bisect_right(days, day)
        return days[i] if i < len(days) else None

    def months(self) -> list[tuple[tuple[int, int], list[date]]]:
        """((year, month), days newest first) for every month with a combined page, newest first."""
        by_month: dict[tuple[int, int], list[date]] = {}
        for day in reversed(self.days.get(ALL, ())):
            by_month.setdefault((day.year, day.month), []).append(day)
        return sorted(by_month.items(), reverse=True)


# -- where pages live ------------------------------------------------------------------------
def day_path(day: date, language: str, ext: str, page: int = 1) -> str:
    """'archive/2023/01/17/en.html': one day's page in one language (or "all"); its further
    pages (`page_count`) are 'archive/2023/01/17/en.2.html' and on."""
    return f"{page_stem(day, language, page)}.{ext}"


def page_stem(day: date, language: str, page: int = 1) -> str:
    """'archive/2023/01/17/en', 'archive/2023/01/17/en.2': page `page` of a day in a language
    without its extension (a language code holds no dot), shared by its pages and archives."""
    return f"{day_dir(day)}/{language}" if page == 1 else f"{day_dir(day)}/{language}.{page}"


def page_count(entries: int, size: int) -> int:
    """Pages of at most `size` entries that `entries` fill; a day always has its first page.

    >>> page_count(0, 1000), page_count(1000, 1000), page_count(1001, 1000)
    (1, 1, 2)
    """
    return max(1, -(-entries // size))


PageRef = tuple[date, int]  # (day, page number from 1)


def archive_neighbours(
    day: date, page: int, pages: int, previous: PageRef | None, following: PageRef | None
) -> tuple[PageRef | None, PageRef | None]:
    """(prev-archive, next-archive) of page `page` of `pages` of a day archive (RFC 5005
    section 4: prev-archive is the next older document, next-archive the next newer one).

    A day's pages hold its entries newest first, so within a day the older neighbour is the
    next page; the last page's older neighbour is the `previous` day's first page, and the
    first page's newer neighbour is the `following` day's last page (both as (day, pages of
    that day), or None). Walking prev-archive from the newest day's first page visits every
    page of every day, newest first.

    >>> from datetime import date
    >>> archive_neighbours(date(2023, 1, 17), 1, 2, None, (date(2023, 1, 18), 3))
    ((datetime.date(2023, 1, 17), 2), (datetime.date(2023, 1, 18), 3))
    >>> archive_neighbours(date(2023, 1, 17), 2, 2, (date(2023, 1, 16), 4), None)
    ((datetime.date(2023, 1, 16), 1), (datetime.date(2023, 1, 17), 1))
    """
    older = (day, page + 1) if page < pages else ((previous[0], 1) if previous else None)
    newer = (day, page - 1) if page > 1 else following
    return older, newer


@lru_cache(maxsize=8192)
def day_dir(day: date) -> str:
    """'archive/2023/01/17': where a day's pages and archives are. Formatted once a day (every
    page links a dozen days' pages, and strftime is slow)."""
    return f"archive/{day:%Y/%m/%d}"


def index_path(language: str, ext: str) -> str:
    """'index.html' for the combined page, 'en/index.html' for a language's latest day."""
    return f"index.{ext}" if language == ALL else f"{language}/index.{ext}"


def index_dir(language: str) -> str:
    """The directory URL of a language's front page ('' for the combined one, 'en/' else)."""
    return "" if language == ALL else f"{language}/"


ARCHIVE_INDEX = "archive/index.html"


def relative(from_file: str, to: str) -> str:
    """A relative link from the published file `from_file` to `to` (a file, or a directory
    ending in '/', '' being the root), so the tree works at '/', under a prefix, and from disk.

    >>> relative("archive/2023/01/17/en.html", "feeds/en.atom")
    '../../../../feeds/en.atom'
    >>> relative("index.html", "en/")
    'en/'
    >>> relative("en/index.html", "")
    '../'
    """
    return relative_from(posixpath.dirname(from_file), to)


@lru_cache(maxsize=4096)
def relative_from(start_dir: str, to: str) -> str:
    """`relative` from a file in the directory `start_dir` ('' for the root), for a page that
    makes many links: its directory is found once."""
    # Pure string work on tree paths (posixpath.relpath would consult the process's cwd).
    here = [p for p in start_dir.split("/") if p]
    is_dir = to == "" or to.endswith("/")
    there = [p for p in to.split("/") if p]
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    parts = [".."] * (len(here) - common) + there[common:]
    if is_dir:
        return "/".join(parts) + "/" if parts else "./"
    return "/".join(parts)


def pages_to_rebuild(
    before: Calendar, after: Calendar, touched: Iterable[tuple[date, str | None]]
) -> set[tuple[date, str]]:
    """The (day, page language) archive pages whose bytes can differ after entries of the
    `touched` (day, entry language) pairs were inserted or changed, `before` and `after` being
    the calendars either side. Besides those days' own pages (the language's and "all"): when a
    page appears (or goes), its neighbours' previous/next links and that day's language links
    on the other languages' pages change too. The front pages (`index.*`) and the archive index
    are not included: rebuild them every time (a handful of files).

    Pages that no longer exist are left out (nothing to render; publish may remove them)."""
    out: set[tuple[date, str]] = set()
    site = set(after.languages)
    for day, language in touched:
        out.add((day, ALL))
        if language in site:
            out.add((day, language))
    for page_language in after.page_languages():
        appeared = set(after.days.get(page_language, ())) ^ set(before.days.get(page_language, ()))
        for day in appeared:
            for calendar in (before, after):
                for neighbour in (calendar.previous(day, page_language), calendar.next(day, page_language)):
                    if neighbour is not None:
                        out.add((neighbour, page_language))
            out.update((day, other) for other in after.page_languages())
    return {(day, language) for day, language in out if after.exists(day, language)}
