"""The PostgreSQL store (issue 16): several pollers on one shared database.

psycopg 3 with its connection pool (psycopg-pool); connections in autocommit, every write in an
explicit transaction begun here. Times are `timestamptz` (sessions run in UTC), days `date`.

Concurrency, where SQLite has one write lock for everything:
- **A poll** (`PostgresStore.poll`) takes a transaction-level advisory lock on its feed (two
  processes polling one feed are serialised), then, in `lookup`, one on each dedupe key its
  candidates carry (canonical URL, language + title key, fingerprint), in sorted order. Any
  two polls that could bring the same article share one of those keys, so the second reads
  what the first committed before it decides: one entry, both sources. Polls of unrelated
  articles never wait for each other.
- **Inserts** are `INSERT … ON CONFLICT DO NOTHING` on the primary keys (entry id, (feed,
  source key)): a row already there is kept, never duplicated.
- **Claims** (`claim_due`) are one statement: `FOR UPDATE SKIP LOCKED` picks due feeds that
  no concurrent claim holds, and the same statement stamps their lease (after procrastinate's
  `procrastinate_fetch_job`).
- **Migrations** run under `pg_advisory_xact_lock`, each step with its version bump in one
  transaction; a schema newer than the code is refused. Our version lives in
  `aggregator_schema`; procrastinate's tables (the workers) are its own, applied by its tooling.
- `seq` comes from a sequence: it grows with every insert, but two polls committing at once
  may commit in the other order (cursors should allow for that; SQLite's never do).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.rows import dict_row, tuple_row

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
from ..text import RENDER_VERSION, publishable, xml_safe
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

SCHEMA_VERSION = 4
REFRESH_BATCH = 500  # entries made publishable per transaction when the rules changed

log = logging.getLogger(__name__)
POOL_SIZE = 4  # a poller uses one connection at a time per thread; publishing one more

_MIGRATE_LOCK = 0x61676772_65676174  # "aggregat": the advisory lock migrations run under

# Each step takes the schema from version i to i+1, in one transaction with its version bump.
# Never edit one that has shipped; add the next.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE feeds (
        url text PRIMARY KEY,
        name text NOT NULL,
        language text NOT NULL,
        title text,
        etag text,
        last_modified text,
        last_polled timestamptz,
        last_status integer,
        last_outcome text,
        last_error text,
        error_count integer NOT NULL DEFAULT 0,
        next_poll timestamptz,
        permanent_url text,
        gone boolean NOT NULL DEFAULT false,
        warning text,
        leased_until timestamptz
    );
    CREATE INDEX feeds_next_poll ON feeds (next_poll) WHERE NOT gone;
    CREATE SEQUENCE entries_seq;
    CREATE TABLE entries (
        id text PRIMARY KEY,
        seq bigint NOT NULL DEFAULT nextval('entries_seq'),
        feed_url text NOT NULL,
        source_key text NOT NULL,
        canonical_url text,
        fingerprint text NOT NULL,
        link text,
        title text NOT NULL,
        summary text NOT NULL,
        content text NOT NULL,
        author text,
        categories text NOT NULL DEFAULT '[]',
        enclosures text NOT NULL DEFAULT '[]',
        translations text NOT NULL DEFAULT '[]',
        published timestamptz NOT NULL,
        updated timestamptz,
        first_seen timestamptz NOT NULL,
        language text,
        language_tag text,
        language_evidence text NOT NULL,
        day date NOT NULL,
        content_hash text NOT NULL,
        title_key text NOT NULL DEFAULT '',
        translation_key text,
        published_zone text,
        date_only boolean NOT NULL DEFAULT false
    );
    ALTER SEQUENCE entries_seq OWNED BY entries.seq;
    CREATE UNIQUE INDEX entries_seq_key ON entries (seq);
    CREATE INDEX entries_canonical_url ON entries (canonical_url);
    CREATE INDEX entries_fingerprint ON entries (fingerprint);
    CREATE INDEX entries_language_title_key ON entries (language, title_key);
    CREATE INDEX entries_translation_key ON entries (translation_key) WHERE translation_key IS NOT NULL;
    CREATE INDEX entries_language_published ON entries (language, published);
    CREATE INDEX entries_published ON entries (published);
    CREATE INDEX entries_day_language ON entries (day, language);
    CREATE TABLE entry_sources (
        feed_url text NOT NULL,
        source_key text NOT NULL,
        entry_id text NOT NULL REFERENCES entries (id),
        feed_name text NOT NULL,
        link text,
        first_seen timestamptz NOT NULL,
        added bigint GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (feed_url, source_key)
    );
    CREATE INDEX entry_sources_entry ON entry_sources (entry_id);
    CREATE TABLE fetch_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        feed_url text NOT NULL,
        started timestamptz NOT NULL,
        url text NOT NULL,
        status integer,
        bytes bigint,
        duration_ms double precision,
        outcome text NOT NULL,
        error text
    );
    CREATE INDEX fetch_log_feed_started ON fetch_log (feed_url, started);
    CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
    """,
    # The body of the last successful poll, hashed: an unchanged 200 is not parsed again
    # (SQLite's step 5).
    """
    ALTER TABLE feeds ADD COLUMN body_hash text;
    """,
    # Each entry made safe to publish once, at ingest (SQLite's step 6): the sanitised content
    # HTML, the plain text ledes are cut from, and the rules they were made under. Existing
    # rows are filled by `_refresh_publishable` (after every migration and when rules change).
    """
    ALTER TABLE entries ADD COLUMN content_html text,
        ADD COLUMN lede_text text,
        ADD COLUMN render_version text;
    """,
    # Days whose pages and archives the next publish owes, whichever worker publishes
    # (SQLite's step 7).
    """
    CREATE TABLE unpublished_days (day date PRIMARY KEY);
    """,
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_T = TypeVar("_T")
_DRIVER_ERRORS = (psycopg.Error, UnicodeEncodeError, ValueError)


