"""What both stores share: the errors that leave the store, and plain values that cross it.

No driver is imported here: this module is what the rest of the program may see of a store
besides the `Store` Protocol itself (`aggregator.store`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..models import Enclosure, FeedState, Publishable, Source, StoredEntry
from ..text import RENDER_VERSION, publishable_for, xml_safe

BUSY_TIMEOUT = 10.0  # seconds a write waits for another process's lock (SQLite) or a row lock


class StoreError(Exception):
    """The store could not do what was asked; str() is one line for an operator.

    Subclasses say what kind of trouble it is; `__cause__` keeps the driver's error."""


class StoreLocked(StoreError):
    """Another process held the write lock for longer than the busy timeout (SQLITE_BUSY;
    on PostgreSQL a lock or statement timeout, or a deadlock that chose this transaction)."""


class StoreFull(StoreError):
    """The disk (or the file system's quota) is full (SQLITE_FULL, ENOSPC; PostgreSQL 53100)."""


class StoreReadOnly(StoreError):
    """The database or its directory cannot be written (SQLITE_READONLY, EROFS, EACCES), or the
    file was deleted or replaced under a running process (SQLITE_READONLY_DBMOVED); on
    PostgreSQL a read-only transaction or a missing privilege."""


class StoreMissing(StoreError):
    """There is no database where one was expected, or it cannot be opened (SQLITE_CANTOPEN;
    on PostgreSQL: the server cannot be reached, or the schema was never created)."""


class StoreCorrupt(StoreError):
    """The file is not an SQLite database or is damaged (SQLITE_NOTADB, SQLITE_CORRUPT;
    PostgreSQL XX001/XX002)."""


class StoreSchemaError(StoreError):
    """The database's schema is newer than this program's."""


@dataclass(frozen=True, slots=True)
class FeedStats:
    """One row of `status`: a feed's state and how many entries it brought."""

    state: FeedState
    language: str
    entries: int  # entries first seen in this feed
    seen_in: int  # entries this feed carried, counting ones merged from elsewhere


# -- rows to plain data, one definition for both stores ---------------------------------------
# The stores differ only in how a column comes back: SQLite gives ISO 8601 text for instants
# and days, PostgreSQL `datetime`/`date` objects. Each passes its converters.

Instant = Callable[[Any], datetime]  # a non-NULL stored instant -> aware UTC datetime
Day = Callable[[Any], date]  # a stored day -> date


def json_list(value: str) -> list[Any]:
    """A JSON array column. Most entries have no categories, enclosures or translations: "[]"
    needs no parser (three json.loads per entry read were a tenth of reading a day to publish)."""
    return [] if value == "[]" else list(json.loads(value))


def publishable_of(r: Mapping[str, Any]) -> Publishable | None:
    """The row's stored publishable text, None when it was made under other rules."""
    if r["render_version"] != RENDER_VERSION:
        return None
    return Publishable(r["summary"], r["content"], r["content_html"], r["lede_text"], RENDER_VERSION)


def stored_entry(
    r: Mapping[str, Any], sources: tuple[Source, ...], instant: Instant, day: Day
) -> StoredEntry:
    """An `entries` row (column name -> value) as a StoredEntry with its `sources`."""
    updated = r["updated"]
    return StoredEntry(
        id=r["id"],
        feed_url=r["feed_url"],
        source_key=r["source_key"],
        canonical_url=r["canonical_url"],
        fingerprint=r["fingerprint"],
        link=r["link"],
        title=r["title"],
        summary=r["summary"],
        content=r["content"],
        author=r["author"],
        categories=tuple(json_list(r["categories"])),
        enclosures=tuple(Enclosure(u, t, n) for u, t, n in json_list(r["enclosures"])),
        published=instant(r["published"]),
        updated=instant(updated) if updated else None,  # SQLite rows of old versions: ""
        first_seen=instant(r["first_seen"]),
        language=r["language"],
        language_tag=r["language_tag"],
        language_evidence=r["language_evidence"],
        day=day(r["day"]),
        content_hash=r["content_hash"],
        sources=sources,
        translations=tuple((a, b) for a, b in json_list(r["translations"])),
        title_key=r["title_key"],
        translation_key=r["translation_key"],
        published_zone=r["published_zone"],
        date_only=bool(r["date_only"]),
        seq=r["seq"],
        publishable=publishable_of(r),
    )


