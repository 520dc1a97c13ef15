"""Several pollers on one PostgreSQL store, sharing the work through procrastinate (issue 16).

`aggregator worker` runs a procrastinate worker. Every worker runs the same three tasks:

- **dispatch** (periodic, every `DISPATCH_EVERY`; procrastinate defers a periodic task once
  per period however many workers run): claims the feeds that are due (`Store.claim_due`:
  one `FOR UPDATE SKIP LOCKED` statement that leases them) and defers them as `poll` jobs of
  at most `batch` feeds. It first fails the poll jobs of workers whose heartbeat stopped
  (killed), so their feeds, whose leases expire, are claimed again.
- **poll** (a batch): polls its feeds with the ordinary pipeline (`pipeline.poll_feed`: fetch,
  parse, dedupe, store in one transaction per feed, which also ends the feed's lease and sets
  its next poll). Then, if anything changed, defers one publish.
- **publish**: rebuilds the outputs. Deferred with a queueing lock (at most one waiting) and
  run under a procrastinate lock (never two at once, on any worker).

**Politeness across processes.** Each host's feeds go to one of `buckets` buckets (a stable
hash of the host name) and a poll job carries its bucket as its procrastinate `lock`: jobs of
one bucket run one after another, whichever worker takes them, so one host is only ever polled
by one job at a time, within which the fetcher holds `fetch.per_host`. The buckets also bound
how many poll jobs run at once (more workers than buckets would idle).

**At least once.** A feed is polled again only when its lease has run out: after its poll
was recorded (then at its next poll), or when the poller died. Writes are idempotent, so a
feed polled twice (a poller killed after storing, before its record) costs a request, never a
duplicate entry.

**Before any job** a worker takes the store's scheduler lock, shared with the other workers and
refused while `aggregator run` polls the same store (`SchedulerBusy`: two schedulers would poll
every feed twice), and brings procrastinate's tables to the installed release: its
`schema.sql` in a new database, its migration files when the tables are older and no other
worker runs (`aggregator.store.coordination`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from procrastinate.types import JSONValue

from .config import Config, FeedConfig, load_config
from .fetch import Fetcher
from .models import FeedState
from .pipeline import poll_feed
from .policy import sync_feeds
from .publish import Digests, days_to_rebuild, publish
from .store import StoreError
from .store.coordination import QueueSchema, SchedulerHold, start_worker
from .store.postgres import PostgresStore

log = logging.getLogger("aggregator.worker")

DISPATCH_EVERY = 10  # seconds between dispatches (a divisor of 60: a cron seconds field)
BATCH = 25  # feeds per poll job
BUCKETS = 64  # poll jobs that may run at once, over all workers
LEASE = timedelta(minutes=15)  # how long a claimed feed is its poller's before it is due again
STALLED_AFTER = 30.0  # seconds without a heartbeat before a worker counts as dead


@dataclass(frozen=True)
class WorkerSettings:
    """What every task needs to know; the same for every worker sharing a store."""

    config_path: Path
    store_url: str
    public_dir: Path | None  # None: this worker never publishes
    lease: timedelta = LEASE
    batch: int = BATCH
    buckets: int = BUCKETS
    dispatch_every: int = DISPATCH_EVERY
    stalled_after: float = STALLED_AFTER  # below the lease: a dead worker's bucket frees first
    claim_max: int = 5000  # feeds claimed per dispatch at most


def bucket_of(host: str, buckets: int) -> int:
    """The bucket of a host name: stable across processes and runs (not Python's hash)."""
    digest = hashlib.blake2b(host.lower().encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % buckets


def host_of(state: FeedState) -> str:
    """The host a poll of this feed will ask first (its permanent new address, if it moved)."""
    return urlsplit(state.permanent_url or state.url).hostname or ""


def batches(states: Iterable[FeedState], batch: int, buckets: int) -> list[tuple[int, list[str]]]:
    """(bucket, feed URLs) jobs: each host's feeds in its own bucket, at most `batch` a job.
    Pure: the dispatcher's plan from the claimed feeds."""
    by_bucket: defaultdict[int, list[str]] = defaultdict(list)
    for s in states:
        by_bucket[bucket_of(host_of(s), buckets)].append(s.url)
    return [
        (b, urls[i : i + batch]) for b, urls in sorted(by_bucket.items()) for i in range(0, len(urls), batch)
    ]


class _Runtime:
    """Per-process state the tasks share: the config, one store (a pool), one fetcher."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.config: Config = load_config(settings.config_path)
        self.feeds: dict[str, FeedConfig] = {f.key: f for f in self.config.feeds if f.enabled}
        self.store = PostgresStore(settings.store_url)
        sync_feeds(self.config, self.store)
        self._fetcher: Fetcher | None = None
        # "Today" (site.timezone) at this process's last good publish; None: its next publish
        # rebuilds everything (the first after start, or after a failed one).
        self.published_day: date | None = None
        self.digests = Digests()  # digest items of unchanged days, kept between publishes

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:  # made inside the worker's event loop
            self._fetcher = Fetcher(self.config.fetch)
        return self._fetcher

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
        self.store.close()


def build_app(settings: WorkerSettings) -> tuple[procrastinate.App, _Runtime]:
    """The procrastinate app with the dispatch, poll and publish tasks, and the process's
    runtime (config, store, fetcher) they share."""
    runtime = _Runtime(settings)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=settings.store_url))

    @app.periodic(cron=f"*/{settings.dispatch_every} * * * * *", periodic_id="dispatch")
    @app.task(name="aggregator.dispatch", queue="dispatch", queueing_lock="dispatch")
    async def dispatch(timestamp: int) -> int:
        """Claim due feeds and defer their poll jobs; returns the feeds dispatched."""
        started = time.perf_counter()
        manager = app.job_manager
        for job in await manager.get_stalled_jobs(
            queue="poll", seconds_since_heartbeat=settings.stalled_after
        ):  # a killed worker's job would hold its bucket's lock for ever
            log.warning(
                "poll job %s of a dead worker: failed; its feeds return when their leases end", job.id
            )
            await manager.finish_job(job, Status.FAILED, delete_job=False)
        now = datetime.now(UTC)
        claimed = runtime.store.claim_due(now, settings.claim_max, settings.lease, feeds=runtime.feeds.keys())
        plan = batches(claimed, settings.batch, settings.buckets)
        for bucket, urls in plan:
            args: list[JSONValue] = list(urls)
            await poll.configure(lock=f"aggregator-bucket-{bucket}").defer_async(feeds=args)
        if claimed:
            took = (time.perf_counter() - started) * 1000
            log.info("dispatched feeds=%d jobs=%d ms=%.0f", len(claimed), len(plan), took)
        return len(claimed)

    @app.task(name="aggregator.poll", queue="poll")
    async def poll(feeds: list[str]) -> dict[str, int]:
        """Poll a batch of claimed feeds; defer a publish if anything changed."""
        known = [runtime.feeds[u] for u in feeds if u in runtime.feeds]
        if len(known) < len(feeds):  # removed or disabled since it was claimed
            runtime.store.release([u for u in feeds if u not in runtime.feeds])
        reports = await asyncio.gather(
            *(poll_feed(f, runtime.config, runtime.store, runtime.fetcher) for f in known)
        )
        changed = sum(r.changed for r in reports)
        if changed and settings.public_dir is not None:
            # One waiting already (AlreadyEnqueued) will see these entries too.
            with contextlib.suppress(procrastinate_errors.AlreadyEnqueued):
                await publish_task.configure(queueing_lock="aggregator-publish").defer_async()
        return {"polled": len(reports), "changed": changed}

    @app.task(name="aggregator.publish", queue="publish", lock="aggregator-publish")
    async def publish_task() -> int:
        """Rebuild the outputs (one at a time over all workers): the days the store says are
        owed (marked by every worker's polls) and their neighbours, plus what is not per day
        (`publish.days_to_rebuild`); everything on this process's first publish. A publish
        that fails gives its days back to the store for the next one, whichever worker."""
        assert settings.public_dir is not None
        now = datetime.now(UTC)
        today = now.astimezone(runtime.config.site.zone).date()
        owed = runtime.store.take_unpublished()
        changed = days_to_rebuild(owed, runtime.published_day, today)
        try:
            report = await asyncio.to_thread(
                publish, runtime.store, runtime.config, settings.public_dir,
                now=now, changed_days=changed, digests=runtime.digests,
            )  # fmt: skip
        except BaseException:
            runtime.published_day = None  # the next publish is whole: these days are in it
            with contextlib.suppress(StoreError):
                runtime.store.mark_unpublished(owed)  # for another worker's next publish
            raise
        if report.failed:  # those files keep their last good version: make them again next time
            runtime.published_day = None
            runtime.store.mark_unpublished(owed)
        else:
            runtime.published_day = today
        days = "all" if changed is None else len(changed)
        log.info("published files=%d unchanged=%d days=%s", len(report.written), report.unchanged, days)
        return len(report.written)

    @app.periodic(cron="17 * * * *", periodic_id="prune")
    @app.task(name="aggregator.prune", queue="dispatch", queueing_lock="prune")
    async def prune(timestamp: int) -> int:
        """Delete poll records older than `fetch.log_retention` (hourly)."""
        return runtime.store.prune_fetch_log(runtime.config.fetch.log_retention, datetime.now(UTC))

    return app, runtime


def queue_schema() -> QueueSchema:
    """The installed procrastinate's release, whole schema and migration files."""
    return QueueSchema(
        version=procrastinate.__version__,
        schema_sql=SchemaManager.get_schema(),
        migrations=Path(SchemaManager.get_migrations_path()),
    )


def _applied(name: str) -> None:
    log.info("applied procrastinate's %s", name)


def migrate(settings: WorkerSettings) -> None:
    """`aggregator worker --migrate`: bring our schema and procrastinate's tables to this
    code's, then return (StoreError subclasses as `start_worker` raises them)."""
    PostgresStore(settings.store_url).close()  # ours: migrated on open
    start_worker(
        settings.store_url, queue_schema(), alive_within=settings.stalled_after, on_apply=_applied
    ).close()


async def run_worker(settings: WorkerSettings, concurrency: int, **options: Any) -> None:
    """Run one worker until cancelled (Ctrl-C, SIGTERM): `concurrency` jobs at once.
    Heartbeats every third of `settings.stalled_after`. Before any job: the scheduler lock
    (SchedulerBusy while `aggregator run` polls this store) and procrastinate's tables at
    the installed release (`aggregator.store.coordination.start_worker`)."""
    app, runtime = build_app(settings)
    hold: SchedulerHold | None = None
    try:
        hold = await asyncio.to_thread(
            start_worker, settings.store_url, queue_schema(), alive_within=settings.stalled_after,
            on_apply=_applied,
        )  # fmt: skip
        async with app.open_async():
            await app.run_worker_async(
                concurrency=concurrency,
                # Finished jobs (and their events, ON DELETE CASCADE) go at once: kept, the
                # queue would grow by every dispatch and batch (~47,000 a day at 10,000
                # feeds). Failed ones stay for an operator to read.
                delete_jobs="successful",
                update_heartbeat_interval=settings.stalled_after / 3,
                stalled_worker_timeout=settings.stalled_after,
                **options,
            )
    finally:
        if hold is not None:
            hold.close()
        await runtime.aclose()
