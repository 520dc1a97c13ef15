"""URL + stored validators -> FetchResult. Every HTTP limit lives here.

The retriever never parses: it returns bytes plus the HTTP facts (status, validators,
headers, timing), so a poll of one feed is a self-contained job.

Limits, all enforced here:
- concurrency: a global and a per-host semaphore (the host of the URL polled);
- one deadline per poll (connect, headers, every redirect and the whole body);
- the body is read raw and decompressed here in bounded steps, so `max_bytes` counts
  decoded bytes and a gzip/deflate bomb costs at most `max_bytes` plus one step;
- redirects are followed by hand: at most 5, loops detected, 301/308 chains remembered,
  and each target's addresses checked against the SSRF rule (see `AddressGuard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import ipaddress
import logging
import re
import socket
import ssl
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from .config import FeedConfig, FetchSettings
from .models import FeedState, FetchResult, Outcome

log = logging.getLogger("aggregator.fetch")

MAX_REDIRECTS = 5
MAX_RETRY_AFTER = timedelta(hours=24)
DECODE_STEP = 256 * 1024  # most bytes one decompression step may produce
# An unread answer (304, redirect, error page) up to this size is read and dropped, so its
# connection can be kept alive for the next request; a longer one costs the connection.
DRAIN_BYTES = 64 * 1024
# httpx's pool slows down as requests in flight on one client grow (its per-request
# bookkeeping walks every connection), so requests are spread over a few clients.
REQUESTS_PER_CLIENT = 2
_PERMANENT = {301, 308}
_REDIRECTS = {301, 302, 303, 307, 308}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class _TooLarge(Exception):
    pass


class _Refused(Exception):
    """A redirect (or remembered URL) the SSRF rule does not allow; str() says why."""


class _BadEncoding(Exception):
    pass


_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() is true for "²" and "٣"


def parse_count(value: str | None, cap: int) -> int | None:
    """A header's non-negative decimal number (RFC 9110 section 5.6.1 "1*DIGIT", ASCII digits
    only), at most `cap`; None when it is not one. 5,000 digits give `cap`, not an error."""
    if value is None:
        return None
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        return None
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(cap)):
        return cap  # longer than cap itself: larger, without converting (int() refuses 4,301+ digits)
    return min(int(digits), cap)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After (RFC 9110 section 10.2.3) as seconds or an HTTP date, never in the past,
    capped at 24 h from now; None when it is neither."""
    if not value:
        return None
    value = value.strip()
    when: datetime | None
    cap = int(MAX_RETRY_AFTER.total_seconds())
    seconds = parse_count(value, cap)
    if seconds is not None:
        when = now + timedelta(seconds=seconds)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return min(max(when, now), now + MAX_RETRY_AFTER)


MAX_VALIDATOR_LENGTH = 1024
# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text (RFC 9110
# section 8.8.3). Unquoted tags are common and harmless, so any visible ASCII is taken; obs-text
# is not: httpx refuses to send non-ASCII header values, so such a tag would break every poll.
_ETAG = re.compile(r"[\x21-\x7e]+")


def valid_etag(value: str | None) -> str | None:
    """The ETag if it can be sent back as If-None-Match (visible ASCII, at most 1 KiB), else None."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_VALIDATOR_LENGTH or not _ETAG.fullmatch(value):
        return None
    return value


def valid_http_date(value: str | None) -> str | None:
    """Last-Modified if it is an HTTP date (RFC 9110 section 5.6.7) that can be sent back as
    If-Modified-Since (ASCII, at most 1 KiB), else None."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_VALIDATOR_LENGTH or not value.isascii() or not value.isprintable():
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return value if when is not None else None


