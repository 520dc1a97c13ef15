"""When feeds are polled: intervals, `interval: auto`, back-off, Retry-After, and the `run` job's
schedule. The policy functions are pure (clock and random source injected); the end-to-end
cases poll the hostile server on 127.0.0.1 with a real store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import Config, Defaults, FeedConfig
from aggregator.fetch import Fetcher
from aggregator.models import Outcome
from aggregator.pipeline import (
    JITTER,
    MAX_BACKOFF,
    auto_interval,
    next_poll,
    poll_feed,
    poll_interval,
    sync_feeds,
)
from aggregator.schedule import STARTUP_JITTER, Service
from aggregator.store import SQLiteStore, Store
from tests.hostile_server import OK_FEED, HostileServer, _date, _item, _rss

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


# -- interval: auto ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (0, timedelta(hours=24)),  # silent: the longest interval
        (1, timedelta(hours=24)),  # a week per entry, capped
        (7, timedelta(hours=24)),
        (14, timedelta(hours=12)),
        (168, timedelta(hours=1)),
        (336, timedelta(minutes=30)),
        (10_000, timedelta(minutes=15)),  # a firehose: the shortest interval
    ],
)
def test_auto_interval_follows_the_publishing_rate(entries: int, expected: timedelta) -> None:
    assert auto_interval(entries, timedelta(minutes=15), timedelta(hours=24)) == expected


def test_auto_interval_never_leaves_its_bounds() -> None:
    lo, hi = timedelta(minutes=5), timedelta(hours=6)
    for n in range(0, 5000, 7):
        assert lo <= auto_interval(n, lo, hi) <= hi


def _config(**defaults: object) -> Config:
    return Config(defaults=Defaults.model_validate(defaults))


def _never() -> int:
    raise AssertionError("fixed intervals must not count entries")


def test_poll_interval_fixed_default_and_per_feed() -> None:
    config = _config(interval="20m")
    assert poll_interval(FeedConfig(url="http://a/x"), config, _never) == timedelta(minutes=20)
    own = FeedConfig.model_validate({"url": "http://a/y", "interval": "2h"})
    assert poll_interval(own, config, _never) == timedelta(hours=2)


def test_poll_interval_auto_with_default_and_per_feed_bounds() -> None:
    config = _config(interval="auto", min_interval="10m", max_interval="12h")
    plain = FeedConfig(url="http://a/x")
    assert poll_interval(plain, config, lambda: 0) == timedelta(hours=12)
    assert poll_interval(plain, config, lambda: 100_000) == timedelta(minutes=10)
    own = FeedConfig.model_validate({"url": "http://a/y", "min_interval": "1h", "max_interval": "2h"})
    assert poll_interval(own, config, lambda: 100_000) == timedelta(hours=1)
    assert poll_interval(own, config, lambda: 0) == timedelta(hours=2)
    fixed = FeedConfig.model_validate({"url": "http://a/z", "interval": "5m"})
    assert poll_interval(fixed, config, _never) == timedelta(minutes=5)
    auto = FeedConfig.model_validate({"url": "http://a/w", "interval": "auto"})
    assert poll_interval(auto, _config(interval="15m"), lambda: 14) == timedelta(hours=12)


# -- back-off and jitter ---------------------------------------------------------------------


def test_success_polls_after_the_interval_with_jitter() -> None:
    rng = random.Random(7)
    seen = {next_poll(10 * MIN, 0, NOW, rng=rng) - NOW for _ in range(200)}
    assert len(seen) > 150  # spread, so feeds started together drift apart
    assert all(9 * MIN <= d <= 11 * MIN for d in seen)


@pytest.mark.parametrize("errors", range(8))
def test_failures_double_the_interval_up_to_24_hours(errors: int) -> None:
    seed = 1000 + errors
    spread = random.Random(seed).uniform(-JITTER, JITTER)
    got = next_poll(15 * MIN, errors, NOW, rng=random.Random(seed)) - NOW
    base = 15 * MIN * 2**errors
    if base * (1 + spread) <= MAX_BACKOFF:
        assert got == base * (1 + spread)
    else:
        assert got == min(base, MAX_BACKOFF) * (1 - abs(spread))
    assert got <= MAX_BACKOFF


def test_back_off_is_capped_and_still_spread() -> None:
    rng = random.Random(3)
    delays = [next_poll(HOUR, errors, NOW, rng=rng) - NOW for errors in (6, 10, 30, 1000) for _ in range(50)]
    assert all(MAX_BACKOFF * (1 - JITTER) <= d <= MAX_BACKOFF for d in delays)
    assert len(set(delays)) > 150


def test_an_interval_longer_than_the_cap_is_kept() -> None:
    rng = random.Random(5)
    for errors in (0, 3):
        delay = next_poll(timedelta(days=2), errors, NOW, rng=rng) - NOW
        assert timedelta(days=2) * (1 - JITTER) <= delay <= timedelta(days=2)


def test_retry_after_is_a_floor() -> None:
    later = NOW + 3 * HOUR
    assert next_poll(10 * MIN, 1, NOW, later, random.Random(1)) == later
    earlier = NOW + MIN
    assert next_poll(10 * MIN, 1, NOW, earlier, random.Random(1)) > NOW + 17 * MIN


# -- the same policy, end to end through poll_feed ---------------------------------------------


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


def _setup(tmp_path: Path, *feeds: FeedConfig) -> tuple[Config, Store]:
    config = Config(feeds=list(feeds))
    store = SQLiteStore(tmp_path / "aggregator.db")
    sync_feeds(config, store)
    return config, store


async def test_consecutive_failures_back_off_and_success_resets(
    tmp_path: Path, server: HostileServer
) -> None:
    feed = FeedConfig.model_validate({"url": server.url("/flaky.xml"), "interval": "10m"})
    config, store = _setup(tmp_path, feed)
    clock = NOW
    async with Fetcher(config.fetch) as fetcher:
        for errors in (1, 2, 3):
            seed = 40 + errors
            report = await poll_feed(feed, config, store, fetcher, now=lambda: clock, rng=random.Random(seed))
            assert (report.outcome, report.status) == (Outcome.HTTP_ERROR, 404)
            state = store.feed_state(feed.key)
            assert state and state.error_count == errors and state.last_error == "HTTP 404 Not Found"
            spread = random.Random(seed).uniform(-JITTER, JITTER)
            expected = clock + 10 * MIN * 2**errors * (1 + spread)
            assert state.next_poll and abs((state.next_poll - expected).total_seconds()) <= 1
        server.files["/flaky.xml"] = OK_FEED
        report = await poll_feed(feed, config, store, fetcher, now=lambda: clock, rng=random.Random(9))
        assert report.outcome is Outcome.OK and report.inserted == 3
        state = store.feed_state(feed.key)
        assert state and state.error_count == 0 and state.last_error is None
        assert state.next_poll and 9 * MIN <= state.next_poll - clock <= 11 * MIN
    store.close()


@pytest.mark.parametrize(("path", "wait"), [("/rate-limited", 120), ("/unavailable-date", 3600)])
async def test_retry_after_postpones_the_next_poll(
    tmp_path: Path, server: HostileServer, path: str, wait: int
) -> None:
    feed = FeedConfig.model_validate({"url": server.url(path), "interval": "10s"})
    config, store = _setup(tmp_path, feed)
    async with Fetcher(config.fetch) as fetcher:
        before = datetime.now(UTC)
        report = await poll_feed(feed, config, store, fetcher, rng=random.Random(1))
    state = store.feed_state(feed.key)
    assert report.outcome is Outcome.HTTP_ERROR and state and state.next_poll
    assert abs((state.next_poll - before).total_seconds() - wait) < 5  # not the 20 s back-off
    assert "Retry-After" in (state.last_error or "")
    store.close()


async def test_auto_interval_end_to_end(tmp_path: Path, server: HostileServer) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [
        _item(f"Post {i}", f"https://busy.example/{i}", _date(*(now - i * 11 * HOUR).timetuple()[:5]))
        for i in range(14)  # 14 posts in the last week: every 12 hours on average
    ]
    old = [_item("Ancient", "https://busy.example/old", _date(2020, 1, 1))]
    server.files["/busy.xml"] = _rss("Busy", "https://busy.example/", recent + old).encode()
    feed = FeedConfig.model_validate({"url": server.url("/busy.xml"), "interval": "auto"})
    config, store = _setup(tmp_path, feed)
    async with Fetcher(config.fetch) as fetcher:
        report = await poll_feed(feed, config, store, fetcher, rng=random.Random(2))
    assert report.inserted == 15
    state = store.feed_state(feed.key)
    assert state and state.next_poll
    delay = state.next_poll - datetime.now(UTC)
    assert 12 * HOUR * (1 - JITTER) - MIN <= delay <= 12 * HOUR * (1 + JITTER)
    store.close()


# -- the `run` job's schedule -----------------------------------------------------------------


async def test_run_schedules_live_feeds_and_skips_gone_and_disabled(
    tmp_path: Path, server: HostileServer
) -> None:
    live = FeedConfig.model_validate({"url": server.url("/ok.xml"), "name": "live"})
    backing_off = FeedConfig.model_validate({"url": server.url("/server-error"), "name": "backing-off"})
    gone = FeedConfig.model_validate({"url": server.url("/gone"), "name": "gone"})
    off = FeedConfig.model_validate({"url": server.url("/atom.xml"), "name": "off", "enabled": False})
    config = Config(feeds=[live, backing_off, gone, off])
    service = Service(config, tmp_path, rng=random.Random(4))
    sync_feeds(config, service.store)
    service.fetcher = Fetcher(config.fetch)
    try:
        await service.poll(gone)  # 410: remembered, and its job removed
        assert service.scheduler.get_job(gone.key) is None
        hits = server.hits["/gone"]
        await service.poll(gone)  # a gone feed is not fetched again
        assert server.hits["/gone"] == hits == 1
        for _ in range(3):
            await service.poll(backing_off)
        state = service.store.feed_state(backing_off.key)
        assert state and state.error_count == 3 and state.next_poll
        service.scheduler.remove_all_jobs()

        now = datetime.now(UTC)
        service.schedule_feeds(now)  # as at start-up
        jobs = {job.id: job.trigger.run_date for job in service.scheduler.get_jobs()}
        assert set(jobs) == {live.key, backing_off.key}
        assert now <= jobs[live.key] <= now + timedelta(seconds=STARTUP_JITTER)
        assert jobs[backing_off.key] == state.next_poll  # back-off survives a restart
    finally:
        await service.fetcher.aclose()
        service.store.close()
