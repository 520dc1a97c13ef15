"""HTTP serving of data/public/ (uvicorn + httptools on uvloop): media types, validators, 304,
HEAD, content codings, caching lifetimes, /healthz and /metrics.

The server shares nothing with the poller but the files on disk and an in-memory health
report. It never touches SQLite, so a poll cycle or a held write lock cannot stall it.

One response is one file version: a file is opened once, its descriptor's `fstat` and its
bytes give the validators and the body together, and its gzip and brotli codings are made
from those bytes once and kept with them. So a file replaced (renamed over) while it is
served can never pair one version's ETag or length with another's bytes. Versions are kept
in memory; each request stats the file (STAT_EVERY) and only a changed identity is read anew.
`PublicFiles.invalidate` is the publisher's hook to drop held versions at once.

Public files are answered by a plain ASGI callable in front of starlette (no routing, no
middleware, header lists built once per version); only `/healthz` and `/metrics` go through
starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import mimetypes
import os
import resource
import signal
import stat
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import brotli
import httptools
import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# The caching policy lives in caching.py (pure, light to import); its names stay importable here.
from .caching import ARCHIVE_DAY as ARCHIVE_DAY
from .caching import ARCHIVE_MAX_AGE as ARCHIVE_MAX_AGE
from .caching import DEFAULT_MAX_AGE as DEFAULT_MAX_AGE
from .caching import MAX_MAX_AGE as MAX_MAX_AGE
from .caching import MIN_MAX_AGE as MIN_MAX_AGE
from .caching import CachePolicy as CachePolicy
from .caching import cache_max_age as cache_max_age

if TYPE_CHECKING:
    from .config import Config

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".ico": "image/x-icon",
}
PAGE_JSON = "application/json; charset=utf-8"  # front-page JSON is plain JSON; feeds are feed+json
ATOM, RSS, FEED_JSON = CONTENT_TYPES[".atom"], CONTENT_TYPES[".rss"], CONTENT_TYPES[".json"]

CACHE_FILES = 4096  # URL entries kept in memory (the site has ~30 files per language and day)
CACHE_MAX_FILE = 8 << 20  # bytes: larger files are read per request, not kept
# Seconds between stats of a URL's file. 0: every request (one stat, 2 us; a deleted or replaced
# file is noticed by the next request, as `run`'s rebuild of a deleted tree needs). A process
# told of every change through `PublicFiles.invalidate` could raise it.
STAT_EVERY = 0.0
POLICY_EVERY = 60.0  # seconds: how often a held file's Cache-Control is worked out again
COMPRESS_MIN = 256  # bytes: smaller files are sent as they are (a coding would not pay)
COMPRESSIBLE = ("text/", "application/atom+xml", "application/rss+xml", "application/feed+json",
                "application/json", "application/xml", "text/x-opml")  # fmt: skip
GZIP_LEVEL = 9  # once per version: the smallest output is worth 3 ms (80 KB feed)
BROTLI_QUALITY = 6  # 11 takes 70 ms on an 80 KB feed, blocking the loop; 6 is 3 ms

HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept
GRACEFUL_SHUTDOWN = 2  # seconds in-flight responses get on exit
MAX_HEADER_BYTES = 16 * 1024  # a request head larger than this is refused (431)

# What /healthz answers: (healthy, JSON document). Called on the serving loop: must not block.
HealthCheck = Callable[[], tuple[bool, Mapping[str, Any]]]
Headers = list[tuple[bytes, bytes]]
VARY_ENCODING = (b"vary", b"Accept-Encoding")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# -- file versions and their representations ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation of a file version: its bytes in one content coding (RFC 9110 8.4),
    its own strong ETag (8.8.3: a coding is a different representation, so a different tag),
    and the header lists of its 200 and 304 answers, built once: without Vary, and with
    `Vary: Accept-Encoding` for a file that has codings (the common answer, never joined anew)."""

    coding: str  # "identity", "gzip" or "br"
    body: bytes
    etag: str
    headers: Headers  # of a 200 (and HEAD): everything but Vary and Content-Location
    headers_304: Headers
    head: bytes  # `headers` as header lines, ready to write
    head_304: bytes
    headers_vary: Headers  # `headers` and `Vary: Accept-Encoding`
    headers_304_vary: Headers
    head_vary: bytes
    head_304_vary: bytes


