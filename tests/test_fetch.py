"""The fetcher against the hostile server on 127.0.0.1: politeness, limits, redirects, SSRF.

Real HTTP throughout. A transport wrapper appears only where the point is the transport
itself: to prove that a refused redirect never leaves the machine (it records any request
for a host other than loopback and refuses to send it), and to stand in for a public
server, which a test on loopback cannot have.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import ipaddress
import socket
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import FeedConfig, FetchSettings
from aggregator.fetch import (
    MAX_REDIRECTS,
    AddressGuard,
    Fetcher,
    IPAddress,
    _BadEncoding,
    _Decoder,
    _Refused,
    address_zone,
    check_target,
    parse_count,
    parse_retry_after,
    system_resolver,
    valid_etag,
    valid_http_date,
)
from aggregator.models import FeedState, FetchResult, Outcome
from tests.hostile_server import ETAG, HostileServer, prepare_bombs, raw_response

pytestmark = pytest.mark.slow  # starts a real server

LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
PUBLIC_HOST = "feeds.example.com"  # answered in-process; never resolved or contacted
PUBLIC_ADDRESS = ipaddress.ip_address("93.184.216.34")


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


class LoopbackOnly(httpx.AsyncBaseTransport):
    """Real HTTP to loopback; a request for any other host is recorded and never sent."""

    def __init__(self, public: dict[str, Callable[[], httpx.Response]] | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.public = public or {}  # path on PUBLIC_HOST -> a fresh canned answer each time
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC_HOST and request.url.path in self.public:
            return self.public[request.url.path]()
        if request.url.host not in LOOPBACK_HOSTS:
            self.refused.append(str(request.url))
            raise httpx.ConnectError("test safety net: only loopback may be contacted", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def fake_dns(host: str, port: int) -> Sequence[IPAddress]:
    """Public test names resolve without a network; everything else as the system says."""
    names = {PUBLIC_HOST: [PUBLIC_ADDRESS], "metadata.test": [ipaddress.ip_address("169.254.169.254")]}
    if host in names:
        return names[host]
    return await system_resolver(host, port)


def feed(url: str, **kw: Any) -> FeedConfig:
    return FeedConfig(url=url, **kw)


async def fetch(
    url: str,
    state: FeedState | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    settings: FetchSettings | None = None,
    **feed_kw: Any,
) -> FetchResult:
    async with Fetcher(settings or FetchSettings(), transport=transport, resolver=fake_dns) as f:
        return await f.fetch(feed(url, **feed_kw), state)


# -- conditional GET -----------------------------------------------------------------


async def test_conditional_get_sends_validators_and_gets_304(server: HostileServer) -> None:
    url = server.url("/ok.xml")
    first = await fetch(url)
    assert (first.outcome, first.status, first.etag) == (Outcome.OK, 200, ETAG)
    assert first.last_modified == "Mon, 06 Jan 2025 08:00:00 GMT" and first.body
    state = FeedState(url=url, name="ok", etag=first.etag, last_modified=first.last_modified)
    second = await fetch(url, state)
    assert (second.outcome, second.status, second.body) == (Outcome.NOT_MODIFIED, 304, None)
    headers = server.requests[-1][1]
    assert headers["if-none-match"] == ETAG
    assert headers["if-modified-since"] == "Mon, 06 Jan 2025 08:00:00 GMT"


async def test_last_modified_alone_gives_a_304(server: HostileServer) -> None:
    url = server.url("/lastmod-only.xml")
    first = await fetch(url)
    assert first.etag is None and first.last_modified
    second = await fetch(url, FeedState(url=url, name="lm", last_modified=first.last_modified))
    assert second.outcome is Outcome.NOT_MODIFIED
    assert "if-none-match" not in server.requests[-1][1]


async def test_request_headers_are_polite(server: HostileServer) -> None:
    await fetch(server.url("/ok.xml"), settings=FetchSettings(user_agent="polite-test/1.0"))
    headers = server.requests[-1][1]
    assert headers["user-agent"] == "polite-test/1.0"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "application/rss+xml" in headers["accept"]


# -- concurrency limits, measured on the server side ----------------------------------


@pytest.mark.parametrize(
    ("concurrency", "per_host", "expected"),
    [(32, 2, 2), (3, 100, 3), (32, 1, 1)],
)
async def test_in_flight_limits_hold_on_the_server(
    server: HostileServer, concurrency: int, per_host: int, expected: int
) -> None:
    settings = FetchSettings(concurrency=concurrency, per_host=per_host)
    feeds = [feed(server.url(f"/gen/limit-{concurrency}-{per_host}-{i}.xml?delay=0.15")) for i in range(10)]
    server.reset_in_flight()
    async with Fetcher(settings) as f:
        results = await asyncio.gather(*(f.fetch(x) for x in feeds))
    assert all(r.outcome is Outcome.OK for r in results)
    assert server.max_in_flight == expected


# -- redirects --------------------------------------------------------------------------


async def test_redirect_chain_within_the_limit_is_followed(server: HostileServer) -> None:
    result = await fetch(server.url("/redirect-chain/3"))
    assert result.outcome is Outcome.OK and result.url == server.url("/redirect-chain/0")
    assert result.permanent_redirect is None  # 302s are not remembered


async def test_too_many_redirects_and_loops_fail_in_words(server: HostileServer) -> None:
    long = await fetch(server.url(f"/redirect-chain/{MAX_REDIRECTS + 1}"))
    assert (long.outcome, long.error) == (Outcome.HTTP_ERROR, f"more than {MAX_REDIRECTS} redirects")
    loop = await fetch(server.url("/redirect-loop-a"))
    assert loop.outcome is Outcome.HTTP_ERROR
    assert loop.error == "redirect loop: " + server.url("/redirect-loop-a")


@pytest.mark.parametrize(
    ("path", "remembered"),
    [
        ("/moved-permanently", True),
        ("/moved-308", True),
        ("/moved-temporarily", False),
        ("/moved-307", False),
    ],
)
async def test_only_permanent_redirects_are_remembered(
    server: HostileServer, path: str, remembered: bool
) -> None:
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.OK and result.url == server.url("/ok.xml")
    assert result.permanent_redirect == (server.url("/ok.xml") if remembered else None)


async def test_a_remembered_url_is_polled_directly(server: HostileServer) -> None:
    moved = server.url("/moved-permanently")
    before = server.hits["/moved-permanently"]
    state = FeedState(url=moved, name="m", permanent_url=server.url("/ok.xml"), etag=ETAG)
    result = await fetch(moved, state)
    assert result.outcome is Outcome.NOT_MODIFIED and result.url == server.url("/ok.xml")
    assert server.hits["/moved-permanently"] == before


# -- SSRF guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://10.0.0.1/feed.xml", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://192.168.1.1:8080/rss", "192.168.1.1 is a private address"),
        ("http://[::ffff:10.0.0.1]/x", "10.0.0.1 is a private address"),
        ("http://[fe80::1]/x", "fe80::1 is a link-local address"),
        ("http://0.0.0.0/x", "0.0.0.0 is an unspecified address"),
        ("http://metadata.test/latest", "169.254.169.254 is a link-local address"),
    ],
)
async def test_redirect_from_loopback_to_other_private_zones_is_refused_unsent(
    server: HostileServer, target: str, words: str
) -> None:
    net = LoopbackOnly()
    started = time.monotonic()
    result = await fetch(server.url("/redirect-to?url=") + target, transport=net)
    assert result.outcome is Outcome.HTTP_ERROR and result.status == 302
    assert result.error and words in result.error and "allow_private: true" in result.error
    assert net.refused == []  # never even handed to the transport
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_redirect_within_loopback_is_followed(server: HostileServer, host: str) -> None:
    target = f"http://{host}:{server.port}/ok.xml"
    result = await fetch(server.url("/redirect-to?url=") + target, transport=LoopbackOnly())
    assert result.outcome is Outcome.OK and result.url == target


async def test_allow_private_lets_the_redirect_through(server: HostileServer) -> None:
    net = LoopbackOnly()  # the request reaches the transport, which refuses to send it
    result = await fetch(
        server.url("/redirect-to?url=http://10.0.0.1/feed.xml"), transport=net, allow_private=True
    )
    assert net.refused == ["http://10.0.0.1/feed.xml"]
    assert result.outcome is Outcome.NETWORK_ERROR and "safety net" in (result.error or "")


async def test_public_feed_may_not_redirect_to_loopback(server: HostileServer) -> None:
    target = server.url("/ok.xml")
    public = {"/feed.xml": lambda: httpx.Response(301, headers={"Location": target})}
    url = f"http://{PUBLIC_HOST}/feed.xml"
    refused = await fetch(url, transport=LoopbackOnly(public))
    assert refused.outcome is Outcome.HTTP_ERROR
    assert refused.error and "127.0.0.1 is a loopback address" in refused.error
    before = server.hits["/ok.xml"]
    allowed = await fetch(url, transport=LoopbackOnly(public), allow_private=True)
    assert allowed.outcome is Outcome.OK and allowed.permanent_redirect == target
    assert server.hits["/ok.xml"] == before + 1


async def test_a_remembered_url_gets_the_same_check(server: HostileServer) -> None:
    net = LoopbackOnly()
    state = FeedState(
        url=server.url("/moved-permanently"), name="m", permanent_url="http://10.0.0.1/feed.xml"
    )
    result = await fetch(server.url("/moved-permanently"), state, transport=net)
    assert result.outcome is Outcome.NETWORK_ERROR and "10.0.0.1 is a private address" in (result.error or "")
    assert net.refused == []


def test_ssrf_rule_zones() -> None:
    ip = ipaddress.ip_address
    assert address_zone(ip("127.0.0.5")) == address_zone(ip("::1")) == "loopback"
    assert address_zone(ip("::ffff:10.9.9.9")) == "private 10.0.0.0/8"
    assert check_target([ip("8.8.8.8")], set()) is None
    assert check_target([ip("127.0.0.2")], {"loopback"}) is None
    assert check_target([ip("8.8.8.8"), ip("10.0.0.1")], {"loopback"}) == "10.0.0.1 is a private address"
    assert check_target([ip("224.0.0.1")], set()) == "224.0.0.1 is a multicast address"
    assert check_target([ip("172.16.0.1")], {"private 10.0.0.0/8"}) == "172.16.0.1 is a private address"


async def test_guard_trusts_the_configured_zone_only() -> None:
    lan = AddressGuard("http://10.1.2.3/feed", False, fake_dns)
    await lan.check("http://10.200.0.9/other")  # same private zone: the operator's network
    with pytest.raises(_Refused, match=r"192\.168\.0\.1 is a private address"):
        await lan.check("http://192.168.0.1/")
    await AddressGuard("http://10.1.2.3/feed", True, fake_dns).check("http://169.254.169.254/")


# -- size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/huge.xml", "body of 52,428,800 bytes is over the limit of 10,485,760"),
        ("/huge-nolength.xml", "over the limit of 10,485,760 bytes (counted after decompression)"),
        ("/endless-chunked.xml", "over the limit of 10,485,760 bytes (counted after decompression)"),
        ("/gzip-bomb.xml", "over the limit of 10,485,760 bytes (counted after decompression)"),
        ("/deflate-bomb.xml", "over the limit of 10,485,760 bytes (counted after decompression)"),
    ],
)
async def test_oversized_bodies_are_cut_off_with_bounded_memory(
    server: HostileServer, path: str, words: str
) -> None:
    prepare_bombs()  # the server's one-off compression, outside the measurement
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = await fetch(server.url(path), timeout=timedelta(seconds=10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.outcome is Outcome.TOO_LARGE and result.body is None
    assert result.error and words in result.error
    assert peak < 32 * 1024 * 1024, f"peak {peak:,} bytes"  # the 10 MB limit, plus one step
    assert time.monotonic() - started < 8


async def test_max_bytes_per_feed_overrides_the_default(server: HostileServer) -> None:
    url = server.url("/gen/sized.xml?items=40")
    assert (await fetch(url)).outcome is Outcome.OK
    small = await fetch(url, max_bytes=2048)
    assert small.outcome is Outcome.TOO_LARGE and "over the limit of 2,048" in (small.error or "")
    assert (await fetch(url, settings=FetchSettings(max_bytes=2048))).outcome is Outcome.TOO_LARGE


# -- time -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/slow-drip.xml", "/slow-headers.xml"])
async def test_one_deadline_covers_headers_and_body(server: HostileServer, path: str) -> None:
    started = time.monotonic()
    result = await fetch(server.url(path), timeout=timedelta(seconds=1))
    elapsed = time.monotonic() - started
    assert result.outcome is Outcome.NETWORK_ERROR
    assert result.error == "no complete answer within 1 s (connect, headers and body)"
    assert 0.9 < elapsed < 1.8
    assert 900 < result.duration_ms < 1800


async def test_the_feed_timeout_overrides_the_global_one(server: HostileServer) -> None:
    settings = FetchSettings(timeout=timedelta(seconds=30))
    started = time.monotonic()
    result = await fetch(server.url("/slow-drip.xml"), settings=settings, timeout=timedelta(seconds=0.5))
    assert result.outcome is Outcome.NETWORK_ERROR and time.monotonic() - started < 1.5


# -- broken transfers and error statuses ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "outcome", "status", "words"),
    [
        ("/lying-length.xml", Outcome.NETWORK_ERROR, 200, "server broke the HTTP protocol"),
        ("/reset", Outcome.NETWORK_ERROR, None, "connection"),
        ("/not-found", Outcome.HTTP_ERROR, 404, "HTTP 404 Not Found"),
        ("/server-error", Outcome.HTTP_ERROR, 500, "HTTP 500 Internal Server Error"),
        ("/gone", Outcome.GONE, 410, "410 Gone"),
    ],
)
async def test_failures_are_described(
    server: HostileServer, path: str, outcome: Outcome, status: int | None, words: str
) -> None:
    result = await fetch(server.url(path))
    assert (result.outcome, result.status) == (outcome, status)
    assert result.error and words in result.error and result.retry_after is None


async def test_refused_connection_is_described() -> None:
    from tests.feedserver import refused_url

    result = await fetch(refused_url())
    assert result.outcome is Outcome.NETWORK_ERROR
    assert result.error == "could not connect: connection refused (ECONNREFUSED)"


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
         "could not connect: the host name could not be resolved (EAI_NONAME)"),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
         "could not connect: the host name could not be resolved (temporary DNS failure) (EAI_AGAIN)"),
        (OSError(errno.EHOSTUNREACH, "No route to host"),
         "could not connect: host unreachable (EHOSTUNREACH)"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"),
         "could not connect: network unreachable (ENETUNREACH)"),
        (OSError(errno.EPERM, "Operation not permitted"),
         "could not connect: [Errno 1] Operation not permitted"),  # no words known: as it was
    ],
)  # fmt: skip
def test_resolver_and_socket_errors_are_described_in_words(cause: OSError, words: str) -> None:
    """What httpx raises wraps the OS error (httpcore re-raises with `from`); the operator reads
    words, the code stays in brackets. No lookup leaves the machine: the errors are built here."""
    from aggregator.fetch import _describe_network_error

    try:
        try:
            raise cause
        except OSError as inner:
            raise httpx.ConnectError(str(inner)) from inner
    except httpx.ConnectError as e:
        assert _describe_network_error(e) == words


@pytest.mark.parametrize(("path", "seconds"), [("/rate-limited", 120), ("/unavailable-date", 3600)])
async def test_retry_after_is_read(server: HostileServer, path: str, seconds: int) -> None:
    before = datetime.now(UTC)
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.HTTP_ERROR and result.retry_after is not None
    expected = before + timedelta(seconds=seconds)
    assert abs((result.retry_after - expected).total_seconds()) < 5
    assert "Retry-After" in (result.error or "")


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == now + timedelta(seconds=120)
    assert parse_retry_after(" 0 ", now) == now
    assert parse_retry_after("Mon, 06 Jan 2025 13:00:00 GMT", now) == now + timedelta(hours=1)
    assert parse_retry_after("Sun, 05 Jan 2025 13:00:00 GMT", now) == now  # in the past
    assert parse_retry_after("999999999999999999999", now) == now + timedelta(hours=24)
    assert parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now) == now + timedelta(hours=24)
    for junk in (None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2025"):
        assert parse_retry_after(junk, now) is None


# -- content encodings ----------------------------------------------------------------------


def _decode_all(encoding: str, data: bytes, piece: int = 7) -> bytes:
    decoder = _Decoder(encoding)
    return b"".join(out for i in range(0, len(data), piece) for out in decoder.feed(data[i : i + piece]))


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as HTTP says
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
        ("identity", lambda b: b),
        ("", lambda b: b),
    ],
)
def test_decoder_reads_every_form(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    text = b"<rss>" + b"feed text " * 50_000 + b"</rss>"
    assert _decode_all(encoding, encode(text)) == text
    assert _decode_all(encoding, encode(text), piece=1 << 20) == text


def test_decoder_steps_are_bounded_and_members_joined() -> None:
    bomb = gzip.compress(bytes(50 << 20))
    steps = list(_Decoder("gzip").feed(bomb))
    assert max(map(len, steps)) <= 256 * 1024 and sum(map(len, steps)) == 50 << 20
    two = gzip.compress(b"first ") + gzip.compress(b"second")
    assert _decode_all("gzip", two) == b"first second"


def test_decoder_refuses_what_was_not_asked_for() -> None:
    with pytest.raises(_BadEncoding, match="'br', which was not asked for"):
        _Decoder("br")
    with pytest.raises(_BadEncoding, match="could not be decompressed"):
        list(_Decoder("gzip").feed(b"this is not gzip at all"))


async def test_encoded_answers_end_to_end() -> None:
    body = b"<rss>" + b"x" * 5000 + b"</rss>"
    answers = {
        "/gz": (gzip.compress(body), "gzip"),
        "/br": (b"\x0b\x02", "br"),
        "/bad": (b"garbage!", "gzip"),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        raw, encoding = answers[request.url.path]
        # A raw stream: httpx must not decode it before the fetcher does.
        return httpx.Response(200, headers={"Content-Encoding": encoding}, stream=httpx.ByteStream(raw))

    transport = httpx.MockTransport(answer)
    ok = await fetch("http://127.0.0.1/gz", transport=transport)
    assert ok.outcome is Outcome.OK and ok.body == body
    br = await fetch("http://127.0.0.1/br", transport=transport)
    assert br.outcome is Outcome.NETWORK_ERROR and "Content-Encoding 'br'" in (br.error or "")
    bad = await fetch("http://127.0.0.1/bad", transport=transport)
    assert bad.outcome is Outcome.NETWORK_ERROR and "could not be decompressed (gzip)" in (bad.error or "")


# -- answers the parsers and libraries choke on: each costs one poll, never a raise ----------

# Locations httpx reads from the wire but that are no usable URL (issue 11: the poll raised
# and the feed dropped out of `run`'s schedule).
BAD_LOCATIONS = [
    b"http://[::1",  # unclosed IPv6 literal: urlsplit raises
    b"http://127.0.0.1:99999/feed.xml",  # port out of range: .port raises
    b"http://127.0.0.1:-1/",
    b"http://[vX.bad]/",
    b"http://exa mple.com/",
    b"http://\xe4xample.org/f\xfcd",  # latin-1 bytes, as some servers send
    b"http:///no-host",
    b"http://user@:80/",
    b"\x7f",
]


@pytest.mark.parametrize("location", BAD_LOCATIONS)
async def test_an_unusable_redirect_location_costs_one_poll(server: HostileServer, location: bytes) -> None:
    path = f"/bad-location-{BAD_LOCATIONS.index(location)}"
    server.raw[path] = raw_response(b"HTTP/1.1 302 Found", [(b"Location", location)])
    result = await fetch(server.url(path))
    assert result.outcome in (Outcome.HTTP_ERROR, Outcome.NETWORK_ERROR), result
    assert result.error


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\xc2\xb2", None),  # "²" once decoded: str.isdigit() says yes, int() says no
        (b"\xd9\xa3", None),  # Arabic-Indic three
        (b"9" * 5000, timedelta(hours=24)),  # int() refuses more than 4,300 digits
        (b"0" * 5000 + b"7", timedelta(seconds=7)),
        (b"120", timedelta(seconds=120)),
    ],
)
async def test_retry_after_of_any_form_costs_one_poll(
    server: HostileServer, value: bytes, expected: timedelta | None
) -> None:
    path = f"/retry-{len(value)}-{value[:2].hex()}"
    server.raw[path] = raw_response(b"HTTP/1.1 503 Busy", [(b"Retry-After", value)])
    before = datetime.now(UTC)
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.HTTP_ERROR and (result.error or "").startswith("HTTP 503")
    if expected is None:
        assert result.retry_after is None
    else:
        assert result.retry_after is not None
        assert abs((result.retry_after - before - expected).total_seconds()) < 5


@pytest.mark.parametrize(
    ("etag", "last_modified", "kept"),
    [
        (b'"caf\xc3\xa9"', b"Mon, 06 Jan 2025 13:00:00 GMT", (None, "Mon, 06 Jan 2025 13:00:00 GMT")),
        (b'"ok-1"', b"Lundi 6 janvier \xe9t\xe9", ('"ok-1"', None)),
        (b'"a b"', b"yesterday", (None, None)),
        (b'"' + b"x" * 5000 + b'"', b"", (None, None)),
        (b'W/"weak-2"', b"Mon, 06 Jan 2025 13:00:00 GMT", ('W/"weak-2"', "Mon, 06 Jan 2025 13:00:00 GMT")),
    ],
)
async def test_invalid_validators_are_never_kept(
    server: HostileServer, etag: bytes, last_modified: bytes, kept: tuple[str | None, str | None]
) -> None:
    path = f"/validators-{etag[:6].hex()}-{last_modified[:6].hex()}.xml"
    server.raw[path] = raw_response(
        b"HTTP/1.1 200 OK",
        [(b"Content-Type", b"application/rss+xml"), (b"ETag", etag), (b"Last-Modified", last_modified)],
        b"<rss version='2.0'><channel><title>t</title></channel></rss>",
    )
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.OK
    assert (result.etag, result.last_modified) == kept


async def test_invalid_stored_validators_are_never_sent(server: HostileServer) -> None:
    """A database written before the check may hold a non-ASCII ETag: it is not sent (httpx
    would refuse to encode it, failing every later poll), and the poll goes ahead."""
    url = server.url("/ok.xml")
    state = FeedState(url=url, name="x", etag='"caf\u00e9"', last_modified="sometime \u00e9t\u00e9")
    before = len(server.requests)
    result = await fetch(url, state)
    assert result.outcome is Outcome.OK
    sent = server.requests[before:][0][1]
    assert "if-none-match" not in sent and "if-modified-since" not in sent


async def test_an_unexpected_exception_inside_fetch_is_a_result(server: HostileServer) -> None:
    """Anything the fetcher did not foresee (here: the resolver raising a RuntimeError while a
    redirect is checked) becomes a failed FetchResult with words, not a raise."""

    async def broken_dns(host: str, port: int) -> Sequence[IPAddress]:
        raise RuntimeError("resolver exploded")

    target = "http://unresolvable.test/feed.xml"
    async with Fetcher(FetchSettings(), resolver=broken_dns) as f:
        result = await f.fetch(feed(server.url(f"/redirect-to?url={target}")))
    assert result.outcome is Outcome.NETWORK_ERROR
    assert result.error == "unexpected error while fetching: RuntimeError: resolver exploded"
    assert result.fetched_at is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"\A[0-9]{1,6000}\Z"))
def test_header_numbers_never_raise(value: str) -> None:
    now = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    when = parse_retry_after(value, now)
    assert when is None or now <= when <= now + timedelta(hours=24)
    count = parse_count(value, 10_000)
    assert count is None or 0 <= count <= 10_000
    if count is not None:
        assert value.strip().isascii()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_kept_validators_can_always_be_sent(value: str) -> None:
    for kept in (valid_etag(value), valid_http_date(value)):
        if kept is not None:
            kept.encode("ascii")  # httpx sends header values as ASCII
            assert kept.isprintable() and "\r" not in kept and "\n" not in kept
            httpx.Headers({"If-None-Match": kept})


# -- Content-Encoding that is no coding, or a coding over an uncompressed body (cases/09) ------

FEED_BODY = (
    b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
    b"<item><title>Object storage adds lifecycle rules</title><link>https://e.org/1</link></item>"
    b"</channel></rss>"
)
JSON_BODY = b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": []}'


@pytest.mark.parametrize(
    "coding", [b"utf-8", b"UTF-8", b"none", b"binary", b"text/xml", b"8bit", b"chunked?"]
)
async def test_a_content_encoding_that_is_no_coding_is_read_as_sent(
    server: HostileServer, coding: bytes
) -> None:
    """RFC 9110 section 8.4.1: `utf-8` and the like name no content coding, so the body is the
    representation itself (as browsers and urllib3 read it); the poll succeeds with a warning."""
    path = f"/coding-{coding.hex()}.xml"
    server.raw[path] = raw_response(
        b"HTTP/1.1 200 OK",
        [(b"Content-Type", b"application/rss+xml"), (b"Content-Encoding", coding)],
        FEED_BODY,
    )
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.OK and result.body == FEED_BODY, result
    assert result.warning and "not a content coding" in result.warning


@pytest.mark.parametrize("coding", [b"gzip", b"x-gzip", b"deflate"])
@pytest.mark.parametrize("body", [FEED_BODY, b"\xef\xbb\xbf  \n" + FEED_BODY, JSON_BODY])
async def test_a_declared_coding_over_an_uncompressed_feed_is_read_as_sent(
    server: HostileServer, coding: bytes, body: bytes
) -> None:
    path = f"/uncompressed-{coding.decode()}-{len(body)}.xml"
    server.raw[path] = raw_response(b"HTTP/1.1 200 OK", [(b"Content-Encoding", coding)], body)
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.OK and result.body == body, result
    assert result.warning and "uncompressed" in result.warning


@pytest.mark.parametrize("coding", [b"gzip", b"deflate"])
async def test_a_declared_coding_over_garbage_is_still_an_error(server: HostileServer, coding: bytes) -> None:
    path = f"/garbage-{coding.decode()}"
    server.raw[path] = raw_response(
        b"HTTP/1.1 200 OK", [(b"Content-Encoding", coding)], b"\x00\x01garbage" * 20
    )
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.NETWORK_ERROR and "could not be decompressed" in (result.error or "")


async def test_real_compressed_bodies_still_decode_without_a_warning(server: HostileServer) -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = raw.compress(FEED_BODY) + raw.flush()  # what some servers send as "deflate"
    cases = [
        (b"gzip", gzip.compress(FEED_BODY)),
        (b"deflate", zlib.compress(FEED_BODY)),
        (b"deflate", raw_deflate),
    ]
    for i, (coding, data) in enumerate(cases):
        path = f"/real-{i}-{coding.decode()}.xml"
        server.raw[path] = raw_response(b"HTTP/1.1 200 OK", [(b"Content-Encoding", coding)], data)
        result = await fetch(server.url(path))
        assert result.outcome is Outcome.OK and result.body == FEED_BODY and result.warning is None


def test_case_09_both_feeds_are_stored_with_a_warning(tmp_path: Any) -> None:
    """The field case's right values, end to end through `aggregator fetch`."""
    from pathlib import Path

    from tests.conftest import FIXTURES, run_cli

    case = FIXTURES / "cases" / "09-content-encoding-misuse"
    with HostileServer() as srv:
        for name, coding in (("release-notes.rss", b"utf-8"), ("noticias.rss", b"gzip")):
            srv.raw[f"/{name}"] = raw_response(
                b"HTTP/1.1 200 OK",
                [(b"Content-Type", b"application/rss+xml"), (b"Content-Encoding", coding)],
                (case / name).read_bytes(),
            )
        config = Path(tmp_path) / "feeds.yaml"
        config.write_text(
            "site:\n  languages: [en, es]\nfeeds:\n"
            f"  - url: {srv.url('/release-notes.rss')}\n    language: en\n"
            f"  - url: {srv.url('/noticias.rss')}\n    language: es\n",
            encoding="utf-8",
        )
        data = Path(tmp_path) / "data"
        result = run_cli("fetch", config=config, data=data)
    assert result.returncode == 0 and "2 ok, 0 failed" in result.stdout, result.stdout
    atom = (data / "public" / "feeds" / "all.atom").read_text(encoding="utf-8")
    assert "Object storage adds lifecycle rules for versioned buckets" in atom
    assert "La flota de exploración regresa" in atom
