"""The long-running job (`aggregator run`): polls on a schedule, publishes, serves.

Three threads, each owning what it touches (SQLite objects stay on the thread that made them):

- the poll thread: its own asyncio loop, APScheduler, the fetcher, the parse worker pool
  (`pipeline.parse_pool`: processes from `workers.pool_min_feeds()` enabled feeds) and the poll store
  connection. Every poll is rescheduled from a `finally`, whatever it raised;
- the publish thread: its own store connection; publishes coalesced changes, at start, when
  the day changes in `site.timezone`, when `public/` is missing, and retries after a failure;
- the main thread: uvicorn serving `public/` and `/healthz`, which never waits on SQLite.

They share only the store file, the files on disk and a `Health` record (a lock, plain values).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import watchfiles
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from . import websub
from .config import Config, ConfigError, FeedConfig, load_config
from .fetch import Fetcher
from .metrics import Metrics
from .models import Outcome, PollReport
from .pages_plan import ARCHIVE_INDEX
from .pipeline import parse_pool, poll_feed
from .policy import next_poll, poll_interval, sync_feeds
from .publish import Digests, PublishReport, days_to_rebuild, is_feed_path, publish
from .serve import App, CachePolicy, create_app, make_server, serve_forever
from .store import Store, StoreError, default_store_url, open_store, sqlite_path
from .urls import strip_secrets
from .workers import ParsePool

log = logging.getLogger("aggregator.schedule")

PUBLISH_DELAY = 2.0  # seconds of quiet after a change before publishing: a burst is one rebuild
PUBLISH_MAX_DELAY = 5.0  # seconds after the first unpublished change, however many follow
CHECK_EVERY = 30.0  # seconds between checks for a missing public/, a new day, a failed publish
RETRY_FIRST = 2.0  # seconds before the first retry of a failed publish (then doubling)
STARTUP_JITTER = 10.0  # seconds: first polls spread out, not all at once
PRUNE_EVERY = timedelta(hours=6)
HEARTBEAT = 5.0  # seconds between the poll loop's signs of life
STALLED_AFTER = 120.0  # seconds without a heartbeat before /healthz calls the scheduler stalled
STOP_POLLS = 3.0  # seconds in-flight polls get to finish on exit before they are abandoned
STOP_PUBLISH = 5.0  # seconds a publish in progress gets to finish on exit
SKIPPED_RETRY = 5.0  # seconds: a poll APScheduler skipped (one still running) is tried again


class StoreUnavailable(Exception):
    """The database file is missing or is not the one the service opened."""


class StartupError(Exception):
    """`run` could not start: the store could not be opened or the schedule built (the message
    says why in words; the cause is chained)."""


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of `path`, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def remove_temp_files(public_dir: Path) -> int:
    """Delete the publisher's leftover temporary files (`.NAME.*.tmp`, from a killed publish)."""
    removed = 0
    if public_dir.is_dir():
        for tmp in public_dir.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


