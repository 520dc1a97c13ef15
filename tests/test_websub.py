"""WebSub pings against a hub on 127.0.0.1 that records them, and hubs that fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest

from aggregator.websub import ping
from tests.feedserver import refused_url


class Hub:
    """Records each POST's form; answers `status`, after `delay` seconds."""

    def __init__(self, status: int = 204, delay: float = 0.0) -> None:
        self.pings: list[tuple[str, dict[str, list[str]]]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                hub.pings.append((self.headers.get("Content-Type", ""), parse_qs(body)))
                time.sleep(delay)
                payload = b"" if status < 300 else b"hub is sad"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hub"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.stop()


FEEDS = ["http://127.0.0.1:8080/feeds/all.atom", "http://127.0.0.1:8080/feeds/en.atom"]


async def test_one_publish_ping_per_changed_feed(hub: Hub) -> None:
    async with httpx.AsyncClient() as client:
        results = await ping(hub.url, [*FEEDS, FEEDS[0]], client)  # a repeat is pinged once
    assert [(r.url, r.status, r.ok) for r in results] == [(FEEDS[0], 204, True), (FEEDS[1], 204, True)]
    assert sorted(form["hub.url"][0] for _, form in hub.pings) == sorted(FEEDS)
    assert all(form["hub.mode"] == ["publish"] for _, form in hub.pings)
    assert all(ctype == "application/x-www-form-urlencoded" for ctype, _ in hub.pings)


async def test_nothing_changed_sends_nothing(hub: Hub) -> None:
    async with httpx.AsyncClient() as client:
        assert await ping(hub.url, [], client) == []
    assert hub.pings == []


async def test_a_failing_hub_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    failing = Hub(status=500)
    try:
        async with httpx.AsyncClient() as client:
            results = await ping(failing.url, FEEDS, client)
    finally:
        failing.stop()
    assert [r.status for r in results] == [500, 500]
    assert all(r.error and "answered HTTP 500: hub is sad" in r.error for r in results)
    assert "WebSub ping for" in caplog.text


async def test_an_unreachable_hub_is_reported_not_raised() -> None:
    async with httpx.AsyncClient() as client:
        [result] = await ping(refused_url(), FEEDS[:1], client)
    assert result.status is None and result.error is not None and "not reached" in result.error


async def test_a_hanging_hub_never_delays_publishing_past_the_timeout() -> None:
    slow = Hub(delay=5.0)
    try:
        async with httpx.AsyncClient() as client:
            started = time.perf_counter()
            results = await ping(slow.url, FEEDS, client, timeout=0.5)
            elapsed = time.perf_counter() - started
    finally:
        slow.stop()
    assert elapsed < 2.0
    assert all(r.error and "did not answer within 0.5 s" in r.error for r in results)