# -- SSRF guard -----------------------------------------------------------------------
#
# The rule: the URL in feeds.yaml is trusted as written, whatever address it has (the
# operator chose it). A redirect target, and a remembered 301/308 URL, may lead to
# public addresses, and to non-public ones only inside a zone the configured URL is
# itself in: a feed on 127.0.0.1 may redirect within loopback, a feed on 10.1.2.3 within
# 10.0.0.0/8, but a public feed may reach neither, and no feed may reach link-local
# (169.254.169.254, the cloud metadata service) unless it lives there. Every address a
# target's host resolves to must pass, and the check happens before connecting. A feed
# with `allow_private: true` skips the rule. The address is resolved again when httpx
# connects; a host whose DNS answer changes in between (rebinding) is not caught.

_ZONES: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = tuple(
    (name, tuple(ipaddress.ip_network(n) for n in nets))
    for name, nets in (
        ("loopback", ("127.0.0.0/8", "::1/128")),
        ("private 10.0.0.0/8", ("10.0.0.0/8",)),
        ("private 172.16.0.0/12", ("172.16.0.0/12",)),
        ("private 192.168.0.0/16", ("192.168.0.0/16",)),
        ("shared 100.64.0.0/10", ("100.64.0.0/10",)),
        ("link-local", ("169.254.0.0/16", "fe80::/10")),
        ("unique-local fc00::/7", ("fc00::/7",)),
    )
)


