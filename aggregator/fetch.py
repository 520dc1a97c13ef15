"""URL + stored validators -> FetchResult. Every HTTP limit lives here.

The retriever never parses: it returns bytes plus the HTTP facts (status, validators,
headers, timing), so a poll of one feed is a self-contained job.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import httpx

from .config import FeedConfig, FetchSettings
from .models import FeedState, FetchResult, Outcome

MAX_REDIRECTS = 5
MAX_RETRY_AFTER = timedelta(hours=24)
_PERMANENT = {301, 308}
_REDIRECTS = {301, 302, 303, 307, 308}


class _TooLarge(Exception):
    pass


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as seconds or an HTTP date, capped at 24 h from now."""
    if not value:
        return None
    value = value.strip()
    when: datetime | None
    if value.isdigit():
        when = now + timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return min(max(when, now), now + MAX_RETRY_AFTER)


class Fetcher:
    """One shared httpx client with a global and a per-host concurrency limit."""

    def __init__(
        self,
        settings: FetchSettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._global = asyncio.Semaphore(settings.concurrency)
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )
        limits = httpx.Limits(
            max_connections=settings.concurrency,
            max_keepalive_connections=settings.concurrency,
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            limits=limits,
            timeout=httpx.Timeout(settings.timeout.total_seconds()),
            headers={
                "User-Agent": settings.user_agent,
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
        await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(self, feed: FeedConfig, state: FeedState | None = None) -> FetchResult:
        """Poll one feed. Never raises for network or HTTP trouble: it is in the result."""
        url = (state.permanent_url if state and state.permanent_url else None) or feed.key
        timeout = (feed.timeout or self.settings.timeout).total_seconds()
        max_bytes = feed.max_bytes or self.settings.max_bytes
        started = time.perf_counter()
        now = datetime.now(UTC)
        host = urlsplit(url).hostname or ""
        async with self._global, self._per_host[host]:
            try:
                async with asyncio.timeout(timeout):
                    result = await self._exchange(feed, url, state, max_bytes, now)
            except TimeoutError:
                result = FetchResult(
                    feed_url=feed.key,
                    url=url,
                    status=None,
                    outcome=Outcome.NETWORK_ERROR,
                    error=f"no complete answer within {timeout:g} s (connect, headers and body)",
                )
        return _with_timing(result, now, (time.perf_counter() - started) * 1000)

    async def _exchange(
        self,
        feed: FeedConfig,
        url: str,
        state: FeedState | None,
        max_bytes: int,
        now: datetime,
    ) -> FetchResult:
        headers: dict[str, str] = {}
        if state and state.etag:
            headers["If-None-Match"] = state.etag
        if state and state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        seen = {url}
        all_permanent = True
        hops = 0
        while True:
            try:
                request = self._client.build_request("GET", url, headers=headers)
                response = await self._client.send(request, stream=True)
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
                    target = urljoin(url, response.headers["location"])
                    all_permanent = all_permanent and response.status_code in _PERMANENT
                    hops += 1
                    if target in seen:
                        return _failure(feed, url, response, "redirect loop: " + target)
                    if hops > MAX_REDIRECTS:
                        return _failure(feed, url, response, f"more than {MAX_REDIRECTS} redirects")
                    if urlsplit(target).scheme not in ("http", "https"):
                        return _failure(feed, url, response, f"redirect to non-HTTP URL {target}")
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
        base = dict(
            feed_url=feed.key,
            url=url,
            status=status,
            headers=headers,
            permanent_redirect=moved,
        )
        if status == 304:
            return FetchResult(outcome=Outcome.NOT_MODIFIED, **base)  # type: ignore[arg-type]
        if status == 410:
            return FetchResult(
                outcome=Outcome.GONE,
                error="410 Gone: the server says this feed was removed for good",
                **base,  # type: ignore[arg-type]
            )
        if status >= 400 or status < 200:
            retry = parse_retry_after(headers.get("retry-after"), now) if status in (429, 503) else None
            return FetchResult(
                outcome=Outcome.HTTP_ERROR,
                error=f"HTTP {status} {response.reason_phrase}".strip(),
                retry_after=retry,
                **base,  # type: ignore[arg-type]
            )
        declared = response.headers.get("content-length")
        if (
            declared
            and declared.isdigit()
            and int(declared) > max_bytes
            and not response.headers.get("content-encoding")
        ):
            return FetchResult(
                outcome=Outcome.TOO_LARGE,
                error=f"body of {int(declared):,} bytes is over the limit of {max_bytes:,}",
                **base,  # type: ignore[arg-type]
            )
        try:
            body = await _read_limited(response, max_bytes)
        except _TooLarge:
            return FetchResult(
                outcome=Outcome.TOO_LARGE,
                error=f"body is over the limit of {max_bytes:,} bytes (counted after decompression)",
                **base,  # type: ignore[arg-type]
            )
        except httpx.HTTPError as e:
            return FetchResult(
                outcome=Outcome.NETWORK_ERROR,
                error=_describe_network_error(e),
                **base,  # type: ignore[arg-type]
            )
        return FetchResult(
            outcome=Outcome.OK,
            body=body,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            **base,  # type: ignore[arg-type]
        )


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    """Read the decoded body, stopping as soon as it passes max_bytes (gzip bombs stop early)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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


def _describe_network_error(e: httpx.HTTPError) -> str:
    kind = {
        httpx.ConnectError: "could not connect",
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "server stopped answering",
        httpx.RemoteProtocolError: "server broke the HTTP protocol",
        httpx.UnsupportedProtocol: "unsupported URL scheme",
        httpx.DecodingError: "body could not be decompressed",
    }
    for cls, words in kind.items():
        if isinstance(e, cls):
            detail = str(e) or type(e).__name__
            return f"{words}: {detail}"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
