"""HTTP serving of data/public/ (starlette + uvicorn): content types, validators, 304, HEAD, /healthz.

The server shares nothing with the poller but the files on disk and an in-memory health
report. It never touches SQLite, so a poll cycle or a held write lock cannot stall it.

One response is one file version: the file is opened once, its descriptor's `fstat` and its
bytes give the headers and the body together, so a file replaced (renamed over) while it is
served can never pair one version's ETag or length with another's bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import os
import resource
import signal
import stat
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
PAGE_JSON = "application/json; charset=utf-8"  # front-page JSON is plain JSON; feeds are feed+json
CACHE_CONTROL = "public, max-age=60"
CACHE_FILES = 512  # versions kept in memory (the site has ~6 files per language)
CACHE_MAX_FILE = 8 << 20  # bytes: larger files are read per request, not kept

HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept
GRACEFUL_SHUTDOWN = 2  # seconds in-flight responses get on exit
MAX_HEADER_BYTES = 16 * 1024  # h11: a request head larger than this is refused

# What /healthz answers: (healthy, JSON document). Called on the serving loop: must not block.
HealthCheck = Callable[[], tuple[bool, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class FileVersion:
    """One version of one published file: its bytes and the validators computed from them.

    `key` is (device, inode, size, mtime in ns) of the descriptor the bytes were read from;
    `etag` is a strong ETag over the bytes (RFC 9110 §8.8.3), so equal bytes give equal tags."""

    key: tuple[int, int, int, int]
    body: bytes
    etag: str
    last_modified: str
    mtime: float


class PublicFiles:
    """Reads files under `root` as whole versions, cached by (device, inode, size, mtime_ns).

    Dot files (which include the publisher's `.NAME.*.tmp` files) and anything outside
    `root` are never served."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, FileVersion] = {}
        self._lock = threading.Lock()  # `serve` and `run` use one loop, but tests may share

    def resolve(self, url_path: str) -> Path | None:
        """URL path (already percent-decoded) -> file path under root, or None if refused."""
        parts = [p for p in url_path.split("/") if p]
        for p in parts:
            if p.startswith(".") or "\\" in p or "\x00" in p:
                return None
        return self.root.joinpath(*parts)

    def read(self, path: Path) -> FileVersion | None:
        """The file's current version, or None when it is missing or not a regular file."""
        name = str(path)
        try:
            st = os.stat(name)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache.get(name)
        if cached is not None and cached.key == key:
            return cached
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            body = b"".join(chunks)
        finally:
            os.close(fd)
        # The descriptor pins one inode: a rename over the path cannot change these bytes.
        # Only an in-place write could, and then size or mtime tell; the length comes from
        # the bytes themselves in any case.
        version = FileVersion(
            key=(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns),
            body=body,
            etag='"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"',
            last_modified=formatdate(st.st_mtime, usegmt=True),
            mtime=st.st_mtime,
        )
        if len(body) <= CACHE_MAX_FILE:
            with self._lock:
                if len(self._cache) >= CACHE_FILES:
                    self._cache.clear()
                self._cache[name] = version
        return version


def content_type(path: Path) -> str:
    """The media type of a published file: JSON Feeds (`feeds/*.json`, `daily/*.json`,
    `archive/…/*.feed.json`) are application/feed+json, front-page JSON plain JSON."""
    if path.suffix == ".json":
        is_feed = path.parent.name in ("feeds", "daily") or path.name.endswith(".feed.json")
        return CONTENT_TYPES[".json"] if is_feed else PAGE_JSON
    known = CONTENT_TYPES.get(path.suffix)
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def not_modified(request: Request, version: FileVersion) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present (weak comparison, `*` matches);
    only without it is If-Modified-Since compared, at one-second resolution."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or version.etag in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(version.mtime) <= since
    return False


def files_health(public_dir: Path) -> HealthCheck:
    """`/healthz` of `serve` alone: ok once something is published (`index.html` exists)."""

    def check() -> tuple[bool, Mapping[str, Any]]:
        if (public_dir / "index.html").is_file():
            return True, {"status": "ok"}
        return False, {"status": "failing", "reasons": [f"nothing published in {public_dir}"]}

    return check


def create_app(
    public_dir: Path,
    health: HealthCheck | None = None,
    on_missing: Callable[[], None] | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
) -> Starlette:
    """The ASGI app: files under `public_dir` (see README "Outputs and URLs") and `/healthz`,
    which answers 200 or 503 with the JSON that `health` gives (default: `files_health`).
    `on_missing` is called (it must not block) when a front page is asked for and
    `public_dir/index.html` is missing, so `run` rebuilds a deleted tree at once. `metrics`
    gives the Prometheus text and its content type for `/metrics` (only `run` has them)."""
    public_dir.mkdir(parents=True, exist_ok=True)
    files = PublicFiles(public_dir)
    check = health or files_health(public_dir)

    async def healthz(request: Request) -> Response:
        healthy, doc = check()
        code = 200 if healthy else 503
        return JSONResponse(dict(doc), status_code=code, headers={"cache-control": "no-store"})

    async def metrics_page(request: Request) -> Response:
        assert metrics is not None
        body, ctype = metrics()
        return Response(body, headers={"cache-control": "no-store", "content-type": ctype})

    async def public(request: Request) -> Response:
        url_path = request.path_params.get("path", "")
        path = files.resolve(url_path)
        if path is None:
            return PlainTextResponse("Not Found", status_code=404)
        if url_path == "" or url_path.endswith("/"):
            path = path / "index.html"
        elif path.is_dir():
            return RedirectResponse(request.url.path + "/", status_code=308)
        version = files.read(path)
        if version is None:
            if on_missing is not None and not (public_dir / "index.html").is_file():
                on_missing()
            return PlainTextResponse("Not Found", status_code=404)
        headers = {
            "etag": version.etag,
            "last-modified": version.last_modified,
            "cache-control": CACHE_CONTROL,
        }
        if not_modified(request, version):
            return Response(status_code=304, headers=headers)
        headers["content-length"] = str(len(version.body))
        body = b"" if request.method == "HEAD" else version.body
        return Response(body, headers=headers, media_type=content_type(path))

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            *([Route("/metrics", metrics_page, methods=["GET", "HEAD"])] if metrics else []),
            Route("/{path:path}", public, methods=["GET", "HEAD"]),
        ]
    )


