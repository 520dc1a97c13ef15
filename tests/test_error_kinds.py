"""Error kinds (issue 14): every error the fetcher, the parser and the pipeline can produce has
a kind of the closed vocabulary, derived from what the store keeps (outcome, status, words).

The errors come from the real fetcher against the hostile server on 127.0.0.1 wherever a
loopback server can cause them; the OS and resolver errors no loopback server can cause are
built as httpx raises them (as tests/test_fetch.py does) from fetch.py's own table.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import fetch as fetch_module
from aggregator.config import FetchSettings
from aggregator.error_kinds import ERRNO_KINDS, KINDS, error_kind
from aggregator.fetch import Fetcher, IPAddress, _describe_network_error
from aggregator.models import FeedState, FetchResult, NotAFeed, Outcome
from aggregator.parse import parse_feed
from tests.feedserver import refused_url
from tests.hostile_server import HostileServer, raw_response
from tests.test_fetch import BAD_LOCATIONS, LoopbackOnly, feed, fetch

pytestmark = pytest.mark.slow  # starts a real server


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


def kind_of(result: FetchResult) -> str | None:
    return error_kind(result.outcome.value, result.status, result.error)


# -- from the real fetcher --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/ok.xml", None),
        ("/not-found", "http_404"),
        ("/server-error", "http_500"),
        ("/rate-limited", "http_429"),  # with its Retry-After in the words
        ("/unavailable-date", "http_503"),
        ("/gone", "gone"),
        ("/redirect-loop-a", "redirect"),
        ("/redirect-chain/6", "redirect"),
        ("/redirect-to?url=ftp://127.0.0.1/feed.xml", "redirect"),
        ("/redirect-to?url=http://10.0.0.1/feed.xml", "ssrf"),
        ("/huge.xml", "too_large"),
        ("/huge-nolength.xml", "too_large"),
        ("/lying-length.xml", "protocol"),
    ],
)
async def test_fetcher_errors_have_their_kind(server: HostileServer, path: str, kind: str | None) -> None:
    result = await fetch(server.url(path), transport=LoopbackOnly(), timeout=timedelta(seconds=5))
    assert kind_of(result) == kind, result.error


async def test_a_reset_connection_is_a_connection_kind(server: HostileServer) -> None:
    """The server closes without answering: httpx says the protocol was broken, or the OS says
    reset, depending on timing; both are kinds of a broken transport."""
    result = await fetch(server.url("/reset"))
    assert kind_of(result) in ("protocol", "ECONNRESET", "connection"), result.error


async def test_refused_and_timed_out_polls(server: HostileServer) -> None:
    refused = await fetch(refused_url())
    assert refused.error == "could not connect: connection refused (ECONNREFUSED)"
    assert kind_of(refused) == "ECONNREFUSED"
    for path in ("/slow-headers.xml", "/slow-drip.xml"):
        slow = await fetch(server.url(path), timeout=timedelta(seconds=0.5))
        assert kind_of(slow) == "timeout", slow.error


@contextlib.contextmanager
def plain_http_answerer() -> Iterator[int]:
    """A loopback port that answers whatever arrives (a TLS ClientHello too) with plain HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


async def test_tls_failures_are_in_words_and_tls(server: HostileServer) -> None:
    """https:// to a server that speaks plain HTTP: it either closes on the ClientHello (the
    hostile server) or answers it in HTTP; both were "could not connect: ConnectError" once."""
    closed = await fetch(server.url("/ok.xml").replace("http://", "https://"))
    assert closed.error == "could not connect: the TLS connection failed (UNEXPECTED_EOF_WHILE_READING)"
    assert kind_of(closed) == "tls"
    with plain_http_answerer() as port:
        answered = await fetch(f"https://127.0.0.1:{port}/feed.xml")
    assert answered.error == "could not connect: the TLS connection failed (WRONG_VERSION_NUMBER)"
    assert kind_of(answered) == "tls"


@pytest.mark.parametrize("coding", [b"gzip", b"deflate", b"br"])
async def test_bodies_that_cannot_be_decoded_are_encoding(server: HostileServer, coding: bytes) -> None:
    path = f"/kind-garbage-{coding.decode()}"
    server.raw[path] = raw_response(b"HTTP/1.1 200 OK", [(b"Content-Encoding", coding)], b"\x00\x01junk" * 20)
    result = await fetch(server.url(path))
    assert result.outcome is Outcome.NETWORK_ERROR
    assert kind_of(result) == "encoding", result.error