def _unmapped(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_public(addr: IPAddress) -> bool:
    addr = _unmapped(addr)
    return addr.is_global and not addr.is_multicast


def address_kind(addr: IPAddress) -> str:
    """Words for why an address is not public."""
    addr = _unmapped(addr)
    for attr, words in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(addr, attr):
            return words
    return "public" if is_public(addr) else "non-public"


def address_zone(addr: IPAddress) -> str:
    """The zone a non-public address shares with its neighbours; else the address itself."""
    addr = _unmapped(addr)
    for name, nets in _ZONES:
        if any(addr.version == n.version and addr in n for n in nets):
            return name
    return str(addr)


def check_target(addresses: Sequence[IPAddress], trusted_zones: set[str]) -> str | None:
    """None when every address may be reached; else words naming the first that may not."""
    for addr in addresses:
        if not is_public(addr) and address_zone(addr) not in trusted_zones:
            kind = address_kind(addr)
            return f"{_unmapped(addr)} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} address"
    return None


async def system_resolver(host: str, port: int) -> Sequence[IPAddress]:
    """The host's addresses, from the event loop's getaddrinfo (what httpx will use)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


class AddressGuard:
    """Applies the SSRF rule for one poll; resolves the configured host only if needed."""

    def __init__(self, configured_url: str, allow_private: bool, resolver: Resolver) -> None:
        self.configured_url = configured_url
        self.allow_private = allow_private
        self.resolver = resolver
        self._trusted: set[str] | None = None

    async def _addresses(self, url: str) -> Sequence[IPAddress]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return await self.resolver(host, port)

    async def check(self, url: str) -> None:
        """Raise _Refused when `url` may not be fetched under the rule."""
        if self.allow_private:
            return
        if self._trusted is None:
            try:
                configured = await self._addresses(self.configured_url)
            except (OSError, ValueError):
                configured = []  # unresolvable: only public targets are allowed
            self._trusted = {address_zone(a) for a in configured if not is_public(a)}
        try:
            targets = await self._addresses(url)
        except (OSError, ValueError) as e:
            raise _Refused(f"could not resolve {urlsplit(url).hostname}: {e}") from None
        problem = check_target(targets, self._trusted)
        if problem:
            raise _Refused(
                f"refused to follow to {url}: {problem} and the feed's own address is not "
                "(SSRF guard; set allow_private: true on this feed to allow it)"
            )


# -- body decoding ----------------------------------------------------------------------


# Content codings (RFC 9110 section 8.4.1; the IANA HTTP Content Coding Registry). A value
# outside it ("utf-8", "none", "binary": a charset or a guess in the wrong header) is no
# coding at all: the body is the representation itself, as browsers and urllib3 read it.
CONTENT_CODINGS = {
    "gzip", "x-gzip", "deflate", "compress", "x-compress", "br", "zstd", "identity", "exi",
    "pack200-gzip", "aes128gcm", "dcb", "dcz",
}  # fmt: skip
_GZIP_MAGIC = b"\x1f\x8b"
# What an uncompressed feed starts with (after a BOM and white space): markup or JSON.
_DOCUMENT_START = (b"<", b"{")


def _looks_like_a_document(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")
    return head.startswith(_DOCUMENT_START)


class _Decoder:
    """Content-Encoding undone in bounded steps: each step yields at most DECODE_STEP bytes.

    Two server mistakes are read through, with a `warning` (cases/09): a Content-Encoding that
    is no content coding (`utf-8`), and gzip or deflate declared over a body that was never
    compressed (it starts as a feed does, not with the gzip magic or a zlib header). A real
    coding we do not decode (br, zstd, compress), or a body that is neither compressed nor a
    document, is an error (_BadEncoding)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding.strip().lower()
        self.warning: str | None = None
        self._z: Any = None  # zlib's decompress object has no public type
        self._first = True
        if self.encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped, as HTTP says
        elif self.encoding not in CONTENT_CODINGS and self.encoding:
            self.warning = (
                f"the server sent Content-Encoding {encoding.strip()[:40]!r}, which is not a "
                "content coding (RFC 9110 section 8.4.1): the body was read as sent"
            )
        elif self.encoding not in ("", "identity"):
            raise _BadEncoding(f"the server used Content-Encoding {encoding!r}, which was not asked for")

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._z is None:
            yield data
            return
        if self._first and data:
            self._first = False
            if not self._compressed(data):
                self._z = None
                self.warning = (
                    f"the server declared Content-Encoding {self.encoding!r} but sent the feed "
                    "uncompressed: read as sent"
                )
                yield data
                return
        pending = data
        # Each pass consumes input or yields output (else it stops); the caller stops
        # at max_bytes, so a bomb never gets further than that plus one step.
        while True:
            try:
                out = self._z.decompress(pending, DECODE_STEP)
            except zlib.error as e:
                raise _BadEncoding(f"body could not be decompressed ({self.encoding}): {e}") from None
            tail = self._z.unconsumed_tail
            if self._z.eof:
                tail = self._z.unused_data
                if tail and self.encoding in ("gzip", "x-gzip"):
                    self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)  # next gzip member
                else:
                    tail = b""  # trailing bytes after the stream are ignored
            if out:
                yield out
            if not tail and len(out) < DECODE_STEP:
                return  # input used up and no output held back
            if not out and len(tail) >= len(pending):
                return  # no progress: stop rather than spin
            pending = tail

    def _compressed(self, data: bytes) -> bool:
        """Whether the first bytes are the declared coding's: the gzip magic, or a zlib or raw
        deflate stream (some servers send raw deflate: then the decoder switches to it). False
        only for a body that is plainly a document; anything else is left to fail decoding.
        Raw deflate has no header, so over a body that looks like a document it is believed
        only when it decodes to one (a compressed feed decompresses to a feed)."""
        if self.encoding in ("gzip", "x-gzip"):
            return data.startswith(_GZIP_MAGIC) or not _looks_like_a_document(data)
        try:
            self._z.copy().decompress(data[:64], 1)
            return True
        except zlib.error:
            pass
        raw = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = raw.decompress(data[:4096], 4096)
        except zlib.error:
            return not _looks_like_a_document(data)
        if _looks_like_a_document(data) and not _looks_like_a_document(out):
            return False
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
        return True


# -- the fetcher ------------------------------------------------------------------------


