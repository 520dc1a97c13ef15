"""One poll of one feed, top to bottom: fetch -> parse -> normalise -> dedupe -> store.

The CPU-bound middle (parse, language, keys) runs in worker processes (`parse_workers.ParsePool`)
when a run polls enough feeds to pay for them, else in a worker thread; either way slow
parsing never stalls other feeds' downloads, and all SQLite work stays on the caller's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from . import dedupe
from . import workers as parse_workers
from .config import Config, FeedConfig
from .error_kinds import error_kind
from .fetch import Fetcher
from .models import (
    Candidate,
    FeedState,
    FetchResult,
    NotAFeed,
    Outcome,
    ParsedFeed,
    PollRecord,
    PollReport,
    UpdatePlan,
)
from .policy import MAX_BACKOFF, WEEK, next_poll, poll_interval
from .store import Store, StoreError, StoreLocked
from .workers import pool_min_feeds

log = logging.getLogger("aggregator.poll")


def body_hash(body: bytes) -> str:
    """A digest of a fetched body (BLAKE2b, 128 bits, hex): a 200 whose body hashes to the
    last successful poll's is not parsed again (servers without validators send the same
    document in full on every poll)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def parse_job(result: FetchResult, feed: FeedConfig, config: Config, now: datetime) -> parse_workers.ParseJob:
    """What parsing and normalising `result`'s body needs, as plain data for a worker."""
    assert result.body is not None
    return parse_workers.ParseJob(
        body=result.body,
        headers=result.headers,
        url=result.url,
        feed_url=feed.key,
        configured_language=feed.language,
        site_languages=tuple(config.site.languages),
        zone=config.site.timezone,
        now=now,
        translation_patterns=tuple(config.site.translation_patterns),
    )


async def _process(
    result: FetchResult, feed: FeedConfig, config: Config, now: datetime, pool: parse_workers.ParsePool | None
) -> tuple[ParsedFeed, list[Candidate]]:
    job = parse_job(result, feed, config, now)
    if pool is not None:
        return await pool.run(job)
    return await asyncio.to_thread(parse_workers.process, job)


async def poll_feed(
    feed: FeedConfig,
    config: Config,
    store: Store,
    fetcher: Fetcher,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    rng: random.Random | None = None,
    state: FeedState | None = None,
    pool: parse_workers.ParsePool | None = None,
) -> PollReport:
    """Poll one feed and store what it brought. Never raises (but cancellation): whatever
    fails (the server, the fetcher, parsing, dedupe, the store: disk full, locked, read-only,
    deleted) is recorded with its reason as far as the store allows (else logged), counts as
    one more consecutive error, and sets the next poll with back-off; the report says so.

    `state` is the feed's stored state if the caller has it already (else it is read).
    A 304 costs that read and one write of the poll record: no parsing, no entry lookups;
    so does a 200 whose body is the one parsed and stored last time (`body_hash`).
    The answer's validators are stored only with a successful parse and store (issue 11:
    else the next poll gets a 304 and the failure vanishes from `status`).
    `pool`: parse in its worker processes (else in a thread of this process); at most
    `pool.admission` polls that use it are between their download and their parse at once."""
    result: FetchResult | None = None
    try:
        if state is None:
            state = store.feed_state(feed.key)
        # With a pool, its admission bounds the polls between download and parse, whoever
        # started them (`run` schedules each feed on its own): fetched bodies never pile up.
        async with pool.admission if pool is not None else contextlib.nullcontext():
            result = await fetcher.fetch(feed, state)
            return await _poll(feed, config, store, result, state, now(), rng, pool)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # the one place a poll's failures end: never past here
        outcome = Outcome.STORE_ERROR if isinstance(e, StoreError) else Outcome.INTERNAL_ERROR
        if outcome is Outcome.STORE_ERROR:
            error = f"could not store the poll: {e}"
            log.error("feed=%r %s", feed.title, error)
        else:
            error = f"internal error: {type(e).__name__}: {e}"
            log.exception("feed=%r poll failed", feed.title)
        # Recording under a lock that just outlasted the busy timeout would wait as long again.
        record = not isinstance(e, StoreLocked)
        return _failed(feed, config, store, result, state, now(), rng, outcome, error, record)