@dataclass(frozen=True, slots=True)
class FileVersion:
    """One version of one published file: its bytes, the validators computed from them and its
    representations.

    `key` is (device, inode, size, mtime in ns) of the descriptor the bytes were read from;
    `etag` is a strong ETag over the bytes (RFC 9110 8.8.3), so equal bytes give equal tags;
    `last_modified` (HTTP date) and `mtime` (seconds) stay those of the first version with these
    bytes this process saw, so they too change only when the bytes do. `variants` maps each
    coding to its Variant ("identity" always; "gzip" and "br" for text types when smaller)."""

    key: tuple[int, int, int, int]
    body: bytes
    etag: str
    last_modified: str
    mtime: float
    content_type: str
    cache_control: str
    variants: Mapping[str, Variant] = field(default_factory=dict)
    codings: tuple[str, ...] = ("identity",)  # the keys of `variants`

    @property
    def negotiable(self) -> bool:
        """Whether the answer depends on Accept-Encoding (then it carries Vary)."""
        return len(self.variants) > 1


def _variant(coding: str, body: bytes, etag: str, v: FileVersion) -> Variant:
    common = [
        (b"etag", etag.encode("ascii")),
        (b"last-modified", v.last_modified.encode("ascii")),
        (b"cache-control", v.cache_control.encode("ascii")),
    ]
    headers = [
        (b"content-type", v.content_type.encode("ascii")),
        (b"content-length", str(len(body)).encode("ascii")),
        *common,
        (b"x-content-type-options", b"nosniff"),
    ]
    if coding != "identity":
        headers.append((b"content-encoding", coding.encode("ascii")))
    vary, vary_304 = [*headers, VARY_ENCODING], [*common, VARY_ENCODING]
    return Variant(
        coding, body, etag, headers, common, header_lines(headers), header_lines(common),
        vary, vary_304, header_lines(vary), header_lines(vary_304),
    )  # fmt: skip


def header_lines(headers: Headers) -> bytes:
    """`[(b"etag", b'"x"')]` -> `b'etag: "x"\\r\\n'` (HTTP/1.1 field lines, RFC 9112 5)."""
    return b"".join(b"%s: %s\r\n" % pair for pair in headers)


def make_version(
    key: tuple[int, int, int, int],
    body: bytes,
    mtime: float,
    content_type: str,
    cache_control: str,
    previous: FileVersion | None = None,
) -> FileVersion:
    """A FileVersion of `body`, with its gzip and brotli codings when they are smaller.

    When `previous` had the same bytes, its Last-Modified and codings are kept (a file rewritten
    with the same bytes is the same representation: RFC 9110 8.8.2 asks Last-Modified to change
    with it, not with the file)."""
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    same = previous is not None and previous.etag == etag
    last_modified = previous.last_modified if same and previous else formatdate(mtime, usegmt=True)
    mtime = previous.mtime if same and previous else mtime
    version = FileVersion(key, body, etag, last_modified, mtime, content_type, cache_control)
    coded: dict[str, bytes] = {}
    if same and previous is not None:
        coded = {c: var.body for c, var in previous.variants.items() if c != "identity"}
    elif len(body) >= COMPRESS_MIN and content_type.startswith(COMPRESSIBLE):
        # Made once per version here, never per request; kept only when smaller.
        for coding, data in (
            ("br", brotli.compress(body, quality=BROTLI_QUALITY)),
            ("gzip", gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)),
        ):
            if len(data) < len(body):
                coded[coding] = data
    variants = {"identity": _variant("identity", body, etag, version)}
    for coding, data in coded.items():
        tag = f'{etag[:-1]}-{"gz" if coding == "gzip" else coding}"'
        variants[coding] = _variant(coding, data, tag, version)
    object.__setattr__(version, "variants", variants)
    object.__setattr__(version, "codings", tuple(variants))
    return version


# -- negotiation (RFC 9110 12) -----------------------------------------------------------------


def _qvalues(value: str) -> list[tuple[str, float]]:
    """`a;q=0.5, b` -> [("a", 0.5), ("b", 1.0)] (names lower-cased; a bad q counts as 0)."""
    out = []
    for part in value.split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            k, _, v = param.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(v.strip())))
                except ValueError:
                    q = 0.0
        out.append((name, q))
    return out


# Identity not listed (and no `*`) is acceptable but least wanted: below any q a client can
# write (three decimals), so `gzip;q=0.5` still gets gzip.
UNLISTED_IDENTITY_Q = 0.0005
_CODING_PREFERENCE = ("br", "gzip", "identity")  # smallest first when the client rates them equal
_coding_memo: dict[tuple[str, tuple[str, ...]], str | None] = {}


