"""A URL an operator typed -> the feed to subscribe to, checked to parse.

Given a feed, that feed; given a web page, the first feed it advertises with
`<link rel="alternate" type="application/rss+xml|atom+xml|feed+json">` (HTML Living Standard
§4.6.7.1, RSS Autodiscovery) that answers and parses. Fetched with our own Fetcher, so every
limit of polling (time, size, redirects, the SSRF guard) holds here too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .config import FeedConfig, FetchSettings
from .fetch import Fetcher, IPAddress, Resolver, address_zone, check_target, is_public, system_resolver
from .models import FetchResult, NotAFeed, Outcome, ParsedFeed
from .parse import parse_feed


class DiscoveryError(Exception):
    """No feed could be found or read at the URL; the message says what happened, in words."""


@dataclass(frozen=True, slots=True)
class Discovered:
    """A feed that answered and parsed: what `add` writes to feeds.yaml and tells the operator."""

    url: str  # the feed's address (after permanent redirects)
    page_url: str | None  # the web page that advertised it, when the operator gave a page
    title: str | None
    link: str | None  # the site the feed stands for (OPML htmlUrl)
    language: str | None  # as the feed declares it, if it does
    format: str  # feedparser's version name (rss20, atom10, ...) or json1
    entries: int
    also_advertised: tuple[str, ...] = ()  # the page's other feeds, for the operator to choose


def _outcome_words(result: FetchResult) -> str:
    return result.error or f"HTTP {result.status}"


async def _get(fetcher: Fetcher, url: str) -> FetchResult:
    # Trusted as a URL in feeds.yaml is: its redirects get the SSRF guard, the URL itself not.
    feed = FeedConfig.model_validate({"url": url})
    return await fetcher.fetch(feed)


async def _same_zone(page_url: str, feed_url: str, resolver: Resolver) -> str | None:
    """The SSRF rule for a feed advertised by a page: None when it may be fetched, else why not.

    A page on the public internet must not make us fetch (and write into feeds.yaml) an
    address on our own network; a page on a private or loopback address may point within
    its zone.
    """

    async def addresses(url: str) -> list[IPAddress]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            return list(await resolver(host, parts.port or (443 if parts.scheme == "https" else 80)))

    try:
        page = await addresses(page_url)
        target = await addresses(feed_url)
    except (OSError, ValueError) as e:
        return f"could not resolve {urlsplit(feed_url).hostname}: {e}"
    zones = {address_zone(a) for a in page if not is_public(a)}
    return check_target(target, zones)


async def discover(url: str, fetcher: Fetcher, resolver: Resolver = system_resolver) -> Discovered:
    """Fetch `url`; return the feed there or the first working feed the page advertises.

    Raises DiscoveryError (the answer was an error, the page advertises no feed, or none of
    the advertised feeds answers and parses).
    """
    result = await _get(fetcher, url)
    if result.outcome is not Outcome.OK or result.body is None:
        raise DiscoveryError(f"{url}: {_outcome_words(result)}")
    final = result.permanent_redirect or url
    try:
        parsed = parse_feed(result.body, result.headers, result.url)
    except NotAFeed as e:
        if not e.alternates:
            raise DiscoveryError(f"{url}: {e}") from None
        return await _from_page(url, e.alternates, fetcher, resolver)
    return _discovered(final, None, parsed)


async def _from_page(
    page_url: str, alternates: tuple[str, ...], fetcher: Fetcher, resolver: Resolver
) -> Discovered:
    failures = []
    for i, candidate in enumerate(alternates):
        if urlsplit(candidate).scheme not in ("http", "https"):
            failures.append(f"{candidate}: not an HTTP URL")
            continue
        refused = await _same_zone(page_url, candidate, resolver)
        if refused:
            failures.append(f"{candidate}: refused: {refused} and the page's is not (SSRF guard)")
            continue
        result = await _get(fetcher, candidate)
        if result.outcome is not Outcome.OK or result.body is None:
            failures.append(f"{candidate}: {_outcome_words(result)}")
            continue
        try:
            parsed = parse_feed(result.body, result.headers, result.url)
        except NotAFeed as e:
            failures.append(f"{candidate}: {e}")
            continue
        others = alternates[:i] + alternates[i + 1 :]
        return _discovered(result.permanent_redirect or candidate, page_url, parsed, others)
    raise DiscoveryError(
        f"{page_url} is a web page; none of the feeds it advertises could be read:\n  "
        + "\n  ".join(failures)
    )


def _discovered(
    url: str, page_url: str | None, parsed: ParsedFeed, others: tuple[str, ...] = ()
) -> Discovered:
    return Discovered(
        url=url,
        page_url=page_url,
        title=parsed.title,
        link=parsed.link,
        language=parsed.language,
        format=parsed.format,
        entries=len(parsed.entries),
        also_advertised=others,
    )


def default_fetcher(settings: FetchSettings | None = None) -> Fetcher:
    """A Fetcher for one-off discovery: the configured limits, one client."""
    return Fetcher(settings or FetchSettings(), clients=1)
