"""The store: one interface (`Store`), two implementations, one factory (`open_store`).

- `SQLiteStore` (`sqlite.py`): the embedded default, one file, WAL; one connection per object.
- `PostgresStore` (`postgres.py`): a shared PostgreSQL database for several pollers
  (issue 16); a connection pool, safe to share between threads.

Promises that hold for every method of both:
- **Datetimes in and out are aware UTC**, kept to the second (a microsecond part is dropped
  on the way in, so what is read back compares equal to what the stores' text form holds).
- **Errors**: only `StoreError` and its subclasses leave a store (`StoreLocked`, `StoreFull`,
  `StoreReadOnly`, `StoreMissing`, `StoreCorrupt`, `StoreSchemaError`), never a driver error;
  str() is one line for an operator and `__cause__` keeps the driver's error.
- **One poll is one transaction** (`Store.poll`): lookup, the dedupe plan, the feed's new state,
  its next poll, the poll record and the release of its lease commit together or not at all.
- **Migrations are invisible**: opening a store brings its schema to the code's version, once
  however many processes open it at once; a schema newer than the code is refused.
- **Entries are never deleted**; every text written is XML-safe (`text.xml_safe`).

Nothing outside this package imports `sqlite3`, `sqlite_utils` or `psycopg` (ruff TID251).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from ..models import Candidate, DayRows, FeedState, PollRecord, StoredEntry, UpdatePlan
from .common import (
    BUSY_TIMEOUT,
    FeedStats,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreMissing,
    StoreReadOnly,
    StoreSchemaError,
)

if TYPE_CHECKING:
    from .sqlite import SCHEMA_VERSION, SQLitePollWork, SQLiteStore


def __getattr__(name: str) -> Any:
    """`SQLiteStore`, `SQLitePollWork` and `SCHEMA_VERSION`, imported on first use (PEP 562):
    a command that opens no SQLite store (`--help`, `check`, a PostgreSQL store) does not pay
    for the module (issue 15: each command imports only what it uses)."""
    if name in ("SCHEMA_VERSION", "SQLitePollWork", "SQLiteStore"):
        from . import sqlite

        value = getattr(sqlite, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "BUSY_TIMEOUT",
    "SCHEMA_VERSION",
    "FeedStats",
    "PollWork",
    "SQLitePollWork",
    "SQLiteStore",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreFull",
    "StoreLocked",
    "StoreMissing",
    "StoreReadOnly",
    "StoreSchemaError",
    "default_store_url",
    "open_store",
]


class PollWork(Protocol):
    """One poll's unit of work, inside the transaction `Store.poll` holds. Everything done
    through it commits when the `with` block ends, or nothing does if it raises. Keep the
    block free of `await`s and network I/O: locks are held throughout."""

    feed_url: str

    def lookup(self, candidates: Sequence[Candidate]) -> list[StoredEntry]:
        """Stored entries the candidates may match (same feed and source key, same canonical
        URL, same fingerprint, same language and title key), with their sources. Read under
        locks that any other poll bringing a matching entry must also take, so what dedupe
        decides from them is still true when it is applied."""
        ...

    def apply(self, plan: UpdatePlan) -> None:
        """Write dedupe's plan: inserts (an id or a (feed, source key) already there is kept
        as it is), updates by id, new sources, language fixes."""
        ...

    def entries_published_since(self, since: datetime) -> int:
        """As `Store.entries_published_since`, for this feed (`interval: auto`)."""
        ...

    def mark_unpublished(self, days: Collection[date]) -> None:
        """As `Store.mark_unpublished`, committed with the poll that touched those days."""
        ...

    def record(self, record: PollRecord) -> None:
        """The feed's new state and the poll's record (see `Store.record_poll`); clears the
        feed's lease."""
        ...


