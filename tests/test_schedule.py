"""When feeds are polled: intervals, `interval: auto`, back-off, Retry-After, and the `run` job's
schedule. The policy functions are pure (clock and random source injected); the end-to-end
cases poll the hostile server on 127.0.0.1 with a real store."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import Config, Defaults, FeedConfig
from aggregator.fetch import Fetcher
from aggregator.models import FetchResult, Outcome, PollRecord
from aggregator.pipeline import poll_feed
from aggregator.policy import JITTER, MAX_BACKOFF, auto_interval, next_poll, poll_interval, sync_feeds
from aggregator.schedule import (
    SKIPPED_RETRY,
    STARTUP_JITTER,
    Health,
    Publisher,
    Service,
    file_identity,
    remove_temp_files,
)
from aggregator.store import SQLiteStore, Store
from tests.conftest import run_cli
from tests.feedserver import refused_url
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
    store = service.open_store()  # as the poll thread does
    service.fetcher = Fetcher(config.fetch)
    try:
        await service.poll(gone)  # 410: remembered, and its job removed
        assert service.scheduler.get_job(gone.key) is None
        hits = server.hits["/gone"]
        await service.poll(gone)  # a gone feed is not fetched again
        assert server.hits["/gone"] == hits == 1
        for _ in range(3):
            await service.poll(backing_off)
        state = store.feed_state(backing_off.key)
        assert state and state.error_count == 3 and state.next_poll
        service.scheduler.remove_all_jobs()

        now = datetime.now(UTC)
        service.schedule_feeds(now)  # as at start-up
        jobs = {job.id: job.trigger.run_date for job in service.scheduler.get_jobs()}
        assert set(jobs) == {live.key, backing_off.key}
        assert now <= jobs[live.key] <= now + timedelta(seconds=STARTUP_JITTER)
        assert jobs[backing_off.key] == state.next_poll  # back-off survives a restart

        service.scheduler.remove_all_jobs()
        service.poll_now = True  # `run --poll-now`: every feed at start-up, stored times aside
        service.schedule_feeds(now)
        jobs = {job.id: job.trigger.run_date for job in service.scheduler.get_jobs()}
        assert set(jobs) == {live.key, backing_off.key}
        assert all(now <= when <= now + timedelta(seconds=STARTUP_JITTER) for when in jobs.values())
    finally:
        await service.fetcher.aclose()
        store.close()


# -- publishing: coalesced, bounded, never over good pages -------------------------------------


def _publisher(tmp_path: Path, **kw: object) -> tuple[Publisher, Health, Store]:
    config = Config(feeds=[FeedConfig(url="http://127.0.0.1:9/feed.xml", name="f")])
    db = tmp_path / "aggregator.db"
    store = SQLiteStore(db)  # the service's own connection, as the poll thread opens it
    sync_feeds(config, store)
    health = Health(db, identity=file_identity(db))
    return Publisher(config, db, tmp_path / "public", health, **kw), health, store  # type: ignore[arg-type]


def _count_while(
    publisher: Publisher, seconds: float, change_every: float | None
) -> tuple[list[float], float]:
    """Watch `publisher.publishes` for `seconds` (bounded), calling changed() every `change_every`;
    returns the times publishes were seen and the time of the last change."""
    seen, last_change = [], 0.0
    count = publisher.publishes
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        if change_every is not None:
            publisher.changed()
            last_change = now
        if publisher.publishes != count:
            count = publisher.publishes
            seen.append(now)
        time.sleep(change_every or 0.02)
    return seen, last_change


def test_a_stream_of_changes_cannot_starve_publishing(tmp_path: Path) -> None:
    publisher, health, store = _publisher(tmp_path, delay=0.3, max_delay=0.6, check_every=60)
    publisher.start()
    try:
        assert _wait(lambda: publisher.publishes == 1, 10)  # at start: pages before any poll
        seen, last_change = _count_while(publisher, 3.0, change_every=0.05)  # never 0.3 s quiet
        assert len(seen) >= 3, seen  # bounded by max_delay, not pushed back by every change
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        assert all(g < 2.0 for g in gaps), gaps  # max_delay 0.6 s plus the publish, on busy cores
        # The last changes are not dropped, even those that came during a publish: one more
        # publish starts after them.
        time.sleep(1.5)
        assert publisher.last_started >= last_change
        assert health.report()[0] and health.last_publish is not None
    finally:
        publisher.stop()
        store.close()


def test_republishes_on_a_new_day_and_when_public_is_missing(tmp_path: Path) -> None:
    days = [date(2025, 1, 6)]
    publisher, _, store = _publisher(tmp_path, check_every=0.2, today=lambda: days[0])
    publisher.start()
    try:
        assert _wait(lambda: publisher.publishes == 1, 10)
        time.sleep(0.6)
        assert publisher.publishes == 1  # nothing changed: no rebuild
        days[0] = date(2025, 1, 7)  # midnight in site.timezone
        assert _wait(lambda: publisher.publishes == 2, 5)
        index = tmp_path / "public" / "index.html"
        shutil.rmtree(tmp_path / "public")
        assert _wait(lambda: publisher.publishes == 3, 5)
        assert index.is_file()
    finally:
        publisher.stop()
        store.close()


@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_a_missing_or_replaced_database_never_blanks_the_site(tmp_path: Path, fault: str) -> None:
    publisher, health, store = _publisher(tmp_path, check_every=60)
    db = tmp_path / "aggregator.db"
    assert publisher.publish_now("start") is not None
    page = (tmp_path / "public" / "index.html").read_bytes()
    if fault == "deleted":
        db.unlink()
    else:
        other = SQLiteStore(tmp_path / "other.db")  # a fresh, empty database put in its place
        other.close()
        os.replace(tmp_path / "other.db", db)
    assert publisher.publish_now("changes") is None
    assert (tmp_path / "public" / "index.html").read_bytes() == page
    healthy, doc = health.report()
    assert not healthy and doc["store"] == "unreachable"
    assert any(("missing" if fault == "deleted" else "replaced") in r for r in doc["reasons"])
    assert any(r.startswith("publish:") for r in doc["reasons"])
    publisher.stop()
    store.close()


def _wait(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


# -- the scheduler never loses a feed ---------------------------------------------------------


@pytest.mark.parametrize("fault", ["database deleted", "connection closed"])
async def test_a_poll_that_fails_for_any_reason_is_rescheduled_with_back_off(
    tmp_path: Path, server: HostileServer, fault: str
) -> None:
    feed = FeedConfig.model_validate({"url": server.url("/ok.xml"), "name": "ok", "interval": "10m"})
    service = Service(Config(feeds=[feed]), tmp_path, rng=random.Random(8))
    store = service.open_store()
    service.fetcher = Fetcher(service.config.fetch)
    service.scheduler.start(paused=True)  # jobs are only replaced in a started scheduler
    try:
        if fault == "database deleted":
            (tmp_path / "aggregator.db").unlink()
        else:
            store.close()  # every query now raises sqlite3.ProgrammingError: not an httpx error
        for errors in (1, 2):
            before = datetime.now(UTC)
            await service.poll(feed)  # never raises
            job = service.scheduler.get_job(feed.key)
            assert job is not None, "the feed fell off the schedule"
            delay = job.trigger.run_date - before
            assert 10 * MIN * 2**errors * (1 - JITTER) - MIN <= delay <= 10 * MIN * 2**errors * (1 + JITTER)
        healthy, doc = service.health.report()
        assert not healthy and doc["feeds_failing"] == 1 and doc["store"] == "unreachable"
    finally:
        service.scheduler.shutdown(wait=False)
        await service.fetcher.aclose()
        store.close()


async def test_a_poll_skipped_while_one_is_still_running_stays_on_the_schedule(tmp_path: Path) -> None:
    """APScheduler drops a `date` job it skips for "maximum number of running instances";
    the feed must come back on the schedule (CI: a feed fell off while a write lock blocked
    the loop, so its rescheduled poll came due before the finished one was released)."""
    feed = FeedConfig.model_validate({"url": "http://127.0.0.1:9/feed.xml", "name": "slow"})
    service = Service(Config(feeds=[feed]), tmp_path, rng=random.Random(3))
    running = asyncio.Event()
    release = asyncio.Event()
    started: list[datetime] = []

    async def poll(_: FeedConfig) -> None:  # a poll that is still running when the next is due
        started.append(datetime.now(UTC))
        running.set()
        await release.wait()

    service.poll = poll  # type: ignore[method-assign]
    service.scheduler.start()
    try:
        service.scheduler.add_job(poll, "date", run_date=datetime.now(UTC), args=[feed], id=feed.key)
        await asyncio.wait_for(running.wait(), 5)
        # The same feed's next poll comes due while the first still runs: skipped by APScheduler.
        before = datetime.now(UTC)
        service.scheduler.add_job(
            poll, "date", run_date=before, args=[feed], id=feed.key, replace_existing=True
        )
        for _ in range(100):
            await asyncio.sleep(0.02)
            job = service.scheduler.get_job(feed.key)
            if job is not None and job.trigger.run_date > before:
                break
        job = service.scheduler.get_job(feed.key)
        assert job is not None, "the feed fell off the schedule"
        delay = (job.trigger.run_date - before).total_seconds()
        assert SKIPPED_RETRY - 1 <= delay <= SKIPPED_RETRY + 1
        assert len(started) == 1  # never two polls of one feed at once
    finally:
        release.set()
        service.scheduler.shutdown(wait=False)


def test_health_says_when_the_scheduler_stalls_or_stops(tmp_path: Path) -> None:
    health = Health(tmp_path / "aggregator.db", scheduler_started=True)
    assert health.report() == (True, health.report()[1])
    health.heartbeat = time.monotonic() - 1000
    healthy, doc = health.report()
    assert not healthy and any("no sign of life" in r for r in doc["reasons"])
    health.heartbeat = time.monotonic()
    health.scheduler_error = "RuntimeError: boom"
    healthy, doc = health.report()
    assert not healthy and doc["scheduler"] == "stopped"


def test_prune_runs_on_the_poll_thread_that_owns_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed = FeedConfig.model_validate({"url": refused_url(), "name": "down", "interval": "1h"})
    service = Service(Config(feeds=[feed]), tmp_path, rng=random.Random(3))
    service.start_background()
    try:
        other = SQLiteStore(tmp_path / "aggregator.db")  # this thread's own connection
        old = datetime.now(UTC) - timedelta(days=40)
        other.record_poll(PollRecord(
            FetchResult(feed.key, feed.key, None, Outcome.NETWORK_ERROR, error="x", fetched_at=old),
            error="x", outcome="network-error", error_count=1, next_poll=None,)
        )  # fmt: skip
        assert any(r["started"] < (old + MIN).isoformat() for r in other.fetch_log(feed.key))
        assert service._loop is not None
        job = service.scheduler.get_job("prune-fetch-log")
        assert job is not None and asyncio.iscoroutinefunction(job.func)  # runs on the poll loop
        asyncio.run_coroutine_threadsafe(service.prune(), service._loop).result(10)
        assert all(r["started"] >= (old + MIN).isoformat() for r in other.fetch_log(feed.key))
        other.close()
    finally:
        service.stop_background()
    assert "pruning the fetch log failed" not in caplog.text


def test_leftover_temporary_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    tmps = [tmp_path / ".index.html.abc.tmp", tmp_path / "feeds" / ".all.atom.x1.tmp"]
    keep = [tmp_path / "index.html", tmp_path / "feeds" / "all.atom"]
    for p in tmps + keep:
        p.write_text("x")
    assert remove_temp_files(tmp_path) == 2
    assert not any(p.exists() for p in tmps) and all(p.exists() for p in keep)


def test_run_that_cannot_open_its_store_says_so_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / "aggregator.db")
    conn.execute("PRAGMA user_version=99")  # a database from a newer program
    conn.close()
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds: []\n", encoding="utf-8")
    result = run_cli("run", "--port", "0", config=config, data=data, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("aggregator run: ") and "newer than this program" in last, last
    assert "serving" not in result.stdout  # no banner before the refusal
