"""SQLite through sqlite-utils: schema, migrations and every query. No SQL lives elsewhere.

Guarantees: WAL mode; each poll's plan is written in one transaction; entries are never
deleted because a source dropped them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from .models import (
    Candidate,
    Enclosure,
    FeedState,
    FetchResult,
    Source,
    StoredEntry,
    UpdatePlan,
)
from .text import normalise_title

SCHEMA_VERSION = 2


def _backfill_title_keys(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, title FROM entries").fetchall()
    conn.executemany(
        "UPDATE entries SET title_key = ? WHERE id = ?", [(normalise_title(t), i) for i, t in rows]
    )


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
]


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class FeedStats:
    state: FeedState
    language: str
    entries: int  # entries first seen in this feed
    seen_in: int  # entries this feed carried, counting ones merged from elsewhere


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: only the last commit can go
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.version
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this program's "
                f"{SCHEMA_VERSION}: upgrade aggregator"
            )
        conn = self.db.conn
        for i in range(current, SCHEMA_VERSION):
            sql, step = MIGRATIONS[i]
            # One transaction per step: a crash mid-migration leaves the previous version intact.
            conn.execute("BEGIN")
            try:
                for statement in (s.strip() for s in sql.split(";")):
                    if statement:
                        conn.execute(statement)
                if step is not None:
                    step(conn)
                conn.execute(f"PRAGMA user_version={i + 1}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- feeds ----------------------------------------------------------------
    def sync_feeds(self, feeds: Iterable[tuple[str, str, str]]) -> None:
        """(url, name, language) from the config; fetch state of known feeds is kept."""
        with self.db.conn:
            for url, name, language in feeds:
                self.db.execute(
                    "INSERT INTO feeds (url, name, language) VALUES (?, ?, ?) "
                    "ON CONFLICT(url) DO UPDATE SET name=excluded.name, language=excluded.language",
                    [url, name, language],
                )

    def feed_state(self, url: str) -> FeedState | None:
        rows = self._query("SELECT * FROM feeds WHERE url = ?", [url])
        return _feed_state(rows[0]) if rows else None

    def feed_states(self) -> dict[str, FeedState]:
        return {r["url"]: _feed_state(r) for r in self._query("SELECT * FROM feeds", [])}

    def record_poll(
        self,
        result: FetchResult,
        *,
        error: str | None,
        outcome: str,
        error_count: int,
        next_poll: datetime | None,
        title: str | None = None,
        warning: str | None = None,
        gone: bool = False,
    ) -> None:
        """Remember what a poll learnt about the feed, and log the attempt."""
        with self.db.conn:
            self.db.execute(
                """UPDATE feeds SET
                     etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified),
                     last_polled = ?, last_status = ?, last_outcome = ?, last_error = ?,
                     error_count = ?, next_poll = ?, title = COALESCE(?, title),
                     permanent_url = COALESCE(?, permanent_url), gone = ?, warning = ?
                   WHERE url = ?""",
                [
                    result.etag,
                    result.last_modified,
                    _ts(result.fetched_at),
                    result.status,
                    outcome,
                    error,
                    error_count,
                    _ts(next_poll),
                    title,
                    result.permanent_redirect,
                    int(gone),
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
                    result.url,
                    result.status,
                    len(result.body) if result.body is not None else None,
                    result.duration_ms,
                    outcome,
                    error,
                ],
            )

    def prune_fetch_log(self, older_than: timedelta, now: datetime) -> int:
        with self.db.conn:
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
        """Stored entries a poll's candidates may match; every condition uses an index."""
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
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(ids):
            rows.extend(self._query(f"SELECT * FROM entries WHERE id IN ({_marks(chunk)})", chunk))
        return self._with_sources(rows)

    def apply(self, plan: UpdatePlan) -> None:
        """Write one poll's decision in a single transaction."""
        if not (plan.inserts or plan.updates or plan.new_sources or plan.language_fixes):
            return
        with self.db.conn:
            # Plain executemany on the hot path: sqlite-utils' insert_all costs ~3x as much
            # per row here (it re-derives columns and JSON-checks every value).
            if plan.inserts:
                self._insert_many("entries", [_entry_row(e) for e in plan.inserts])
                self._insert_many(
                    "entry_sources", [_source_row(e.id, s) for e in plan.inserts for s in e.sources]
                )
            for e in plan.updates:
                row = _entry_row(e)
                for fixed in ("id", "first_seen", "day", "feed_url", "source_key", "fingerprint",
                              "published", "published_zone"):  # fmt: skip
                    row.pop(fixed)
                sets = ", ".join(f"{k} = ?" for k in row)
                self.db.execute(f"UPDATE entries SET {sets} WHERE id = ?", [*row.values(), e.id])
            if plan.new_sources:
                self._insert_many("entry_sources", [_source_row(eid, s) for eid, s in plan.new_sources])
            for eid, lang, tag, evidence in plan.language_fixes:
                self.db.execute(
                    "UPDATE entries SET language = ?, language_tag = ?, language_evidence = ? WHERE id = ?",
                    [lang or None, tag, evidence, eid],
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
            rows = self._query(
                "SELECT * FROM entries WHERE day = ? AND language = ? ORDER BY published DESC, id",
                [day.isoformat(), language],
            )
        return self._with_sources(rows)

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


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(chunk: Sequence[str]) -> str:
    return ", ".join("?" * len(chunk))


def _entry_row(e: StoredEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "feed_url": e.feed_url,
        "source_key": e.source_key,
        "canonical_url": e.canonical_url,
        "fingerprint": e.fingerprint,
        "link": e.link,
        "title": e.title,
        "summary": e.summary,
        "content": e.content,
        "author": e.author,
        "categories": json.dumps(list(e.categories), ensure_ascii=False),
        "enclosures": json.dumps([[x.url, x.type, x.length] for x in e.enclosures], ensure_ascii=False),
        "translations": json.dumps([list(t) for t in e.translations], ensure_ascii=False),
        "published": _ts(e.published),
        "updated": _ts(e.updated),
        "first_seen": _ts(e.first_seen),
        "language": e.language,
        "language_tag": e.language_tag,
        "language_evidence": e.language_evidence,
        "day": e.day.isoformat(),
        "content_hash": e.content_hash,
        "title_key": e.title_key,
        "translation_key": e.translation_key,
        "published_zone": e.published_zone,
    }


def _source_row(entry_id: str, s: Source) -> dict[str, Any]:
    return {
        "feed_url": s.feed_url,
        "source_key": s.source_key,
        "entry_id": entry_id,
        "feed_name": s.feed_name,
        "link": s.link,
        "first_seen": _ts(s.first_seen),
    }


def _stored_entry(r: dict[str, Any], sources: tuple[Source, ...]) -> StoredEntry:
    published = datetime.fromisoformat(r["published"])
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
        categories=tuple(json.loads(r["categories"])),
        enclosures=tuple(Enclosure(u, t, n) for u, t, n in json.loads(r["enclosures"])),
        published=published,
        updated=_dt(r["updated"]),
        first_seen=datetime.fromisoformat(r["first_seen"]),
        language=r["language"],
        language_tag=r["language_tag"],
        language_evidence=r["language_evidence"],
        day=date.fromisoformat(r["day"]),
        content_hash=r["content_hash"],
        sources=sources,
        translations=tuple((a, b) for a, b in json.loads(r["translations"])),
        title_key=r["title_key"],
        translation_key=r["translation_key"],
        published_zone=r["published_zone"],
    )


def _feed_state(d: dict[str, Any]) -> FeedState:
    return FeedState(
        url=d["url"],
        name=d["name"],
        etag=d["etag"],
        last_modified=d["last_modified"],
        last_polled=_dt(d["last_polled"]),
        last_status=d["last_status"],
        last_outcome=d["last_outcome"],
        last_error=d["last_error"],
        error_count=d["error_count"] or 0,
        next_poll=_dt(d["next_poll"]),
        title=d["title"],
        permanent_url=d["permanent_url"],
        gone=bool(d["gone"]),
        warning=d["warning"],
    )
