"""The SQLite store (the embedded default): schema, migrations and every query.

Guarantees:
- WAL mode; readers never wait for a writer.
- One poll is one write transaction (`Store.poll`): the lookup of stored entries, the plan
  that dedupe decided from them, the feed's new state and the poll record commit together,
  under SQLite's write lock taken at the start (`BEGIN IMMEDIATE`), so two processes polling
  the same store never both insert one entry, and a crash leaves the poll wholly done or not.
- Entries are never deleted because a source dropped them.
- Every text written is XML-safe (`text.xml_safe`): no stored entry can make a renderer raise.
- Every driver error leaves this module as a `StoreError` subclass whose text is one line for
  an operator (disk full, read-only, locked, missing, corrupt).

The connection runs in autocommit mode (`isolation_level=None`): each transaction is begun and
ended here, explicitly, and nothing commits behind our back (sqlite-utils 4 commits every
write statement that runs outside a transaction, so it is no longer used here).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from ..models import (
    Candidate,
    DayRows,
    FeedState,
    PollRecord,
    Source,
    StoredEntry,
    UpdatePlan,
    entry_day,
)
from ..text import RENDER_VERSION, normalise_title, publishable, xml_safe
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
    entry_row,
    feed_state,
    own_source_links,
    safe_text,
    stored_entry,
)

SCHEMA_VERSION = 7
REFRESH_BATCH = 500  # entries made publishable per write transaction when the rules changed

log = logging.getLogger(__name__)


# Primary result codes (https://www.sqlite.org/rescode.html); the extended code's low byte.
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_READONLY_DBMOVED = 1032  # the file was unlinked or renamed while open


def _writable(path: Path) -> bool:
    """Whether the database file and its directory can both be written (SQLite needs the
    directory for its journal, -wal and -shm files)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _why_not_writable(path: Path) -> str:
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return "its file system is mounted read-only"
    except OSError:
        pass
    if not os.access(path.parent, os.W_OK):
        return f"its directory {path.parent} is not writable"
    return "the file is not writable"


def store_error(e: BaseException, path: Path) -> StoreError:
    """A driver or OS error met while using the database at `path`, as a StoreError."""
    if isinstance(e, StoreError):
        return e
    if isinstance(e, sqlite3.Error):
        code = getattr(e, "sqlite_errorcode", None) or 0
        primary = code & 0xFF
        detail = str(e)
        if code == _READONLY_DBMOVED:
            return StoreReadOnly(f"the database {path} was deleted or replaced while in use ({detail})")
        if primary in (_BUSY, _LOCKED):
            return StoreLocked(
                f"the database {path} is locked by another process ({detail}); try again when it has finished"
            )
        if primary == _FULL:
            return StoreFull(f"the disk holding {path} is full ({detail})")
        if primary == _READONLY:
            return StoreReadOnly(f"the database {path} cannot be written ({detail})")
        if primary == _CANTOPEN:
            if path.exists() and not _writable(path):
                # A WAL database opens only where SQLite can create its -wal and -shm files:
                # on a read-only file system or directory it says "unable to open", which is
                # not what the operator must fix (audit of issue 11).
                return StoreReadOnly(f"the database {path} cannot be written: {_why_not_writable(path)}")
            return StoreMissing(f"cannot open the database {path} ({detail})")
        if primary in (_CORRUPT, _NOTADB):
            return StoreCorrupt(f"{path} is not a sound SQLite database ({detail})")
        if primary == _IOERR:
            return StoreError(f"input/output error on the database {path} ({detail})")
        return StoreError(f"database error on {path}: {detail}")
    if isinstance(e, OSError):
        import errno

        where = e.filename or path
        words = e.strerror or str(e)
        if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
            return StoreFull(f"the disk holding {where} is full ({words})")
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return StoreReadOnly(f"cannot write {where} ({words})")
        return StoreError(f"cannot use {where} ({words})")
    if isinstance(e, UnicodeEncodeError):  # a lone surrogate that slipped past xml_safe
        return StoreError(f"text that cannot be stored in {path}: {e}")
    return StoreError(f"{type(e).__name__}: {e}")


_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")
_DRIVER_ERRORS = (sqlite3.Error, OSError, UnicodeEncodeError)


