"""A real feed reader reads our feeds: newsboat (Debian package) subscribes to the entry, daily
and archive feeds served by `aggregator serve` on 127.0.0.1, and we read what it stored from
its cache (SQLite): titles, links (the article, never its picture), dates and authors.

`.ci/run` installs newsboat when it is missing; this test skips, saying why, only where it
could not be installed."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from aggregator import publish as publishing
from aggregator.config import load_config
from aggregator.models import Enclosure, Source, StoredEntry, UpdatePlan
from aggregator.store import SQLiteStore
from tests.conftest import ROOT
from tests.test_feeds_valid import entry

NEWSBOAT = shutil.which("newsboat")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NEWSBOAT is None,
        reason="NEWSBOAT NOT INSTALLED: `apt-get install newsboat` (bash .ci/run does it) to run the "
        "real-reader test",
    ),
]
NOW = datetime(2023, 1, 18, 12, tzinfo=UTC)
DAY = date(2023, 1, 17)


def articles() -> list[StoredEntry]:
    """French articles with their picture as an enclosure (21 of 50 opened as JPEGs before),
    a name-only author, an email author, a title-less note and one without any author."""
    src = Source("https://www.marxiste.org/feed", "Révolution", "k", None, NOW)
    out = []
    for n in range(6):
        eid = f"fr{n}"
        out.append(
            entry(id=eid, source_key=eid, fingerprint=eid, language="fr", language_tag="fr", day=DAY,
                  title=f"Article numéro {n}", link=f"https://www.marxiste.org/article-{n}",
                  summary=f"<p>Résumé {n}.</p>", author="Jeanne Martin" if n % 2 else None,
                  published=datetime(2023, 1, 17, 8 + n, tzinfo=UTC), first_seen=NOW,
                  enclosures=(Enclosure(f"https://www.marxiste.org/images/{n}.jpg", "image/jpeg", 1000 + n),),
                  sources=(replace(src, source_key=eid),))
        )  # fmt: skip
    out[2] = replace(out[2], author="redaction@marxiste.org (Rédaction)")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The published tree of a real store, served by `aggregator serve` on 127.0.0.1."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cfg_path = tmp_path / "feeds.yaml"
    cfg_path.write_text(
        f"site:\n  title: Le site\n  link: https://news.example.org/\n  base_url: {base}/\n"
        "  timezone: Europe/Paris\n  languages: [fr, en]\n"
        "feeds:\n  - url: https://www.marxiste.org/feed\n    name: Révolution\n    language: fr\n"
    )
    data = tmp_path / "data"
    data.mkdir()
    store = SQLiteStore(data / "aggregator.db")
    store.apply(UpdatePlan(inserts=tuple(articles())))
    report = publishing.publish(store, load_config(cfg_path), data / "public", now=NOW)
    store.close()
    assert report.failed == ()
    env = {**os.environ, "AGGREGATOR_CONFIG": str(cfg_path), "AGGREGATOR_DATA": str(data)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/feeds/fr.atom", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("aggregator serve did not answer within 30 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def read_with_newsboat(tmp_path: Path, url: str) -> list[tuple[str, str, str, int, str, str]]:
    """Subscribe newsboat to `url` alone (it merges items by guid across feeds), reload once
    without its interface, and return (title, url, author, pubDate, enclosure_url, feedurl)."""
    home = tmp_path / f"nb-{abs(hash(url))}"
    home.mkdir()
    (home / "urls").write_text(url + "\n")
    (home / "config").write_text("")
    run = subprocess.run(
        [NEWSBOAT or "newsboat", "-u", str(home / "urls"), "-c", str(home / "cache.db"),
         "-C", str(home / "config"), "-x", "reload"],
        env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_DATA_HOME": str(home)},
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(home / "cache.db") as db:
        return db.execute(
            "SELECT title, url, author, pubDate, enclosure_url, feedurl FROM rss_item ORDER BY pubDate DESC"
        ).fetchall()


@pytest.mark.parametrize("path", ["/feeds/fr.atom", "/feeds/all.rss", "/archive/2023/01/17/fr.atom"])
def test_newsboat_reads_entry_and_archive_feeds(served: str, tmp_path: Path, path: str) -> None:
    items = read_with_newsboat(tmp_path, served + path)
    expected = sorted(articles(), key=lambda e: e.published, reverse=True)
    assert [i[0] for i in items] == [e.title for e in expected]
    for (_title, url, author, pub, enclosure, feedurl), e in zip(items, expected, strict=True):
        assert url == e.link and not url.endswith(".jpg")  # the article, never its picture
        assert pub == int(e.published.timestamp())
        assert feedurl == served + path
        if e.author:  # "jane@example.org (Jane)" is RSS's form; readers show the name
            assert author == ("Rédaction" if "@" in e.author else e.author)
        if path.endswith(".atom"):
            assert enclosure in ("", None, e.enclosures[0].url)


def test_newsboat_reads_the_daily_digest(served: str, tmp_path: Path) -> None:
    items = read_with_newsboat(tmp_path, served + "/daily/fr.atom")
    assert len(items) == 1
    title, url, _author, pub, _enc, _feed = items[0]
    assert title == "mardi 17 janvier 2023"
    assert url == served + "/archive/2023/01/17/fr.html"
    assert pub == int(datetime(2023, 1, 17, tzinfo=UTC).timestamp())
    assert [i[0] for i in read_with_newsboat(tmp_path, served + "/daily/all.rss")] == [title]