def choose_coding(accept_encoding: str | None, available: tuple[str, ...]) -> str | None:
    """The content coding to send (RFC 9110 12.5.3) among `available` (which holds "identity"),
    or None when the client accepts none of them (`identity;q=0` or `*;q=0` and no other).

    No header: identity (any coding would be allowed, but clients that send none may not
    decode one). Codings not listed are acceptable only through `*`; identity is acceptable
    unless excluded, and then ranks below every listed coding. The highest q wins; ties go to
    the smaller coding (br, gzip, identity)."""
    if accept_encoding is None:
        return "identity"
    memo_key = (accept_encoding, available)
    if memo_key in _coding_memo:
        return _coding_memo[memo_key]
    rated = dict(_qvalues(accept_encoding))
    if "x-gzip" in rated and "gzip" not in rated:
        rated["gzip"] = rated["x-gzip"]  # RFC 9110 8.4.1.3
    star = rated.get("*")
    best: tuple[float, int] | None = None
    chosen: str | None = None
    for rank, coding in enumerate(_CODING_PREFERENCE):
        if coding not in available:
            continue
        q = rated.get(
            coding, star if star is not None else (UNLISTED_IDENTITY_Q if coding == "identity" else 0.0)
        )
        if q <= 0:
            continue
        score = (q, -rank)
        if best is None or score > best:
            best, chosen = score, coding
    if len(_coding_memo) > 512:  # clients send few distinct values; bound it anyway
        _coding_memo.clear()
    _coding_memo[memo_key] = chosen
    return chosen


def choose_media(accept: str | None, available: Mapping[str, str]) -> str:
    """The feed format to send for an extensionless feed URL (RFC 9110 12.5.1): the key of
    `available` (media types without parameters, in our order of preference: Atom, RSS,
    JSON Feed) whose Accept q-value is highest, exact types over `type/*` over `*/*`.
    `application/xml`/`text/xml` ask for the XML formats, `application/json` for JSON Feed.
    With no Accept, or none acceptable, the first (Atom): the Accept header is then
    disregarded, as 12.5.1 allows, rather than answered 406."""
    order = list(available)
    if not accept:
        return order[0]
    ranges = _qvalues(accept)
    best: tuple[float, int, int] | None = None
    chosen = order[0]
    for rank, media in enumerate(order):
        aliases = {media}
        if media.endswith("+xml"):
            aliases |= {"application/xml", "text/xml"}
        if media.endswith("+json"):
            aliases.add("application/json")
        major = media.split("/")[0]
        q, specificity = -1.0, -1
        for name, value in ranges:
            if name in aliases:
                s = 3 if name == media else 2
            elif name == f"{major}/*":
                s = 1
            elif name == "*/*":
                s = 0
            else:
                continue
            if s > specificity:
                q, specificity = value, s
        if q <= 0:
            continue
        score = (q, specificity, -rank)
        if best is None or score > best:
            best, chosen = score, media
    return chosen


# -- the published tree ------------------------------------------------------------------------


def content_type(path: Path) -> str:
    """The media type of a published file: JSON Feeds (`feeds/*.json`, `daily/*.json`,
    `archive/…/*.feed.json`) are application/feed+json, front-page JSON plain JSON."""
    if path.suffix == ".json":
        is_feed = path.parent.name in ("feeds", "daily") or path.name.endswith(".feed.json")
        return FEED_JSON if is_feed else PAGE_JSON
    known = CONTENT_TYPES.get(path.suffix)
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


@dataclass(slots=True)
class _Entry:
    version: FileVersion
    name: str  # the file's path
    checked: float  # time.monotonic() of the last stat
    policy_checked: float  # ... of the last look at its Cache-Control (archive days age)


