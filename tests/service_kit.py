"""Real parts for testing the long-running service: `aggregator run` in a subprocess, a world of
generated feeds on 127.0.0.1, and checks of a data directory after a fault.

The subprocess writes its log to a file, not a pipe: a service that logs a line per poll would
otherwise block on a full pipe buffer and stall for reasons that are the test's own.
"""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import httpx
from lxml import etree
from lxml import html as lxml_html

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FeedWorld:
    """N small RSS feeds at /feed/{n}.xml on a threaded loopback server.

    `changing` feeds gain one item per request (so every poll stores something and publishes);
    `headers[path]` adds raw headers to a path's answers; `delay` holds every answer that long.
    `hits[path]` counts requests, `last_hit[path]` is the monotonic time of the latest."""

    def __init__(self, feeds: int, items: int = 3, changing: bool = False, delay: float = 0.0) -> None:
        self.feeds, self.items, self.changing, self.delay = feeds, items, changing, delay
        self.headers: dict[str, list[tuple[str, str]]] = {}
        self.hits: dict[str, int] = {}
        self.last_hit: dict[str, float] = {}
        self._lock = threading.Lock()
        world = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with world._lock:
                    n_hits = world.hits.get(self.path, 0) + 1
                    world.hits[self.path] = n_hits
                    world.last_hit[self.path] = time.monotonic()
                if world.delay:
                    time.sleep(world.delay)
                body = world.body(self.path, n_hits)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in world.headers.get(self.path, []):
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # a poll abandoned on exit
                    self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, n: int) -> str:
        return f"{self.base_url}/feed/{n}.xml"

    def body(self, path: str, hit: int) -> bytes | None:
        if not path.startswith("/feed/") or not path.endswith(".xml"):
            return None
        n = int(path[len("/feed/") : -len(".xml")])
        if not 0 <= n < self.feeds:
            return None
        count = self.items + (hit if self.changing else 0)
        base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        items = "".join(
            f"<item><title>Feed {n} story {k} about the day's events</title>"
            f"<link>https://world{n}.example/story/{k}</link><guid>https://world{n}.example/story/{k}</guid>"
            f"<pubDate>{format_datetime(base + timedelta(seconds=k), usegmt=True)}</pubDate>"
            f"<description>Story {k} of feed {n}.</description></item>"
            for k in range(count)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>World feed {n}</title><link>https://world{n}.example/</link>"
            f"<description>Feed {n}</description><language>en</language>{items}</channel></rss>"
        ).encode()

    def config(self, path: Path, interval: str = "15m", extra: str = "") -> Path:
        lines = [
            "site:",
            "  title: Test world",
            "  timezone: UTC",
            "  languages: [en]",
            "defaults:",
            f"  interval: {interval}",
            "  min_interval: 1s" if interval.endswith("s") else "",
            "feeds:",
        ]
        for n in range(self.feeds):
            lines += [f"  - url: {self.url(n)}", f"    name: World {n}", "    language: en"]
        path.write_text("\n".join(line for line in lines if line) + "\n" + extra, encoding="utf-8")
        return path

    def __enter__(self) -> FeedWorld:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _limit_files(n: int) -> None:
    """In the child: at most `n` open files, soft and hard (so the service cannot raise it)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


class RunningService:
    """`aggregator run` on a free loopback port, its output in `log` (a file)."""

    def __init__(self, config: Path, data: Path, log: Path, max_files: int | None = None) -> None:
        self.config, self.data, self.log_path = config.resolve(), data.resolve(), log.resolve()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(self.config), "--data", str(self.data),
             "run", "--port", str(self.port)],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: _limit_files(max_files)) if max_files else None,
        )  # fmt: skip

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, timeout: float = 5) -> httpx.Response:
        return httpx.get(self.base + path, timeout=timeout)

    def wait_for(self, check: Callable[[], bool], seconds: float, step: float = 0.25) -> bool:
        """Call `check` every `step` seconds until it is true or `seconds` pass (bounded)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if check():
                    return True
            except (httpx.TransportError, sqlite3.Error, OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                return False
            time.sleep(step)
        return False

    def serving(self, seconds: float = 20) -> bool:
        return self.wait_for(lambda: self.get("/healthz").status_code in (200, 503), seconds)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> tuple[int | None, float]:
        """Send `sig`; (exit code, seconds it took), or (None, …) if it had to be killed."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self._log.close()
        return code, time.monotonic() - started

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def __enter__(self) -> RunningService:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
        if not self._log.closed:
            self._log.close()


# -- checks after a fault ---------------------------------------------------------------------


def db_counts(db: Path) -> tuple[str, int, dict[str, int]]:
    """(integrity_check result, entries stored, fetch_log rows per feed), read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        polls = dict(conn.execute("SELECT feed_url, count(*) FROM fetch_log GROUP BY feed_url").fetchall())
    finally:
        conn.close()
    return integrity, int(entries), polls


def polled_since(db: Path, since: datetime) -> set[str]:
    """Feeds with a poll record started at or after `since` (UTC)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT DISTINCT feed_url FROM fetch_log WHERE started >= ?",
            [since.astimezone(UTC).isoformat(timespec="seconds")],
        ).fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}


def check_outputs(public: Path) -> list[str]:
    """Every published file parses as its format; returns the problems (empty when sound).
    Temporary files (`.NAME.*.tmp`) are not outputs and are not checked here."""
    problems = []
    for path in sorted(public.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(public).parts):
            continue
        data = path.read_bytes()
        try:
            if path.suffix in (".atom", ".rss"):
                etree.fromstring(data)
                if feedparser.parse(data).bozo:
                    raise ValueError("feedparser: not well-formed")
            elif path.suffix == ".json":
                json.loads(data)
            elif path.suffix == ".html":
                if b"</html>" not in data:
                    raise ValueError("truncated HTML")
                lxml_html.document_fromstring(data)
            elif path.suffix == ".txt":
                data.decode("utf-8")
        except Exception as e:
            problems.append(f"{path.relative_to(public)}: {type(e).__name__}: {e}")
    return problems


def temp_files(public: Path) -> list[Path]:
    return sorted(public.rglob(".*.tmp"))
