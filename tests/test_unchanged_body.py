"""A 200 whose body is the one parsed and stored last time costs no parse (issue 15).

Servers without validators (no ETag, no Last-Modified) send the whole document on every poll;
its digest, stored with the feed's state, tells that nothing in it is new."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import aggregator.parse
from aggregator.config import Config, FeedConfig, make_site
from aggregator.models import Outcome
from aggregator.pipeline import body_hash, poll_many
from aggregator.policy import sync_feeds
from aggregator.store import SQLiteStore


def _rss(*titles: str) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://example.org/{i}</link>"
        f"<pubDate>Tue, 17 Jan 2023 10:0{i}:00 GMT</pubDate>"
        f"<description>About {t}.</description></item>"
        for i, t in enumerate(titles)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>'.encode()
    )


class NoValidators:
    """Serves one body, always in full: no ETag, no Last-Modified, no 304."""

    def __init__(self) -> None:
        self.body = _rss("One", "Two")
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/feed.xml"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server() -> Iterator[NoValidators]:
    s = NoValidators()
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


async def test_unchanged_body_is_not_parsed_and_a_changed_one_is(
    server: NoValidators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    real = aggregator.parse.parse_feed

    def counting(body: bytes, headers: Any, url: str, **kw: Any) -> Any:
        parsed.append(url)
        return real(body, headers, url, **kw)

    monkeypatch.setattr(aggregator.parse, "parse_feed", counting)
    config = Config(site=make_site(languages=["en"]), feeds=[FeedConfig(url=server.url, name="F")])  # type: ignore[arg-type]
    db = tmp_path / "aggregator.db"
    store = SQLiteStore(db)
    sync_feeds(config, store)
    try:

        async def poll() -> Any:
            [report] = await poll_many(config.feeds, config, store, workers=0)
            assert report.outcome is Outcome.OK and report.status == 200, report.error
            return report

        first = await poll()
        assert (first.inserted, len(parsed)) == (2, 1)
        assert store.feed_state(server.url).body_hash == body_hash(server.body)  # type: ignore[union-attr]

        again = await poll()  # the same bytes: no parse, no entry read or written
        assert (again.inserted, again.updated, len(parsed)) == (0, 0, 1)

        server.body = _rss("One", "Two", "Three")  # a new entry: parsed and stored
        third = await poll()
        assert (third.inserted, len(parsed)) == (1, 2)
        assert store.feed_state(server.url).body_hash == body_hash(server.body)  # type: ignore[union-attr]
    finally:
        store.close()
    log = sqlite3.connect(db).execute("SELECT status, outcome FROM fetch_log ORDER BY id").fetchall()
    assert log == [(200, "ok")] * 3
    titles = sqlite3.connect(db).execute("SELECT title FROM entries ORDER BY title").fetchall()
    assert titles == [("One",), ("Three",), ("Two",)]


async def test_a_body_that_failed_is_parsed_again(
    server: NoValidators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a body that was parsed and stored counts: one that failed is tried in full again."""
    server.body = b"<html><body>maintenance</body></html>"
    config = Config(site=make_site(languages=["en"]), feeds=[FeedConfig(url=server.url, name="F")])  # type: ignore[arg-type]
    store = SQLiteStore(tmp_path / "aggregator.db")
    sync_feeds(config, store)
    try:
        for _ in range(2):
            [report] = await poll_many(config.feeds, config, store, workers=0)
            assert report.outcome is Outcome.NOT_A_FEED
        state = store.feed_state(server.url)
        assert state is not None and state.body_hash is None and state.error_count == 2
    finally:
        store.close()
