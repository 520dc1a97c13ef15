"""The store: schema versioning, WAL, and nothing once seen is ever lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aggregator.store import SCHEMA_VERSION, Store, StoreSchemaError
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
    store = Store(tmp_path / "a.db")
    assert store.version == SCHEMA_VERSION
    store.close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"feeds", "entries", "entry_sources", "fetch_log"} <= tables
    # Re-opening does not migrate again.
    assert Store(tmp_path / "a.db").version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "a.db").close()
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreSchemaError, match="newer than this program"):
        Store(tmp_path / "a.db")


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
    from aggregator.store import MIGRATIONS

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
    store = Store(path)
    assert store.version == SCHEMA_VERSION == 3
    [entry] = store.entries_by_id(["e1"])
    assert entry.title_key == "peru il movimento" and entry.published_zone is None
    indexes = {r[1] for r in store.db.execute("PRAGMA index_list(entries)").fetchall()}
    assert {"entries_language_title_key", "entries_translation_key"} <= indexes