def redacted(url: str) -> str:
    """The URL with any password replaced by `***`, fit for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def store_error(e: BaseException, url: str) -> StoreError:
    """A psycopg (or encoding) error met while using the database at `url`, as a StoreError.
    Kinds by SQLSTATE (PostgreSQL manual, appendix A)."""
    if isinstance(e, StoreError):
        return e
    where = redacted(url)
    detail = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, psycopg_pool.PoolClosed):
        return StoreError(f"the store {where} was closed ({detail})")
    if isinstance(e, psycopg_pool.PoolTimeout):
        return StoreMissing(f"cannot reach the PostgreSQL database {where} ({detail})")
    if isinstance(e, psycopg.Error):
        state = e.sqlstate or ""
        if isinstance(e, pg_errors.LockNotAvailable | pg_errors.DeadlockDetected | pg_errors.QueryCanceled):
            return StoreLocked(
                f"the database {where} is locked by another process ({detail}); "
                "try again when it has finished"
            )
        if isinstance(e, pg_errors.SerializationFailure):
            return StoreLocked(f"the database {where} was changed by another process at once ({detail})")
        if state.startswith("53"):
            return StoreFull(f"the server holding {where} is out of space or memory ({detail})")
        if isinstance(e, pg_errors.ReadOnlySqlTransaction | pg_errors.InsufficientPrivilege):
            return StoreReadOnly(f"the database {where} cannot be written ({detail})")
        if state.startswith("XX0"):
            return StoreCorrupt(f"the database {where} is damaged ({detail})")
        if isinstance(e, pg_errors.UndefinedTable):
            return StoreMissing(f"the database {where} has no aggregator schema ({detail})")
        if isinstance(e, psycopg.OperationalError) and not state:
            return StoreMissing(f"cannot reach the PostgreSQL database {where} ({detail})")
        return StoreError(f"database error on {where}: {detail}")
    if isinstance(e, UnicodeEncodeError | ValueError):
        return StoreError(f"text that cannot be stored in {where}: {detail}")
    return StoreError(f"{type(e).__name__}: {detail}")


def _translated(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except _DRIVER_ERRORS as e:
            raise store_error(e, args[0]._url) from e  # type: ignore[attr-defined]

    return wrapper


def _errors_at_the_boundary(cls: type[_T]) -> type[_T]:
    """Every public method (and property) of `cls` raises StoreError, never a driver error."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, property) and value.fget is not None:
            setattr(cls, name, property(_translated(value.fget)))
        elif callable(value):
            setattr(cls, name, _translated(value))
    return cls


def _ts(value: datetime | None) -> datetime | None:
    """Aware UTC to the second, as SQLite's text form keeps it (the contract: both stores
    give back the same value)."""
    return value.astimezone(UTC).replace(microsecond=0) if value is not None else None


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for a dedupe key (a collision only serialises more)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _candidate_keys(candidates: Sequence[Candidate]) -> list[int]:
    keys = set()
    for c in candidates:
        if c.canonical_url:
            keys.add(_lock_key("url", c.canonical_url))
        keys.add(_lock_key("fingerprint", c.fingerprint))
        if c.language and c.title_key:
            keys.add(_lock_key("title", c.language, c.title_key))
    return sorted(keys)


