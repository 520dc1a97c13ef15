"""Serving the published tree: content types, validators, 304, HEAD; and the `run` main job."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import feedparser
import httpx
import pytest

from aggregator.serve import create_app
from tests.conftest import ROOT
from tests.feedserver import FeedServer, refused_url
from tests.test_end_to_end import serve_seed, write_config


class Client:
    """Requests straight into the ASGI app through httpx's own transport (no sockets)."""

    def __init__(self, app: object) -> None:
        self.app = app

    def _send(self, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.request(method, path, headers=headers)

        return asyncio.run(go())

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._send("GET", path, headers)

    def head(self, path: str) -> httpx.Response:
        return self._send("HEAD", path)


@pytest.fixture
def client(tmp_path: Path) -> Client:
    public = tmp_path / "public"
    (public / "feeds").mkdir(parents=True)
    (public / "en").mkdir()
    (public / "feeds" / "en.atom").write_text("<feed/>")
    (public / "feeds" / "en.rss").write_text("<rss/>")
    (public / "feeds" / "en.json").write_text("{}")
    (public / "index.html").write_text("<p>front</p>")
    (public / "index.json").write_text("{}")
    (public / "index.txt").write_text("front")
    (public / "en" / "index.html").write_text("<p>en</p>")
    return Client(create_app(public))


@pytest.mark.parametrize(("path", "ctype"), [
    ("/feeds/en.atom", "application/atom+xml"),
    ("/feeds/en.rss", "application/rss+xml"),
    ("/feeds/en.json", "application/feed+json"),
    ("/index.json", "application/json"),
    ("/index.txt", "text/plain"),
    ("/", "text/html"),
    ("/en/", "text/html"),
])  # fmt: skip
def test_content_types(client: Client, path: str, ctype: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith(ctype)


def test_validators_and_304(client: Client) -> None:
    r = client.get("/feeds/en.atom")
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert client.get("/feeds/en.atom", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/feeds/en.atom", headers={"If-Modified-Since": modified}).status_code == 304
    head = client.head("/feeds/en.atom")
    assert head.status_code == 200 and head.headers["etag"] == etag and head.content == b""


def test_missing_and_health(client: Client) -> None:
    assert client.get("/feeds/xx.atom").status_code == 404
    assert client.get("/healthz").json() == {"status": "ok"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`aggregator run` in a subprocess on a free loopback port; stopped with Ctrl-C (SIGINT)."""

    def __init__(self, config: Path, data: Path) -> None:
        self.port = _free_port()
        self.output = ""
        self.returncode: int | None = None
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data),
             "run", "--port", str(self.port)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def wait_for(
        self, path: str, done: Callable[[httpx.Response], bool], seconds: float
    ) -> httpx.Response | None:
        """GET `path` every half second until `done` says so or `seconds` pass (bounded)."""
        last = None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                last = httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2)
            except httpx.TransportError:
                continue
            if done(last):
                break
        return last

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.send_signal(signal.SIGINT)
        try:
            self.output, _ = self._proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            raise
        self.returncode = self._proc.returncode


def test_run_polls_publishes_serves_and_stops_on_ctrl_c(tmp_path: Path, feed_server: FeedServer) -> None:
    serve_seed(feed_server)
    config = write_config(tmp_path / "feeds.yaml", feed_server)
    with Service(config, tmp_path / "data") as service:
        # First polls come within the start-up jitter (10 s), the publish 2 s after.
        r = service.wait_for(
            "/feeds/all.atom",
            lambda r: r.status_code == 200 and len(feedparser.parse(r.content).entries) == 7,
            60,
        )
        assert r is not None and len(feedparser.parse(r.content).entries) == 7
        page = httpx.get(f"http://127.0.0.1:{service.port}/", timeout=2).text
        assert "Tuesday, 17 January 2023" in page and "Борьба Ленина с бюрократией" in page
    assert service.returncode == 0, service.output
    assert "Traceback" not in service.output


def test_run_lists_failing_feeds_before_any_entry(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"site:\n  languages: [en]\nfeeds:\n  - url: {refused_url()}\n    name: Down\n    language: en\n",
        encoding="utf-8",
    )
    with Service(config, tmp_path / "data") as service:
        r = service.wait_for("/", lambda r: "could not connect" in r.text, 40)
        assert r is not None
        assert "No entries yet" in r.text and "Down" in r.text and "could not connect" in r.text
    assert service.returncode == 0, service.output
    assert "feed='Down' outcome=network-error" in service.output and "apscheduler" not in service.output
