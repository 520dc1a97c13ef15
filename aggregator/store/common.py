"""What both stores share: the errors that leave the store, and plain values that cross it.

No driver is imported here: this module is what the rest of the program may see of a store
besides the `Store` Protocol itself (`aggregator.store`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ..models import FeedState

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


def entry_day(published: datetime, date_only: bool, zone: ZoneInfo) -> date:
    """The front-page day of an entry: its publication date in the site's zone, or, for an
    entry the source dated with a calendar date only, that date itself in every zone (it is
    stored as 00:00 UTC of that date)."""
    return published.astimezone(UTC).date() if date_only else published.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class FeedStats:
    """One row of `status`: a feed's state and how many entries it brought."""

    state: FeedState
    language: str
    entries: int  # entries first seen in this feed
    seen_in: int  # entries this feed carried, counting ones merged from elsewhere
