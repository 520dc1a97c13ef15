"""Prometheus instruments for `/metrics` (prometheus-client): what an operator's dashboard reads.

Not wired into the service here: `schedule.py` calls `observe_poll` after each poll,
`observe_publish` after each publish and `observe_states` when it reads the feeds' stored
state; `serve.py` answers `/metrics` with `render()`. Each `Metrics` has its own registry
(tests make their own); the module-level functions use one shared instance.

Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/): base
units (seconds, bytes), `_total` for counters, `_timestamp_seconds` for Unix times. The
`feed` label is the feed's name in feeds.yaml (its URL when unnamed): one series per feed and
outcome, a few thousand for a few thousand feeds. The `kind` label of poll errors is one of the
closed vocabulary of error_kinds.py, with no feed label beside it: one series per kind seen.

The per-feed series are kept as plain numbers in dicts and turned into metric families when
/metrics is read (`_PerFeed`, a custom collector: prometheus-client's "custom collectors"): a
labelled prometheus-client child costs about 600 bytes, three per feed were 21 MB of `run`'s
memory at 10,000 feeds, and plain numbers are about a third of that (issue 15).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .error_kinds import error_kind
from .models import FeedState, Outcome, PollReport

# A poll is bounded by fetch.timeout (30 s by default); most take tens of milliseconds.
POLL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A publish rebuilds every output: milliseconds for a few feeds, seconds for thousands.
PUBLISH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# generate_latest writes the classic text format (names escaped to underscores), which every
# Prometheus version reads; newer clients label it "version=1.0.0", which 2.x servers predate.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Common statuses as one shared string each, not one per poll.
_STATUS: dict[int | None, str] = {None: "none"} | {
    code: str(code) for code in (200, 301, 302, 304, 404, 410, 500, 503)
}
# Every outcome of a poll that failed, as pipeline.py counts them in the feed's error count (a
# gone feed is counted apart: aggregator_feeds_gone).
_FAILED = {
    Outcome.HTTP_ERROR, Outcome.NETWORK_ERROR, Outcome.TOO_LARGE, Outcome.NOT_A_FEED,
    Outcome.STORE_ERROR, Outcome.INTERNAL_ERROR,
}  # fmt: skip


class _PerFeed(Collector):
    """The series labelled by feed, as plain numbers: polls by (feed, outcome, status), failed
    polls in a row and the last successful poll's Unix time, by feed; and the number of feeds
    failing, counted from those when /metrics is read (counted at every poll, it was a loop
    over every feed per poll: 1.2 s of each 10,000-feed cycle). Thread-safe: polls write from
    the poll thread while /metrics reads from the server's."""

    POLLS = ("aggregator_polls", "Polls of feeds, by feed, outcome and HTTP status ('none': no answer).")
    ERRORS = ("aggregator_feed_consecutive_errors", "Failed polls in a row, per feed (0 once one succeeds).")
    LAST_OK = (
        "aggregator_last_successful_poll_timestamp_seconds",
        "When a feed last answered with a feed or a 304, per feed (Unix time).",
    )
    FAILING = ("aggregator_failing_feeds", "Feeds whose last poll failed (not counting gone feeds).")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.polls: dict[tuple[str, str, str], int] = {}
        self.errors: dict[str, int] = {}
        self.last_ok: dict[str, float] = {}

    def describe(self) -> Iterator[Metric]:
        """The families without samples (the registry checks their names for clashes)."""
        return self._families([], [], [], None)

    def collect(self) -> Iterator[Metric]:
        with self.lock:  # a copy: polls go on while the families are made
            polls, errors = list(self.polls.items()), list(self.errors.items())
            last_ok = list(self.last_ok.items())
        return self._families(polls, errors, last_ok, sum(1 for _, n in errors if n))

    def _families(
        self,
        polls: list[tuple[tuple[str, str, str], int]],
        errors: list[tuple[str, int]],
        last_ok: list[tuple[str, float]],
        failing: int | None,
    ) -> Iterator[Metric]:
        family = CounterMetricFamily(*self.POLLS, labels=["feed", "outcome", "status"])
        for labels, count in polls:
            family.add_metric(labels, count)
        yield family
        for (name, doc), values in ((self.ERRORS, errors), (self.LAST_OK, last_ok)):
            gauge = GaugeMetricFamily(name, doc, labels=["feed"])
            for feed, value in values:
                gauge.add_metric([feed], value)
            yield gauge
        yield GaugeMetricFamily(*self.FAILING, value=failing)


