"""Serving the published tree: content types, validators, 304, HEAD; and the `run` main job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import httpx
import pytest

from aggregator import serve as serve_module
from aggregator.publish import write_atomic
from aggregator.serve import RateLimit, create_app, make_server
from tests.conftest import ROOT, run_cli
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

    def head(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._send("HEAD", path, headers)


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


# -- one response, one file version -------------------------------------------------------------


def test_dot_files_temp_files_and_escapes_are_never_served(client: Client, tmp_path: Path) -> None:
    public = tmp_path / "public"
    (public / ".index.html.x1.tmp").write_text("half a page")
    (public / "feeds" / ".en.atom.x2.tmp").write_text("<fe")
    (tmp_path / "secret.txt").write_text("outside")
    for path in ("/.index.html.x1.tmp", "/feeds/.en.atom.x2.tmp", "/%2e%2e/secret.txt",
                 "/feeds/..%2f..%2fsecret.txt", "/.%2e/secret.txt"):  # fmt: skip
        r = client.get(path)
        assert r.status_code == 404, path
        assert b"half" not in r.content and b"outside" not in r.content


def test_conditional_requests_follow_rfc_9110(client: Client) -> None:
    r = client.get("/feeds/en.atom")
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert client.get("/feeds/en.atom", headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get("/feeds/en.atom", headers={"If-None-Match": "*"}).status_code == 304
    # If-None-Match decides when present: a stale tag gets the body even if the date matches.
    stale = client.get("/feeds/en.atom", headers={"If-None-Match": '"old"', "If-Modified-Since": modified})
    assert stale.status_code == 200 and stale.content == b"<feed/>"
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get("/feeds/en.atom", headers={"If-Modified-Since": old}).status_code == 200
    assert client.get("/feeds/en.atom", headers={"If-Modified-Since": "garbage"}).status_code == 200
    head = client.head("/feeds/en.rss")
    assert head.headers["content-length"] == str(len(b"<rss/>")) and head.content == b""


def test_a_directory_without_slash_redirects(client: Client) -> None:
    r = client.get("/en")
    assert r.status_code == 308 and r.headers["location"].endswith("/en/")


def test_health_of_serve_alone_says_when_nothing_is_published(tmp_path: Path) -> None:
    r = Client(create_app(tmp_path / "empty")).get("/healthz")
    assert r.status_code == 503 and "nothing published" in r.json()["reasons"][0]


def test_every_response_is_one_version_of_a_file_being_replaced(tmp_path: Path) -> None:
    public = tmp_path / "data" / "public"
    target = public / "feeds" / "all.atom"
    versions = [b"<feed>" + bytes([65 + i]) * (20_000 + 7_000 * i) + b"</feed>" for i in range(3)]
    write_atomic(target, versions[0])
    write_atomic(public / "index.html", b"<html></html>")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--data", str(tmp_path / "data"), "serve", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stop = threading.Event()

    def rewrite() -> None:  # bounded: at most 20,000 replacements or until the client is done
        for i in range(20_000):
            if stop.is_set():
                return
            write_atomic(target, versions[i % 3])

    try:
        base = f"http://127.0.0.1:{port}"
        assert _until(lambda: httpx.get(base + "/feeds/all.atom", timeout=2).status_code == 200, 20)
        writer = threading.Thread(target=rewrite, daemon=True)
        writer.start()
        by_etag: dict[str, bytes] = {}
        responses = 0
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                # Every coding too: each is made from the same version as the headers.
                coding = ("identity", "gzip", "br")[responses % 3]
                asked = {"Accept-Encoding": coding}
                r = http.get("/feeds/all.atom", headers=asked)
                responses += 1
                assert r.status_code == 200
                assert r.headers.get("content-encoding", "identity") == coding
                assert r.content in versions, "a body that is no version of the file"
                assert int(r.headers["content-length"]) == r.num_bytes_downloaded
                assert by_etag.setdefault(r.headers["etag"], r.content) == r.content, "one ETag, two bodies"
                cond = http.get("/feeds/all.atom", headers={**asked, "If-None-Match": r.headers["etag"]})
                if cond.status_code == 200:  # replaced in between: then it must be another version
                    assert cond.headers["etag"] != r.headers["etag"] and cond.content in versions
        stop.set()
        writer.join(10)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert responses > 100 and len(set(by_etag.values())) == 3
    assert code == 0  # SIGTERM stops `serve` cleanly too


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if check():
                return True
        time.sleep(0.1)
    return False


# -- the server's own limits --------------------------------------------------------------------


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """make_server on a loopback port in a thread, with a 0.5 s header deadline."""
    monkeypatch.setattr(serve_module, "HEADER_TIMEOUT", 0.5)
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<p>front</p>")
    port = _free_port()
    server = make_server(create_app(tmp_path / "public"), "127.0.0.1", port)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    assert _until(lambda: server.started, 10)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_client_that_never_finishes_its_headers_is_cut_off(live_server: str) -> None:
    host, port = live_server.split(":")
    slow = [socket.create_connection((host, int(port)), timeout=5) for _ in range(5)]
    for s in slow:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    started = time.monotonic()
    for s in slow:
        assert s.recv(1024) == b""  # closed by the server, not by our 5 s timeout
        s.close()
    assert time.monotonic() - started < 3
    # Keep-alive: after a full answer the deadline applies again to the next request's headers.
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        started, answer = time.monotonic(), b""
        while chunk := s.recv(65536):  # ends when the server closes the idle connection
            answer += chunk
        assert b"200 OK" in answer and answer.endswith(b"<p>front</p>")
        assert time.monotonic() - started < 3  # the header deadline, not keep-alive's 5 s
    assert httpx.get(f"http://{live_server}/", timeout=5).status_code == 200


def test_repeated_log_messages_are_rate_limited() -> None:
    limit = RateLimit(burst=5, window=60)
    record = logging.LogRecord("uvicorn.error", logging.ERROR, "x", 1, "accept failed: %s", ("EMFILE",), None)
    other = logging.LogRecord("uvicorn.error", logging.ERROR, "x", 1, "something else", (), None)
    assert sum(limit.filter(record) for _ in range(1000)) == 5
    assert limit.filter(other)


# -- every published output, every format ---------------------------------------------------------

EXPECTED_TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".html": "text/html",
    ".txt": "text/plain",
    ".opml": "text/x-opml",
}


def test_every_published_file_is_served_whole_with_validators(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    serve_seed(feed_server)
    data = tmp_path / "data"
    result = run_cli("fetch", config=write_config(tmp_path / "feeds.yaml", feed_server), data=data)
    assert result.returncode == 0, result.stderr
    public = data / "public"
    client = Client(create_app(public))
    files = sorted(p for p in public.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert any(f.name == "sources.opml" for f in files) and any("archive" in f.parts for f in files)
    # The publish stamp is bookkeeping, never an output: not served.
    assert (public / ".published.json").is_file()
    assert client.get("/.published.json").status_code == 404
    for path in files:
        rel = path.relative_to(public).as_posix()
        for coding in ("br", "gzip"):  # decoded, every coding gives the file's bytes
            coded = client.get("/" + rel, headers={"Accept-Encoding": coding})
            assert coded.content == path.read_bytes(), (rel, coding)
            assert int(coded.headers["content-length"]) == coded.num_bytes_downloaded
            assert coded.headers.get("content-encoding", coding) == coding  # tiny files: identity
        r = client.get("/" + rel, headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200, rel
        assert r.content == path.read_bytes() and int(r.headers["content-length"]) == len(r.content)
        if path.suffix == ".json":
            is_feed = rel.startswith(("feeds/", "daily/")) or rel.endswith(".feed.json")
            want = "application/feed+json" if is_feed else "application/json"
        else:
            want = EXPECTED_TYPES[path.suffix]
        assert r.headers["content-type"].startswith(want), rel
        plain = {"Accept-Encoding": "identity"}
        assert client.get("/" + rel, headers={**plain, "If-None-Match": r.headers["etag"]}).status_code == 304
        head = client.head("/" + rel, headers=plain)
        assert head.content == b"" and head.headers["etag"] == r.headers["etag"]
        assert head.headers["content-length"] == r.headers["content-length"]
    # Directory URLs give their front page.
    assert client.get("/").content == (public / "index.html").read_bytes()
    assert client.get("/es/").content == (public / "es" / "index.html").read_bytes()