@_errors_at_the_boundary
class PostgresPollWork:
    """One poll's unit of work on PostgreSQL, inside the transaction `PostgresStore.poll` holds."""

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[dict[str, Any]], feed_url: str) -> None:
        self._store = store
        self._url = store._url
        self._conn = conn
        self.feed_url = feed_url

    def lookup(self, candidates: Sequence[Candidate]) -> list[StoredEntry]:
        """Takes the dedupe keys' locks (sorted, so two polls never wait on each other in a
        cycle), then reads the stored entries the candidates may match."""
        keys = _candidate_keys(candidates)
        if keys:
            # The subquery's order is the order the locks are taken in.
            self._conn.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS keys",
                [keys],
            )
        return self._store._lookup(self._conn, self.feed_url, candidates)

    def apply(self, plan: UpdatePlan) -> None:
        self._store._apply(self._conn, plan)

    def entries_published_since(self, since: datetime) -> int:
        return self._store._entries_published_since(self._conn, self.feed_url, since)

    def mark_unpublished(self, days: Collection[date]) -> None:
        self._store._mark_unpublished(self._conn, days)

    def record(self, record: PollRecord) -> None:
        self._store._record_poll(self._conn, record)


@_errors_at_the_boundary
class PostgresStore:
    """The store in a PostgreSQL database (`postgresql://…`, libpq's URI).

    Raises StoreError subclasses only: StoreMissing (the server cannot be reached within
    `busy_timeout` seconds, or `create=False` and the schema was never created),
    StoreLocked (a lock waited for beyond `busy_timeout`, a deadlock), StoreFull,
    StoreReadOnly, StoreCorrupt, StoreSchemaError (newer schema). One object holds a small
    pool of connections and may be shared between threads."""

    def __init__(self, url: str, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self._url = url
        self._busy_timeout = busy_timeout
        timeout_ms = max(1, int(busy_timeout * 1000))
        try:
            # One plain connection first: an unreachable server or a refused login is said at
            # once, in libpq's words, instead of after the pool's retries.
            psycopg.connect(url, connect_timeout=max(1, int(busy_timeout))).close()
        except _DRIVER_ERRORS as e:
            raise store_error(e, url) from e
        try:
            self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[dict[str, Any]]] = (
                psycopg_pool.ConnectionPool(
                    url,
                    connection_class=psycopg.Connection[dict[str, Any]],
                    kwargs={
                        "autocommit": True,
                        "row_factory": dict_row,
                        # Times in and out in UTC; a lock waited for longer is StoreLocked.
                        "options": f"-c TimeZone=UTC -c lock_timeout={timeout_ms}",
                        "connect_timeout": max(1, int(busy_timeout)),
                    },
                    min_size=1,
                    max_size=POOL_SIZE,
                    timeout=busy_timeout,
                    open=False,
                    name="aggregator",
                )
            )
            self._pool.open(wait=True, timeout=busy_timeout)
        except _DRIVER_ERRORS as e:
            with contextlib.suppress(Exception):
                self._pool.close()  # else its threads go on trying to connect
            raise store_error(e, url) from e
        try:
            if create:
                self.migrate()
            else:
                version = self.version
                if version == 0:
                    raise StoreMissing(
                        f"no aggregator schema in {redacted(url)}: nothing has been polled into it yet "
                        "(run `aggregator fetch`, or check --store)"
                    )
                self.migrate()  # reads only, unless the schema or the publishing rules changed
        except BaseException:
            self._pool.close()
            raise

    @property
    def url(self) -> str:
        """Where this store is, as `open_store` takes it."""
        return self._url

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with self._pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """One transaction on one pooled connection: committed when the block ends, rolled
        back if it raises."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def poll(self, feed_url: str) -> contextlib.AbstractContextManager[PostgresPollWork]:
        """The unit of work of one poll of `feed_url` (see `aggregator.store.PollWork`): a
        transaction holding the feed's advisory lock; `lookup` adds its dedupe keys' locks."""
        return self._poll(feed_url)

    @contextlib.contextmanager
    def _poll(self, feed_url: str) -> Iterator[PostgresPollWork]:
        try:
            with self._write() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key("feed", feed_url)])
                yield PostgresPollWork(self, conn, feed_url)
        except _DRIVER_ERRORS as e:
            raise store_error(e, self._url) from e

    def exclusive(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Hold the session advisory lock `name` for the block: one holder at a time over
        every process using this database (the workers apply procrastinate's schema so)."""
        return self._exclusive(name)

    @contextlib.contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        key = _lock_key("exclusive", name)
        with self._conn() as conn:
            conn.execute("SET lock_timeout = 0")  # waiting for the holder is the point
            conn.execute("SELECT pg_advisory_lock(%s)", [key])
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [key])
                conn.execute("RESET lock_timeout")

    def has_table(self, name: str) -> bool:
        """Whether a table of that name exists (in the search path)."""
        with self._conn() as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", [name]).fetchone()
        return bool(row and row["present"])

    # -- schema ---------------------------------------------------------------
    @property
    def version(self) -> int:
        with self._conn() as conn:
            return self._version(conn)

    @staticmethod
    def _version(conn: psycopg.Connection[dict[str, Any]]) -> int:
        row = conn.execute("SELECT to_regclass('aggregator_schema') IS NOT NULL AS present").fetchone()
        if not row or not row["present"]:
            return 0
        row = conn.execute("SELECT version FROM aggregator_schema").fetchone()
        return int(row["version"]) if row else 0

    def migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION, each step in one transaction under an advisory
        lock, reading the version only once the lock is held: workers starting together run
        each step once. Raises StoreSchemaError for a newer schema. Then every entry whose
        publishable text was made under other rules is made again (`_refresh_publishable`)."""
        with self._conn() as conn:
            if self._version(conn) != SCHEMA_VERSION:
                self._migrate_schema(conn)
            self._refresh_publishable(conn)

    def _migrate_schema(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        while True:  # bounded: each pass applies one step or ends
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATE_LOCK])
                conn.execute("CREATE TABLE IF NOT EXISTS aggregator_schema (version integer NOT NULL)")
                current = self._version(conn)
                if current > SCHEMA_VERSION:
                    raise StoreSchemaError(
                        f"{redacted(self._url)} has schema version {current}, newer than this "
                        f"program's {SCHEMA_VERSION}: upgrade aggregator"
                    )
                if current == SCHEMA_VERSION:
                    return
                conn.execute(MIGRATIONS[current].encode())  # several statements: simple query
                conn.execute("DELETE FROM aggregator_schema")
                conn.execute("INSERT INTO aggregator_schema (version) VALUES (%s)", [current + 1])

    def _refresh_publishable(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        """Make every entry stored under other rules than `text.RENDER_VERSION` (or before
        schema 3) publishable again; returns how many. Runs when `meta.render_version` differs
        from the code's (one read otherwise), in transactions of REFRESH_BATCH entries under
        the migrations' advisory lock (workers starting together share the work, never
        repeat it); the rows of a batch are locked (`FOR UPDATE`), so a poll rewriting one of
        them waits, and its new text is never overwritten with text made from the old.
        Renderers never depend on it: a stale row is recomputed where it is published."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'render_version'").fetchone()
        if row and row["value"] == RENDER_VERSION:
            return 0
        started, done, after = time.monotonic(), 0, -1
        while True:  # bounded: `after` only grows, over a finite table
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATE_LOCK])
                rows = conn.execute(
                    "SELECT seq, summary, content FROM entries "
                    "WHERE seq > %s AND render_version IS DISTINCT FROM %s ORDER BY seq LIMIT %s FOR UPDATE",
                    [after, RENDER_VERSION, REFRESH_BATCH],
                ).fetchall()
                if not rows:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('render_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [RENDER_VERSION],
                    )
                    break
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE entries SET content_html = %s, lede_text = %s, render_version = %s "
                        "WHERE seq = %s",
                        [
                            (p.content_html, p.lede_text, p.render_version, r["seq"])
                            for r in rows
                            for p in [publishable(r["summary"], r["content"])]
                        ],
                    )
                after, done = rows[-1]["seq"], done + len(rows)
        if done:
            log.info(
                "%s: %d entries made publishable under the current rules in %.1f s",
                redacted(self._url), done, time.monotonic() - started,
            )  # fmt: skip
        return done

    # -- feeds ----------------------------------------------------------------
    def sync_feeds(self, feeds: Iterable[tuple[str, str, str]]) -> None:
        """(url, name, language) from the config; poll state of known feeds is kept."""
        wanted = [(url, xml_safe(name), language) for url, name, language in feeds]
        with self._conn() as conn:
            known = {
                r["url"]: (r["name"], r["language"])
                for r in conn.execute("SELECT url, name, language FROM feeds").fetchall()
            }
            todo = [w for w in wanted if known.get(w[0]) != (w[1], w[2])]
            if not todo:
                return
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO feeds (url, name, language) VALUES (%s, %s, %s) "
                    "ON CONFLICT (url) DO UPDATE SET name = excluded.name, language = excluded.language",
                    todo,
                )

    def sync_zone(self, zone: ZoneInfo) -> int:
        """Make every entry's day a day in `zone` (see `Store.sync_zone`)."""
        with self._conn() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'day_zone'").fetchone()
            if row and row["value"] == zone.key:
                return 0
            with conn.transaction():
                conn.execute("LOCK TABLE meta IN SHARE ROW EXCLUSIVE MODE")  # one mover at a time
                rows = conn.execute("SELECT id, published, date_only, day FROM entries").fetchall()
                changes = []
                for r in rows:
                    new = entry_day(r["published"], r["date_only"], zone)
                    if new != r["day"]:
                        changes.append((new, r["id"]))
                with conn.cursor() as cur:
                    cur.executemany("UPDATE entries SET day = %s WHERE id = %s", changes)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('day_zone', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [zone.key],
                )
            return len(changes)

    def feed_state(self, url: str) -> FeedState | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM feeds WHERE url = %s", [url]).fetchone()
        return _feed_state(row) if row else None

    def feed_states(self) -> dict[str, FeedState]:
        with self._conn() as conn:
            return {r["url"]: _feed_state(r) for r in conn.execute("SELECT * FROM feeds").fetchall()}

    def claim_due(
        self, now: datetime, n: int, lease: timedelta, feeds: Collection[str] | None = None
    ) -> list[FeedState]:
        """See `Store.claim_due`: one statement; `FOR UPDATE SKIP LOCKED` passes over feeds a
        concurrent claim is taking, so claims never wait for each other nor overlap."""
        if n <= 0:
            return []
        only = "" if feeds is None else "AND url = ANY(%(feeds)s)"
        with self._conn() as conn:
            rows = conn.execute(
                f"""WITH due AS (
                      SELECT url FROM feeds
                      WHERE NOT gone
                        AND (next_poll IS NULL OR next_poll <= %(now)s)
                        AND (leased_until IS NULL OR leased_until <= %(now)s) {only}
                      ORDER BY next_poll NULLS FIRST, url COLLATE "C"
                      LIMIT %(n)s
                      FOR UPDATE SKIP LOCKED)
                    UPDATE feeds SET leased_until = %(until)s FROM due WHERE feeds.url = due.url
                    RETURNING feeds.*""",
                {"now": _ts(now), "n": n, "until": _ts(now + lease), "feeds": list(feeds or ())},
            ).fetchall()
        states = [_feed_state(r) for r in rows]
        states.sort(key=lambda s: (s.next_poll is not None, s.next_poll or now, s.url))
        return states

    def release(self, feed_urls: Collection[str]) -> None:
        """End the leases of feeds claimed but not polled."""
        if not feed_urls:
            return
        with self._conn() as conn:
            conn.execute("UPDATE feeds SET leased_until = NULL WHERE url = ANY(%s)", [list(feed_urls)])

    def record_poll(self, record: PollRecord) -> None:
        """See `Store.record_poll`."""
        with self._write() as conn:
            self._record_poll(conn, record)

    def _record_poll(self, conn: psycopg.Connection[dict[str, Any]], record: PollRecord) -> None:
        result, outcome, validators = record.result, record.outcome, record.validators
        error, title, warning = safe_text(record.error), safe_text(record.title), safe_text(record.warning)
        if validators:
            etag_sql, modified_sql = "etag = %(etag)s", "last_modified = %(modified)s"
            hash_sql = "body_hash = %(hash)s"
        else:
            etag_sql = "etag = COALESCE(%(etag)s, etag)"
            modified_sql = "last_modified = COALESCE(%(modified)s, last_modified)"
            hash_sql = "body_hash = COALESCE(%(hash)s, body_hash)"
        conn.execute(
            f"""UPDATE feeds SET
                 {etag_sql}, {modified_sql}, {hash_sql},
                 last_polled = %(polled)s, last_status = %(status)s, last_outcome = %(outcome)s,
                 last_error = %(error)s, error_count = %(errors)s, next_poll = %(next)s,
                 title = COALESCE(%(title)s, title),
                 permanent_url = COALESCE(%(moved)s, permanent_url), gone = %(gone)s,
                 warning = %(warning)s, leased_until = NULL
               WHERE url = %(url)s""",
            {
                "etag": result.etag if validators else None,
                "modified": result.last_modified if validators else None,
                "hash": record.body_hash if validators else None,
                "polled": _ts(result.fetched_at),
                "status": result.status,
                "outcome": outcome,
                "error": error,
                "errors": record.error_count,
                "next": _ts(record.next_poll),
                "title": title,
                "moved": safe_text(result.permanent_redirect),
                "gone": record.gone,
                "warning": warning,
                "url": result.feed_url,
            },
        )
        conn.execute(
            "INSERT INTO fetch_log (feed_url, started, url, status, bytes, duration_ms, outcome, error) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
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
        """See `Store.record_failure`."""
        with self._write() as conn:
            conn.execute(
                """UPDATE feeds SET last_polled = %s, last_status = %s, last_outcome = %s,
                     last_error = %s, error_count = %s, next_poll = %s, leased_until = NULL
                   WHERE url = %s""",
                [_ts(fetched_at), status, outcome, safe_text(error), error_count, _ts(next_poll), feed_url],
            )
            conn.execute(
                "INSERT INTO fetch_log (feed_url, started, url, status, bytes, duration_ms, outcome, error) "
                "VALUES (%s, %s, %s, %s, NULL, %s, %s, %s)",
                [feed_url, _ts(fetched_at), safe_text(url), status, duration_ms, outcome, safe_text(error)],
            )

    def prune_fetch_log(self, older_than: timedelta, now: datetime) -> int:
        with self._conn() as conn:
            cur = conn.execute("DELETE FROM fetch_log WHERE started < %s", [_ts(now - older_than)])
            return int(cur.rowcount)

    def fetch_log(self, feed_url: str, limit: int = 20) -> list[dict[str, Any]]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT started, url, status, bytes, duration_ms, outcome, error FROM fetch_log "
                "WHERE feed_url = %s ORDER BY started DESC, id DESC LIMIT %s",
                [feed_url, limit],
            ).fetchall()
        # `started` as the ISO 8601 text SQLite's store gives (the CLI prints it as it is).
        return [r | {"started": r["started"].astimezone(UTC).isoformat(timespec="seconds")} for r in rows]

    def entries_published_since(self, feed_url: str, since: datetime) -> int:
        with self._conn() as conn:
            return self._entries_published_since(conn, feed_url, since)

    def _entries_published_since(
        self, conn: psycopg.Connection[dict[str, Any]], feed_url: str, since: datetime
    ) -> int:
        row = conn.execute(
            "SELECT COUNT(DISTINCT s.entry_id) AS n FROM entry_sources s JOIN entries e ON e.id = s.entry_id "
            "WHERE s.feed_url = %s AND e.published >= %s",
            [feed_url, _ts(since)],
        ).fetchone()
        return int(row["n"]) if row else 0

    def feed_stats(self) -> list[FeedStats]:
        with self._conn() as conn:
            rows = conn.execute(
                """SELECT f.*,
                     (SELECT COUNT(*) FROM entries e WHERE e.feed_url = f.url) AS n_entries,
                     (SELECT COUNT(*) FROM entry_sources s WHERE s.feed_url = f.url) AS n_seen
                   FROM feeds f ORDER BY f.name COLLATE "C" """
            ).fetchall()
        return [FeedStats(_feed_state(r), r["language"], r["n_entries"], r["n_seen"]) for r in rows]

    # -- entries --------------------------------------------------------------
    def lookup(self, feed_url: str, candidates: Sequence[Candidate]) -> list[StoredEntry]:
        with self._conn() as conn:
            return self._lookup(conn, feed_url, candidates)

    def _lookup(
        self, conn: psycopg.Connection[dict[str, Any]], feed_url: str, candidates: Sequence[Candidate]
    ) -> list[StoredEntry]:
        titles: dict[str, list[str]] = {}
        for c in candidates:
            if c.language and c.title_key:
                titles.setdefault(c.language, []).append(c.title_key)
        ids: set[str] = set()
        for lang, keys in titles.items():
            q = "SELECT id FROM entries WHERE language = %s AND title_key = ANY(%s)"
            ids.update(r["id"] for r in conn.execute(q, [lang, keys]))
        q = "SELECT entry_id AS id FROM entry_sources WHERE feed_url = %s AND source_key = ANY(%s)"
        ids.update(r["id"] for r in conn.execute(q, [feed_url, [c.source_key for c in candidates]]))
        urls = [c.canonical_url for c in candidates if c.canonical_url]
        if urls:
            ids.update(
                r["id"] for r in conn.execute("SELECT id FROM entries WHERE canonical_url = ANY(%s)", [urls])
            )
        fingerprints = [c.fingerprint for c in candidates]
        ids.update(
            r["id"]
            for r in conn.execute("SELECT id FROM entries WHERE fingerprint = ANY(%s)", [fingerprints])
        )
        return self._entries_where(conn, "id", sorted(ids))

    def entries_by_id(self, ids: Sequence[str]) -> list[StoredEntry]:
        with self._conn() as conn:
            return self._entries_where(conn, "id", ids)

    def _entries_where(
        self, conn: psycopg.Connection[dict[str, Any]], column: str, keys: Sequence[str] | Sequence[int]
    ) -> list[StoredEntry]:
        """The entries whose `column` (a name written here, never a caller's text) is one of
        `keys`, with their sources."""
        if not keys:
            return []
        rows = conn.execute(f"SELECT * FROM entries WHERE {column} = ANY(%s)", [list(keys)]).fetchall()
        return self._with_sources(conn, rows)

    def apply(self, plan: UpdatePlan) -> None:
        """Write one poll's decision in a single transaction (a poll uses `poll`)."""
        with self._write() as conn:
            self._apply(conn, plan)

    def mark_unpublished(self, days: Collection[date]) -> None:
        """See `Store.mark_unpublished`."""
        if days:
            with self._write() as conn:
                self._mark_unpublished(conn, days)

    def _mark_unpublished(self, conn: psycopg.Connection[dict[str, Any]], days: Collection[date]) -> None:
        if days:
            conn.execute(
                "INSERT INTO unpublished_days (day) SELECT unnest(%s::date[]) ON CONFLICT DO NOTHING",
                [sorted(days)],
            )

    def take_unpublished(self) -> frozenset[date]:
        """See `Store.take_unpublished`: one DELETE … RETURNING, atomic against marks."""
        with self._write() as conn:
            rows = conn.execute("DELETE FROM unpublished_days RETURNING day").fetchall()
        return frozenset(r["day"] for r in rows)

    def _apply(self, conn: psycopg.Connection[dict[str, Any]], plan: UpdatePlan) -> None:
        if not (plan.inserts or plan.updates or plan.new_sources or plan.language_fixes):
            return
        with conn.cursor() as cur:
            if plan.inserts:
                rows = [_entry_row(e) for e in plan.inserts]
                cols = list(rows[0])
                cur.executemany(
                    f"INSERT INTO entries ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
                    "ON CONFLICT DO NOTHING",
                    [tuple(r[c] for c in cols) for r in rows],
                )
                self._insert_sources(cur, [(e.id, s) for e in plan.inserts for s in e.sources])
            for e in plan.updates:
                row = _entry_row(e)
                for fixed in ("id", "first_seen", "day", "feed_url", "source_key", "fingerprint",
                              "published", "published_zone", "date_only"):  # fmt: skip
                    row.pop(fixed)
                sets = ", ".join(f"{k} = %s" for k in row)
                cur.execute(f"UPDATE entries SET {sets} WHERE id = %s", [*row.values(), e.id])
            if plan.updates:
                # A rewritten entry's own feed may have given it another link (dedupe.with_own_link).
                cur.executemany(
                    "UPDATE entry_sources SET link = %s WHERE feed_url = %s AND source_key = %s "
                    "AND entry_id = %s AND link IS DISTINCT FROM %s",
                    own_source_links(plan.updates),
                )
            self._insert_sources(cur, list(plan.new_sources))
            if plan.language_fixes:
                cur.executemany(
                    "UPDATE entries SET language = %s, language_tag = %s, language_evidence = %s "
                    "WHERE id = %s",
                    [(lang or None, tag, evidence, eid) for eid, lang, tag, evidence in plan.language_fixes],
                )

    @staticmethod
    def _insert_sources(cur: psycopg.Cursor[dict[str, Any]], sources: list[tuple[str, Source]]) -> None:
        """A (feed, source key) already there keeps its entry. The entry must exist: a source
        whose entry an insert skipped (it was there already under that id) still joins it."""
        if not sources:
            return
        cur.executemany(
            "INSERT INTO entry_sources (feed_url, source_key, entry_id, feed_name, link, first_seen) "
            "SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM entries WHERE id = %s) "
            "ON CONFLICT DO NOTHING",
            [
                (
                    s.feed_url,
                    s.source_key,
                    eid,
                    xml_safe(s.feed_name),
                    safe_text(s.link),
                    _ts(s.first_seen),
                    eid,
                )
                for eid, s in sources
            ],
        )

    def latest(self, language: str | None, limit: int) -> list[StoredEntry]:
        with self._conn() as conn:
            if language is None:
                rows = conn.execute(
                    'SELECT * FROM entries ORDER BY published DESC, id COLLATE "C" LIMIT %s', [limit]
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM entries WHERE language = %s "
                    'ORDER BY published DESC, id COLLATE "C" LIMIT %s',
                    [language, limit],
                ).fetchall()
            return self._with_sources(conn, rows)

    def latest_day(self, language: str | None, not_after: date) -> date | None:
        with self._conn() as conn:
            if language is None:
                row = conn.execute(
                    "SELECT MAX(day) AS d FROM entries WHERE day <= %s", [not_after]
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT MAX(day) AS d FROM entries WHERE language = %s AND day <= %s",
                    [language, not_after],
                ).fetchone()
        return row["d"] if row else None

    def day(self, day: date, language: str | None) -> list[StoredEntry]:
        with self._conn() as conn:
            if language is None:
                rows = conn.execute(
                    'SELECT * FROM entries WHERE day = %s ORDER BY published DESC, id COLLATE "C"', [day]
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM entries WHERE day = %s AND language = %s "
                    'ORDER BY published DESC, id COLLATE "C"',
                    [day, language],
                ).fetchall()
            return self._with_sources(conn, rows)

    def day_index(self, day: date) -> DayRows:
        """See `Store.day_index`: rows as tuples, one at a time, not as dicts."""
        with self._conn() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(
                'SELECT seq, language FROM entries WHERE day = %s ORDER BY published DESC, id COLLATE "C"',
                [day],
            )
            return DayRows.of(cur)

    def entries_by_seq(self, seqs: Sequence[int]) -> list[StoredEntry]:
        """See `Store.entries_by_seq`: on the unique entries(seq) index."""
        with self._conn() as conn:
            return self._entries_where(conn, "seq", seqs)

    def by_translation_keys(self, keys: Sequence[str]) -> list[StoredEntry]:
        if not keys:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT * FROM entries WHERE translation_key = ANY(%s)", [list(keys)]
            ).fetchall()
        return [_stored_entry(r, ()) for r in rows]

    def count_entries(self) -> int:
        with self._conn() as conn:
            row = conn.execute("SELECT COUNT(*) AS n FROM entries").fetchone()
        return int(row["n"]) if row else 0

    def language_counts(self) -> dict[str, int]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT COALESCE(language, 'unknown') AS lang, COUNT(*) AS n FROM entries "
                "GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        return {r["lang"]: r["n"] for r in rows}

    def day_counts(self) -> list[tuple[date, str | None, int]]:
        """(day, language, entries), oldest day first, unknown language first within a day."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT day, language, COUNT(*) AS n FROM entries GROUP BY day, language "
                'ORDER BY day, language COLLATE "C" NULLS FIRST'
            ).fetchall()
        return [(r["day"], r["language"], int(r["n"])) for r in rows]

    def days_with_entries(self, not_after: date) -> dict[str | None, list[date]]:
        """Language (None: unknown) -> its days with entries, oldest first, up to `not_after`."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT day, language FROM entries WHERE day <= %s GROUP BY day, language ORDER BY day",
                [not_after],
            ).fetchall()
        out: dict[str | None, list[date]] = {}
        for r in rows:
            out.setdefault(r["language"], []).append(r["day"])
        return out

    def _with_sources(
        self, conn: psycopg.Connection[dict[str, Any]], rows: list[dict[str, Any]]
    ) -> list[StoredEntry]:
        sources: dict[str, list[Source]] = {}
        if rows:
            for s in conn.execute(
                "SELECT * FROM entry_sources WHERE entry_id = ANY(%s) ORDER BY first_seen, added",
                [[r["id"] for r in rows]],
            ).fetchall():
                sources.setdefault(s["entry_id"], []).append(
                    Source(
                        feed_url=s["feed_url"],
                        feed_name=s["feed_name"],
                        source_key=s["source_key"],
                        link=s["link"],
                        first_seen=s["first_seen"].astimezone(UTC),
                    )
                )
        return [_stored_entry(r, tuple(sources.get(r["id"], ()))) for r in rows]


def _entry_row(e: StoredEntry) -> dict[str, Any]:
    return entry_row(e, _ts, _as_day, bool)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _as_day(value: date) -> date:
    return value


def _stored_entry(r: dict[str, Any], sources: tuple[Source, ...]) -> StoredEntry:
    return stored_entry(r, sources, _to_utc, _as_day)


def _feed_state(d: dict[str, Any]) -> FeedState:
    return feed_state(d, _to_utc)