class Store(Protocol):
    """What the pipeline, publishing, the CLI and the workers need of a store.

    Every method raises only `StoreError` subclasses (see the module's docstring); those
    named below are the likely ones. Feeds are identified by their configured URL (`key`).
    """

    @property
    def url(self) -> str:
        """Where the store is, as `open_store` takes it (`sqlite:///path`, `postgresql://…`)."""
        ...

    @property
    def version(self) -> int:
        """The schema version of the database."""
        ...

    def migrate(self) -> None:
        """Bring the schema to the code's version (done on open). StoreSchemaError when the
        database's is newer; StoreLocked when another process holds the lock too long."""
        ...

    def close(self) -> None:
        """Release connections; the object is unusable afterwards (calls raise StoreError)."""
        ...

    # -- feeds and the schedule --
    def sync_feeds(self, feeds: Iterable[tuple[str, str, str]]) -> None:
        """(url, name, language) from the configuration; each feed's poll state is kept.
        Writes only what differs."""
        ...

    def sync_zone(self, zone: ZoneInfo) -> int:
        """Make every entry's day a day in `zone` (`site.timezone`); returns entries moved."""
        ...

    def feed_state(self, url: str) -> FeedState | None:
        """The stored state of one feed, None when it is not in the store."""
        ...

    def feed_states(self) -> dict[str, FeedState]:
        """Every feed's stored state, by URL."""
        ...

    def feed_stats(self) -> list[FeedStats]:
        """Every feed's state with its entry counts, by name (`status`)."""
        ...

    def claim_due(
        self, now: datetime, n: int, lease: timedelta, feeds: Collection[str] | None = None
    ) -> list[FeedState]:
        """Lease up to `n` feeds due at `now` (next poll unset or passed, not gone, lease
        free or expired), earliest next poll first (never-polled feeds before all), until
        `now + lease`; only feeds in `feeds` when given. Two claims running at once, in any
        processes, get disjoint feeds. A lease ends when the poll is recorded (`record`,
        `record_poll`, `record_failure`), by `release`, or when it expires (its poller died)."""
        ...

    def release(self, feed_urls: Collection[str]) -> None:
        """End the leases of feeds claimed but not polled: they are due again at once."""
        ...

    def poll(self, feed_url: str) -> contextlib.AbstractContextManager[PollWork]:
        """The unit of work of one poll of `feed_url` (see `PollWork`). StoreLocked when
        another process kept a lock it needs beyond the busy timeout."""
        ...

    def record_poll(self, record: PollRecord) -> None:
        """What a poll learnt about the feed (`PollRecord`, which says when validators are
        kept) and a `fetch_log` row, in one transaction. Clears the feed's lease."""
        ...

    def record_failure(
        self,
        feed_url: str,
        *,
        url: str,
        status: int | None,
        outcome: str,
        error: str,
        error_count: int,
        next_poll: datetime | None,
        fetched_at: datetime,
        duration_ms: float = 0.0,
    ) -> None:
        """A poll that failed after its answer arrived: error, count, next poll and a poll
        record; validators, title and warning kept. Clears the feed's lease."""
        ...

    def prune_fetch_log(self, older_than: timedelta, now: datetime) -> int:
        """Delete poll records started before `now - older_than`; returns how many."""
        ...

    def fetch_log(self, feed_url: str, limit: int = 20) -> list[dict[str, Any]]:
        """The feed's latest poll records, newest first: dicts of `started` (ISO 8601 text),
        `url`, `status`, `bytes`, `duration_ms`, `outcome`, `error`."""
        ...

    def entries_published_since(self, feed_url: str, since: datetime) -> int:
        """Entries this feed carried published at or after `since` (`interval: auto`)."""
        ...

    # -- entries --
    def lookup(self, feed_url: str, candidates: Sequence[Candidate]) -> list[StoredEntry]:
        """As `PollWork.lookup`, outside a poll (no locks)."""
        ...

    def entries_by_id(self, ids: Sequence[str]) -> list[StoredEntry]:
        """The entries with these ids (any order), with their sources."""
        ...

    def apply(self, plan: UpdatePlan) -> None:
        """As `PollWork.apply`, in a transaction of its own."""
        ...

    def latest(self, language: str | None, limit: int) -> list[StoredEntry]:
        """Newest published first; `language` None means every language."""
        ...

    def latest_day(self, language: str | None, not_after: date) -> date | None:
        """The newest day with entries, never later than `not_after`."""
        ...

    def day(self, day: date, language: str | None) -> list[StoredEntry]:
        """One day's entries (in `site.timezone`), newest published first."""
        ...

    def day_counts(self) -> list[tuple[date, str | None, int]]:
        """(day, language or None, entries) for every day and language, oldest day first."""
        ...

    def day_index(self, day: date) -> DayRows:
        """One day's entries (in `site.timezone`) as `DayRows`: each one's seq and language,
        in `day`'s order (newest published first, then id), without their text, so a publish
        can page through a day of any size with `entries_by_seq` (issue 15, publish memory).
        Rows are read one at a time: the whole day is never held as Python rows."""
        ...

    def entries_by_seq(self, seqs: Sequence[int]) -> list[StoredEntry]:
        """The entries with these `StoredEntry.seq` values, with their sources, in no particular
        order; a seq not stored (the entry was deleted since its day was indexed) is left out."""
        ...

    # -- what publishing owes (incremental publishing, issue 13) --
    def mark_unpublished(self, days: Collection[date]) -> None:
        """Remember days (site.timezone) whose entries changed and whose pages and archives
        the next publish must rebuild, whichever process publishes (a worker, `run`, a later
        `fetch`). Idempotent: a day is remembered once."""
        ...

    def take_unpublished(self) -> frozenset[date]:
        """The days remembered by `mark_unpublished`, forgotten in the same transaction: a day
        marked by a poll that commits afterwards is remembered again for the next publish. A
        publish that then fails gives them back with `mark_unpublished`."""
        ...

    def days_with_entries(self, not_after: date) -> dict[str | None, list[date]]:
        """Language (None: unknown) -> its days with entries, oldest first, none later than
        `not_after` (today in site.timezone): the day archives' calendar."""
        ...

    def by_translation_keys(self, keys: Sequence[str]) -> list[StoredEntry]:
        """Entries sharing these translation keys (without their sources)."""
        ...

    def count_entries(self) -> int:
        """Entries stored."""
        ...

    def language_counts(self) -> dict[str, int]:
        """Entries per language ('unknown' for none), most first."""
        ...