async def _poll(
    feed: FeedConfig,
    config: Config,
    store: Store,
    result: FetchResult,
    state: FeedState | None,
    started: datetime,
    rng: random.Random | None,
    pool: parse_workers.ParsePool | None = None,
) -> PollReport:
    errors = state.error_count if state else 0
    title = warning = None
    outcome, error = result.outcome, result.error
    candidates: list[Candidate] | None = None
    digest = body_hash(result.body) if outcome is Outcome.OK and result.body is not None else None
    unchanged = (
        digest is not None
        and state is not None
        and state.body_hash == digest
        and state.last_outcome in (Outcome.OK.value, Outcome.NOT_MODIFIED.value)
    )
    if unchanged:  # the very bytes parsed and stored last time: nothing new in them
        assert state is not None
        warning = state.warning
    elif outcome is Outcome.OK:
        try:
            parsed, candidates = await _process(result, feed, config, started, pool)
        except NotAFeed as e:
            outcome, error = Outcome.NOT_A_FEED, str(e)
        except Exception as e:  # a parser bug must cost one feed, not the run
            log.exception("feed=%s parse failed", feed.title)
            outcome, error = Outcome.NOT_A_FEED, f"could not parse: {type(e).__name__}: {e}"
        else:
            title, warning = parsed.title, parsed.warning
            if result.warning:  # the transfer's oddity first: it explains what follows
                warning = f"{result.warning}; {warning}" if warning else result.warning
    if outcome is Outcome.NOT_MODIFIED and state:
        warning = state.warning  # same document as last time: its warning still holds
    failed = outcome not in (Outcome.OK, Outcome.NOT_MODIFIED)
    errors = errors + 1 if failed else 0
    gone = outcome is Outcome.GONE
    plan = UpdatePlan()
    days: frozenset[date] = frozenset()
    when = None
    # One unit of work: lookup, apply and the poll's record commit together or not at all.
    # No await inside: the write lock is held until the block ends.
    with store.poll(feed.key) as work:
        if candidates is not None:
            existing = work.lookup(candidates)
            plan = dedupe.decide(candidates, existing, feed.title, started, config.site.zone)
            work.apply(plan)
            days = dedupe.days_touched(plan, existing)
            work.mark_unpublished(days)  # owed by the next publish, whichever process makes it
        if not gone:
            interval = poll_interval(feed, config, lambda: work.entries_published_since(started - WEEK))
            when = next_poll(interval, errors, started, result.retry_after, rng)
        work.record(
            PollRecord(
                result,
                outcome=outcome.value,
                error_count=errors,
                next_poll=when,
                error=error,
                title=title,
                warning=warning,
                gone=gone,
                validators=outcome is Outcome.OK,
                body_hash=digest,
            )
        )
    report = PollReport(
        feed_url=feed.key,
        feed_name=feed.title,
        outcome=outcome,
        status=result.status,
        error=error,
        inserted=len(plan.inserts),
        updated=len(plan.updates),
        merged=len(plan.new_sources),
        unchanged=plan.unchanged,
        warning=warning,
        duration_ms=result.duration_ms,
        next_poll=when,
        days=days,
    )
    _log(report)
    return report


def _failed(
    feed: FeedConfig,
    config: Config,
    store: Store,
    result: FetchResult | None,
    state: FeedState | None,
    started: datetime,
    rng: random.Random | None,
    outcome: Outcome,
    error: str,
    record: bool = True,
) -> PollReport:
    """A poll that failed in the program or the store: back-off from the count before it,
    and a best-effort record (the store may be what failed: then it is only logged)."""
    errors = (state.error_count if state else 0) + 1
    try:
        interval = poll_interval(feed, config, lambda: 0)  # `auto` without the store: its longest
    except Exception:  # pragma: no cover - config was validated; keep the promise regardless
        interval = MAX_BACKOFF
    when = next_poll(interval, errors, started, None, rng)
    url = result.url if result else feed.key
    status = result.status if result else None
    duration = result.duration_ms if result else 0.0
    if not record:
        log.error("feed=%r the failure is not recorded: the store is locked", feed.title)
    else:
        try:
            store.record_failure(
                feed.key, url=url, status=status, outcome=outcome.value, error=error,
                error_count=errors, next_poll=when, fetched_at=started, duration_ms=duration,
            )  # fmt: skip
        except Exception as e:
            log.error("feed=%r the failure could not be recorded either: %s", feed.title, e)
    return PollReport(
        feed_url=feed.key,
        feed_name=feed.title,
        outcome=outcome,
        status=status,
        error=error,
        duration_ms=duration,
        next_poll=when,
    )