class PublicFiles:
    """Reads files under `root` as whole versions, kept in memory per URL path and stat'ed again
    at most every `stat_every` seconds (a changed (device, inode, size, mtime_ns) is read anew).

    Dot files (which include the publisher's `.NAME.*.tmp` files) and anything outside
    `root` are never served. Thread-safe: `invalidate` may be called from the publisher's
    thread while the serving loop reads."""

    def __init__(self, root: Path, policy: CachePolicy | None = None, stat_every: float = STAT_EVERY) -> None:
        self.root = root
        self.policy = policy or CachePolicy()
        self.stat_every = stat_every
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def resolve(self, url_path: str) -> Path | None:
        """URL path (already percent-decoded) -> file path under root, or None if refused."""
        parts = [p for p in url_path.split("/") if p]
        for p in parts:
            if p.startswith(".") or "\\" in p or "\x00" in p:
                return None
        return self.root.joinpath(*parts)

    def invalidate(self, paths: Iterable[str | Path] | None = None) -> None:
        """Forget what is held for these published files (paths relative to `root`, or absolute
        under it), so the next request reads them at once; None forgets everything. For the
        publisher to call after it replaced files (e.g. with `PublishReport.written`)."""
        if paths is None:
            with self._lock:
                self._entries.clear()
            return
        with self._lock:
            for p in paths:
                path = Path(p)
                if path.is_absolute():
                    try:
                        path = path.relative_to(self.root)
                    except ValueError:
                        continue
                rel = path.as_posix()
                self._entries.pop("/" + rel, None)
                if path.name == "index.html":
                    parent = path.parent.as_posix()
                    self._entries.pop("/" if parent == "." else f"/{parent}/", None)

    def get(self, url_path: str) -> FileVersion | None:
        """The current version of the file a URL path names (a path ending in `/` names its
        `index.html`), or None when there is none, it is refused or not a regular file."""
        entry = self._entries.get(url_path)
        now = time.monotonic()
        if entry is not None and now - entry.policy_checked < POLICY_EVERY:
            # The hot path: one stat of the held file name, no path objects.
            if self.stat_every and now - entry.checked < self.stat_every:
                return entry.version
            try:
                st = os.stat(entry.name)
            except OSError:
                st = None
            if st is not None and entry.version.key == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
                entry.checked = now
                return entry.version
        path = self.resolve(url_path)
        if path is None:
            return None
        if url_path.endswith("/") or url_path == "":
            path = path / "index.html"
        version = self.read(path, entry.version if entry is not None else None)
        if version is None:  # not remembered: a file that appears is served at once
            if entry is not None:
                with self._lock:
                    self._entries.pop(url_path, None)
            return None
        if len(version.body) <= CACHE_MAX_FILE:
            with self._lock:
                if len(self._entries) >= CACHE_FILES:
                    self._entries.clear()
                self._entries[url_path] = _Entry(version, str(path), now, now)
        return version

    def read(self, path: Path, previous: FileVersion | None = None) -> FileVersion | None:
        """The file's current version (`previous` when it is unchanged), or None when it is
        missing or not a regular file."""
        name = str(path)
        try:
            st = os.stat(name)
        except (FileNotFoundError, NotADirectoryError, PermissionError, OSError):
            return None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        rel = path.relative_to(self.root).as_posix()
        if previous is not None and previous.key == key:
            cache_control = self.policy.cache_control(rel)
            if cache_control == previous.cache_control:
                return previous
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
        return make_version(
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns),
            body,
            st.st_mtime,
            content_type(path),
            self.policy.cache_control(rel),
            previous,
        )


def not_modified(headers: Mapping[str, str], version: FileVersion | Variant, mtime: float) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present (weak comparison, 13.1.2: `W/` is
    ignored, a list matches when any member does, `*` matches any current representation);
    only without it is If-Modified-Since compared (13.1.3), at one-second resolution."""
    inm = headers.get("if-none-match")
    if inm is not None:
        if inm == version.etag:
            return True
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or version.etag in tags
    ims = headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(mtime) <= since
    return False


# -- built-in files ----------------------------------------------------------------------------


def _favicon() -> bytes:
    """A 16x16 icon (a PNG inside an ICO, as every browser reads): a dark red square, so a
    browser's automatic /favicon.ico request gets an icon instead of a 404."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x9b\x1c\x1c" * 16 for _ in range(16))  # filter 0, RGB pixels
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


ROBOTS_TXT = b"# Everything here is public: feeds, front pages and archives.\nUser-agent: *\nAllow: /\n"


def _builtin(body: bytes, ctype: str) -> FileVersion:
    return make_version((0, 0, len(body), 0), body, 1672531200.0, ctype, f"public, max-age={ARCHIVE_MAX_AGE}")


BUILTIN = {"/favicon.ico": (_favicon(), "image/x-icon"), "/robots.txt": (ROBOTS_TXT, CONTENT_TYPES[".txt"])}