async def no_such_host(host: str, port: int) -> Sequence[IPAddress]:
    """A resolver for tests that must not look names up: every name is unknown."""
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


async def test_unusable_redirect_locations_are_redirect_or_protocol(server: HostileServer) -> None:
    """Ours ("redirect to an invalid URL"), httpx's own refusal (a protocol error), or a host
    name that cannot be resolved (no lookup leaves the machine: the resolver knows no name)."""
    kinds = set()
    async with Fetcher(FetchSettings(), resolver=no_such_host) as f:
        for i, location in enumerate(BAD_LOCATIONS):
            path = f"/kind-bad-location-{i}"
            server.raw[path] = raw_response(b"HTTP/1.1 302 Found", [(b"Location", location)])
            result = await f.fetch(feed(server.url(path)))
            kinds.add(kind_of(result))
            # http_404: "http:///no-host" is a path on the same server
            assert kind_of(result) in ("redirect", "protocol", "EAI_NONAME", "http_404"), result.error
    assert "redirect" in kinds


async def test_the_guard_on_a_remembered_url_and_a_broken_resolver(server: HostileServer) -> None:
    state = FeedState(
        url=server.url("/moved-permanently"), name="m", permanent_url="http://10.0.0.1/feed.xml"
    )
    remembered = await fetch(server.url("/moved-permanently"), state, transport=LoopbackOnly())
    assert remembered.outcome is Outcome.NETWORK_ERROR and kind_of(remembered) == "ssrf"

    async def exploding(host: str, port: int) -> Sequence[IPAddress]:
        raise RuntimeError("resolver exploded")

    target = server.url("/redirect-to?url=http://unresolvable.test/feed.xml")
    for resolver, kind in ((no_such_host, "EAI_NONAME"), (exploding, "internal")):
        async with Fetcher(FetchSettings(), resolver=resolver) as f:
            result = await f.fetch(feed(target))
        assert kind_of(result) == kind, result.error


# -- the OS and resolver errors of fetch.py's table, and every httpx error class ----------------


def _wrapped(cls: type[httpx.HTTPError], cause: BaseException | None, text: str = "") -> httpx.HTTPError:
    try:
        try:
            if cause is not None:
                raise cause
            raise OSError(text)
        except OSError as inner:
            raise cls(text or str(inner)) from (inner if cause is not None else None)
    except httpx.HTTPError as e:
        return e


@pytest.mark.parametrize("code", sorted(fetch_module._OS_ERROR_WORDS))
def test_every_os_error_in_fetchs_table_keeps_its_name(code: int) -> None:
    cause = socket.gaierror(code, "x") if code < 0 else OSError(code, "x")
    words = _describe_network_error(_wrapped(httpx.ConnectError, cause))
    kind = error_kind("network-error", None, words)
    assert kind in ERRNO_KINDS, words
    assert words.endswith(f"({kind})")


@pytest.mark.parametrize(
    ("cls", "cause", "kind"),
    [
        (httpx.ConnectTimeout, None, "timeout"),
        (httpx.ConnectTimeout, OSError(errno.ETIMEDOUT, "timed out"), "ETIMEDOUT"),
        (httpx.ReadTimeout, None, "timeout"),
        (httpx.WriteTimeout, None, "timeout"),
        (httpx.PoolTimeout, None, "timeout"),
        (httpx.ConnectError, OSError(errno.EPERM, "Operation not permitted"), "connection"),
        (httpx.ConnectError, ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "tls"),
        (httpx.ReadError, OSError(errno.ECONNRESET, "reset"), "ECONNRESET"),
        (httpx.ReadError, None, "connection"),
        (httpx.RemoteProtocolError, None, "protocol"),
        (httpx.UnsupportedProtocol, None, "bad_url"),
        (httpx.DecodingError, None, "encoding"),
        (httpx.LocalProtocolError, None, "other"),
    ],
)  # fmt: skip
def test_every_httpx_error_has_a_kind(cls: type[httpx.HTTPError], cause: OSError | None, kind: str) -> None:
    words = _describe_network_error(_wrapped(cls, cause, "" if cause else "something happened"))
    assert error_kind("network-error", None, words) == kind, words


def test_an_unverifiable_certificate_is_tls() -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    words = _describe_network_error(_wrapped(httpx.ConnectError, cause))
    assert (
        words
        == "could not connect: the server's TLS certificate could not be verified (self-signed certificate)"
    )
    assert error_kind("network-error", None, words) == "tls"


