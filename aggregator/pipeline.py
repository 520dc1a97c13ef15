"""One poll of one feed, top to bottom: fetch -> parse -> normalise -> dedupe -> store.

The CPU-bound middle (parse, language, keys) runs in a worker thread so slow parsing
never stalls other feeds' downloads; all SQLite work stays on the caller's thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from . import dedupe, normalise
from .config import Config, FeedConfig
from .fetch import Fetcher
from .models import Candidate, FetchResult, Outcome, ParsedFeed, PollReport
from .parse import NotAFeed, parse_feed
from .store import Store

log = logging.getLogger("aggregator.poll")

MAX_BACKOFF = timedelta(hours=24)


def next_poll(
    interval: timedelta,
    error_count: int,
    now: datetime,
    retry_after: datetime | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When to poll again: the interval, multiplied per consecutive failure (capped at 24 h),
    with +-10% jitter so feeds do not fall into step; never before a server's Retry-After."""
    rng = rng or random.Random()
    delay = interval * (2 ** min(error_count, 16)) if error_count else interval
    delay = min(delay, MAX_BACKOFF)
    delay *= rng.uniform(0.9, 1.1)
    when = now + delay
    if retry_after and retry_after > when:
        when = retry_after
    return when


def sync_feeds(config: Config, store: Store) -> None:
    store.sync_feeds((f.key, f.title, f.language) for f in config.feeds)


def _process(
    result: FetchResult, feed: FeedConfig, config: Config, now: datetime
) -> tuple[ParsedFeed, list[Candidate]]:
    assert result.body is not None
    parsed = parse_feed(result.body, result.headers, result.url)
    candidates = normalise.prepare(
        parsed,
        feed.key,
        feed.language,
        tuple(config.site.languages),
        config.site.zone,
        now,
        tuple(config.site.translation_patterns),
    )
    return parsed, candidates


async def poll_feed(
    feed: FeedConfig,
    config: Config,
    store: Store,
    fetcher: Fetcher,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PollReport:
    """Poll one feed and store what it brought. Never raises for a bad feed or server."""
    state = store.feed_state(feed.key)
    result = await fetcher.fetch(feed, state)
    started = now()
    interval = config.interval_for(feed)
    errors = state.error_count if state else 0
    title = None
    warning = None
    inserted = updated = merged = unchanged = 0
    outcome = result.outcome
    error = result.error
    if outcome is Outcome.OK:
        try:
            parsed, candidates = await asyncio.to_thread(_process, result, feed, config, started)
        except NotAFeed as e:
            outcome, error = Outcome.NOT_A_FEED, str(e)
        except Exception as e:  # a parser bug must cost one feed, not the run
            log.exception("feed=%s parse failed", feed.title)
            outcome, error = Outcome.NOT_A_FEED, f"could not parse: {type(e).__name__}: {e}"
        else:
            title, warning = parsed.title, parsed.warning
            existing = store.lookup(feed.key, candidates)
            plan = dedupe.decide(candidates, existing, feed.title, started, config.site.zone)
            store.apply(plan)
            inserted, updated = len(plan.inserts), len(plan.updates)
            merged, unchanged = len(plan.new_sources), plan.unchanged
    failed = outcome not in (Outcome.OK, Outcome.NOT_MODIFIED)
    errors = errors + 1 if failed else 0
    gone = outcome is Outcome.GONE
    store.record_poll(
        result,
        error=error,
        outcome=outcome.value,
        error_count=errors,
        next_poll=None if gone else next_poll(interval, errors, started, result.retry_after),
        title=title,
        warning=warning,
        gone=gone,
    )
    report = PollReport(
        feed_url=feed.key,
        feed_name=feed.title,
        outcome=outcome,
        status=result.status,
        error=error,
        inserted=inserted,
        updated=updated,
        merged=merged,
        unchanged=unchanged,
        warning=warning,
        duration_ms=result.duration_ms,
    )
    _log(report)
    return report


def _log(r: PollReport) -> None:
    if r.error:
        log.warning("feed=%r outcome=%s status=%s error=%r", r.feed_name, r.outcome.value, r.status, r.error)
    else:
        log.info(
            "feed=%r outcome=%s status=%s new=%d updated=%d merged=%d unchanged=%d ms=%.0f%s",
            r.feed_name, r.outcome.value, r.status, r.inserted, r.updated, r.merged,
            r.unchanged, r.duration_ms, f" warning={r.warning!r}" if r.warning else "",
        )  # fmt: skip


async def poll_many(
    feeds: Sequence[FeedConfig],
    config: Config,
    store: Store,
    fetcher: Fetcher | None = None,
    on_done: Callable[[PollReport], None] | None = None,
) -> list[PollReport]:
    """Poll feeds concurrently (the fetcher enforces the limits); one failure never stops the rest."""
    own = fetcher is None
    fetcher = fetcher or Fetcher(config.fetch)
    try:

        async def one(feed: FeedConfig) -> PollReport:
            report = await poll_feed(feed, config, store, fetcher)
            if on_done:
                on_done(report)
            return report

        return list(await asyncio.gather(*(one(f) for f in feeds)))
    finally:
        if own:
            await fetcher.aclose()
