"""The store: schema versioning, WAL, and nothing once seen is ever lost."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.models import (
    Candidate,
    Enclosure,
    FetchResult,
    Outcome,
    PollRecord,
    Source,
    StoredEntry,
    UpdatePlan,
)
from aggregator.store import SCHEMA_VERSION, SQLiteStore, Store, StoreError, StoreLocked, StoreSchemaError
from aggregator.text import RENDER_VERSION, publishable, xml_safe
from tests.conftest import run_cli
from tests.feedserver import FeedServer


def rss(*titles: str) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://e.org/{t}</link><guid>{t}</guid>"
        f"<pubDate>Tue, 17 Jan 2023 10:0{i}:00 GMT</pubDate><description>About {t}</description></item>"
        for i, t in enumerate(titles)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()
    )


def test_schema_is_created_versioned_and_in_wal_mode(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    assert store.version == SCHEMA_VERSION
    store.close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"feeds", "entries", "entry_sources", "fetch_log"} <= tables
    # Re-opening does not migrate again.
    assert SQLiteStore(tmp_path / "a.db").version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "a.db").close()
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreSchemaError, match="newer than this program"):
        SQLiteStore(tmp_path / "a.db")


def test_entries_dropped_by_the_source_are_kept(tmp_path: Path, feed_server: FeedServer) -> None:
    url = feed_server.add("/f.rss", rss("one", "two", "three"))
    config = tmp_path / "feeds.yaml"
    config.write_text(f"site:\n  languages: [en]\nfeeds:\n  - url: {url}\n    language: en\n")
    data = tmp_path / "data"
    assert run_cli("fetch", config=config, data=data).returncode == 0
    feed_server.add("/f.rss", rss("four"))  # the source now lists only a new entry
    result = run_cli("fetch", config=config, data=data)
    assert "1 new" in result.stdout
    db = sqlite3.connect(data / "aggregator.db")
    titles = {r[0] for r in db.execute("SELECT title FROM entries")}
    assert titles == {"one", "two", "three", "four"}
    log = db.execute("SELECT outcome, status FROM fetch_log ORDER BY id").fetchall()
    assert log == [("ok", 200), ("ok", 200)]


def test_correction_updates_in_place(tmp_path: Path, feed_server: FeedServer) -> None:
    url = feed_server.add("/f.rss", rss("one"))
    config = tmp_path / "feeds.yaml"
    config.write_text(f"site:\n  languages: [en]\nfeeds:\n  - url: {url}\n    language: en\n")
    data = tmp_path / "data"
    run_cli("fetch", config=config, data=data)
    db = sqlite3.connect(data / "aggregator.db")
    first = db.execute("SELECT id, first_seen, day FROM entries").fetchall()
    feed_server.add("/f.rss", rss("one").replace(b"About one", b"About one, corrected"))
    assert "1 updated" in run_cli("fetch", config=config, data=data).stdout
    rows = db.execute("SELECT id, first_seen, day, summary, updated FROM entries").fetchall()
    assert [r[:3] for r in rows] == first
    assert rows[0][3] == "About one, corrected" and rows[0][4] is not None


def test_version_1_database_is_migrated_with_backfill(tmp_path: Path) -> None:
    from aggregator.store.sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0][0] + "; PRAGMA user_version=1;")
    db.execute(
        "INSERT INTO entries (id, feed_url, source_key, fingerprint, title, summary, content, "
        "published, first_seen, language_evidence, day, content_hash) VALUES "
        "('e1', 'F', 'k', 'fp', 'Perù – Il movimento!', '', '', '2023-01-17T09:00:00+00:00', "
        "'2023-01-17T09:00:00+00:00', 'config', '2023-01-17', 'h')"
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert store.version == SCHEMA_VERSION == 7
    [entry] = store.entries_by_id(["e1"])
    assert entry.title_key == "peru il movimento" and entry.published_zone is None
    indexes = {r[1] for r in store.db.execute("PRAGMA index_list(entries)").fetchall()}
    assert {"entries_language_title_key", "entries_translation_key"} <= indexes


# -- version 6: each entry made safe to publish once ------------------------------------------


def _v5_database(path: Path, entries: int) -> None:
    from aggregator.store.sqlite import MIGRATIONS

    db = sqlite3.connect(path)
    db.executescript(";".join(sql for sql, _ in MIGRATIONS[:5]) + "; PRAGMA user_version=5;")
    db.executemany(
        "INSERT INTO entries (id, seq, feed_url, source_key, fingerprint, title, summary, content, "
        "published, first_seen, language_evidence, day, content_hash) VALUES (?, ?, 'F', ?, ?, 't', ?, ?, "
        "'2023-01-17T09:00:00+00:00', '2023-01-17T09:00:00+00:00', 'config', '2023-01-17', 'h')",
        [
            (f"e{i}", i + 1, f"k{i}", f"fp{i}", f"<p>Entry {i}. <script>x()</script>More</p>",
             "" if i % 2 else f"<p onclick='x()'>Body {i}</p>")
            for i in range(entries)
        ],
    )  # fmt: skip
    db.commit()
    db.close()


def test_version_5_database_is_made_publishable_on_open(tmp_path: Path) -> None:
    """Upgrading fills the new columns of every entry (more than two refresh batches here), and
    records the rules they were made under, so the next open only reads that."""
    path = tmp_path / "v5.db"
    _v5_database(path, 1_203)
    store = SQLiteStore(path)
    assert store.version == SCHEMA_VERSION == 7
    entries = store.entries_by_id([f"e{i}" for i in range(1_203)])
    assert len(entries) == 1_203
    for e in entries:
        assert e.publishable == publishable(e.summary, e.content)
    assert entries[0].publishable is not None
    assert (entries[0].publishable.lede_text, entries[0].publishable.content_html) == (
        "Entry 0. More",
        "<p>Body 0</p>",
    )
    stale = "SELECT COUNT(*) FROM entries WHERE render_version IS NOT ?"
    assert store.db.execute(stale, [RENDER_VERSION]).fetchone()[0] == 0
    meta = "SELECT value FROM meta WHERE key = 'render_version'"
    assert store.db.execute(meta).fetchone()[0] == RENDER_VERSION
    store.close()


# -- version 3: XML-safe text, date_only, seq, the day zone -------------------------------------

NOT_XML = "\x00\x01\x08\x0b\x0c\x0e\x1f\ufffe\uffff"


def _v2_database(path: Path) -> None:
    from aggregator.store.sqlite import MIGRATIONS

    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0][0] + ";" + MIGRATIONS[1][0] + "; PRAGMA user_version=2;")
    for i, eid in enumerate(["b", "a", "c"]):  # ids out of insertion order: seq follows rowid
        db.execute(
            "INSERT INTO entries (id, feed_url, source_key, fingerprint, title, summary, content, "
            "categories, published, first_seen, language_evidence, day, content_hash) VALUES "
            "(?, 'F', ?, 'fp', ?, ?, '', ?, '2023-01-17T23:30:00+00:00', '2023-01-17T23:30:00+00:00', "
            "'config', '2023-01-17', 'h')",
            [eid, f"k{i}", f"Title\x0b{i}", f"sum\x02mary\ufffe{i}", json.dumps([f"cat\x01{i}"])],
        )
    db.execute("INSERT INTO feeds (url, name, language, last_error) VALUES ('F', 'N\x07', 'en', 'e\x1b')")
    db.commit()
    db.close()


def test_version_2_database_is_cleaned_numbered_and_dated(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _v2_database(path)
    store = SQLiteStore(path)
    assert store.version == SCHEMA_VERSION == 7
    entries = {e.id: e for e in store.entries_by_id(["a", "b", "c"])}
    assert [entries[i].seq for i in ("b", "a", "c")] == [1, 2, 3]
    assert entries["b"].title == "Title 0" and entries["b"].summary == "summary0"
    assert entries["b"].categories == ("cat0",) and not entries["b"].date_only
    [state] = store.feed_states().values()
    assert (state.name, state.last_error) == ("N", "e")
    store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(codec=None), max_size=40) | st.sampled_from(["\ud800x", NOT_XML]))
def test_every_text_is_xml_safe_once_stored(tmp_path: Path, text: str) -> None:
    """Any code point in any text field (lone surrogates included, which SQLite would refuse
    to encode) is stored, and what is stored is what XML 1.0 can carry (text.xml_safe)."""
    store = SQLiteStore(tmp_path / "p.db")
    try:
        entry = _entry(f"id-{len(store.entries_by_id([]))}-{hash(text)}", text)
        store.sync_feeds([("F", text or "n", "en")])
        with store.poll("F") as work:
            work.apply(UpdatePlan(inserts=(entry,)))
            work.record(PollRecord(
                FetchResult("F", "F", 200, Outcome.OK), error=text, outcome="ok", error_count=0,
                next_poll=None, title=text, warning=text,)
            )  # fmt: skip
        [stored] = store.entries_by_id([entry.id])
        safe = xml_safe(text)
        assert (stored.title, stored.summary, stored.content, stored.author) == (safe, safe, safe, safe)
        assert stored.categories == (safe,) and stored.enclosures[0].url == safe
        assert stored.sources[0].feed_name == safe and stored.link == safe
        state = store.feed_state("F")
        assert state is not None and (state.title, state.last_error, state.warning) == (safe, safe, safe)
    finally:
        store.close()
        for p in tmp_path.glob("p.db*"):
            p.unlink()


def _entry(
    eid: str, text: str = "t", published: datetime | None = None, date_only: bool = False
) -> StoredEntry:
    when = published or datetime(2023, 1, 17, 23, 30, tzinfo=UTC)
    return StoredEntry(
        id=eid, feed_url="F", source_key=eid, canonical_url=None, fingerprint=eid, link=text,
        title=text, summary=text, content=text, author=text, categories=(text,),
        enclosures=(Enclosure(text, text, 1),), published=when, updated=None, first_seen=when,
        language="en", language_tag="en", language_evidence="config", day=when.date(), content_hash="h",
        sources=(Source("F", text, eid, text, when),), date_only=date_only,
    )  # fmt: skip


def test_seq_grows_with_every_insert_across_connections(tmp_path: Path) -> None:
    one, two = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "a.db")
    try:
        one.apply(UpdatePlan(inserts=(_entry("x"), _entry("y"))))
        two.apply(UpdatePlan(inserts=(_entry("z"),)))
        one.apply(UpdatePlan(inserts=(_entry("w"),)))
        seqs = {e.id: e.seq for e in one.entries_by_id(["w", "x", "y", "z"])}
        assert seqs == {"x": 1, "y": 2, "z": 3, "w": 4}
    finally:
        one.close()
        two.close()


def test_a_poll_that_raises_writes_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.sync_feeds([("F", "n", "en")])
    with pytest.raises(ZeroDivisionError), store.poll("F") as work:
        work.apply(UpdatePlan(inserts=(_entry("x"),)))
        work.record(PollRecord(FetchResult("F", "F", 200, Outcome.OK, etag='"e"'), error=None, outcome="ok",
                    error_count=0, next_poll=None, validators=True))  # fmt: skip
        _ = 1 / 0
    assert store.count_entries() == 0
    state = store.feed_state("F")
    assert state is not None and state.etag is None and state.last_polled is None
    assert store.fetch_log("F") == []
    store.close()


def test_validators_are_kept_unless_the_poll_succeeded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.sync_feeds([("F", "n", "en")])

    def record(etag: str | None, validators: bool) -> str | None:
        result = FetchResult("F", "F", 200, Outcome.OK, etag=etag, last_modified=None)
        store.record_poll(
            PollRecord(result, error=None, outcome="ok", error_count=0, next_poll=None, validators=validators)
        )
        state = store.feed_state("F")
        assert state is not None
        return state.etag

    assert record('"1"', validators=True) == '"1"'
    assert record('"2"', validators=False) == '"1"'  # a failed answer's tag is never kept
    assert record(None, validators=True) is None  # a success without a tag forgets the old one
    store.close()


def test_changing_the_site_zone_moves_entries_to_their_days(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    late = datetime(2023, 1, 17, 23, 30, tzinfo=UTC)  # 17 January in London, 18th in Tokyo
    dated = _entry("dated", published=late.replace(hour=0), date_only=True)
    store.apply(UpdatePlan(inserts=(_entry("timed", published=late), dated)))
    assert store.sync_zone(ZoneInfo("Europe/London")) == 0
    assert store.sync_zone(ZoneInfo("Asia/Tokyo")) == 1
    days = {e.id: e.day for e in store.entries_by_id(["timed", "dated"])}
    assert days == {"timed": date(2023, 1, 18), "dated": date(2023, 1, 17)}
    assert store.sync_zone(ZoneInfo("Asia/Tokyo")) == 0  # remembered: no second pass
    assert store.sync_zone(ZoneInfo("America/New_York")) == 1
    assert store.entries_by_id(["timed"])[0].day == date(2023, 1, 17)
    store.close()


# One small call per public method: after the connection is gone every one raises StoreError,
# never a driver error (the boundary decorator covers methods added later too).
PUBLIC_CALLS: dict[str, Callable[[Store], object]] = {
    "version": lambda s: s.version,
    "claim_due": lambda s: s.claim_due(datetime.now(UTC), 5, timedelta(minutes=1)),
    "release": lambda s: s.release(["F"]),
    "migrate": lambda s: s.migrate(),
    "mark_unpublished": lambda s: s.mark_unpublished([date(2026, 11, 29)]),
    "take_unpublished": lambda s: s.take_unpublished(),
    "sync_feeds": lambda s: s.sync_feeds([("F", "n", "en")]),
    "sync_zone": lambda s: s.sync_zone(ZoneInfo("UTC")),
    "feed_state": lambda s: s.feed_state("F"),
    "feed_states": lambda s: s.feed_states(),
    "record_poll": lambda s: s.record_poll(
        PollRecord(
            FetchResult("F", "F", 200, Outcome.OK), error=None, outcome="ok", error_count=0, next_poll=None
        )
    ),
    "record_failure": lambda s: s.record_failure(
        "F",
        url="F",
        status=None,
        outcome="store-error",
        error="e",
        error_count=1,
        next_poll=None,
        fetched_at=datetime.now(UTC),
    ),
    "prune_fetch_log": lambda s: s.prune_fetch_log(timedelta(days=1), datetime.now(UTC)),
    "fetch_log": lambda s: s.fetch_log("F"),
    "entries_published_since": lambda s: s.entries_published_since("F", datetime.now(UTC)),
    "feed_stats": lambda s: s.feed_stats(),
    "lookup": lambda s: s.lookup("F", [_candidate()]),
    "entries_by_id": lambda s: s.entries_by_id(["x"]),
    "entries_by_seq": lambda s: s.entries_by_seq([1]),
    "apply": lambda s: s.apply(UpdatePlan(inserts=(_entry("x"),))),
    "poll": lambda s: s.poll("F").__enter__(),
    "latest": lambda s: s.latest(None, 5),
    "latest_day": lambda s: s.latest_day(None, date(2023, 1, 1)),
    "day_counts": lambda s: s.day_counts(),
    "days_with_entries": lambda s: s.days_with_entries(date(2023, 1, 1)),
    "day": lambda s: s.day(date(2023, 1, 1), None),
    "day_index": lambda s: s.day_index(date(2023, 1, 1)),
    "by_translation_keys": lambda s: s.by_translation_keys(["k"]),
    "count_entries": lambda s: s.count_entries(),
    "language_counts": lambda s: s.language_counts(),
}


def _candidate() -> Candidate:
    e = _entry("x")
    return Candidate(
        feed_url="F", source_key="x", canonical_url=None, fingerprint="x", link=None, title="t", summary="",
        content="", author=None, categories=(), enclosures=(), published=e.published, updated=None,
        language="en", language_tag="en", language_evidence="config", content_hash="h", title_key="t",
    )  # fmt: skip


def test_every_public_method_is_in_the_table() -> None:
    public = {n for n in vars(SQLiteStore) if not n.startswith("_")} - {"close", "url"}
    assert public <= set(PUBLIC_CALLS), public - set(PUBLIC_CALLS)


@pytest.mark.parametrize("name", sorted(PUBLIC_CALLS))
def test_driver_errors_leave_as_store_errors(tmp_path: Path, name: str) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.close()
    with pytest.raises(StoreError) as raised:
        PUBLIC_CALLS[name](store)
    assert raised.value.__cause__ is not None and not isinstance(raised.value, sqlite3.Error)


def test_a_write_lock_held_elsewhere_is_store_locked(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db", busy_timeout=0.2)
    other = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert store.count_entries() == 0  # readers do not wait (WAL)
        with pytest.raises(StoreLocked, match="locked by another process"):
            store.apply(UpdatePlan(inserts=(_entry("x"),)))
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.apply(UpdatePlan(inserts=(_entry("x"),)))
    assert store.count_entries() == 1
    store.close()