class Metrics:
    """One registry of the aggregator's instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.per_feed = _PerFeed()
        r.register(self.per_feed)
        self.poll_errors = Counter(
            "aggregator_poll_errors",
            "Failed polls by error kind (error_kinds.KINDS: ECONNREFUSED, EAI_NONAME, timeout, tls, "
            "http_404, not_a_feed, ...); no feed label, so one series per kind.",
            ["kind"], registry=r,
        )  # fmt: skip
        self.entries = Counter(
            "aggregator_entries",
            "Entries changed by polls: inserted (new), updated (changed in place), merged (an "
            "article already stored from another feed).",
            ["change"], registry=r,
        )  # fmt: skip
        self.poll_seconds = Histogram(
            "aggregator_poll_duration_seconds", "Time of one poll: fetch, parse and store.",
            buckets=POLL_BUCKETS, registry=r,
        )  # fmt: skip
        self.publish_seconds = Histogram(
            "aggregator_publish_duration_seconds", "Time of one publish of every output.",
            buckets=PUBLISH_BUCKETS, registry=r,
        )  # fmt: skip
        self.files_written = Counter(
            "aggregator_publish_files_written", "Output files rewritten (their bytes changed).",
            registry=r,
        )  # fmt: skip
        self.backoff = Gauge(
            "aggregator_feeds_in_backoff",
            "Feeds polled later than their interval because of failures or Retry-After.",
            registry=r,
        )  # fmt: skip
        self.gone = Gauge("aggregator_feeds_gone", "Feeds that answered 410 Gone.", registry=r)
        self.last_any_poll = Gauge(
            "aggregator_last_successful_poll_any_timestamp_seconds",
            "When any feed last answered with a feed or a 304 (Unix time).",
            registry=r,
        )  # fmt: skip
        self.last_publish = Gauge(
            "aggregator_last_publish_timestamp_seconds", "When the outputs were last published (Unix time).",
            registry=r,
        )  # fmt: skip

    def observe_poll(self, report: PollReport, now: float | None = None) -> None:
        """Count one poll (a skipped, gone feed is not a poll); `now` is Unix time."""
        if report.skipped:
            return
        now = time.time() if now is None else now
        status = _STATUS.get(report.status) or str(report.status)  # None is in _STATUS
        self.poll_seconds.observe(report.duration_ms / 1000)
        kind = error_kind(report.outcome.value, report.status, report.error)
        if kind is not None:
            self.poll_errors.labels(kind).inc()
        for change, count in (
            ("inserted", report.inserted),
            ("updated", report.updated),
            ("merged", report.merged),
        ):
            if count:
                self.entries.labels(change).inc(count)
        feed, per_feed = report.feed_name, self.per_feed
        with per_feed.lock:
            key = (feed, report.outcome.value, status)
            per_feed.polls[key] = per_feed.polls.get(key, 0) + 1
            if report.outcome in _FAILED:
                per_feed.errors[feed] = per_feed.errors.get(feed, 0) + 1
            else:
                per_feed.errors[feed] = 0
                if report.outcome in (Outcome.OK, Outcome.NOT_MODIFIED):
                    per_feed.last_ok[feed] = now
                    self.last_any_poll.set(now)

    def observe_publish(self, seconds: float, files: int, now: float | None = None) -> None:
        """Count one publish that took `seconds` and rewrote `files` output files."""
        self.publish_seconds.observe(seconds)
        self.files_written.inc(files)
        self.last_publish.set(time.time() if now is None else now)

    def observe_states(self, states: Iterable[FeedState], now: datetime) -> None:
        """Back-off and gone counts from the feeds' stored state (`now` aware UTC).

        A feed is in back-off when its last poll failed and its next poll is still ahead
        (the interval doubled, or a Retry-After date not reached).
        """
        backoff = gone = 0
        for state in states:
            if state.gone:
                gone += 1
            elif state.error_count and state.next_poll is not None and state.next_poll > now:
                backoff += 1
        self.backoff.set(backoff)
        self.gone.set(gone)

    def forget_feed(self, name: str) -> None:
        """Drop a feed's series (it was removed from feeds.yaml)."""
        per_feed = self.per_feed
        with per_feed.lock:
            per_feed.errors.pop(name, None)
            per_feed.last_ok.pop(name, None)
            for key in [k for k in per_feed.polls if k[0] == name]:
                del per_feed.polls[key]

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition format 0.0.4, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE


METRICS = Metrics()


def observe_poll(report: PollReport) -> None:
    """METRICS.observe_poll: count one poll in the shared registry."""
    METRICS.observe_poll(report)


def observe_publish(seconds: float, files: int) -> None:
    """METRICS.observe_publish: count one publish in the shared registry."""
    METRICS.observe_publish(seconds, files)


def render() -> tuple[bytes, str]:
    """The shared registry in Prometheus text format, with its content type."""
    return METRICS.render()
