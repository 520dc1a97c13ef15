"""Self-test of the hostile test server: each case misbehaves exactly as promised.

Uses plain httpx (sync, short timeouts), stdlib urllib and raw sockets.  The
big cases are only sampled: a bounded prefix is read and the stream closed.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests import hostile_server
from tests.hostile_server import (
    BOMB_DECOMPRESSED_BYTES,
    HUGE_BODY_BYTES,
    HUGE_TITLE_BYTES,
    XSS_PAYLOADS,
    XSS_SAFE,
    HostileServer,
    huge_feed_chunks,
    prepare_bombs,
)

pytestmark = pytest.mark.slow  # starts real servers (see markers in pyproject.toml)

TIMEOUT = httpx.Timeout(5.0)
PREFIX = 256 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer(files={"/extra.xml": b"<rss/>"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT) as http:
        yield http


def _items(body: bytes) -> int:
    return body.count(b"<item>")


def _read_prefix(response: httpx.Response, limit: int, *, raw: bool = True) -> bytes:
    """At most ``limit`` bytes (plus one chunk) of a streamed body."""
    data = b""
    for chunk in response.iter_raw() if raw else response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data


def _raw_get(server: HostileServer, path: str, timeout: float = 3.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def _recv_until_close(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _wait_until(predicate: Callable[[], bool], seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


# --- basics -------------------------------------------------------------------


def test_binds_loopback_random_port(server: HostileServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.url("/ok.xml") == server.base_url + "/ok.xml"
    assert server.port > 0


def test_ok_feed_and_validators(server: HostileServer, client: httpx.Client) -> None:
    response = client.get(server.url("/ok.xml"))
    assert response.status_code == 200
    assert response.headers["etag"] == '"v1"'
    assert response.headers["last-modified"] == "Mon, 06 Jan 2025 08:00:00 GMT"
    assert response.headers["content-type"].startswith("application/rss+xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert _items(response.content) == 3


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": '"v1"'}, 304),
        ({"If-None-Match": 'W/"v1"'}, 304),
        ({"If-None-Match": '"v0", "v1"'}, 304),
        ({"If-None-Match": '"v0"'}, 200),
        ({"If-Modified-Since": "Mon, 06 Jan 2025 08:00:00 GMT"}, 304),
        ({"If-Modified-Since": "Tue, 07 Jan 2025 08:00:00 GMT"}, 304),
        ({"If-Modified-Since": "Sun, 05 Jan 2025 08:00:00 GMT"}, 200),
        ({"If-Modified-Since": "garbage"}, 200),
        # If-None-Match takes precedence over If-Modified-Since.
        ({"If-None-Match": '"v0"', "If-Modified-Since": "Tue, 07 Jan 2025 08:00:00 GMT"}, 200),
    ],
)
def test_ok_feed_conditional(
    server: HostileServer, client: httpx.Client, headers: dict[str, str], status: int
) -> None:
    response = client.get(server.url("/ok.xml"), headers=headers)
    assert response.status_code == status
    assert response.headers["etag"] == '"v1"'
    if status == 304:
        assert response.content == b""


def test_hits_and_requests_recorded(server: HostileServer, client: httpx.Client) -> None:
    before = server.hits["/ok.xml"]
    client.get(server.url("/ok.xml?x=1"), headers={"If-None-Match": '"abc"'})
    assert server.hits["/ok.xml"] == before + 1  # query string is not part of the key
    path, headers = server.requests[-1]
    assert path == "/ok.xml"
    assert headers["if-none-match"] == '"abc"'
    assert server.hits["/never-requested"] == 0


def test_head_request(server: HostileServer, client: httpx.Client) -> None:
    response = client.head(server.url("/ok.xml"))
    assert response.status_code == 200
    assert int(response.headers["content-length"]) > 0
    assert response.content == b""


# --- XML attacks ------------------------------------------------------------------


def test_billion_laughs(server: HostileServer, client: httpx.Client) -> None:
    body = client.get(server.url("/billion-laughs.xml")).content
    assert b'<!ENTITY lol "lol">' in body
    assert b"<!ENTITY lol9 " + b'"' + b"&lol8;" * 10 + b'"' in body
    assert b"<title>&lol9;</title>" in body
    assert len(body) < 4096


def test_quadratic_blowup(server: HostileServer, client: httpx.Client) -> None:
    body = client.get(server.url("/quadratic.xml")).content
    assert b'<!ENTITY a "' + b"A" * 100_000 + b'">' in body
    assert body.count(b"&a;") == 10_000


def test_xxe_file(server: HostileServer, client: httpx.Client) -> None:
    body = client.get(server.url("/xxe-file.xml")).content
    assert b'<!ENTITY xxe SYSTEM "file:///etc/passwd">' in body
    assert b"<title>&xxe;</title>" in body


def test_xxe_remote_points_at_this_server() -> None:
    with HostileServer() as srv, httpx.Client(timeout=TIMEOUT) as http:
        body = http.get(srv.url("/xxe-remote.xml")).content
        dtd_url = srv.url("/evil.dtd").encode()
        assert b'<!DOCTYPE rss SYSTEM "' + dtd_url + b'"' in body
        assert b'<!ENTITY % remote_dtd SYSTEM "' + dtd_url + b'">' in body
        assert srv.hits["/evil.dtd"] == 0
        dtd = http.get(srv.url("/evil.dtd"))
        assert dtd.status_code == 200
        assert b"<!ENTITY remote " in dtd.content
        assert srv.hits["/evil.dtd"] == 1


# --- size and compression --------------------------------------------------------


def test_huge_generator_is_exact() -> None:
    assert sum(len(chunk) for chunk in huge_feed_chunks(10_000)) == 10_000
    assert sum(len(chunk) for chunk in huge_feed_chunks(HUGE_BODY_BYTES)) == HUGE_BODY_BYTES


def test_huge_with_length(server: HostileServer, client: httpx.Client) -> None:
    with client.stream("GET", server.url("/huge.xml")) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(HUGE_BODY_BYTES)
        prefix = _read_prefix(response, PREFIX)
    assert prefix.startswith(b"<?xml")
    assert prefix.count(b"<item>") > 100


def test_huge_without_length(server: HostileServer, client: httpx.Client) -> None:
    with client.stream("GET", server.url("/huge-nolength.xml")) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert "transfer-encoding" not in response.headers
        prefix = _read_prefix(response, PREFIX)
    assert prefix.startswith(b"<?xml")
    assert len(prefix) >= PREFIX


@pytest.mark.parametrize(
    ("path", "encoding", "wbits"),
    [("/gzip-bomb.xml", "gzip", 31), ("/deflate-bomb.xml", "deflate", 15)],
)
def test_compression_bombs(server: HostileServer, path: str, encoding: str, wbits: int) -> None:
    prepare_bombs()  # the one-off ~2 s compression happens here, not under a timeout
    with httpx.Client(timeout=TIMEOUT) as http:
        with http.stream("GET", server.url(path)) as response:
            assert response.headers["content-encoding"] == encoding
            length = int(response.headers["content-length"])
            assert 500_000 < length < 2_000_000
            compressed = _read_prefix(response, length + 1)  # ~1 MB, fine to read
        assert len(compressed) == length
        # Inflate in bounded steps, checking the promised size and checksum.
        inflater = zlib.decompressobj(wbits)
        total = 0
        pending = compressed
        for _ in range(BOMB_DECOMPRESSED_BYTES // (16 << 20) + 2):
            out = inflater.decompress(pending, 16 << 20)
            assert not out.strip(b"\0")
            total += len(out)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        assert inflater.eof and total == BOMB_DECOMPRESSED_BYTES

        # The decoding client sees zeros; read a bounded prefix only.
        with http.stream("GET", server.url(path)) as response:
            decoded = _read_prefix(response, PREFIX, raw=False)
        assert len(decoded) >= PREFIX and not decoded.strip(b"\0")


def test_endless_chunked(server: HostileServer, client: httpx.Client) -> None:
    with client.stream("GET", server.url("/endless-chunked.xml")) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        prefix = _read_prefix(response, 4 << 20)
    assert prefix.startswith(b"<?xml")
    assert len(prefix) >= 4 << 20
    assert b"</rss>" not in prefix


def test_huge_title(server: HostileServer, client: httpx.Client) -> None:
    body = client.get(server.url("/huge-title.xml")).content
    titles = re.findall(rb"<title>(.*?)</title>", body, re.DOTALL)
    assert len(titles) == 3  # channel + 2 items
    assert len(titles[1]) == HUGE_TITLE_BYTES
    assert _items(body) == 2


# --- timing --------------------------------------------------------------------


def test_slow_drip(server: HostileServer) -> None:
    timeout = httpx.Timeout(5.0, read=0.8)
    with httpx.Client(timeout=timeout) as http:
        started = time.monotonic()
        with http.stream("GET", server.url("/slow-drip.xml")) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == "60"
            received = b""
            with pytest.raises(httpx.ReadTimeout):
                for chunk in response.iter_raw():
                    received += chunk
        assert received == b"<"  # one byte, then the next is 2 s away
        assert time.monotonic() - started < 2.0


def test_slow_headers(server: HostileServer) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(server.url("/slow-headers.xml"), timeout=httpx.Timeout(5.0, read=0.5))
    assert time.monotonic() - started < 2.0


def test_lying_length(server: HostileServer, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url("/lying-length.xml"))
    with _raw_get(server, "/lying-length.xml") as sock:
        data = _recv_until_close(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 100000" in head
    assert len(body) == 500 and body.startswith(b"<?xml")


def test_reset(server: HostileServer, client: httpx.Client) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(server.url("/reset"))
    with pytest.raises(OSError):  # URLError and RemoteDisconnected are OSErrors
        urllib.request.urlopen(server.url("/reset"), timeout=3)


# --- redirects ------------------------------------------------------------------


def test_redirect_loop(server: HostileServer, client: httpx.Client) -> None:
    a = client.get(server.url("/redirect-loop-a"))
    b = client.get(server.url("/redirect-loop-b"))
    assert (a.status_code, a.headers["location"]) == (302, "/redirect-loop-b")
    assert (b.status_code, b.headers["location"]) == (302, "/redirect-loop-a")
    with pytest.raises(httpx.TooManyRedirects):
        client.get(server.url("/redirect-loop-a"), follow_redirects=True)


@pytest.mark.parametrize("hops", [3, 6])
def test_redirect_chain(server: HostileServer, client: httpx.Client, hops: int) -> None:
    first = client.get(server.url(f"/redirect-chain/{hops}"))
    assert first.status_code == 302
    assert first.headers["location"] == f"/redirect-chain/{hops - 1}"
    response = client.get(server.url(f"/redirect-chain/{hops}"), follow_redirects=True)
    assert len(response.history) == hops
    assert response.url == server.url("/redirect-chain/0")
    assert _items(response.content) == 3


def test_redirect_to(server: HostileServer, client: httpx.Client) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    response = client.get(server.url("/redirect-to"), params={"url": target})
    assert response.status_code == 302
    assert response.headers["location"] == target
    assert client.get(server.url("/redirect-to")).status_code == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/moved-permanently", 301),
        ("/moved-308", 308),
        ("/moved-temporarily", 302),
        ("/moved-307", 307),
    ],
)
def test_moved(server: HostileServer, client: httpx.Client, path: str, status: int) -> None:
    response = client.get(server.url(path))
    assert response.status_code == status
    assert response.headers["location"] == server.url("/ok.xml")
    followed = client.get(server.url(path), follow_redirects=True)
    assert followed.url == server.url("/ok.xml") and _items(followed.content) == 3


# --- status codes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [("/gone", 410), ("/not-found", 404), ("/server-error", 500), ("/no-such-path", 404)],
)
def test_error_statuses(server: HostileServer, client: httpx.Client, path: str, status: int) -> None:
    assert client.get(server.url(path)).status_code == status


def test_retry_after(server: HostileServer, client: httpx.Client) -> None:
    limited = client.get(server.url("/rate-limited"))
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "120")
    unavailable = client.get(server.url("/unavailable-date"))
    assert unavailable.status_code == 503
    when = parsedate_to_datetime(unavailable.headers["retry-after"])
    expected = datetime.now(UTC) + timedelta(hours=1)
    assert abs((when - expected).total_seconds()) < 60


# --- content oddities ------------------------------------------------------------


def test_html_page(server: HostileServer, client: httpx.Client) -> None:
    response = client.get(server.url("/html-page"))
    assert response.headers["content-type"].startswith("text/html")
    assert (
        b'<link rel="alternate" type="application/rss+xml" href="/ok.xml" title="Main feed">'
        in response.content
    )
    assert b'type="application/atom+xml" href="/atom.xml"' in response.content
    atom = client.get(server.url("/atom.xml"))
    assert atom.status_code == 200 and b'<feed xmlns="http://www.w3.org/2005/Atom">' in atom.content


def test_empty_random_and_json(server: HostileServer, client: httpx.Client) -> None:
    empty = client.get(server.url("/empty"))
    assert (empty.status_code, empty.content, empty.headers["content-length"]) == (200, b"", "0")
    first = client.get(server.url("/random-bytes"))
    second = client.get(server.url("/random-bytes"))
    assert first.headers["content-type"] == "application/xml"
    assert len(first.content) == 4096 and first.content == second.content
    not_feed = client.get(server.url("/not-jsonfeed.json"))
    assert not_feed.headers["content-type"] == "application/json"
    assert json.loads(not_feed.content) == {"hello": "world"}


def test_bozo(server: HostileServer, client: httpx.Client) -> None:
    body = client.get(server.url("/bozo.xml")).content
    assert b"Fish & Chips" in body and b"<b>beer batter</description>" in body
    feedparser = pytest.importorskip("feedparser")
    parsed = feedparser.parse(body)
    assert parsed.bozo and len(parsed.entries) == 3


def test_encodings(server: HostileServer, client: httpx.Client) -> None:
    utf16 = client.get(server.url("/utf16.xml")).content
    assert utf16.startswith(b"\xff\xfe")
    text = utf16.decode("utf-16")
    assert text.startswith('<?xml version="1.0" encoding="UTF-16"?>')
    assert "Café crème" in text and "東京の桜" in text

    lying = client.get(server.url("/cp1251-as-utf8.xml"))
    assert lying.headers["content-type"] == "application/xml; charset=utf-8"
    assert lying.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    with pytest.raises(UnicodeDecodeError):
        lying.content.decode("utf-8")
    assert "Курс рубля" in lying.content.decode("cp1251")

    chinese = client.get(server.url("/gb2312.xml")).content
    assert chinese.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
    assert "经济观察" in chinese.decode("gb2312")


def test_guids(server: HostileServer, client: httpx.Client) -> None:
    dup = client.get(server.url("/dup-guids.xml")).content
    guids = re.findall(rb"<guid[^>]*>(.*?)</guid>", dup)
    assert len(guids) == 4 and len(set(guids)) == 3

    def fetch() -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
        body = client.get(server.url("/changing-guids.xml")).content
        return (
            re.findall(rb"<item><title>(.*?)</title>", body),
            re.findall(rb"<pubDate>(.*?)</pubDate>", body),
            re.findall(rb"<guid[^>]*>(.*?)</guid>", body),
            re.findall(rb"<item><title>.*?</title><link>(.*?)</link>", body),
        )

    titles1, dates1, guids1, links1 = fetch()
    titles2, dates2, guids2, links2 = fetch()
    assert titles1 == titles2 and dates1 == dates2 and len(titles1) == 3
    assert not set(guids1) & set(guids2)
    assert not set(links1) & set(links2)


def test_weird_dates(server: HostileServer, client: httpx.Client) -> None:
    body = client.get(server.url("/weird-dates.xml")).content
    dates = [d.decode() for d in re.findall(rb"<pubDate>(.*?)</pubDate>", body)]
    assert len(dates) == 5
    assert "9999" in dates[0] and " 0001 " in dates[1]
    with pytest.raises((TypeError, ValueError)):
        parsedate_to_datetime(dates[2])
    ahead = parsedate_to_datetime(dates[3]) - datetime.now(UTC)
    assert timedelta(days=3) - timedelta(minutes=1) < ahead <= timedelta(days=3)


def test_xss(server: HostileServer, client: httpx.Client) -> None:
    body = client.get(server.url("/xss.xml")).content.decode()
    for fragment in XSS_PAYLOADS + XSS_SAFE:
        assert "<![CDATA[" in body
        assert fragment in body  # raw inside content:encoded
        assert fragment.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in body


def test_extra_files() -> None:
    files = {"/x.json": b"{}", "/x.html": b"<html></html>", "/x.rss": b"<rss/>"}
    with HostileServer(files=files) as srv, httpx.Client(timeout=TIMEOUT) as http:
        srv.files["/late.xml"] = srv.base_url.encode()
        kinds = {p: http.get(srv.url(p)).headers["content-type"] for p in files}
        assert kinds == {
            "/x.json": "application/json",
            "/x.html": "text/html; charset=utf-8",
            "/x.rss": "application/xml",
        }
        assert http.get(srv.url("/late.xml")).content == srv.base_url.encode()


# --- lifecycle -------------------------------------------------------------------


def test_handlers_end_when_client_leaves() -> None:
    with HostileServer() as srv:
        sockets = [
            _raw_get(srv, path) for path in ("/slow-headers.xml", "/slow-drip.xml", "/endless-chunked.xml")
        ]
        assert _wait_until(lambda: srv.active_connections == 3)
        for sock in sockets:
            sock.close()
        assert _wait_until(lambda: srv.active_connections == 0)


def test_connection_cap_ends_stuck_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Shrink the 120 s per-connection cap; clients that never read nor leave.
    monkeypatch.setattr(hostile_server, "MAX_CONNECTION_SECONDS", 0.5)
    with HostileServer() as srv:
        paths = ("/slow-headers.xml", "/slow-drip.xml", "/endless-chunked.xml", "/huge.xml")
        sockets = [_raw_get(srv, path) for path in paths]
        try:
            assert _wait_until(lambda: sum(srv.hits[p] for p in paths) == len(paths))
            assert _wait_until(lambda: srv.active_connections == 0, seconds=3.0)
        finally:
            for sock in sockets:
                sock.close()


def test_stop_is_fast_with_busy_connections() -> None:
    srv = HostileServer().start()
    paths = ["/slow-headers.xml", "/slow-drip.xml", "/endless-chunked.xml", "/huge.xml"]
    # Clients that never read: the server's sends end up blocked on full buffers.
    sockets = [_raw_get(srv, path) for path in paths]
    stream_thread = threading.Thread(
        target=lambda: httpx.get(srv.url("/huge-nolength.xml"), timeout=10), daemon=True
    )
    try:
        assert _wait_until(lambda: srv.active_connections == len(paths))
        stream_thread.start()
        assert _wait_until(lambda: srv.hits["/huge-nolength.xml"] == 1)
        time.sleep(0.3)
        started = time.monotonic()
        srv.stop()
        elapsed = time.monotonic() - started
        assert elapsed < 2.0
        assert srv.active_connections == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
    finally:
        for sock in sockets:
            sock.close()
        stream_thread.join(5)


# --- helpers for client tests ------------------------------------------------------


def test_generated_feeds_and_their_etags(server: HostileServer, client: httpx.Client) -> None:
    first = client.get(server.url("/gen/abc.xml?items=4"))
    assert first.status_code == 200 and _items(first.content) == 4
    assert b"Story 3 from feed abc" in first.content
    assert client.get(server.url("/gen/abc.xml?items=4")).content == first.content  # stable
    etag = first.headers["etag"]
    assert client.get(server.url("/gen/abc.xml?items=4"), headers={"If-None-Match": etag}).status_code == 304
    started = time.monotonic()
    assert client.get(server.url("/gen/slow.xml?delay=0.3")).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_last_modified_only(server: HostileServer, client: httpx.Client) -> None:
    first = client.get(server.url("/lastmod-only.xml"))
    assert "etag" not in first.headers and _items(first.content) == 3
    since = {"If-Modified-Since": first.headers["last-modified"]}
    assert client.get(server.url("/lastmod-only.xml"), headers=since).status_code == 304


def test_aliases_switch_behaviour() -> None:
    with HostileServer(files={"/feed.xml": b"<rss/>"}) as srv, httpx.Client(timeout=TIMEOUT) as http:
        assert http.get(srv.url("/feed.xml")).content == b"<rss/>"
        del srv.files["/feed.xml"]
        srv.aliases["/feed.xml"] = "/gone"
        assert http.get(srv.url("/feed.xml")).status_code == 410
        srv.aliases["/feed.xml"] = "/gen/x.xml?items=2"
        assert _items(http.get(srv.url("/feed.xml")).content) == 2
        srv.aliases["/a"], srv.aliases["/b"] = "/b", "/a"  # chains are refused, not followed
        assert http.get(srv.url("/a")).status_code == 404
        assert srv.hits["/feed.xml"] == 3


def test_in_flight_is_counted() -> None:
    with HostileServer() as srv:
        threads = [
            threading.Thread(target=lambda: httpx.get(srv.url("/gen/w.xml?delay=0.3"), timeout=5))
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        assert _wait_until(lambda: srv.in_flight == 3)
        for t in threads:
            t.join(5)
        # The client has its answer before the server's thread counts the request done.
        assert _wait_until(lambda: srv.in_flight == 0) and srv.max_in_flight == 3
        srv.reset_in_flight()
        assert srv.max_in_flight == 0
