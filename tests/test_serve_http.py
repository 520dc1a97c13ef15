"""HTTP for feed readers and caches (RFC 9110, RFC 9111): media types, content codings, validators
per representation, Cache-Control, content negotiation, built-in files. Each test runs on both
ways a request is answered: the ASGI app (httpx's ASGI transport) and the real server on
loopback, where published files are answered by the protocol itself."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import brotli
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import Config, parse_config
from aggregator.serve import (
    ARCHIVE_MAX_AGE,
    DEFAULT_MAX_AGE,
    UNLISTED_IDENTITY_Q,
    CachePolicy,
    PublicFiles,
    cache_max_age,
    choose_coding,
    choose_media,
    create_app,
    make_server,
    serve_forever,
)

FEED = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<feed>"
    + b"<entry>workers of the world</entry>" * 200
    + b"</feed>"
)
TODAY = datetime.now(UTC).date()
OLD_DAY = "archive/2023/01/17"
NEW_DAY = f"archive/{(TODAY + timedelta(days=2)).strftime('%Y/%m/%d')}"

FILES = {
    "feeds/en.atom": FEED,
    "feeds/en.rss": b"<rss>" + b"<item>x</item>" * 100 + b"</rss>",
    "feeds/en.json": b'{"version": "https://jsonfeed.org/version/1.1", "items": []}' + b" " * 400,
    "daily/en.json": b'{"version": "https://jsonfeed.org/version/1.1"}',
    "index.html": b"<!doctype html><p>front page</p>" * 20,
    "index.json": b'{"date": "2023-01-17"}',
    "index.txt": b"front",
    "sources.opml": b"<opml version='2.0'/>" * 20,
    f"{OLD_DAY}/en.atom": FEED,
    f"{OLD_DAY}/en.feed.json": b'{"version": "https://jsonfeed.org/version/1.1"}',
    f"{OLD_DAY}/en.json": b'{"date": "2023-01-17"}',
    f"{OLD_DAY}/en.html": b"<p>day</p>",
    f"{NEW_DAY}/en.atom": FEED,
}


def publish_tree(public: Path) -> None:
    for rel, body in FILES.items():
        (public / rel).parent.mkdir(parents=True, exist_ok=True)
        (public / rel).write_bytes(body)


Get = Callable[..., httpx.Response]  # (path, headers=None, method="GET")


def _asgi_get(public: Path) -> Get:
    app = create_app(public)

    def get(path: str, headers: dict[str, str] | None = None, method: str = "GET") -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.send(_build(c, method, path, headers))

        return asyncio.run(go())

    return get


def _build(
    client: httpx.Client | httpx.AsyncClient, method: str, path: str, headers: dict[str, str | None] | None
) -> httpx.Request:
    """A request with `headers`; a header given as None is not sent at all (not even httpx's own)."""
    given = headers or {}
    request = client.build_request(method, path, headers={k: v for k, v in given.items() if v is not None})
    for name, value in given.items():
        if value is None:
            del request.headers[name]
    return request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The real server (make_server on uvloop, as `serve` runs it) on a loopback port."""
    public = tmp_path / "public"
    publish_tree(public)
    port = _free_port()
    server = make_server(create_app(public), "127.0.0.1", port)
    thread = threading.Thread(target=serve_forever, args=(server,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", public
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(params=["asgi", "socket"])
def get(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Get]:
    if request.param == "asgi":
        public = tmp_path / "public"
        publish_tree(public)
        yield _asgi_get(public)
        return
    base, _ = request.getfixturevalue("live")
    with httpx.Client(base_url=base, timeout=5) as client:

        def get(path: str, headers: dict[str, str] | None = None, method: str = "GET") -> httpx.Response:
            return client.send(_build(client, method, path, headers))

        yield get


@pytest.mark.parametrize(("path", "ctype"), [
    ("/feeds/en.atom", "application/atom+xml; charset=utf-8"),
    ("/feeds/en.rss", "application/rss+xml; charset=utf-8"),
    ("/feeds/en.json", "application/feed+json; charset=utf-8"),
    ("/daily/en.json", "application/feed+json; charset=utf-8"),
    (f"/{OLD_DAY}/en.feed.json", "application/feed+json; charset=utf-8"),
    (f"/{OLD_DAY}/en.json", "application/json; charset=utf-8"),
    ("/index.json", "application/json; charset=utf-8"),
    ("/index.txt", "text/plain; charset=utf-8"),
    ("/sources.opml", "text/x-opml; charset=utf-8"),
    ("/", "text/html; charset=utf-8"),
])  # fmt: skip
def test_media_types_carry_their_charset(get: Get, path: str, ctype: str) -> None:
    """RFC 9110 8.3: the media type with `charset=utf-8`, so no reader guesses the encoding."""
    r = get(path, {"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.headers["content-type"] == ctype
    assert r.headers["x-content-type-options"] == "nosniff"


DECODE = {"gzip": gzip.decompress, "br": brotli.decompress, "identity": lambda b: b}


@pytest.mark.parametrize(("accept", "coding"), [
    (None, "identity"),  # no header: what every client can read
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("br", "br"),
    ("gzip, deflate, br", "br"),  # equal q: the smaller coding
    ("gzip;q=0.9, br;q=0.5", "gzip"),
    ("identity", "identity"),
    ("*", "br"),
    ("*;q=0.5, identity", "identity"),
    ("gzip;q=0, br;q=0", "identity"),  # identity stays acceptable unless excluded
    ("identity;q=0, gzip", "gzip"),
    ("deflate", "identity"),  # a coding we do not make
    ("", "identity"),  # empty: no coding wanted (RFC 9110 12.5.3)
])  # fmt: skip
def test_content_codings_follow_accept_encoding(get: Get, accept: str | None, coding: str) -> None:
    """RFC 9110 12.5.3 with q-values; Vary: Accept-Encoding on every answer that could differ;
    each coding is its own representation with its own strong ETag (8.8.3)."""
    headers = {} if accept is None else {"Accept-Encoding": accept}
    # None: no Accept-Encoding at all (httpx would add its own).
    r = get("/feeds/en.atom", headers or {"Accept-Encoding": None})
    assert r.status_code == 200
    assert r.headers.get("content-encoding", "identity") == coding
    assert r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) == r.num_bytes_downloaded
    assert r.content == FEED  # httpx decodes gzip and br
    plain = get("/feeds/en.atom", {"Accept-Encoding": "identity"}).headers["etag"]
    assert (r.headers["etag"] == plain) == (coding == "identity")
    assert r.headers["etag"].startswith('"') and not r.headers["etag"].startswith("W/")


@pytest.mark.parametrize("accept", ["identity;q=0", "*;q=0", "identity;q=0, deflate"])
def test_no_acceptable_coding_is_406(get: Get, accept: str) -> None:
    """RFC 9110 12.5.3 and 15.5.7: identity excluded and no coding we make accepted."""
    r = get("/feeds/en.atom", {"Accept-Encoding": accept})
    assert r.status_code == 406 and "Accept-Encoding" in r.headers["vary"]


def test_each_coding_revalidates_with_its_own_etag(get: Get) -> None:
    """RFC 9110 13.1.2 / 13.2.2: If-None-Match compares (weakly) with the selected
    representation's tag; a list matches when any member does; `*` matches."""
    for coding in ("identity", "gzip", "br"):
        asked = {"Accept-Encoding": coding}
        first = get("/feeds/en.atom", asked)
        etag = first.headers["etag"]
        for inm in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
            again = get("/feeds/en.atom", {**asked, "If-None-Match": inm})
            assert again.status_code == 304 and again.content == b"", (coding, inm)
            assert again.headers["etag"] == etag and again.headers["vary"] == "Accept-Encoding"
            assert again.headers["cache-control"] == first.headers["cache-control"]
        other = "br" if coding != "br" else "gzip"
        moved = get("/feeds/en.atom", {"Accept-Encoding": other, "If-None-Match": etag})
        assert moved.status_code == 200 and moved.headers["etag"] != etag
        modified = first.headers["last-modified"]
        assert get("/feeds/en.atom", {**asked, "If-Modified-Since": modified}).status_code == 304
        head = get("/feeds/en.atom", asked, method="HEAD")
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
        assert head.headers["content-length"] == first.headers["content-length"]


def test_codings_are_made_once_per_version_and_kept_with_it(tmp_path: Path) -> None:
    public = tmp_path / "public"
    publish_tree(public)
    files = PublicFiles(public, stat_every=0)  # stat every time: the version is still reused
    first = files.get("/feeds/en.atom")
    again = files.get("/feeds/en.atom")
    assert first is not None and again is first
    assert set(first.variants) == {"identity", "gzip", "br"}
    assert (
        gzip.decompress(first.variants["gzip"].body) == FEED == brotli.decompress(first.variants["br"].body)
    )
    tiny = files.get("/index.txt")
    assert tiny is not None and set(tiny.variants) == {"identity"} and not tiny.negotiable


def test_validators_change_only_when_the_bytes_do(tmp_path: Path) -> None:
    """RFC 9110 8.8.2/8.8.3: a file rewritten with the same bytes keeps its ETag and its
    Last-Modified; other bytes change both."""
    public = tmp_path / "public"
    publish_tree(public)
    files = PublicFiles(public, stat_every=0)
    path = public / "feeds" / "en.atom"
    v1 = files.get("/feeds/en.atom")
    assert v1 is not None
    os.utime(path, (time.time() + 5, time.time() + 5))
    same = files.get("/feeds/en.atom")
    assert same is not None and same.key != v1.key
    assert (same.etag, same.last_modified) == (v1.etag, v1.last_modified)
    assert same.variants["gzip"].etag == v1.variants["gzip"].etag
    path.write_bytes(FEED + b"\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    changed = files.get("/feeds/en.atom")
    assert changed is not None and changed.etag != v1.etag and changed.last_modified != v1.last_modified


def test_a_publish_is_seen_at_once_after_invalidate(tmp_path: Path) -> None:
    public = tmp_path / "public"
    publish_tree(public)
    files = PublicFiles(public, stat_every=3600)  # only invalidate can refresh
    before = files.get("/feeds/en.atom")
    front = files.get("/")
    (public / "feeds" / "en.atom").write_bytes(b"<feed>new</feed>")
    (public / "index.html").write_bytes(b"<p>new</p>")
    assert files.get("/feeds/en.atom") is before
    files.invalidate(["feeds/en.atom", public / "index.html"])
    after, new_front = files.get("/feeds/en.atom"), files.get("/")
    assert after is not None and after.body == b"<feed>new</feed>"
    assert new_front is not None and front is not None and new_front.body == b"<p>new</p>"


def _config(tmp_path: Path, feeds: str, defaults: str = "") -> Config:
    text = f"site:\n  timezone: Pacific/Auckland\n{defaults}feeds:\n{feeds}"
    return parse_config(text, tmp_path / "feeds.yaml")


def test_max_age_follows_the_shortest_poll_interval(tmp_path: Path) -> None:
    """RFC 9111 5.2.2.1: a cache keeps a feed no longer than until its next poll (60 s..15 min)."""
    feed = "  - url: https://example.org/{n}.xml\n    interval: {i}\n"

    def feeds(*intervals: str) -> str:
        return "".join(feed.format(n=n, i=i) for n, i in enumerate(intervals))

    assert cache_max_age(None) == DEFAULT_MAX_AGE
    assert cache_max_age(_config(tmp_path, feeds("10m", "1h"))) == 600
    assert cache_max_age(_config(tmp_path, feeds("20s"))) == 60
    assert cache_max_age(_config(tmp_path, feeds("6h"))) == 900
    auto = _config(tmp_path, feeds("auto"), "defaults:\n  min_interval: 5m\n")
    assert cache_max_age(auto) == 300
    assert cache_max_age(_config(tmp_path, " []\n")) == 900
    disabled = feeds("1m") + "    enabled: false\n" + feed.format(n=9, i="10m")
    assert cache_max_age(_config(tmp_path, disabled)) == 600


def test_past_day_archives_are_long_lived(tmp_path: Path) -> None:
    policy = CachePolicy.from_config(_config(tmp_path, "  - url: https://e.org/f\n"))
    assert policy.cache_control(f"{OLD_DAY}/en.atom") == f"public, max-age={ARCHIVE_MAX_AGE}"
    assert policy.cache_control(f"{NEW_DAY}/en.atom") == "public, max-age=900"
    today = datetime.now(policy.timezone).strftime("%Y/%m/%d")
    assert policy.cache_control(f"archive/{today}/en.html") == "public, max-age=900"
    assert policy.cache_control("feeds/en.atom") == "public, max-age=900"
    # Without a time zone, "before today" must hold in every zone: yesterday in UTC may still
    # be today at UTC-12.
    plain = CachePolicy()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y/%m/%d")
    long_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y/%m/%d")
    assert plain.cache_control(f"archive/{long_ago}/en.atom").endswith(f"={ARCHIVE_MAX_AGE}")
    assert plain.cache_control(f"archive/{yesterday}/all.atom") in (
        f"public, max-age={DEFAULT_MAX_AGE}", f"public, max-age={ARCHIVE_MAX_AGE}")  # fmt: skip


def test_cache_control_is_served(get: Get) -> None:
    assert get("/feeds/en.atom").headers["cache-control"] == f"public, max-age={DEFAULT_MAX_AGE}"
    assert get(f"/{OLD_DAY}/en.atom").headers["cache-control"] == f"public, max-age={ARCHIVE_MAX_AGE}"
    assert get(f"/{NEW_DAY}/en.atom").headers["cache-control"] == f"public, max-age={DEFAULT_MAX_AGE}"


def test_favicon_and_robots_are_built_in(get: Get) -> None:
    icon = get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content.startswith(b"\x00\x00\x01\x00\x01\x00") and b"\x89PNG\r\n" in icon.content
    assert "vary" not in icon.headers and len(icon.content) < 200
    robots = get("/robots.txt")
    assert robots.status_code == 200 and robots.headers["content-type"].startswith("text/plain")
    assert "User-agent: *\nAllow: /\n" in robots.text and "Disallow: /" not in robots.text
    assert get("/robots.txt", {"If-None-Match": robots.headers["etag"]}).status_code == 304


def test_a_published_robots_txt_wins(tmp_path: Path) -> None:
    public = tmp_path / "public"
    publish_tree(public)
    (public / "robots.txt").write_bytes(b"User-agent: *\nDisallow: /archive/\n")
    assert _asgi_get(public)("/robots.txt").content == b"User-agent: *\nDisallow: /archive/\n"


@pytest.mark.parametrize(("path", "accept", "served"), [
    ("/feeds/en", None, "feeds/en.atom"),  # default Atom
    ("/feeds/en", "application/atom+xml", "feeds/en.atom"),
    ("/feeds/en", "application/rss+xml", "feeds/en.rss"),
    ("/feeds/en", "application/feed+json", "feeds/en.json"),
    ("/feeds/en", "application/json", "feeds/en.json"),
    ("/feeds/en", "application/rss+xml;q=0.5, application/atom+xml;q=0.9", "feeds/en.atom"),
    ("/feeds/en", "application/atom+xml;q=0, application/xml", "feeds/en.rss"),
    ("/feeds/en", "text/html", "feeds/en.atom"),  # nothing acceptable: Accept disregarded
    ("/feeds/en", "*/*", "feeds/en.atom"),
    ("/feeds/en", "application/*;q=0.8, application/rss+xml", "feeds/en.rss"),
    (f"/{OLD_DAY}/en", "application/feed+json", f"{OLD_DAY}/en.feed.json"),  # never the page JSON
    (f"/{OLD_DAY}/en", "application/rss+xml", f"{OLD_DAY}/en.atom"),  # archives have no RSS
])  # fmt: skip
def test_an_extensionless_feed_url_negotiates_by_accept(
    get: Get, path: str, accept: str | None, served: str
) -> None:
    """RFC 9110 12.5.1 (Accept), 12.5.5 (Vary: Accept), 8.7 (Content-Location)."""
    headers = {"Accept-Encoding": "identity"} | ({"Accept": accept} if accept else {})
    r = get(path, headers)
    assert r.status_code == 200 and r.content == FILES[served]
    assert r.headers["content-location"] == served.rsplit("/", 1)[-1]
    assert "Accept" in [v.strip() for v in r.headers["vary"].split(",")]
    again = get(path, {**headers, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and "Accept" in again.headers["vary"]


def test_missing_methods_and_directories(get: Get) -> None:
    assert get("/feeds/xx.atom").status_code == 404
    assert get("/feeds/xx").status_code == 404
    assert get("/feeds/en.atom", method="POST").status_code == 405
    r = get(f"/{OLD_DAY}")
    assert r.status_code == 308 and r.headers["location"] == f"/{OLD_DAY}/"


def _socket_exchange(base: str, data: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def test_pipelined_requests_http_1_0_and_oversized_heads(live: tuple[str, Path]) -> None:
    base, _ = live
    two = (b"GET /index.txt HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /feeds/en.rss HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # fmt: skip
    answer = _socket_exchange(base, two)
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.index(b"\r\n\r\nfront") < answer.index(b"<rss>")
    old = _socket_exchange(base, b"GET /index.txt HTTP/1.0\r\n\r\n")  # closes after the answer
    assert old.startswith(b"HTTP/1.1 200") and old.endswith(b"front") and b"connection: close" in old
    huge = _socket_exchange(base, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 431")
    assert httpx.get(base + "/index.txt").status_code == 200


def test_the_protocol_answers_as_the_asgi_app_does(live: tuple[str, Path]) -> None:
    """The direct answer in the protocol and the ASGI app give the same status, headers and body
    (but the Date), for every file, coding and validator."""
    base, public = live
    asgi = _asgi_get(public)
    with httpx.Client(base_url=base, timeout=5) as client:
        for rel in [*FILES, "", "favicon.ico", "robots.txt", "feeds/en", "nope"]:
            for headers in ({"Accept-Encoding": "br"}, {"Accept-Encoding": "identity"},
                            {"Accept-Encoding": "gzip", "If-None-Match": "*"}):  # fmt: skip
                a, b = client.get("/" + rel, headers=headers), asgi("/" + rel, headers)
                assert a.status_code == b.status_code, rel
                strip = {"date", "server"}
                ha = {k: v for k, v in a.headers.items() if k not in strip}
                hb = {k: v for k, v in b.headers.items() if k not in strip}
                assert ha == hb and a.content == b.content, rel


# -- the rules themselves, over every input -----------------------------------------------------

Q = st.sampled_from([None, 0.0, 0.001, 0.3, 0.5, 1.0])


@given(br=Q, gz=Q, ident=Q, star=Q, offer=st.sampled_from([("identity",), ("identity", "gzip", "br")]))
def test_choose_coding_follows_rfc_9110(
    br: float | None, gz: float | None, ident: float | None, star: float | None, offer: tuple[str, ...]
) -> None:
    """Whatever the q-values: the coding chosen has the highest q the client gives any offered
    coding (unlisted ones count as `*`; identity without `*` as acceptable but below any
    listed q), never q=0; None only when
    every offered coding has q=0."""
    parts = {"br": br, "gzip": gz, "identity": ident, "*": star}
    header = ", ".join(f"{k};q={v}" for k, v in parts.items() if v is not None)

    def q(coding: str) -> float:
        if parts[coding] is not None:
            return parts[coding]  # type: ignore[return-value]
        if star is not None:
            return star
        return UNLISTED_IDENTITY_Q if coding == "identity" else 0.0

    chosen = choose_coding(header, offer)
    best = max(q(c) for c in offer)
    if best <= 0:
        assert chosen is None
    else:
        assert chosen is not None and q(chosen) == best


MEDIA = {"application/atom+xml": "", "application/rss+xml": "", "application/feed+json": ""}


@given(st.lists(st.tuples(st.sampled_from([*MEDIA, "application/xml", "application/json", "text/html",
                                           "*/*", "application/*"]), Q), max_size=5))  # fmt: skip
def test_choose_media_always_gives_a_format_we_have(ranges: list[tuple[str, float | None]]) -> None:
    header = ", ".join(m if q is None else f"{m};q={q}" for m, q in ranges)
    chosen = choose_media(header, MEDIA)
    assert chosen in MEDIA
    exact = {m: (1.0 if q is None else q) for m, q in ranges if m in MEDIA}
    if exact and max(exact.values()) > 0 and len(set(m for m, _ in ranges)) == len(ranges):
        # Asked for by name with the top q: one of those named at that q wins.
        top = max(exact.values())
        if all(m in MEDIA for m, _ in ranges):
            assert exact.get(chosen) == top