# -- parse and pipeline ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><head><link rel='alternate' type='application/rss+xml' href='/f.xml'></head></html>",
        b"<html><body>hello</body></html>",
        b'{"hello": "world"}',
        b'{"version": "https://jsonfeed.org/version/1.1"}',
        b"{not json",
        bytes(range(256)) * 4,
    ],
)
def test_every_not_a_feed_is_not_a_feed(body: bytes) -> None:
    with pytest.raises(NotAFeed) as caught:
        parse_feed(body, {"content-type": "text/html"}, "http://127.0.0.1/f.xml")
    assert error_kind("not-a-feed", 200, str(caught.value)) == "not_a_feed"


@pytest.mark.parametrize(
    ("outcome", "status", "words", "kind"),
    [
        ("not-a-feed", 200, "could not parse: the parse worker died (exit code -9)", "parse_error"),
        ("not-a-feed", 200, "could not parse: ValueError: boom", "parse_error"),
        ("store-error", 200, "could not store the poll: the disk holding x is full", "store"),
        ("internal-error", None, "internal error: KeyError: 'x'", "internal"),
        ("gone", 410, "410 Gone: the server says this feed was removed for good", "gone"),
        ("ok", 200, None, None),
        ("not-modified", 304, None, None),
        (None, None, None, None),  # never polled
        ("http-error", 999, "HTTP 999 Odd", "http_other"),
        ("something-new", None, "words from a later version", "other"),
    ],
)
def test_pipeline_outcomes(
    outcome: str | None, status: int | None, words: str | None, kind: str | None
) -> None:
    assert error_kind(outcome, status, words) == kind


# -- closed and total ----------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([*(o.value for o in Outcome), None, "nonsense"]),
    st.none() | st.integers(min_value=-1000, max_value=100_000),
    st.none() | st.text(max_size=200) | st.sampled_from(["HTTP 404 x", "x (ECONNREFUSED)", "[Errno -2] y"]),
)
def test_every_kind_is_in_the_closed_vocabulary(
    outcome: str | None, status: int | None, words: str | None
) -> None:
    kind = error_kind(outcome, status, words)
    if outcome in ("ok", "not-modified"):
        assert kind is None
    elif outcome is not None:
        assert kind in KINDS
    else:
        assert kind is None or kind in KINDS


def test_the_vocabulary_is_small_enough_for_a_label() -> None:
    assert len(KINDS) < 600  # 500 HTTP statuses at most; a handful of others
    assert all(k.isascii() and k.replace("_", "").isalnum() for k in KINDS)


def test_the_readme_documents_every_kind() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for kind in sorted(k for k in KINDS if not k[-1].isdigit()):
        assert f"`{kind}`" in readme, kind
    assert "`http_NNN`" in readme


# -- in the running service: /metrics and status of a later process ----------------------------


def test_run_counts_error_kinds_and_status_shows_them(tmp_path: Path) -> None:
    """`aggregator run` with a refused and a missing feed: /metrics counts both kinds, and a
    separate `status --json` reads the same kinds from the store."""
    import json
    import signal

    from prometheus_client.parser import text_string_to_metric_families

    from tests.conftest import run_cli
    from tests.feedserver import FeedServer
    from tests.service_kit import RunningService
    from tests.test_containment_poll import rss, write_config

    server = FeedServer().start()
    try:
        urls = {"Fine": server.add("/fine.rss", rss("one")), "Missing": server.url("/gone-missing.rss"),
                "Down": refused_url()}  # fmt: skip
        config = write_config(tmp_path / "feeds.yaml", urls)
        data = tmp_path / "data"
        with RunningService(config, data, tmp_path / "run.log") as service:

            def kinds() -> dict[str, float]:
                families = text_string_to_metric_families(service.get("/metrics").text)
                return {
                    s.labels["kind"]: s.value
                    for f in families
                    for s in f.samples
                    if s.name == "aggregator_poll_errors_total"
                }

            assert service.wait_for(lambda: {"ECONNREFUSED", "http_404"} <= set(kinds()), 40), (
                service.get("/metrics").text,
                service.output,
            )
            assert set(kinds()) == {"ECONNREFUSED", "http_404"}
            status = run_cli("status", "--json", config=config, data=data)
            assert status.returncode == 0, status.stderr
            shown = {f["name"]: f["error_kind"] for f in json.loads(status.stdout)["feeds"]}
            assert shown == {"Fine": None, "Missing": "http_404", "Down": "ECONNREFUSED"}
            code, _ = service.stop(signal.SIGTERM)
            assert code == 0
    finally:
        server.stop()