def default_store_url(data_dir: Path) -> str:
    """The store when neither `--store` nor AGGREGATOR_STORE names one: SQLite in DATA."""
    return f"sqlite:///{data_dir / 'aggregator.db'}"


def sqlite_path(url: str | os.PathLike[str]) -> Path | None:
    """The SQLite file a store URL names (`sqlite:///PATH` or a plain path), or None for a
    server store (`postgresql://…`)."""
    text = os.fspath(url)
    if text.startswith("sqlite:///"):
        return Path(text.removeprefix("sqlite:///"))
    return None if "://" in text else Path(text)


def open_store(
    url: str | os.PathLike[str], *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT
) -> Store:
    """The store at `url`: `sqlite:///relative/path`, `sqlite:////absolute/path`, a plain
    file path (SQLite), or `postgresql://user@host:port/dbname` (also `postgres://`; libpq's
    URI, any of its parameters). `create=False`: a missing SQLite file, or a PostgreSQL
    database without our schema, raises StoreMissing instead of being created.
    `busy_timeout`: seconds a write waits for another process's lock (then StoreLocked).
    Raises StoreError subclasses only."""
    text = os.fspath(url)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # psycopg is loaded only when it is used

        return PostgresStore(text, create=create, busy_timeout=busy_timeout)
    if text.startswith("sqlite:///"):
        text = text.removeprefix("sqlite:///")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreMissing(f"unknown store {scheme}://…: use sqlite:///PATH or postgresql://…")
    from .sqlite import SQLiteStore

    return SQLiteStore(text, create=create, busy_timeout=busy_timeout)