# -- answering a request -----------------------------------------------------------------------

VARY_BOTH = (b"vary", b"Accept, Accept-Encoding")
VARY_ACCEPT = (b"vary", b"Accept")
TEXT = CONTENT_TYPES[".txt"].encode("ascii")


@dataclass(slots=True)  # not frozen: one is made per request, and frozen __init__ is slower
class Answer:
    """A whole response: status, header list (lower-case names) and body (empty for HEAD)."""

    status: int
    headers: Headers
    body: bytes = b""
    head: bytes | None = None  # `headers` as field lines when made in advance

    def field_lines(self) -> bytes:
        """The headers as HTTP/1.1 field lines."""
        return self.head if self.head is not None else header_lines(self.headers)


def _plain(status: int, text: str, method: str, extra: Headers | None = None) -> Answer:
    body = text.encode("utf-8")
    headers = [(b"content-type", TEXT), (b"content-length", str(len(body)).encode("ascii"))]
    return Answer(status, headers + (extra or []), b"" if method == "HEAD" else body)


class StaticSite:
    """Answers GET and HEAD for the published tree (pure of ASGI: method, path, headers in, one
    Answer out; reads files only through PublicFiles).

    `/favicon.ico` and `/robots.txt` are built in unless published; an extensionless URL whose
    feed files exist (`/feeds/en` for `feeds/en.atom`, `.rss`, `.json`/`.feed.json`) is
    negotiated by Accept; a directory without its slash redirects (308). `on_missing` is
    called (it must not block) when a file is asked for and `index.html` is missing, so `run`
    rebuilds a deleted tree at once."""

    def __init__(self, files: PublicFiles, on_missing: Callable[[], None] | None = None) -> None:
        self.files = files
        self.on_missing = on_missing
        self._builtin = {url: _builtin(body, ctype) for url, (body, ctype) in BUILTIN.items()}

    def answer(self, method: str, path: str, headers: Mapping[str, str]) -> Answer:
        """The answer to `method path` with the request's `headers` (lower-case names)."""
        if method not in ("GET", "HEAD"):
            return _plain(405, "Method Not Allowed", method, [(b"allow", b"GET, HEAD")])
        version = self.files.get(path)
        extra: list[tuple[bytes, bytes]] = []
        if version is None:
            version = self._builtin.get(path)
        if version is None:
            found = self._negotiate(path, headers)
            if found is not None:
                version, location = found
                extra = [(b"content-location", quote(location).encode("ascii"))]
        if version is None:
            return self._missing(method, path)
        coding = choose_coding(headers.get("accept-encoding"), version.codings)
        vary = (VARY_BOTH if version.negotiable else VARY_ACCEPT) if extra else VARY_ENCODING
        if coding is None:  # identity refused and no coding acceptable: RFC 9110 15.5.7
            return _plain(406, "Not Acceptable: identity;q=0 and no coding offered", method, [vary])
        variant = version.variants[coding]
        body = b"" if method == "HEAD" else variant.body
        if not extra and version.negotiable:  # most answers: every header line made in advance
            if not_modified(headers, variant, version.mtime):
                return Answer(304, variant.headers_304_vary, b"", variant.head_304_vary)
            return Answer(200, variant.headers_vary, body, variant.head_vary)
        if extra:
            extra.append(vary)
        if not_modified(headers, variant, version.mtime):
            if extra:
                return Answer(304, variant.headers_304 + extra)
            return Answer(304, variant.headers_304, b"", variant.head_304)
        if extra:
            return Answer(200, variant.headers + extra, body)
        return Answer(200, variant.headers, body, variant.head)

    def _negotiate(self, path: str, headers: Mapping[str, str]) -> tuple[FileVersion, str] | None:
        name = path.rsplit("/", 1)[-1]
        if not name or "." in name:
            return None
        available: dict[str, tuple[FileVersion, str]] = {}
        for media, suffixes in ((ATOM, (".atom",)), (RSS, (".rss",)), (FEED_JSON, (".feed.json", ".json"))):
            for suffix in suffixes:
                v = self.files.get(path + suffix)
                if v is not None and v.content_type == media:
                    available[media.split(";")[0]] = (v, name + suffix)
                    break
        if not available:
            return None
        return available[choose_media(headers.get("accept"), dict.fromkeys(available, ""))]

    def _missing(self, method: str, path: str) -> Answer:
        target = self.files.resolve(path)
        if target is not None and path and not path.endswith("/") and target.is_dir():
            location = quote(path + "/").encode("ascii")
            return Answer(308, [(b"location", location), (b"content-length", b"0")])
        if self.on_missing is not None and not (self.files.root / "index.html").is_file():
            self.on_missing()
        return _plain(404, "Not Found", method)