def _log(r: PollReport) -> None:
    if r.error:
        # The kind as data beside the words, for JSON logs (logs.JSONFormatter writes `extra`).
        kind = error_kind(r.outcome.value, r.status, r.error)
        log.warning(
            "feed=%r outcome=%s status=%s error=%r", r.feed_name, r.outcome.value, r.status, r.error,
            extra={"feed": r.feed_name, "outcome": r.outcome.value, "status": r.status, "error_kind": kind},
        )  # fmt: skip
    else:
        log.info(
            "feed=%r outcome=%s status=%s new=%d updated=%d merged=%d unchanged=%d ms=%.0f%s",
            r.feed_name, r.outcome.value, r.status, r.inserted, r.updated, r.merged,
            r.unchanged, r.duration_ms, f" warning={r.warning!r}" if r.warning else "",
        )  # fmt: skip


def parse_pool(feeds: int, workers: int | None = None) -> parse_workers.ParsePool | None:
    """The worker processes to parse `feeds` feeds in, or None to parse in a thread of this
    process. `workers`: that many processes (0: none); None chooses one per core when the
    machine has more than one and there are at least `workers.pool_min_feeds()` feeds (300
    unless overridden). The caller closes the pool (`fetch` after its run; `run` when it
    stops)."""
    if workers is None:
        cores = os.cpu_count() or 1
        workers = parse_workers.default_workers() if cores > 1 and feeds >= pool_min_feeds() else 0
    return parse_workers.ParsePool(workers) if workers > 0 else None


async def poll_many(
    feeds: Sequence[FeedConfig],
    config: Config,
    store: Store,
    fetcher: Fetcher | None = None,
    on_done: Callable[[PollReport], None] | None = None,
    rng: random.Random | None = None,
    retry_gone: bool = False,
    workers: int | None = None,
) -> list[PollReport]:
    """Poll feeds concurrently (the fetcher enforces the limits); one failure never stops the
    rest, and nothing raises (but cancellation): every feed gets a report.

    Feeds that answered 410 Gone are not polled again (their report says so, `skipped`),
    unless `retry_gone` (an operator named them): an answer other than 410 revives them.
    Afterwards the fetch log is pruned to `fetch.log_retention`.

    `workers`: parse in that many worker processes, 0 in threads of this process; None
    (default) chooses: processes (one per core) from `workers.pool_min_feeds()` feeds on a machine with
    more than one core, threads for fewer (starting processes would cost more than it saves)."""
    own = fetcher is None
    fetcher = fetcher or Fetcher(config.fetch)
    pool = parse_pool(len(feeds), workers)
    try:
        states = store.feed_states()
    except StoreError as e:  # each poll reads its own state, and records what fails
        log.error("could not read the feeds' state: %s", e)
        states = {}
    # Polls in flight, downloads and parsing together: downloads outrun parsing by far, and
    # without a bound every body would wait in memory for its parse (3,000 feeds of 100 KB:
    # 300 MB). Twice the download concurrency keeps every download slot busy. That many
    # runners take the feeds in order, rather than one waiting task per feed: 10,000 waiting
    # coroutines held about 15 MB (issue 15, peak memory at 10,000 feeds).
    reports: list[PollReport | None] = [None] * len(feeds)
    queue = iter(enumerate(feeds))  # shared by the runners: each takes the next feed
    try:

        async def one(feed: FeedConfig) -> PollReport:
            state = states.get(feed.key)
            if state and state.gone and not retry_gone:
                report = PollReport(
                    feed.key, feed.title, Outcome.GONE, state.last_status, skipped=True,
                    error="not polled: it answered 410 Gone earlier (its entries are kept)",
                )  # fmt: skip
            else:
                report = await poll_feed(feed, config, store, fetcher, rng=rng, state=state, pool=pool)
            if on_done:
                try:
                    on_done(report)
                except Exception:  # a progress display must not cost a feed
                    log.exception("feed=%r progress callback failed", feed.title)
            return report

        async def runner() -> None:
            for i, feed in queue:
                reports[i] = await one(feed)

        runners = min(len(feeds), 2 * max(1, config.fetch.concurrency))
        await asyncio.gather(*(runner() for _ in range(runners)))
    finally:
        if pool is not None:
            pool.close()
        if own:
            await fetcher.aclose()
    try:
        store.prune_fetch_log(config.fetch.log_retention, datetime.now(UTC))
    except StoreError as e:
        log.error("could not prune the fetch log: %s", e)
    return [r for r in reports if r is not None]  # every one is set: `one` does not raise
