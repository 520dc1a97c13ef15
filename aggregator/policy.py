"""The poll policy: how often each feed is polled (a fixed interval or `auto`), back-off after
failures with jitter, Retry-After, and the configured feeds and zone as the store knows them.

Pure but for `sync_feeds` (one store call); it imports neither the fetcher nor the parser, so
commands that only read (`status`) do not load the poller (issue 15: light commands).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from .config import Config, FeedConfig
from .store import Store

MAX_BACKOFF = timedelta(hours=24)
JITTER = 0.1  # +-10%: feeds started together drift apart instead of polling in step
_RNG = random.Random()  # seeding a new one per poll costs more than the rest of a 304's policy
WEEK = timedelta(days=7)


def auto_interval(entries_last_week: int, min_interval: timedelta, max_interval: timedelta) -> timedelta:
    """`interval: auto`, after Miniflux's entry-frequency scheduler: a week divided by the
    entries the feed published in the last week, kept within [min_interval, max_interval].
    A feed that published nothing that week is polled at max_interval."""
    if entries_last_week <= 0:
        return max_interval
    return min(max(WEEK / entries_last_week, min_interval), max_interval)


def poll_interval(feed: FeedConfig, config: Config, entries_last_week: Callable[[], int]) -> timedelta:
    """The feed's interval before back-off: fixed from feeds.yaml, or adapted (`auto`).
    `entries_last_week` is only called for `auto` feeds (it costs a query)."""
    spec = config.interval_for(feed)
    if spec != "auto":
        return spec
    lo = feed.min_interval or config.defaults.min_interval
    hi = max(lo, feed.max_interval or config.defaults.max_interval)
    return auto_interval(entries_last_week(), lo, hi)


def next_poll(
    interval: timedelta,
    error_count: int,
    now: datetime,
    retry_after: datetime | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When to poll again: the interval, doubled per consecutive failure up to 24 h (or the
    interval itself, if longer), with +-10% jitter that never passes that cap; never before a
    server's Retry-After (itself capped at 24 h by the fetcher)."""
    rng = rng or _RNG
    cap = max(MAX_BACKOFF, interval)
    delay = min(interval * (1 << min(error_count, 16)), cap)
    spread = rng.uniform(-JITTER, JITTER)
    delay *= 1 + spread
    if delay > cap:
        delay = cap * (1 - abs(spread))  # mirrored below the cap: still spread, never over it
    when = now + delay
    if retry_after and retry_after > when:
        when = retry_after
    return when


def sync_feeds(config: Config, store: Store) -> None:
    """The configured feeds into the store, and every entry's day into `site.timezone`."""
    store.sync_feeds((f.key, f.title, f.language) for f in config.feeds)
    store.sync_zone(config.site.zone)