def files_health(public_dir: Path) -> HealthCheck:
    """`/healthz` of `serve` alone: ok once something is published (`index.html` exists)."""

    def check() -> tuple[bool, Mapping[str, Any]]:
        if (public_dir / "index.html").is_file():
            return True, {"status": "ok"}
        return False, {"status": "failing", "reasons": [f"nothing published in {public_dir}"]}

    return check


class App:
    """The ASGI app: GET and HEAD of published files straight from a StaticSite (no routing or
    middleware); `/healthz`, `/metrics` and anything else go to the starlette `fallback`.
    `files` is the PublicFiles to `invalidate` after a publish."""

    def __init__(self, site: StaticSite, fallback: Starlette, routes: frozenset[str]) -> None:
        self.site = site
        self.files = site.files
        self.fallback = fallback
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.routes:
            await self.fallback(scope, receive, send)
            return
        headers = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        answer = self.site.answer(scope["method"], scope["path"], headers)
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})


_WANTED = frozenset((b"if-none-match", b"if-modified-since", b"accept-encoding", b"accept"))


def create_app(
    public_dir: Path,
    health: HealthCheck | None = None,
    on_missing: Callable[[], None] | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
    config: Config | None = None,
) -> App:
    """The ASGI app: files under `public_dir` (see README "Outputs and URLs" and "Serving") and
    `/healthz`, which answers 200 or 503 with the JSON that `health` gives (default:
    `files_health`). `on_missing` is called (it must not block) when a page is asked for and
    `public_dir/index.html` is missing, so `run` rebuilds a deleted tree at once. `metrics`
    gives the Prometheus text and its content type for `/metrics` (only `run` has them).
    `config` sets Cache-Control (CachePolicy.from_config); without one DEFAULT_MAX_AGE."""
    public_dir.mkdir(parents=True, exist_ok=True)
    files = PublicFiles(public_dir, CachePolicy.from_config(config))
    check = health or files_health(public_dir)

    async def healthz(request: Request) -> Response:
        healthy, doc = check()
        code = 200 if healthy else 503
        return JSONResponse(dict(doc), status_code=code, headers={"cache-control": "no-store"})

    async def metrics_page(request: Request) -> Response:
        assert metrics is not None
        body, ctype = metrics()
        return Response(body, headers={"cache-control": "no-store", "content-type": ctype})

    routes = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    if metrics is not None:
        routes.append(Route("/metrics", metrics_page, methods=["GET", "HEAD"]))
    fallback = Starlette(routes=routes)
    return App(StaticSite(files, on_missing), fallback, frozenset(r.path for r in routes))


# -- the HTTP server ---------------------------------------------------------------------------


_default_lines: list[Any] = [None, b""]  # uvicorn's default headers and their field lines


class _Event:
    def set(self) -> None:
        pass