# -- the HTTP server ---------------------------------------------------------------------------


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request's headers and a connection cap.

    uvicorn times out idle keep-alive connections but not a client that connects and sends its
    headers slowly or never (slowloris): enough of them use up the file descriptors and the
    server answers no one (1,100 at a 1,024 limit did). Here a connection that has not started
    a new request within HEADER_TIMEOUT of connecting, or of its previous response, is closed,
    and connections beyond `limit_concurrency` are closed as they arrive."""

    _armed_for: object = None
    _header_timer: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) > limit:
            # Over the cap: close at once rather than hold a descriptor for a request that
            # would get 503 anyway; a full descriptor table would stall every client instead.
            self.transport.close()
            return
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._armed_for = self.cycle
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._late)

    def _late(self) -> None:
        if self.cycle is self._armed_for and not self.transport.is_closing():
            self.transport.close()  # no new request began in time


class RateLimit(logging.Filter):
    """Lets at most `burst` records of one message template through per `window` seconds.

    Fault storms (descriptor exhaustion, clients resetting) repeat one message thousands of
    times a second; this keeps the log readable and bounded (once 188 MB)."""

    def __init__(self, burst: int = 5, window: float = 60.0) -> None:
        super().__init__()
        self.burst, self.window = burst, window
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        start, count = self._seen.get(key, (now, 0))
        if now - start > self.window:
            start, count = now, 0
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (start, count + 1)
        return count < self.burst


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (at most 65,536); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard if hard != resource.RLIM_INFINITY else 65536, 65536)
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return soft


class Server(uvicorn.Server):
    """uvicorn's server, stopped by SIGINT/SIGTERM without re-raising the signal afterwards
    (uvicorn re-raises it, so SIGTERM ended the process with 143 before our cleanup ran)."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_signal = on_signal

    def request_exit(self) -> None:
        self.should_exit = True
        if self._on_signal is not None:
            self._on_signal()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        handlers = {sig: signal.signal(sig, lambda s, f: self.request_exit()) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def make_server(app: Starlette, host: str, port: int, on_signal: Callable[[], None] | None = None) -> Server:
    """uvicorn with bounded resources: connections limited to what the descriptor limit allows
    (excess ones get 503), header and keep-alive timeouts, no access log, rate-limited errors."""
    fds = raise_fd_limit()
    limit = max(32, min(4096, fds // 2 - 64))  # leave descriptors for the store, polls, files
    for name in ("uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimit) for f in logger.filters):
            logger.addFilter(RateLimit())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HeaderTimeoutH11,
        access_log=False,
        log_level="info",
        limit_concurrency=limit,
        backlog=min(2048, limit),
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        lifespan="off",
    )
    return Server(config, on_signal)