@dataclass
class Health:
    """What `/healthz` reports; written by the poll and publish threads, read by the server.

    Unhealthy (503) when the store is unreachable or replaced, the last publish failed, or the
    scheduler stopped or has not shown a sign of life for STALLED_AFTER seconds."""

    store_path: Path | None  # the SQLite file; None for a server store (PostgreSQL)
    identity: tuple[int, int] | None = None  # of the database the service opened
    scheduler_started: bool = False
    scheduler_error: str | None = None
    heartbeat: float = field(default_factory=time.monotonic)
    store_error: str | None = None
    publish_error: str | None = None
    last_poll: datetime | None = None  # last poll that reached the feed and was stored
    last_publish: datetime | None = None
    failing: set[str] = field(default_factory=set)
    config_error: str | None = None  # the last edit of feeds.yaml that was refused
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def store_problem(self) -> str | None:
        """Why the store cannot be used (missing or replaced file), or None. A stat: cheap."""
        if self.identity is None or self.store_path is None:
            return None
        now = file_identity(self.store_path)
        if now is None:
            return f"the database {self.store_path} is missing (deleted while running)"
        if now != self.identity:
            return f"the database {self.store_path} was replaced while running (restart to use it)"
        return None

    def polled(self, report: PollReport, when: datetime) -> None:
        with self.lock:
            # poll_feed reports a store it could not write (disk full, locked, read-only) as
            # its outcome rather than raising: the store is then what /healthz must name.
            self.store_error = report.error if report.outcome is Outcome.STORE_ERROR else None
            if report.outcome in (Outcome.OK, Outcome.NOT_MODIFIED, Outcome.GONE):
                if report.outcome is not Outcome.GONE:  # gone is stopped, not failing
                    self.last_poll = when
                self.failing.discard(report.feed_url)
            else:
                self.failing.add(report.feed_url)

    def poll_failed(self, feed_url: str, reason: str, store: bool) -> None:
        with self.lock:
            self.failing.add(feed_url)
            if store:
                self.store_error = reason

    def report(self) -> tuple[bool, Mapping[str, Any]]:
        """(healthy, JSON document) for `/healthz`."""
        problem = self.store_problem()
        with self.lock:
            reasons = []
            if problem or self.store_error:
                reasons.append(f"store: {problem or self.store_error}")
            if self.publish_error:
                reasons.append(f"publish: {self.publish_error}")
            if self.scheduler_error:
                reasons.append(f"scheduler: {self.scheduler_error}")
            elif self.scheduler_started and time.monotonic() - self.heartbeat > STALLED_AFTER:
                reasons.append(f"scheduler: no sign of life for {STALLED_AFTER:.0f} s")
            doc = {
                "status": "failing" if reasons else "ok",
                "reasons": reasons,
                "store": "unreachable" if (problem or self.store_error) else "ok",
                "scheduler": "stopped" if self.scheduler_error else "alive",
                "last_poll": _iso(self.last_poll),
                "last_publish": _iso(self.last_publish),
                "feeds_failing": len(self.failing),
                # A refused edit does not make the service unhealthy: the last good config runs.
                "config_error": self.config_error,
            }
        return not reasons, doc


