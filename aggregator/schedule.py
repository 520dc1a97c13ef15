"""The long-running job: APScheduler polls each feed at its interval; uvicorn serves the output.

Both run in one asyncio loop and share nothing but the store and the files on disk.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .config import Config, FeedConfig
from .fetch import Fetcher
from .pipeline import parse_pool, poll_feed, sync_feeds
from .publish import PublishReport, publish
from .serve import create_app
from .store import Store
from .workers import ParsePool

log = logging.getLogger("aggregator.schedule")

PUBLISH_DELAY = timedelta(seconds=2)  # coalesces a burst of polls into one rebuild
STARTUP_JITTER = 10.0  # seconds: first polls spread out, not all at once


class Service:
    def __init__(self, config: Config, data_dir: Path, rng: random.Random | None = None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.public_dir = data_dir / "public"
        self.store = Store(data_dir / "aggregator.db")
        self.rng = rng or random.Random()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.fetcher: Fetcher | None = None
        self.pool: ParsePool | None = None  # parse worker processes, from run() (issue 15)

    async def poll(self, feed: FeedConfig) -> None:
        assert self.fetcher is not None
        state = self.store.feed_state(feed.key)
        if state and state.gone:
            return
        try:
            report = await poll_feed(
                feed, self.config, self.store, self.fetcher, rng=self.rng, state=state, pool=self.pool
            )
        except Exception:  # the scheduler must keep running whatever one poll does
            log.exception("feed=%r poll crashed", feed.title)
            return
        self._reschedule(feed)
        # Entries changed, or the feed started or stopped failing: pages list failing feeds
        # until the first entries arrive, so they must hear of it.
        if report.changed or (state.last_error if state else None) != report.error:
            self.scheduler.add_job(
                self.publish,
                "date",
                run_date=datetime.now(UTC) + PUBLISH_DELAY,
                id="publish",
                replace_existing=True,
            )

    def _reschedule(self, feed: FeedConfig) -> None:
        """Next run at the time the poll policy chose (interval, back-off, Retry-After)."""
        state = self.store.feed_state(feed.key)
        if state is None or state.gone or state.next_poll is None:
            job = self.scheduler.get_job(feed.key)
            if job:
                job.remove()
            return
        self.scheduler.add_job(
            self.poll, "date", run_date=state.next_poll, args=[feed], id=feed.key,
            replace_existing=True, misfire_grace_time=None,
        )  # fmt: skip

    async def publish(self) -> None:
        try:
            report = await asyncio.to_thread(self._publish_sync)
        except Exception:
            log.exception("publish failed")
            return
        log.info("published files=%d unchanged=%d", len(report.written), report.unchanged)

    def _publish_sync(self) -> PublishReport:
        store = Store(self.store.path)  # own connection: SQLite objects stay on their thread
        try:
            return publish(store, self.config, self.public_dir)
        finally:
            store.close()

    def schedule_feeds(self, now: datetime) -> None:
        """One job per enabled feed that is not gone: first polls spread over STARTUP_JITTER,
        or later when the stored next poll (back-off, Retry-After) says so."""
        states = self.store.feed_states()
        for feed in self.config.feeds:
            state = states.get(feed.key)
            if not feed.enabled:
                continue
            if state and state.gone:
                log.warning("feed=%r answered 410 Gone earlier: not polled", feed.title)
                continue
            first = now + timedelta(seconds=self.rng.uniform(0, STARTUP_JITTER))
            if state and state.next_poll and state.next_poll > first:
                first = state.next_poll  # honour back-off and Retry-After across restarts
            self.scheduler.add_job(
                self.poll, "date", run_date=first, args=[feed], id=feed.key,
                misfire_grace_time=None,
            )  # fmt: skip

    async def run(self, host: str, port: int) -> None:
        sync_feeds(self.config, self.store)
        publish(self.store, self.config, self.public_dir)  # pages exist before the first poll
        self.fetcher = Fetcher(self.config.fetch)
        self.pool = parse_pool(sum(1 for f in self.config.feeds if f.enabled))
        self.schedule_feeds(datetime.now(UTC))
        self.scheduler.add_job(self._prune, "interval", hours=6, id="prune-fetch-log")
        self.scheduler.start()
        server = uvicorn.Server(
            uvicorn.Config(create_app(self.public_dir), host=host, port=port, log_level="info",
                           access_log=False)
        )  # fmt: skip
        try:
            await server.serve()
        finally:
            self.scheduler.shutdown(wait=False)
            if self.pool is not None:
                self.pool.close()
            await self.fetcher.aclose()
            self.store.close()

    def _prune(self) -> None:
        removed = self.store.prune_fetch_log(self.config.fetch.log_retention, datetime.now(UTC))
        log.info("pruned fetch log rows=%d", removed)