def feed_state(d: Mapping[str, Any], instant: Instant) -> FeedState:
    """A `feeds` row as the FeedState the pipeline and the scheduler read."""
    polled, due = d["last_polled"], d["next_poll"]
    return FeedState(
        url=d["url"],
        name=d["name"],
        etag=d["etag"],
        last_modified=d["last_modified"],
        last_polled=instant(polled) if polled else None,
        last_status=d["last_status"],
        last_outcome=d["last_outcome"],
        last_error=d["last_error"],
        error_count=d["error_count"] or 0,
        next_poll=instant(due) if due else None,
        title=d["title"],
        permanent_url=d["permanent_url"],
        gone=bool(d["gone"]),
        warning=d["warning"],
        body_hash=d.get("body_hash"),
    )


def safe_text(value: str | None) -> str | None:
    """`text.xml_safe` of an optional text (None and "" as they are)."""
    return xml_safe(value) if value else value


def entry_row(
    e: StoredEntry,
    instant: Callable[[datetime | None], Any],
    day: Callable[[date], Any],
    flag: Callable[[bool], Any],
) -> dict[str, Any]:
    """A StoredEntry as an `entries` row (column name -> value), every text XML-safe. The
    stores differ only in how an instant, a day and a flag are written (SQLite: ISO 8601 text
    and 0/1; PostgreSQL: `timestamptz`, `date`, `boolean`): each passes its converters."""
    # Made once per entry (normalise, in the parse workers); here only when it was not, or no
    # longer describes the entry's text (an update brought new text).
    safe = publishable_for(e.summary, e.content, e.publishable)
    return {
        "id": e.id,
        "feed_url": e.feed_url,
        "source_key": e.source_key,
        "canonical_url": safe_text(e.canonical_url),
        "fingerprint": e.fingerprint,
        "link": safe_text(e.link),
        "title": xml_safe(e.title),
        "summary": xml_safe(e.summary),
        "content": xml_safe(e.content),
        "author": safe_text(e.author),
        "categories": json.dumps([xml_safe(c) for c in e.categories], ensure_ascii=False),
        "enclosures": json.dumps(
            [[xml_safe(x.url), safe_text(x.type), x.length] for x in e.enclosures], ensure_ascii=False
        ),
        "translations": json.dumps(
            [[xml_safe(a), xml_safe(b)] for a, b in e.translations], ensure_ascii=False
        ),
        "published": instant(e.published),
        "updated": instant(e.updated),
        "first_seen": instant(e.first_seen),
        "language": e.language,
        "language_tag": e.language_tag,
        "language_evidence": e.language_evidence,
        "day": day(e.day),
        "content_hash": e.content_hash,
        "title_key": e.title_key,
        "translation_key": e.translation_key,
        "published_zone": e.published_zone,
        "date_only": flag(e.date_only),
        "content_html": safe.content_html,
        "lede_text": safe.lede_text,
        "render_version": safe.render_version,
    }


def own_source_links(updates: Iterable[StoredEntry]) -> list[tuple[str | None, str, str, str, str | None]]:
    """(link, feed_url, source_key, entry_id, link) for each source record of an updated
    entry's own feed: the parameters of both stores' source-link rewrite, which writes only
    where the link differs."""
    rows = []
    for e in updates:
        for s in e.sources:
            if s.feed_url == e.feed_url:
                link = safe_text(s.link)
                rows.append((link, s.feed_url, s.source_key, e.id, link))
    return rows