class Publisher:
    """Publishing in its own thread with its own store connection: coalesced, never dropped.

    `changed(days)` marks the site stale. A publish runs PUBLISH_DELAY after the last change, but
    never later than PUBLISH_MAX_DELAY after the first unpublished one, so a steady stream of
    changes cannot starve it; changes that arrive during a publish cause one more afterwards.
    Every CHECK_EVERY seconds (and at start, and when the server asks: `check_soon`) it also
    publishes when `public/index.html` is missing, when the day changed in `site.timezone`, or
    when the last publish failed.
    Publishing is incremental (issue 13): a publish after polls rebuilds the day pages and day
    archives of the days those polls touched (and their neighbours), plus everything that is
    not per day; the first publish, one after `changed()` without days (a config reload), one
    for a missing `public/` and one after a failure rebuild everything; a new day rebuilds the
    days from the last publish's "today" to the new one (their "latest" and "complete" marks
    move).
    It refuses to publish while the store is missing or replaced: never an empty site over
    good pages."""

    def __init__(
        self,
        config: Config,
        store_path: Path,
        public_dir: Path,
        health: Health,
        delay: float = PUBLISH_DELAY,
        max_delay: float = PUBLISH_MAX_DELAY,
        check_every: float = CHECK_EVERY,
        today: Callable[[], date] | None = None,
        metrics: Metrics | None = None,
        store_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.store_url = store_url or str(store_path)
        self.metrics = metrics or Metrics()
        self.store_path = store_path
        self.public_dir = public_dir
        self.health = health
        self.delay, self.max_delay, self.check_every = delay, max_delay, check_every
        self._cond = threading.Condition()
        self._first: float | None = time.monotonic()  # publish at start: pages exist before polls
        self._last: float | None = self._first - delay
        self._stop = False
        self._check_now = False
        self._next_check = time.monotonic() + check_every
        self._retry = RETRY_FIRST
        self._failed = False
        self._day: date | None = None
        self._full = True  # the next publish rebuilds everything (the first one does)
        self._days: set[date] = set()  # days touched since the last publish began
        self.clock = clock or (lambda: datetime.now(UTC))  # the time publishing renders for
        # self.config, not config: a reload may change site.timezone.
        self.today = today or (lambda: self.clock().astimezone(self.config.site.zone).date())
        self._store: Store | None = None
        self.digests = Digests()  # digest items of unchanged days, kept between publishes
        self.publishes = 0  # completed publishes
        self.last_started = 0.0  # monotonic time the latest publish began
        self.thread = threading.Thread(target=self._main, name="publisher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def changed(self, days: Collection[date] | None = None) -> None:
        """Something stored changed: publish soon (thread-safe, never blocks). `days`: the days
        (site.timezone) whose entries changed (`PollReport.days`); None: anything may have
        changed (settings, languages), so the next publish rebuilds everything."""
        now = time.monotonic()
        with self._cond:
            if days is None:
                self._full = True
            else:
                self._days.update(days)
            if self._first is None:
                self._first = now
            self._last = now
            self._cond.notify()

    def check_soon(self) -> None:
        """Run the periodic check now (the server found `public/` missing; thread-safe)."""
        with self._cond:
            self._check_now = True
            self._cond.notify()

    def stop(self, timeout: float = STOP_PUBLISH) -> None:
        """Stop after the publish in progress, if any (waits at most `timeout` seconds)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _due_in(self, now: float) -> float | None:
        if self._first is None or self._last is None:
            return None
        return min(self._last + self.delay, self._first + self.max_delay) - now

    def _main(self) -> None:
        self._next_check = time.monotonic() + self.check_every
        try:
            while True:
                with self._cond:
                    while not self._stop:
                        now = time.monotonic()
                        due = self._due_in(now)
                        if (due is not None and due <= 0) or now >= self._next_check or self._check_now:
                            break
                        waits = [self._next_check - now] + ([due] if due is not None else [])
                        self._cond.wait(min(waits))
                    if self._stop:
                        return
                    now = time.monotonic()
                    due = self._due_in(now)
                    reason = None
                    self._check_now = False
                    if due is not None and due <= 0:
                        self._first = self._last = None
                        reason = "changes"
                if reason is None:
                    self._next_check = now + self.check_every
                    reason = self._check()
                    if reason is None:
                        continue
                self.publish_now(reason)
        finally:
            if self._store is not None:
                self._store.close()

    def _check(self) -> str | None:
        if not all((self.public_dir / page).is_file() for page in ("index.html", ARCHIVE_INDEX)):
            self._rebuild_all()  # whatever is missing besides index.html
            return "public/ is missing"
        if self._failed:
            self._rebuild_all()  # which files failed is not kept
            return "retry after a failed publish"
        if self._day is not None and self.today() != self._day:
            return "a new day"
        return None

    def publish_now(self, reason: str) -> PublishReport | None:
        """One publish, on the calling thread (the publisher's own, except in tests)."""
        self.last_started = time.monotonic()
        problem = self.health.store_problem()
        if problem:
            self._fail(problem)
            return None
        now, day = self.clock(), self.today()
        started = time.monotonic()
        with self._cond:  # what changed until now is this publish's; later changes the next's
            full, days, self._days, self._full = self._full, self._days, set(), False
        try:
            if self._store is None:
                # Opened, never created: the poll thread made it; a missing one is an error.
                self._store = open_store(self.store_url, create=False)
            # What the store says is owed (marked by polls, a `fetch --no-publish`, a failed
            # publish of another process); this process's polls told us theirs directly.
            try:
                days |= self._store.take_unpublished()
            except StoreError as e:  # our own polls' days are known; the rest waits for next time
                log.warning("reading the days owed to publishing failed: %s", e)
            changed = None if full else days_to_rebuild(days, self._day, day)
            report = publish(
                self._store, self.config, self.public_dir, now=now, changed_days=changed,
                digests=self.digests,
            )  # fmt: skip
        except Exception as e:  # a failing publish keeps the last good pages and is retried
            self._rebuild_all()  # whatever publish comes next (a retry, or one for changes)
            self._fail(f"{type(e).__name__}: {e}", exc=not isinstance(e, StoreError | OSError))
            return None
        if not report.failed:  # else still failing: _fail below logs only a new reason
            self._failed = False
            self._retry = RETRY_FIRST
        self._day = day
        self.publishes += 1
        with self.health.lock:
            if not report.failed:
                self.health.publish_error = None
            self.health.last_publish = datetime.now(UTC)
        log.info(
            "published (%s) files=%d unchanged=%d days=%s",
            reason, len(report.written), report.unchanged, "all" if changed is None else len(changed),
        )  # fmt: skip
        self.metrics.observe_publish(time.monotonic() - started, len(report.written))
        with contextlib.suppress(Exception):  # the gauges are a nicety; publishing is done
            self.metrics.observe_states(self._store.feed_states().values(), datetime.now(UTC))
        if self.config.site.websub_hub:
            self._ping_hub(report.written)
        if report.failed:
            self._rebuild_all()  # which files failed is not kept: the next publish is whole
            # The other files are out; these keep their last good version. Retried like a
            # failed publish, and /healthz says which until they are written.
            path, error = report.failed[0]
            more = f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
            self._fail(f"{len(report.failed)} output files could not be written: {path}: {error}{more}")
        return report

    def _rebuild_all(self) -> None:
        """The next publish rebuilds everything (no publish is scheduled by this)."""
        with self._cond:
            self._full = True

    def _ping_hub(self, written: tuple[str, ...]) -> None:
        """Tell the WebSub hub which feeds changed, from a thread of its own: a slow or failing
        hub never delays the next publish (websub.ping is bounded and never raises)."""
        base = str(self.config.site.base_url)
        topics = [urljoin(base, rel) for rel in written if is_feed_path(rel)]
        if not topics:
            return
        hub = str(self.config.site.websub_hub)

        async def send() -> None:
            async with httpx.AsyncClient(headers={"user-agent": self.config.fetch.user_agent}) as client:
                await websub.ping(hub, topics, client)

        threading.Thread(target=asyncio.run, args=(send(),), name="websub", daemon=True).start()

    def _fail(self, reason: str, exc: bool = False) -> None:
        if not self._failed or self.health.publish_error != reason:
            log.error("publish failed: %s", reason, exc_info=exc)  # once per reason, not per retry
        self._failed = True
        # Retry soon (2 s, doubling up to CHECK_EVERY): a freed disk shows pages again quickly.
        self._next_check = min(self._next_check, time.monotonic() + self._retry)
        self._retry = min(self._retry * 2, self.check_every)
        with self.health.lock:
            self.health.publish_error = reason


class Service:
    """`aggregator run`: see the module docstring for who owns what."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        rng: random.Random | None = None,
        store_url: str | None = None,
        config_path: Path | None = None,
        poll_now: bool = False,
    ) -> None:
        self.config = config
        # The feeds polled now, by key: a poll that ends after a reload removed or changed its
        # feed is counted and rescheduled only as the reloaded configuration says.
        self.feeds = _enabled_by_key(config)
        self.poll_now = poll_now  # first polls at start-up, whatever the stored schedule says
        self.config_path = config_path  # watched and re-read (hot reload) when given
        self.data_dir = data_dir
        self.public_dir = data_dir / "public"
        self.store_url = store_url or default_store_url(data_dir)
        sqlite_file = sqlite_path(self.store_url)
        # What messages name; a server store's URL without its password.
        self.store_path = sqlite_file if sqlite_file is not None else Path(strip_secrets(self.store_url))
        self.rng = rng or random.Random()
        self.health = Health(sqlite_file)  # file identity checks: SQLite only
        self.metrics = Metrics()  # this service's own registry, served at /metrics
        self.publisher = Publisher(
            config, self.store_path, self.public_dir, self.health, metrics=self.metrics,
            store_url=self.store_url,
        )  # fmt: skip
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler.add_listener(self._poll_skipped, EVENT_JOB_MAX_INSTANCES)
        self.store: Store | None = None  # the poll thread's connection
        self.fetcher: Fetcher | None = None
        # Parse worker processes (issue 15), made and used on the poll thread; None: parse
        # in a thread (few feeds or one core, `pipeline.parse_pool`).
        self.pool: ParsePool | None = None
        self.stopping = False
        self._errors: dict[str, int] = {}  # consecutive failures the store could not record
        self._orphans: set[asyncio.Task[None]] = set()  # polls started without APScheduler
        self._reloads: set[asyncio.Task[Any]] = set()  # reloads and retired fetchers closing
        self._watcher: asyncio.Task[None] | None = None
        self._app: App | None = None  # the server's app, once serving
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._poll_thread = threading.Thread(target=self._poll_main, name="poller", daemon=True)

    # -- one poll ----------------------------------------------------------------------------

    def open_store(self) -> Store:
        """Open (or create) the store on the calling thread and remember which file it is."""
        self.store = open_store(self.store_url)
        if self.health.store_path is not None:
            self.health.identity = file_identity(self.health.store_path)
        sync_feeds(self.config, self.store)
        return self.store

    async def poll(self, feed: FeedConfig) -> None:
        """Poll one feed; whatever happens, schedule its next poll (unless it is gone).

        The next poll is the one the pipeline stored (interval, back-off, Retry-After). When the
        poll or the store failed, so nothing was stored, it is an in-memory back-off instead:
        the feed's interval doubled per consecutive failure (`policy.next_poll`)."""
        report: PollReport | None = None
        gone = False
        try:
            problem = self.health.store_problem()
            if problem:
                raise StoreUnavailable(problem)
            assert self.store is not None and self.fetcher is not None
            state = self.store.feed_state(feed.key)
            if state and state.gone:
                gone = True
                return
            report = await poll_feed(
                feed, self.config, self.store, self.fetcher, rng=self.rng, state=state, pool=self.pool
            )
            gone = report.outcome is Outcome.GONE
            self._errors.pop(feed.key, None)
            if feed.key in self.feeds:  # else removed while it was polled: nothing to show
                self.health.polled(report, datetime.now(UTC))
                self.metrics.observe_poll(report)
            # Entries changed, or the feed started or stopped failing: pages list failing feeds
            # until the first entries arrive, so they must hear of it.
            if report.changed or (state.last_error if state else None) != report.error:
                self.publisher.changed(report.days)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            # Abandoned on exit: nothing of it was committed that should not be (each store
            # write is synchronous, so cancellation only lands between them).
        except Exception as e:
            store_fault = isinstance(e, StoreUnavailable | StoreError | OSError)
            reason = f"{type(e).__name__}: {e}"
            self._errors[feed.key] = self._errors.get(feed.key, 0) + 1
            self.health.poll_failed(feed.key, reason, store=store_fault)
            if store_fault:  # the environment, not a bug: one line is the whole story
                log.error("feed=%r poll failed: %s", feed.title, reason)
            else:
                log.exception("feed=%r poll crashed", feed.title)
        finally:
            if not self.stopping:
                self._reschedule(
                    feed,
                    stored=report is not None and report.outcome is not Outcome.STORE_ERROR,
                    gone=gone,
                    planned=report.next_poll if report is not None else None,
                )

    def _reschedule(
        self, feed: FeedConfig, stored: bool, gone: bool, planned: datetime | None = None
    ) -> None:
        """Put the feed's next poll on the schedule; never raises (the feed must not be lost).
        `planned` is the time the poll chose (with back-off), used when the store cannot say.
        A feed a reload removed or disabled while it was polled is not put back; one it changed
        goes on with its new settings."""
        current = self.feeds.get(feed.key)
        if current is None:
            return
        feed = current
        when: datetime | None = planned
        now = datetime.now(UTC)
        if stored and self.store is not None:
            try:
                state = self.store.feed_state(feed.key)
            except Exception as e:
                log.error("feed=%r reading its next poll failed: %s: %s", feed.title, type(e).__name__, e)
            else:
                if state is not None:
                    gone = gone or state.gone
                    when = state.next_poll
        if gone:
            with contextlib.suppress(Exception):
                job = self.scheduler.get_job(feed.key)
                if job:
                    job.remove()
            return
        if when is None or when < now:
            when = self._fallback(feed, now)
        try:
            self.scheduler.add_job(
                self.poll, "date", run_date=when, args=[feed], id=feed.key,
                replace_existing=True, misfire_grace_time=None,
            )  # fmt: skip
        except Exception:  # would lose the feed: schedule it on the loop itself, and say so
            log.exception("feed=%r could not be rescheduled; using a plain timer", feed.title)
            try:
                loop = asyncio.get_running_loop()
                delay = max(0.0, (when - now).total_seconds())
                loop.call_later(delay, self._start_poll, feed)
            except RuntimeError:  # no loop to run it: /healthz must say the schedule is broken
                with self.health.lock:
                    self.health.scheduler_error = f"could not reschedule {feed.title!r}"

    def _poll_skipped(self, event: JobSubmissionEvent) -> None:
        """APScheduler skipped a feed's poll because one is still counted as running, and
        drops a skipped `date` job: put the feed back on the schedule, or it is never polled
        again. Measured (CI, a write lock held 15 s): a poll reschedules itself from its own
        `finally`; while synchronous store calls blocked the loop, the new date came due before
        the finished poll's instance was released, and the feed fell off the schedule.
        The still-running poll, if any, replaces this job when it reschedules itself."""
        feed = self.feeds.get(event.job_id)
        if feed is None or self.stopping:
            return
        log.warning("feed=%r poll skipped: the previous one is still finishing; again in %.0f s",
                    feed.title, SKIPPED_RETRY)  # fmt: skip
        planned = datetime.now(UTC) + timedelta(seconds=SKIPPED_RETRY)
        self._reschedule(feed, stored=False, gone=False, planned=planned)

    def _start_poll(self, feed: FeedConfig) -> None:
        task = asyncio.get_running_loop().create_task(self.poll(feed))
        self._orphans.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._orphans.discard)

    def _fallback(self, feed: FeedConfig, now: datetime) -> datetime:
        """In-memory back-off for a poll whose outcome could not be stored."""
        try:
            # `auto` without the store's count: its shortest interval (back-off stretches it).
            interval = poll_interval(feed, self.config, lambda: 1 << 30)
        except Exception:
            interval = timedelta(minutes=15)
        return next_poll(interval, self._errors.get(feed.key, 1), now, rng=self.rng)

    # -- the schedule ------------------------------------------------------------------------

    def schedule_feeds(self, now: datetime) -> None:
        """One job per enabled feed that is not gone, at its stored next poll (the schedule
        survives restarts: interval, back-off, Retry-After), or, when that is due, never set or
        `poll_now`, within STARTUP_JITTER seconds of start."""
        assert self.store is not None
        states = self.store.feed_states()
        for feed in self.config.feeds:
            state = states.get(feed.key)
            if not feed.enabled:
                continue
            if state and state.gone:
                log.warning("feed=%r answered 410 Gone earlier: not polled", feed.title)
                continue
            with self.health.lock:
                if state and state.last_error:
                    self.health.failing.add(feed.key)
                # /healthz tells the last successful poll from the start, not only after one.
                polled = state.last_polled if state else None
                if (
                    polled is not None
                    and state is not None
                    and state.last_outcome in (Outcome.OK.value, Outcome.NOT_MODIFIED.value)
                    and (self.health.last_poll is None or polled > self.health.last_poll)
                ):
                    self.health.last_poll = polled
            first = now + timedelta(seconds=self.rng.uniform(0, STARTUP_JITTER))
            if state and state.next_poll and state.next_poll > first and not self.poll_now:
                first = state.next_poll  # the stored schedule: interval, back-off, Retry-After
            self.scheduler.add_job(
                self.poll, "date", run_date=first, args=[feed], id=feed.key,
                replace_existing=True, misfire_grace_time=None,
            )  # fmt: skip

    async def prune(self) -> None:
        """Delete poll records older than `fetch.log_retention`; on the poll loop, whose thread
        owns the connection (a job in APScheduler's thread pool could not use it)."""
        if self.store is None or self.health.store_problem():
            return
        try:
            removed = self.store.prune_fetch_log(self.config.fetch.log_retention, datetime.now(UTC))
        except Exception as e:
            log.error("pruning the fetch log failed: %s: %s", type(e).__name__, e)
            return
        log.info("pruned fetch log rows=%d", removed)

    # -- the poll thread ---------------------------------------------------------------------

    def _poll_main(self) -> None:
        try:
            asyncio.run(self._poll_loop())
        except BaseException as e:  # reported through /healthz and the log
            with self.health.lock:
                self.health.scheduler_error = f"{type(e).__name__}: {e}"
            if self.health.scheduler_started:  # a startup failure is reported by start_background
                log.error("the poll scheduler stopped: %s: %s", type(e).__name__, e)
            self._startup_error = self._startup_error or e
            self._ready.set()

    async def _poll_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            self.open_store()
            self.fetcher = Fetcher(self.config.fetch)
            self.pool = parse_pool(len(self.feeds))
            now = datetime.now(UTC)
            self.schedule_feeds(now)
            self.scheduler.add_job(
                self.prune, "interval", seconds=PRUNE_EVERY.total_seconds(), id="prune-fetch-log",
                next_run_time=now + timedelta(minutes=1), replace_existing=True,
            )  # fmt: skip
            self.scheduler.start()
            if self.config_path is not None:
                self._watcher = asyncio.create_task(self._watch_config())
        except BaseException as e:
            self._startup_error = e
            self._ready.set()
            raise
        with self.health.lock:
            self.health.scheduler_started = True
        self._ready.set()
        try:
            while not self._stop_event.is_set():
                with self.health.lock:
                    self.health.heartbeat = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), HEARTBEAT)
        finally:
            await self._shutdown_polls()

    # -- hot reload ---------------------------------------------------------------------------

    async def _watch_config(self) -> None:
        """Reload when feeds.yaml changes on disk. The directory is watched, not the file:
        editors save by writing a new file and renaming it over the old one."""
        assert self.config_path is not None and self._stop_event is not None
        path = self.config_path.resolve()
        try:
            async for _ in watchfiles.awatch(
                path.parent,
                watch_filter=lambda _change, changed: Path(changed).name == path.name,
                stop_event=self._stop_event,
                debounce=300,
                rust_timeout=1000,
            ):
                await self.reload("changed on disk")
        except Exception as e:  # no watching (inotify limits, ...): SIGHUP still reloads
            log.error(
                "not watching %s for changes (%s: %s); send SIGHUP to reload", path, type(e).__name__, e
            )

    def request_reload(self) -> None:
        """Reload feeds.yaml on the poll thread (thread- and signal-safe: SIGHUP calls this)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: self._keep(loop.create_task(self.reload("SIGHUP"))))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a task until it ends (the loop keeps only weak references to tasks)."""
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self, reason: str) -> bool:
        """Re-read feeds.yaml and apply it: added feeds are polled within seconds, removed or
        disabled ones stop (their entries are kept), changed ones use their new settings from
        their next poll, site and fetch settings apply at once (republished). An invalid file
        is logged with file, line and field and changes nothing: the last good configuration
        keeps running (and `/healthz` shows the error). Returns whether it applied."""
        if self.config_path is None or self.store is None:
            return False
        try:
            new = load_config(self.config_path)
        except (ConfigError, OSError) as e:
            log.error("%s not reloaded (%s); the last good configuration keeps running:\n%s",
                      self.config_path, reason, e)  # fmt: skip
            with self.health.lock:
                self.health.config_error = str(e)
            return False
        with self.health.lock:
            self.health.config_error = None
        old = self.config
        if new == old:
            return False
        self.config = new
        before, after = self.feeds, _enabled_by_key(new)
        self.feeds = after
        self.publisher.config = new
        if self._app is not None:  # Cache-Control follows the new poll intervals
            self._app.files.policy = CachePolicy.from_config(new)
        try:
            sync_feeds(new, self.store)
        except Exception as e:
            log.error("recording the reloaded feeds failed: %s: %s", type(e).__name__, e)
        if new.fetch != old.fetch and self.fetcher is not None:
            retired, self.fetcher = self.fetcher, Fetcher(new.fetch)
            # Polls in flight keep the old clients until they end (at most one deadline).
            self._keep(asyncio.create_task(_close_later(retired, old.fetch.timeout.total_seconds())))
        if self.pool is None:
            # Grown past the pool threshold: parse in worker processes from now on. A pool is
            # kept when feeds are removed (idle workers cost memory only; closing it would fail
            # parses in flight).
            self.pool = parse_pool(len(after))
        now = datetime.now(UTC)
        for key in before.keys() - after.keys():
            with contextlib.suppress(Exception):
                job = self.scheduler.get_job(key)
                if job:
                    job.remove()
            with self.health.lock:
                self.health.failing.discard(key)
            self.metrics.forget_feed(before[key].title)  # no series, nor failing, of a feed not polled
        states = self.store.feed_states()
        for key in after.keys() - before.keys():
            state = states.get(key)
            if state and state.gone:
                continue
            first = now + timedelta(seconds=self.rng.uniform(0, 2))
            self.scheduler.add_job(
                self.poll, "date", run_date=first, args=[after[key]], id=key,
                replace_existing=True, misfire_grace_time=None,
            )  # fmt: skip
        changed = [k for k in before.keys() & after.keys() if before[k] != after[k]]
        for key in changed:
            with contextlib.suppress(Exception):
                job = self.scheduler.get_job(key)
                if job:
                    job.modify(args=[after[key]])
            if before[key].title != after[key].title:  # renamed: its series go on under the new name
                self.metrics.forget_feed(before[key].title)
        log.info(
            "%s reloaded (%s): %d feeds added, %d removed, %d changed",
            self.config_path, reason, len(after.keys() - before.keys()),
            len(before.keys() - after.keys()), len(changed),
        )  # fmt: skip
        self.publisher.changed()  # titles, languages and site settings show on the pages
        return True

    async def _shutdown_polls(self) -> None:
        self.stopping = True
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)  # no new polls; pending ones are cancelled
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        if others:
            _, pending = await asyncio.wait(others, timeout=STOP_POLLS)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        if self.pool is not None:
            with contextlib.suppress(Exception):
                self.pool.close()
        if self.fetcher is not None:
            with contextlib.suppress(Exception):
                await self.fetcher.aclose()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()

    def start_background(self, timeout: float = 60.0) -> None:
        """Start the poll thread (opens the store, schedules every feed) and the publisher.
        Raises StartupError when the store cannot be opened (a clear failure beats a silent one)."""
        self.public_dir.mkdir(parents=True, exist_ok=True)
        removed = remove_temp_files(self.public_dir)
        if removed:
            log.info("removed %d temporary files left by an interrupted publish", removed)
        self._poll_thread.start()
        if not self._ready.wait(timeout):
            raise StartupError(f"opening {self.store_path} took more than {timeout:.0f} s")
        if self._startup_error is not None:
            e = self._startup_error
            # A StoreError's message names the path and the reason in the operator's words.
            words = (
                str(e)
                if isinstance(e, StoreError)
                else f"cannot open {self.store_path}: {type(e).__name__}: {e}"
            )
            raise StartupError(words) from e
        self.publisher.start()

    def request_stop(self) -> None:
        """Ask the poll thread to stop (thread- and signal-safe; does not wait)."""
        self.stopping = True
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop may have ended already
                loop.call_soon_threadsafe(event.set)

    def stop_background(self) -> None:
        """Stop scheduling, finish or abandon in-flight polls, let a running publish finish."""
        self.request_stop()
        self.publisher.stop()
        if self._poll_thread.is_alive():
            self._poll_thread.join(STOP_POLLS + 3)

    def run(self, host: str, port: int, on_start: Callable[[], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM (call on the main thread), polling and publishing in
        the background; returns once both are stopped (at most ~10 s after the signal).
        On PostgreSQL it first takes the store's scheduler lock: SchedulerBusy (a StoreError)
        while workers or another `run` poll the same store (issue 16). `on_start` is called
        once the store is ours and open (the CLI's "serving ..." line: never before a refusal)."""
        hold = None
        if sqlite_path(self.store_url) is None:
            from .store.coordination import hold_scheduler  # psycopg only when it is used

            hold = hold_scheduler(self.store_url, "run")
        try:
            self.start_background()  # opens the store: its refusal comes before the banner
            if on_start is not None:
                on_start()
            app = create_app(
                self.public_dir, self.health.report, on_missing=self.publisher.check_soon,
                metrics=self.metrics.render, config=self.config,
            )  # fmt: skip
            self._app = app
            server = make_server(app, host, port, on_signal=self.request_stop)
            if hasattr(signal, "SIGHUP"):
                signal.signal(signal.SIGHUP, lambda _sig, _frame: self.request_reload())
            serve_forever(server)
        except KeyboardInterrupt:  # a signal before the server took them over: stop the same way
            pass
        finally:
            self.stop_background()
            if hold is not None:
                hold.close()


def _enabled_by_key(config: Config) -> dict[str, FeedConfig]:
    """The feeds that are polled (enabled), by key."""
    return {f.key: f for f in config.feeds if f.enabled}


async def _close_later(fetcher: Fetcher, seconds: float) -> None:
    """Close a fetcher replaced by a reload once the polls that hold it can have ended."""
    await asyncio.sleep(seconds + 1)
    with contextlib.suppress(Exception):
        await fetcher.aclose()