class Fetcher:
    """Shared httpx clients behind a global and a per-host concurrency limit.

    Requests go to the least busy of several clients (REQUESTS_PER_CLIENT in flight each):
    a 304 poll of 2,000 feeds took 2.2 s through one client and 0.7 s through sixteen."""

    def __init__(
        self,
        settings: FetchSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
        clients: int | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self._global = asyncio.Semaphore(settings.concurrency)
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )
        if clients is None:
            clients = 1 if transport else -(-settings.concurrency // REQUESTS_PER_CLIENT)
        per_client = -(-settings.concurrency // clients)
        # One TLS context for all clients: building one loads the CA bundle (~20 ms each).
        self._tls = httpx.create_ssl_context()
        self._clients = [self._client(per_client, transport) for _ in range(clients)]
        self._load = [0] * clients  # requests in flight per client; each goes to the least busy

    def _client(self, connections: int, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=transport,
            verify=self._tls,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(self.settings.timeout.total_seconds()),
            headers={
                "User-Agent": self.settings.user_agent,
                "Accept": (
                    "application/atom+xml, application/rss+xml, application/feed+json, "
                    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
                    "application/json;q=0.8, */*;q=0.5"
                ),
                "Accept-Encoding": "gzip, deflate",
            },
            follow_redirects=False,  # followed by hand: counted, loop-checked, 301 remembered
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(self, feed: FeedConfig, state: FeedState | None = None) -> FetchResult:
        """Poll one feed. Never raises (but cancellation): network and HTTP trouble, and any
        unexpected exception inside (logged with its traceback), are in the result."""
        url = (state.permanent_url if state and state.permanent_url else None) or feed.key
        timeout = (feed.timeout or self.settings.timeout).total_seconds()
        max_bytes = feed.max_bytes or self.settings.max_bytes
        host = urlsplit(url).hostname or ""
        async with self._global, self._per_host[host]:
            # Timed from here: waiting for a free slot is not the feed's fault.
            started = time.perf_counter()
            now = datetime.now(UTC)
            index = min(range(len(self._load)), key=self._load.__getitem__)
            self._load[index] += 1
            try:
                async with asyncio.timeout(timeout):
                    result = await self._exchange(
                        self._clients[index], feed, url, state, max_bytes, now, timeout
                    )
            except TimeoutError:
                result = FetchResult(
                    feed_url=feed.key,
                    url=url,
                    status=None,
                    outcome=Outcome.NETWORK_ERROR,
                    error=f"no complete answer within {timeout:g} s (connect, headers and body)",
                )
            except Exception as e:  # whatever a server makes a library do costs one poll
                log.exception("feed=%r unexpected error while fetching", feed.title)
                result = FetchResult(
                    feed_url=feed.key,
                    url=url,
                    status=None,
                    outcome=Outcome.NETWORK_ERROR,
                    error=f"unexpected error while fetching: {type(e).__name__}: {e}",
                )
            finally:
                self._load[index] -= 1
        return _with_timing(result, now, (time.perf_counter() - started) * 1000)

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        feed: FeedConfig,
        url: str,
        state: FeedState | None,
        max_bytes: int,
        now: datetime,
        timeout: float,
    ) -> FetchResult:
        headers: dict[str, str] = {}
        # Checked again before sending: a database from before the check may hold bad ones.
        etag = valid_etag(state.etag) if state else None
        modified = valid_http_date(state.last_modified) if state else None
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        guard = AddressGuard(feed.key, feed.allow_private, self.resolver)
        if url != feed.key:
            # A remembered 301/308 target gets the same check as the redirect that found it.
            try:
                await guard.check(url)
            except _Refused as e:
                return FetchResult(feed.key, url, None, Outcome.NETWORK_ERROR, error=str(e))
        seen = {url}
        all_permanent = True
        hops = 0
        while True:  # bounded: every pass either returns or takes one of MAX_REDIRECTS hops
            try:
                request = client.build_request("GET", url, headers=headers, timeout=timeout)
                response = await client.send(request, stream=True)
            except httpx.HTTPError as e:
                return FetchResult(
                    feed_url=feed.key,
                    url=url,
                    status=None,
                    outcome=Outcome.NETWORK_ERROR,
                    error=_describe_network_error(e),
                )
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    location = response.headers["location"]
                    target = _redirect_target(url, location)
                    if target is None:
                        return _failure(feed, url, response, f"redirect to an invalid URL: {location!r}")
                    all_permanent = all_permanent and response.status_code in _PERMANENT
                    hops += 1
                    if target in seen:
                        return _failure(feed, url, response, "redirect loop: " + target)
                    if hops > MAX_REDIRECTS:
                        return _failure(feed, url, response, f"more than {MAX_REDIRECTS} redirects")
                    if urlsplit(target).scheme not in ("http", "https"):
                        return _failure(feed, url, response, f"redirect to non-HTTP URL {target}")
                    try:
                        await guard.check(target)
                    except _Refused as e:
                        return _failure(feed, url, response, str(e))
                    await _drain(response)
                    seen.add(target)
                    url = target
                    continue
                return await self._finish(feed, url, response, max_bytes, now, hops, all_permanent)
            finally:
                await response.aclose()

    async def _finish(
        self,
        feed: FeedConfig,
        url: str,
        response: httpx.Response,
        max_bytes: int,
        now: datetime,
        hops: int,
        all_permanent: bool,
    ) -> FetchResult:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        moved = url if hops and all_permanent else None

        def result(outcome: Outcome, **kw: Any) -> FetchResult:
            return FetchResult(
                feed.key, url, status, outcome, headers=headers, permanent_redirect=moved, **kw
            )

        if not 200 <= status < 300:
            await _drain(response)
        if status == 304:
            return result(Outcome.NOT_MODIFIED)
        if status == 410:
            return result(Outcome.GONE, error="410 Gone: the server says this feed was removed for good")
        if status >= 400 or status < 200:
            retry = parse_retry_after(headers.get("retry-after"), now) if status in (429, 503) else None
            error = f"HTTP {status} {response.reason_phrase}".strip()
            if retry:
                error += f"; asked to wait until {retry:%Y-%m-%d %H:%M} UTC (Retry-After)"
            return result(Outcome.HTTP_ERROR, error=error, retry_after=retry)
        declared = parse_count(headers.get("content-length"), max_bytes + 1)
        encoding = headers.get("content-encoding", "")
        if declared is not None and declared > max_bytes and encoding in ("", "identity"):
            return result(
                Outcome.TOO_LARGE,
                error=(
                    f"body of {_size_words(headers['content-length'])} bytes "
                    f"is over the limit of {max_bytes:,}"
                ),
            )
        try:
            body, warning = await _read_limited(response, encoding, max_bytes)
        except _TooLarge:
            return result(
                Outcome.TOO_LARGE,
                error=f"body is over the limit of {max_bytes:,} bytes (counted after decompression)",
            )
        except _BadEncoding as e:
            return result(Outcome.NETWORK_ERROR, error=str(e))
        except httpx.HTTPError as e:
            return result(Outcome.NETWORK_ERROR, error=_describe_network_error(e))
        return result(
            Outcome.OK,
            body=body,
            warning=warning,
            etag=valid_etag(headers.get("etag")),
            last_modified=valid_http_date(headers.get("last-modified")),
        )


async def _read_limited(response: httpx.Response, encoding: str, max_bytes: int) -> tuple[bytes, str | None]:
    """Read and decode the body, stopping as soon as it passes max_bytes (bombs stop early).
    Returns the body and the decoder's warning (a Content-Encoding read through), if any."""
    decoder = _Decoder(encoding)
    body = bytearray()
    async for raw in response.aiter_raw():
        for piece in decoder.feed(raw):
            if len(body) + len(piece) > max_bytes:
                raise _TooLarge
            body += piece
    return bytes(body), decoder.warning


async def _drain(response: httpx.Response) -> None:
    """Read a small unwanted body to its end so the connection can be reused. Trouble here
    only costs the connection: the answer's status is what counts."""
    declared = parse_count(response.headers.get("content-length"), DRAIN_BYTES + 1)
    if declared is not None and declared > DRAIN_BYTES:
        return
    size = 0
    with contextlib.suppress(httpx.HTTPError, httpx.StreamError):  # StreamError: already read
        async for raw in response.aiter_raw():
            size += len(raw)
            if size > DRAIN_BYTES:
                return


def _size_words(declared: str) -> str:
    digits = declared.strip().lstrip("0")
    return f"{int(digits):,}" if len(digits) <= 30 else f"a {len(digits):,}-digit number of"


def _redirect_target(url: str, location: str) -> str | None:
    """The absolute URL a Location names, or None when it is no usable http(s) URL: httpx
    accepts values the URL parser then rejects (`http://[::1`, port 99999, controls)."""
    try:
        target = urljoin(url, location.strip())
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        httpx.URL(target)
    except (ValueError, httpx.InvalidURL):
        return None
    if not target.isascii() or not target.isprintable():
        # Sent again as a request line: only what httpx would percent-encode the same way.
        try:
            target = str(httpx.URL(target))
        except (ValueError, httpx.InvalidURL):
            return None
    return target


def _failure(feed: FeedConfig, url: str, response: httpx.Response, error: str) -> FetchResult:
    return FetchResult(
        feed_url=feed.key,
        url=url,
        status=response.status_code,
        outcome=Outcome.HTTP_ERROR,
        error=error,
    )


def _with_timing(result: FetchResult, now: datetime, ms: float) -> FetchResult:
    return replace(result, fetched_at=now, duration_ms=round(ms, 1))


# What an operator reads for the common socket and resolver errors, instead of
# "[Errno -2] Name or service not known"; the code follows in brackets for searching.
_OS_ERROR_WORDS = {
    socket.EAI_NONAME: "the host name could not be resolved",
    socket.EAI_AGAIN: "the host name could not be resolved (temporary DNS failure)",
    socket.EAI_NODATA if hasattr(socket, "EAI_NODATA") else -5: "the host name has no address",
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.ECONNABORTED: "connection aborted",
}
_ERRNO_TEXT = re.compile(r"\[Errno (-?\d+)\]")


def _os_error_words(e: BaseException) -> str | None:
    """Words for the OS or resolver error behind `e` (its cause chain, else "[Errno N]" in its
    text), with the code kept: "the host name could not be resolved (EAI_NONAME)"."""
    seen: set[int] = set()
    current: BaseException | None = e
    code: int | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"the server's TLS certificate could not be verified ({current.verify_message})"
        if isinstance(current, ssl.SSLError):  # its errno is OpenSSL's, not the system's
            return f"the TLS connection failed ({getattr(current, 'reason', None) or type(current).__name__})"
        if isinstance(current, OSError) and isinstance(current.errno, int):
            code = current.errno
            break
        current = current.__cause__ or current.__context__
    if code is None:
        found = _ERRNO_TEXT.search(str(e))
        code = int(found.group(1)) if found else None
    if code is None or code not in _OS_ERROR_WORDS:
        return None
    name = next((n for n in dir(socket) if n.startswith("EAI_") and getattr(socket, n) == code), None)
    return f"{_OS_ERROR_WORDS[code]} ({name or errno.errorcode.get(code, code)})"


def _describe_network_error(e: httpx.HTTPError) -> str:
    """An httpx error in words for an operator: what failed, then why ("could not connect:
    the host name could not be resolved (EAI_NONAME)")."""
    kind = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ConnectError: "could not connect",
        httpx.ReadTimeout: "server stopped answering",
        httpx.ReadError: "connection broke while reading the answer",
        httpx.RemoteProtocolError: "server broke the HTTP protocol",
        httpx.UnsupportedProtocol: "unsupported URL scheme",
        httpx.DecodingError: "body could not be decompressed",
        httpx.TimeoutException: "timed out",
    }
    for cls, words in kind.items():
        if isinstance(e, cls):
            detail = _os_error_words(e) or str(e) or type(e).__name__
            return f"{words}: {detail}"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