def _translated(path_of: Callable[[Any], Path], fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except _DRIVER_ERRORS as e:
            raise store_error(e, path_of(args[0])) from e

    return wrapper


def _errors_at_the_boundary(cls: type[_T]) -> type[_T]:
    """Every public method (and property) of `cls` raises StoreError, never a driver error.

    Applied to the class, so a method added later is covered without remembering to."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, property) and value.fget is not None:
            setattr(cls, name, property(_translated(lambda s: s.path, value.fget)))
        elif callable(value):
            setattr(cls, name, _translated(lambda s: s.path, value))
    return cls


# -- migrations -----------------------------------------------------------------------


def _backfill_title_keys(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, title FROM entries").fetchall()
    conn.executemany(
        "UPDATE entries SET title_key = ? WHERE id = ?", [(normalise_title(t), i) for i, t in rows]
    )


def _safe_json_strings(value: str) -> str:
    """A JSON text whose strings, once decoded, are XML-safe (categories, enclosures, ...)."""

    def clean(x: Any) -> Any:
        if isinstance(x, str):
            return xml_safe(x)
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(json.loads(value)), ensure_ascii=False)


# Columns of free text from feeds and servers: cleaned by version 3, and on every write.
_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "entries": ("link", "canonical_url", "title", "summary", "content", "author", "title_key"),
    "entry_sources": ("feed_name", "link"),
    "feeds": ("name", "title", "last_error", "warning", "permanent_url"),
    "fetch_log": ("url", "error"),
}
_JSON_COLUMNS: dict[str, tuple[str, ...]] = {"entries": ("categories", "enclosures", "translations")}


def _clean_stored_text(conn: sqlite3.Connection) -> None:
    """Version 3: remove what XML 1.0 cannot carry from every stored text (issue 11), and
    number the entries in insertion (rowid) order."""
    for table, columns in _TEXT_COLUMNS.items():
        for column in columns:
            # Read row by row; only the rows that change are kept (a few, if any).
            cur = conn.execute(f"SELECT rowid, {column} FROM {table} WHERE {column} IS NOT NULL")
            changed = [(new, r) for r, old in cur if (new := xml_safe(old)) != old]
            conn.executemany(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", changed)
    for table, columns in _JSON_COLUMNS.items():
        for column in columns:
            cur = conn.execute(f"SELECT rowid, {column} FROM {table}")
            changed = [(new, r) for r, old in cur if (new := _safe_json_strings(old)) != old]
            conn.executemany(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", changed)
    conn.execute("UPDATE entries SET seq = rowid")


# Each migration takes the schema from version i to i+1: SQL, then an optional Python step,
# in one transaction. Never edit one that has shipped; add the next.
MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None] | None]] = [
    (
        """
    CREATE TABLE feeds (
        url TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        language TEXT NOT NULL,
        title TEXT,
        etag TEXT,
        last_modified TEXT,
        last_polled TEXT,
        last_status INTEGER,
        last_outcome TEXT,
        last_error TEXT,
        error_count INTEGER NOT NULL DEFAULT 0,
        next_poll TEXT,
        permanent_url TEXT,
        gone INTEGER NOT NULL DEFAULT 0,
        warning TEXT
    );
    CREATE TABLE entries (
        id TEXT PRIMARY KEY,
        feed_url TEXT NOT NULL,
        source_key TEXT NOT NULL,
        canonical_url TEXT,
        fingerprint TEXT NOT NULL,
        link TEXT,
        title TEXT NOT NULL,
        summary TEXT NOT NULL,
        content TEXT NOT NULL,
        author TEXT,
        categories TEXT NOT NULL DEFAULT '[]',
        enclosures TEXT NOT NULL DEFAULT '[]',
        translations TEXT NOT NULL DEFAULT '[]',
        published TEXT NOT NULL,
        updated TEXT,
        first_seen TEXT NOT NULL,
        language TEXT,
        language_tag TEXT,
        language_evidence TEXT NOT NULL,
        day TEXT NOT NULL,
        content_hash TEXT NOT NULL
    );
    CREATE INDEX entries_canonical_url ON entries (canonical_url);
    CREATE INDEX entries_fingerprint ON entries (fingerprint);
    CREATE INDEX entries_language_published ON entries (language, published);
    CREATE INDEX entries_published ON entries (published);
    CREATE INDEX entries_day_language ON entries (day, language);
    CREATE TABLE entry_sources (
        feed_url TEXT NOT NULL,
        source_key TEXT NOT NULL,
        entry_id TEXT NOT NULL REFERENCES entries(id),
        feed_name TEXT NOT NULL,
        link TEXT,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (feed_url, source_key)
    );
    CREATE INDEX entry_sources_entry ON entry_sources (entry_id);
    CREATE TABLE fetch_log (
        id INTEGER PRIMARY KEY,
        feed_url TEXT NOT NULL,
        started TEXT NOT NULL,
        url TEXT NOT NULL,
        status INTEGER,
        bytes INTEGER,
        duration_ms REAL,
        outcome TEXT NOT NULL,
        error TEXT
    );
    CREATE INDEX fetch_log_feed_started ON fetch_log (feed_url, started);
    """,
        None,
    ),
    (
        # Near-duplicates (same language + normalised title), translations, original offsets.
        """
    ALTER TABLE entries ADD COLUMN title_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE entries ADD COLUMN translation_key TEXT;
    ALTER TABLE entries ADD COLUMN published_zone TEXT;
    CREATE INDEX entries_language_title_key ON entries (language, title_key);
    CREATE INDEX entries_translation_key ON entries (translation_key) WHERE translation_key IS NOT NULL;
    """,
        _backfill_title_keys,
    ),
    (
        # XML-safe text, date-only entries, an insertion sequence for cursors and archives,
        # and `meta` (the zone entries' days were computed in).
        """
    ALTER TABLE entries ADD COLUMN date_only INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN seq INTEGER;
    CREATE UNIQUE INDEX entries_seq ON entries (seq);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
        _clean_stored_text,
    ),
    (
        # The schedule in the store (issue 16): a claim leases a feed until its poll is
        # recorded or the lease expires (a poller that died).
        """
    ALTER TABLE feeds ADD COLUMN leased_until TEXT;
    CREATE INDEX feeds_next_poll ON feeds (next_poll) WHERE gone = 0;
    """,
        None,
    ),
    (
        # The body of the last successful poll, hashed: an unchanged 200 is not parsed again.
        """
    ALTER TABLE feeds ADD COLUMN body_hash TEXT;
    """,
        None,
    ),
    (
        # Each entry made safe to publish once, at ingest (issues 13, 15): the sanitised content
        # HTML, the plain text ledes are cut from, and the rules they were made under
        # (text.RENDER_VERSION). Existing rows are filled by `_refresh_publishable`, which runs
        # after every migration and whenever those rules change.
        """
    ALTER TABLE entries ADD COLUMN content_html TEXT;
    ALTER TABLE entries ADD COLUMN lede_text TEXT;
    ALTER TABLE entries ADD COLUMN render_version TEXT;
    """,
        None,
    ),
    (
        # Days whose pages and archives the next publish owes (incremental publishing across
        # processes and restarts: `mark_unpublished`, `take_unpublished`).
        """
    CREATE TABLE unpublished_days (day TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
        None,
    ),
]


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _identity(path: Path) -> tuple[int, int] | None:
    """The file behind `path` (device, inode), None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


@_errors_at_the_boundary
class SQLitePollWork:
    """One poll's unit of work, inside the write transaction `Store.poll` holds.

    Everything done through it commits together when the `with` block ends, or not at all.
    Keep the block free of `await`s and network I/O: the write lock is held throughout."""

    def __init__(self, store: SQLiteStore, feed_url: str) -> None:
        self._store = store
        self.path = store.path
        self.feed_url = feed_url

    def lookup(self, candidates: Sequence[Candidate]) -> list[StoredEntry]:
        """Stored entries the candidates may match (see `Store.lookup`), read under the lock,
        so what dedupe decides from them is still true when it is applied."""
        return self._store._lookup(self.feed_url, candidates)

    def apply(self, plan: UpdatePlan) -> None:
        """Write dedupe's plan (inserts, updates, new sources, language fixes)."""
        self._store._apply(plan)

    def entries_published_since(self, since: datetime) -> int:
        """As `Store.entries_published_since`, for this feed (`interval: auto`)."""
        return self._store._entries_published_since(self.feed_url, since)

    def mark_unpublished(self, days: Collection[date]) -> None:
        """As `Store.mark_unpublished`, in this poll's transaction."""
        self._store._mark_unpublished(days)

    def record(self, record: PollRecord) -> None:
        """The feed's new state and the poll's record (see `Store.record_poll`)."""
        self._store._record_poll(record)


class _Connection:
    """The store's connection as its queries use it: `execute` and `conn`. sqlite-utils'
    `Database` had this place and only forwarded `execute`; importing it cost more than any
    query of a read-only command (it imports numpy and pandas when they are installed: about
    100 ms of `aggregator frontpage`'s start, issue 15)."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters)

    def close(self) -> None:
        self.conn.close()


@_errors_at_the_boundary
class SQLiteStore:
    """The SQLite store at `path` (created with its directory unless `create=False`).

    Raises StoreError subclasses only: StoreMissing (no database and `create=False`, or it
    cannot be opened), StoreCorrupt, StoreReadOnly, StoreFull, StoreLocked (another process
    kept the write lock beyond `busy_timeout` seconds), StoreSchemaError (newer schema).
    One Store is one connection: use it from one thread (open one per thread)."""

    def __init__(self, path: str | Path, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreMissing(
                f"no database at {self.path}: nothing has been polled into it yet "
                "(run `aggregator fetch`, or check --data)"
            )
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; `_write` begins and ends them.
            conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            # Transactions are ours (`_write`: BEGIN IMMEDIATE); `_Connection` only names
            # the connection as the queries address it (`db.execute`, `db.conn`).
            self.db = _Connection(conn)
            self._identity = _identity(self.path)
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: only the last commit can go
            # Switching a new file to WAL, and the first reads after another process did, can
            # answer SQLITE_BUSY without waiting on the busy handler: retried within the timeout.
            give_up = time.monotonic() + busy_timeout
            while True:  # bounded by give_up
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    self.migrate()
                    break
                except (sqlite3.OperationalError, StoreLocked) as e:
                    cause = e.__cause__ if isinstance(e, StoreLocked) else e
                    code = getattr(cause, "sqlite_errorcode", 0) or 0
                    if code & 0xFF not in (_BUSY, _LOCKED) or time.monotonic() >= give_up:
                        raise
                    time.sleep(0.02)
        except BaseException as e:
            if conn is not None:
                conn.close()
            if isinstance(e, _DRIVER_ERRORS):
                raise store_error(e, self.path) from e
            raise

    @property
    def url(self) -> str:
        """Where this store is, as `open_store` takes it: `sqlite:///` and the path."""
        return f"sqlite:///{self.path}"

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction: the write lock is taken first (BEGIN IMMEDIATE), so what is
        read inside is still true at commit. Joins a transaction already open."""
        conn = self.db.conn
        try:
            joined = conn.in_transaction
        except _DRIVER_ERRORS as e:  # a closed connection
            raise store_error(e, self.path) from e
        if joined:
            yield
            return
        if _identity(self.path) != self._identity:
            # SQLite would go on writing to the unlinked file: everything written would vanish.
            raise StoreMissing(
                f"the database {self.path} was deleted or replaced while in use: "
                "nothing more is written to it (restart to open the file now there)"
            )
        try:
            conn.execute("BEGIN IMMEDIATE")
        except _DRIVER_ERRORS as e:
            raise store_error(e, self.path) from e
        try:
            yield
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(e, _DRIVER_ERRORS):
                raise store_error(e, self.path) from e
            raise
        try:
            conn.execute("COMMIT")
        except _DRIVER_ERRORS as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise store_error(e, self.path) from e

    def poll(self, feed_url: str) -> contextlib.AbstractContextManager[SQLitePollWork]:
        """The unit of work of one poll of `feed_url`: `with store.poll(url) as work:` then
        `work.lookup`, `work.apply`, `work.record`; all of it commits when the block ends, or
        nothing does if it raises (the error propagates, as a StoreError if it is the store's).
        Waits up to the busy timeout for another process's write lock (then StoreLocked)."""
        return self._poll(feed_url)

    @contextlib.contextmanager
    def _poll(self, feed_url: str) -> Iterator[SQLitePollWork]:
        with self._write():
            yield SQLitePollWork(self, feed_url)

    # -- schema ---------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION, one step per transaction. Each step first takes
        the write lock and then reads the version, so processes racing to create or upgrade
        one database run each step once. Raises StoreSchemaError for a newer schema. Then
        every entry whose publishable text was made under other rules is made again
        (`_refresh_publishable`)."""
        if self.version != SCHEMA_VERSION:  # the common case reads only: it never waits for a writer
            self._migrate_schema()
        self._refresh_publishable()

    def _migrate_schema(self) -> None:
        conn = self.db.conn
        while True:  # bounded: each pass applies one step or ends
            with self._write():
                current = self.version
                if current > SCHEMA_VERSION:
                    raise StoreSchemaError(
                        f"{self.path} has schema version {current}, newer than this program's "
                        f"{SCHEMA_VERSION}: upgrade aggregator"
                    )
                if current == SCHEMA_VERSION:
                    return
                sql, step = MIGRATIONS[current]
                for statement in (s.strip() for s in sql.split(";")):
                    if statement:
                        conn.execute(statement)
                if step is not None:
                    step(conn)
                conn.execute(f"PRAGMA user_version={current + 1}")

    def _refresh_publishable(self) -> int:
        """Make every entry stored under other rules than `text.RENDER_VERSION` (or before
        schema 6) publishable again; returns how many. Runs when `meta.render_version` differs
        from the code's (one read otherwise), in transactions of REFRESH_BATCH entries, so a
        poll waits for one batch at most and an interrupted refresh resumes where it stopped.
        Renderers never depend on it: a stale row is recomputed where it is published."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'render_version'").fetchone()
        if row and row[0] == RENDER_VERSION:
            return 0
        conn = self.db.conn
        started, done, after = time.monotonic(), 0, 0
        while True:  # bounded: `after` only grows, over a finite table
            with self._write():
                rows = conn.execute(
                    "SELECT rowid, summary, content FROM entries "
                    "WHERE rowid > ? AND render_version IS NOT ? ORDER BY rowid LIMIT ?",
                    [after, RENDER_VERSION, REFRESH_BATCH],
                ).fetchall()
                if not rows:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('render_version', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        [RENDER_VERSION],
                    )
                    break
                made = [(publishable(summary, content), rowid) for rowid, summary, content in rows]
                conn.executemany(
                    "UPDATE entries SET content_html = ?, lede_text = ?, render_version = ? WHERE rowid = ?",
                    [(p.content_html, p.lede_text, p.render_version, rowid) for p, rowid in made],
                )
                after, done = rows[-1][0], done + len(rows)
        if done:
            log.info(
                "%s: %d entries made publishable under the current rules in %.1f s",
                self.path, done, time.monotonic() - started,
            )  # fmt: skip
        return done

    # -- feeds ----------------------------------------------------------------
    def sync_feeds(self, feeds: Iterable[tuple[str, str, str]]) -> None:
        """(url, name, language) from the config; fetch state of known feeds is kept.
        Writes only when something differs, so read-only commands work while another process
        holds the write lock."""
        known = {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT url, name, language FROM feeds")}
        wanted = [(url, xml_safe(name), language) for url, name, language in feeds]
        todo = [w for w in wanted if known.get(w[0]) != (w[1], w[2])]
        if not todo:
            return
        with self._write():
            self.db.conn.executemany(
                "INSERT INTO feeds (url, name, language) VALUES (?, ?, ?) "
                "ON CONFLICT(url) DO UPDATE SET name=excluded.name, language=excluded.language",
                todo,
            )

    def sync_zone(self, zone: ZoneInfo) -> int:
        """Make every entry's day a day in `zone` (`site.timezone`). The zone the days were
        computed in is kept in `meta`; when it differs, each entry moves to its day in the
        new zone (a date-only entry keeps its date). Returns the number of entries moved."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'day_zone'").fetchone()
        if row and row[0] == zone.key:
            return 0
        moved = 0
        with self._write():
            cur = self.db.execute("SELECT id, published, date_only, day FROM entries")
            changes = []
            for eid, published, date_only, day in cur:
                new = entry_day(datetime.fromisoformat(published), bool(date_only), zone).isoformat()
                if new != day:
                    changes.append((new, eid))
            self.db.conn.executemany("UPDATE entries SET day = ? WHERE id = ?", changes)
            moved = len(changes)
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('day_zone', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [zone.key],
            )
        return moved

    def feed_state(self, url: str) -> FeedState | None:
        rows = self._query("SELECT * FROM feeds WHERE url = ?", [url])
        return _feed_state(rows[0]) if rows else None

    def feed_states(self) -> dict[str, FeedState]:
        return {r["url"]: _feed_state(r) for r in self._query("SELECT * FROM feeds", [])}

    def claim_due(
        self, now: datetime, n: int, lease: timedelta, feeds: Collection[str] | None = None
    ) -> list[FeedState]:
        """Up to `n` feeds due at `now` (next poll unset or passed, not gone, lease free or
        expired), earliest first, each leased until `now + lease`; only those in `feeds`
        when given. One immediate write transaction, so two processes claiming at once get
        disjoint feeds. A poll's record clears the lease."""
        if n <= 0:
            return []
        only = "" if feeds is None else "AND url IN (SELECT value FROM json_each(?))"
        params: list[Any] = [_ts(now), _ts(now)]
        if feeds is not None:
            params.append(json.dumps(list(feeds)))
        with self._write():
            rows = self._query(
                f"""SELECT * FROM feeds WHERE gone = 0
                     AND (next_poll IS NULL OR next_poll <= ?)
                     AND (leased_until IS NULL OR leased_until <= ?) {only}
                   ORDER BY next_poll IS NOT NULL, next_poll, url LIMIT ?""",
                [*params, n],
            )
            self.db.conn.executemany(
                "UPDATE feeds SET leased_until = ? WHERE url = ?",
                [(_ts(now + lease), r["url"]) for r in rows],
            )
        return [_feed_state(r) for r in rows]

    def release(self, feed_urls: Collection[str]) -> None:
        """Give leases back unpolled (a poller that stops cleanly): the feeds are due again."""
        if not feed_urls:
            return
        with self._write():
            self.db.conn.executemany(
                "UPDATE feeds SET leased_until = NULL WHERE url = ?", [(u,) for u in feed_urls]
            )

    def record_poll(self, record: PollRecord) -> None:
        """See `Store.record_poll`."""
        with self._write():
            self._record_poll(record)

    def _record_poll(self, record: PollRecord) -> None:
        result, outcome, validators = record.result, record.outcome, record.validators
        error, title, warning = safe_text(record.error), safe_text(record.title), safe_text(record.warning)
        if validators:
            etag_sql, modified_sql = "etag = ?", "last_modified = ?"
            hash_sql = "body_hash = ?"
        else:
            etag_sql, modified_sql = "etag = COALESCE(?, etag)", "last_modified = COALESCE(?, last_modified)"
            hash_sql = "body_hash = COALESCE(?, body_hash)"
        self.db.execute(
            f"""UPDATE feeds SET
                 {etag_sql}, {modified_sql}, {hash_sql},
                 last_polled = ?, last_status = ?, last_outcome = ?, last_error = ?,
                 error_count = ?, next_poll = ?, title = COALESCE(?, title),
                 permanent_url = COALESCE(?, permanent_url), gone = ?, warning = ?,
                 leased_until = NULL
               WHERE url = ?""",
            [
                result.etag if validators else None,
                result.last_modified if validators else None,
                record.body_hash if validators else None,
                _ts(result.fetched_at),
                result.status,
                outcome,
                error,
                record.error_count,
                _ts(record.next_poll),
                title,
                safe_text(result.permanent_redirect),
                int(record.gone),
                warning,
                result.feed_url,
            ],
        )
        self.db.execute(
            "INSERT INTO fetch_log (feed_url, started, url, status, bytes, duration_ms, "
            "outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                result.feed_url,
                _ts(result.fetched_at or datetime.now(UTC)),
                safe_text(result.url),
                result.status,
                len(result.body) if result.body is not None else None,
                result.duration_ms,
                outcome,
                error,
            ],
        )

    def prune_fetch_log(self, older_than: timedelta, now: datetime) -> int:
        with self._write():
            cur = self.db.execute("DELETE FROM fetch_log WHERE started < ?", [_ts(now - older_than)])
            return int(cur.rowcount)

    def fetch_log(self, feed_url: str, limit: int = 20) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT started, url, status, bytes, duration_ms, outcome, error FROM fetch_log "
            "WHERE feed_url = ? ORDER BY started DESC, id DESC LIMIT ?",
            [feed_url, limit],
        )
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def entries_published_since(self, feed_url: str, since: datetime) -> int:
        """Entries this feed carried that were published at or after `since` (`interval: auto`)."""
        return self._entries_published_since(feed_url, since)

    def _entries_published_since(self, feed_url: str, since: datetime) -> int:
        row = self.db.execute(
            "SELECT COUNT(DISTINCT s.entry_id) FROM entry_sources s JOIN entries e ON e.id = s.entry_id "
            "WHERE s.feed_url = ? AND e.published >= ?",
            [feed_url, _ts(since)],
        ).fetchone()
        return int(row[0])

    def feed_stats(self) -> list[FeedStats]:
        rows = self.db.execute(
            """SELECT f.*,
                 (SELECT COUNT(*) FROM entries e WHERE e.feed_url = f.url) AS n_entries,
                 (SELECT COUNT(*) FROM entry_sources s WHERE s.feed_url = f.url) AS n_seen
               FROM feeds f ORDER BY f.name"""
        )
        cols = [c[0] for c in rows.description]
        out = []
        for row in rows.fetchall():
            d = dict(zip(cols, row, strict=True))
            out.append(FeedStats(_feed_state(d), d["language"], d["n_entries"], d["n_seen"]))
        return out

    # -- entries --------------------------------------------------------------
    def lookup(self, feed_url: str, candidates: Sequence[Candidate]) -> list[StoredEntry]:
        """Stored entries a poll's candidates may match; every condition uses an index.
        (A poll does this inside its unit of work: `Store.poll`.)"""
        return self._lookup(feed_url, candidates)

    def _lookup(self, feed_url: str, candidates: Sequence[Candidate]) -> list[StoredEntry]:
        source_keys = [c.source_key for c in candidates]
        canonical_urls = [c.canonical_url for c in candidates if c.canonical_url]
        fingerprints = [c.fingerprint for c in candidates]
        titles: dict[str, list[str]] = {}
        for c in candidates:
            if c.language and c.title_key:
                titles.setdefault(c.language, []).append(c.title_key)
        ids: set[str] = set()
        for lang, keys in titles.items():
            for chunk in _chunks(keys):
                q = f"SELECT id FROM entries WHERE language = ? AND title_key IN ({_marks(chunk)})"
                ids.update(r[0] for r in self.db.execute(q, [lang, *chunk]))
        for chunk in _chunks(source_keys):
            q = f"SELECT entry_id FROM entry_sources WHERE feed_url = ? AND source_key IN ({_marks(chunk)})"
            ids.update(r[0] for r in self.db.execute(q, [feed_url, *chunk]))
        for chunk in _chunks(canonical_urls):
            q = f"SELECT id FROM entries WHERE canonical_url IN ({_marks(chunk)})"
            ids.update(r[0] for r in self.db.execute(q, list(chunk)))
        for chunk in _chunks(fingerprints):
            q = f"SELECT id FROM entries WHERE fingerprint IN ({_marks(chunk)})"
            ids.update(r[0] for r in self.db.execute(q, list(chunk)))
        return self.entries_by_id(sorted(ids))

    def entries_by_id(self, ids: Sequence[str]) -> list[StoredEntry]:
        return self._entries_where("id", ids)

    def entries_by_seq(self, seqs: Sequence[int]) -> list[StoredEntry]:
        """See `Store.entries_by_seq`: on the unique entries(seq) index."""
        return self._entries_where("seq", seqs)

    def _entries_where(self, column: str, keys: Sequence[str] | Sequence[int]) -> list[StoredEntry]:
        """The entries whose `column` (a name written here, never a caller's text) is one of
        `keys`, with their sources; in chunks that stay under SQLite's bound parameters."""
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(keys):
            rows.extend(self._query(f"SELECT * FROM entries WHERE {column} IN ({_marks(chunk)})", chunk))
        return self._with_sources(rows)

    def apply(self, plan: UpdatePlan) -> None:
        """Write one poll's decision in a single transaction (a poll uses `Store.poll`)."""
        with self._write():
            self._apply(plan)

    def mark_unpublished(self, days: Collection[date]) -> None:
        """See `Store.mark_unpublished`."""
        if days:
            with self._write():
                self._mark_unpublished(days)

    def _mark_unpublished(self, days: Collection[date]) -> None:
        rows = [(d.isoformat(),) for d in sorted(days)]
        self.db.conn.executemany("INSERT OR IGNORE INTO unpublished_days (day) VALUES (?)", rows)

    def take_unpublished(self) -> frozenset[date]:
        """See `Store.take_unpublished`: read and emptied under the write lock."""
        with self._write():
            rows = self.db.conn.execute("SELECT day FROM unpublished_days").fetchall()
            if rows:
                self.db.conn.execute("DELETE FROM unpublished_days")
        return frozenset(date.fromisoformat(r[0]) for r in rows)

    def _apply(self, plan: UpdatePlan) -> None:
        if not (plan.inserts or plan.updates or plan.new_sources or plan.language_fixes):
            return
        # Plain executemany on the hot path (sqlite-utils' insert_all cost ~3x as much per row).
        if plan.inserts:
            # seq: one more than the highest so far, read under the write lock, so it only grows.
            top = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0]
            rows = [_entry_row(e) | {"seq": top + i} for i, e in enumerate(plan.inserts, 1)]
            self._insert_many("entries", rows)
            self._insert_many(
                "entry_sources", [_source_row(e.id, s) for e in plan.inserts for s in e.sources]
            )
        for e in plan.updates:
            row = _entry_row(e)
            for fixed in ("id", "first_seen", "day", "feed_url", "source_key", "fingerprint",
                          "published", "published_zone", "date_only"):  # fmt: skip
                row.pop(fixed)
            sets = ", ".join(f"{k} = ?" for k in row)
            self.db.execute(f"UPDATE entries SET {sets} WHERE id = ?", [*row.values(), e.id])
        if plan.updates:
            # A rewritten entry's own feed may have given it another link (dedupe.with_own_link).
            self.db.conn.executemany(
                "UPDATE entry_sources SET link = ? WHERE feed_url = ? AND source_key = ? AND entry_id = ? "
                "AND link IS NOT ?",
                own_source_links(plan.updates),
            )
        if plan.new_sources:
            self._insert_many("entry_sources", [_source_row(eid, s) for eid, s in plan.new_sources])
        for eid, lang, tag, evidence in plan.language_fixes:
            self.db.execute(
                "UPDATE entries SET language = ?, language_tag = ?, language_evidence = ? WHERE id = ?",
                [lang or None, tag, evidence, eid],
            )

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
        """A poll that failed after its answer arrived (the store or the program failed): its
        error, count and next poll, and a poll record. Validators, title and warning are
        kept as they were. One transaction of its own."""
        with self._write():
            self.db.execute(
                """UPDATE feeds SET last_polled = ?, last_status = ?, last_outcome = ?,
                     last_error = ?, error_count = ?, next_poll = ?, leased_until = NULL
                   WHERE url = ?""",
                [_ts(fetched_at), status, outcome, safe_text(error), error_count, _ts(next_poll), feed_url],
            )
            self.db.execute(
                "INSERT INTO fetch_log (feed_url, started, url, status, bytes, duration_ms, "
                "outcome, error) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
                [feed_url, _ts(fetched_at), safe_text(url), status, duration_ms, outcome, safe_text(error)],
            )

    def latest(self, language: str | None, limit: int) -> list[StoredEntry]:
        """Newest first; language None means every language."""
        if language is None:
            rows = self._query("SELECT * FROM entries ORDER BY published DESC, id LIMIT ?", [limit])
        else:
            rows = self._query(
                "SELECT * FROM entries WHERE language = ? ORDER BY published DESC, id LIMIT ?",
                [language, limit],
            )
        return self._with_sources(rows)

    def latest_day(self, language: str | None, not_after: date) -> date | None:
        """The newest day with entries, never later than `not_after` (today in the site's zone)."""
        if language is None:
            row = self.db.execute(
                "SELECT MAX(day) FROM entries WHERE day <= ?", [not_after.isoformat()]
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT MAX(day) FROM entries WHERE language = ? AND day <= ?",
                [language, not_after.isoformat()],
            ).fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    def day(self, day: date, language: str | None) -> list[StoredEntry]:
        if language is None:
            rows = self._query(
                "SELECT * FROM entries WHERE day = ? ORDER BY published DESC, id", [day.isoformat()]
            )
        else:
            # "+published": without statistics SQLite would walk entries(language, published)
            # through every entry of the language to skip a sort of one day's few rows (5 ms
            # instead of 0.03 ms at 10,000 entries, growing with the store).
            rows = self._query(
                "SELECT * FROM entries WHERE day = ? AND language = ? ORDER BY +published DESC, id",
                [day.isoformat(), language],
            )
        return self._with_sources(rows)

    def day_index(self, day: date) -> DayRows:
        """See `Store.day_index`: on the entries(day, language) index, no entry text read."""
        q = "SELECT seq, language FROM entries WHERE day = ? ORDER BY published DESC, id"
        return DayRows.of(self.db.execute(q, [day.isoformat()]))

    def by_translation_keys(self, keys: Sequence[str]) -> list[StoredEntry]:
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(keys):
            q = f"SELECT * FROM entries WHERE translation_key IN ({_marks(chunk)})"
            rows.extend(self._query(q, chunk))
        return [_stored_entry(r, ()) for r in rows]

    def count_entries(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def language_counts(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT COALESCE(language, 'unknown'), COUNT(*) FROM entries GROUP BY 1 ORDER BY 2 DESC"
        )
        return {r[0]: r[1] for r in rows}

    def days_with_entries(self, not_after: date) -> dict[str | None, list[date]]:
        """Days (in site.timezone) with entries, oldest first, none later than `not_after`, per
        language (None: the language is unknown). One query on the entries(day, language) index."""
        out: dict[str | None, list[date]] = {}
        rows = self.db.execute(
            "SELECT day, language FROM entries WHERE day <= ? GROUP BY day, language ORDER BY day",
            [not_after.isoformat()],
        )
        for day, language in rows:
            out.setdefault(language, []).append(date.fromisoformat(day))
        return out

    # -- helpers --------------------------------------------------------------
    def _insert_many(self, table: str, rows: list[dict[str, Any]]) -> None:
        """INSERT OR IGNORE: a row already there (a race between two polls) is kept as it is."""
        if not rows:
            return
        cols = list(rows[0])
        sql = f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self.db.conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])

    def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, list(params))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def _with_sources(self, rows: list[dict[str, Any]]) -> list[StoredEntry]:
        sources: dict[str, list[Source]] = {}
        ids = [r["id"] for r in rows]
        for chunk in _chunks(ids):
            for s in self._query(
                f"SELECT * FROM entry_sources WHERE entry_id IN ({_marks(chunk)}) ORDER BY first_seen, rowid",
                chunk,
            ):
                sources.setdefault(s["entry_id"], []).append(
                    Source(
                        feed_url=s["feed_url"],
                        feed_name=s["feed_name"],
                        source_key=s["source_key"],
                        link=s["link"],
                        first_seen=datetime.fromisoformat(s["first_seen"]),
                    )
                )
        return [_stored_entry(r, tuple(sources.get(r["id"], ()))) for r in rows]

    # -- front-page planning (read-only) ----------------------------------------------------
    def day_counts(self) -> list[tuple[date, str | None, int]]:
        """(day, language, entries) for every day and language with entries, oldest day first;
        language is the primary subtag or None (unknown). One grouped scan of the
        entries(day, language) index: the calendar of front pages (`pages_plan.Calendar`)."""
        rows = self.db.execute(
            "SELECT day, language, COUNT(*) FROM entries GROUP BY day, language ORDER BY day, language"
        ).fetchall()
        return [(date.fromisoformat(d), lang, int(n)) for d, lang, n in rows]


def _chunks(items: Sequence[_T], size: int = 500) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(chunk: Sequence[object]) -> str:
    return ", ".join("?" * len(chunk))


def _entry_row(e: StoredEntry) -> dict[str, Any]:
    return entry_row(e, _ts, date.isoformat, int)


def _source_row(entry_id: str, s: Source) -> dict[str, Any]:
    return {
        "feed_url": s.feed_url,
        "source_key": s.source_key,
        "entry_id": entry_id,
        "feed_name": xml_safe(s.feed_name),
        "link": safe_text(s.link),
        "first_seen": _ts(s.first_seen),
    }


def _stored_entry(r: dict[str, Any], sources: tuple[Source, ...]) -> StoredEntry:
    return stored_entry(r, sources, datetime.fromisoformat, date.fromisoformat)


def _feed_state(d: dict[str, Any]) -> FeedState:
    return feed_state(d, datetime.fromisoformat)