class _Answered:
    """Stands for uvicorn's RequestResponseCycle of a request answered directly: complete."""

    __slots__ = ("keep_alive", "message_event", "response_complete")

    def __init__(self) -> None:
        self.response_complete = True
        self.keep_alive = True
        self.message_event = _Event()


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline for each request's headers, a connection cap
    and a limit on the size of a request head.

    uvicorn times out idle keep-alive connections but not a client that connects and sends its
    headers slowly or never (slowloris): enough of them use up the file descriptors and the
    server answers no one (1,100 at a 1,024 limit did). Here a connection that has not started
    a new request within HEADER_TIMEOUT of connecting, or of its previous response, is closed,
    connections beyond `limit_concurrency` are closed as they arrive, and a request head over
    MAX_HEADER_BYTES is answered 431 (RFC 6585 section 5) and the connection closed."""

    _armed_for: object = None
    _armed_at = 0.0
    _got_bytes = False
    _header_timer: Any = None
    _head_bytes = 0
    _in_body = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) > limit:
            # Over the cap: close at once rather than hold a descriptor for a request that
            # would get 503 anyway; a full descriptor table would stall every client instead.
            self.transport.close()
            return
        self._arm()

    def on_message_begin(self) -> None:
        self._head_bytes, self._in_body = 0, False
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        super().data_received(data)
        if self._head_bytes > MAX_HEADER_BYTES and not self._in_body:
            self._refuse_head()  # still unfinished, and already too large

    def on_headers_complete(self) -> None:
        self._in_body = True
        if self._head_bytes > MAX_HEADER_BYTES:
            self._refuse_head()
        elif not self._answer_directly():
            super().on_headers_complete()

    def _refuse_head(self) -> None:
        self._head_bytes = 0
        self.cycle = _Answered()  # type: ignore[assignment]  # the rest of the bytes are ignored
        if not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
                b"connection: close\r\n\r\n"
            )
            self.transport.close()

    def _answer_directly(self) -> bool:
        """Answer a GET or HEAD of a published file here, without an ASGI cycle or task: the
        answer is computed whole from the held version, then written in one call. Anything
        else (other methods, app routes, pipelined requests behind an unfinished one, an
        app that is not ours) returns False and takes uvicorn's ASGI path."""
        app = self.config.app
        if not isinstance(app, App) or self.parser.should_upgrade():
            return False
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD"):
            return False
        previous = self.cycle
        if previous is not None and not previous.response_complete:
            return False
        try:
            raw_path = httptools.parse_url(self.url).path
            path = raw_path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return False
        if "%" in path:
            path = unquote(path)
        if path in app.routes:
            return False
        headers = {}
        for name, value in self.headers:
            if name in _WANTED:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        answer = app.site.answer(method.decode("ascii"), path, headers)
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        default = self.server_state.default_headers  # the Date, a new list each second
        if default is not _default_lines[0]:
            _default_lines[:] = [default, header_lines(default)]
        head = b"".join(
            (
                STATUS_LINE[answer.status],
                _default_lines[1],
                answer.field_lines(),
                b"\r\n" if keep_alive else b"connection: close\r\n\r\n",
            )
        )
        # A finished cycle: body bytes and pipelining see it as done.
        self.cycle = _Answered()  # type: ignore[assignment]
        if answer.body:  # one vectored write, without copying the body into the head
            self.transport.writelines((head, answer.body))
        else:
            self.transport.write(head)
        if keep_alive:
            # What uvicorn's on_response_complete does, but for timers: nothing is pipelined
            # or paused here, and _arm's one timer also stands for the keep-alive timeout.
            self.server_state.total_requests += 1
            self._arm()
        else:
            self.transport.close()
        return True

    def on_message_complete(self) -> None:
        self._in_body = False
        self._head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        """Start the deadlines of the next request: KEEP_ALIVE seconds to send a first byte,
        HEADER_TIMEOUT to finish its headers. One timer per connection, moved lazily: arming
        per request costs nothing but three assignments."""
        self._armed_for = self.cycle
        self._armed_at = self.loop.time()
        self._got_bytes = False
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(min(KEEP_ALIVE, HEADER_TIMEOUT), self._late)

    def _late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is self._armed_for:  # no request began since the deadlines started
            limit = HEADER_TIMEOUT if self._got_bytes else min(KEEP_ALIVE, HEADER_TIMEOUT)
            wait = self._armed_at + limit - self.loop.time()
            if wait <= 0.001:
                self.transport.close()  # idle, or its headers did not come in time
                return
        else:  # a request is being answered; its end arms the deadlines again
            wait = HEADER_TIMEOUT
        self._header_timer = self.loop.call_later(wait, self._late)


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


def make_server(app: Any, host: str, port: int, on_signal: Callable[[], None] | None = None) -> Server:
    """uvicorn (httptools) with bounded resources: connections limited to what the descriptor
    limit allows (excess ones are closed), header and keep-alive timeouts, request heads of at
    most MAX_HEADER_BYTES, no access log, rate-limited errors. Run it with `serve_forever`."""
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
        http=BoundedHttpTools,
        loop="uvloop",
        access_log=False,
        log_level="info",
        limit_concurrency=limit,
        backlog=min(2048, limit),
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        lifespan="off",
        proxy_headers=False,  # no X-Forwarded-* use: client addresses are never logged
        server_header=False,
    )
    return Server(config, on_signal)


def serve_forever(server: Server) -> None:
    """Run `server` on a uvloop event loop until it is asked to exit (the loop uvicorn's
    `loop="uvloop"` names applies only to `Server.run`; callers that used `asyncio.run` get the
    default loop, about half as fast here)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(server.serve())
