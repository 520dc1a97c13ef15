"""Parse and normalise in worker processes, so both cores work (issue 15).

A poll's CPU-bound middle (bytes -> ParsedFeed -> Candidates: feedparser, text, language)
is a pure function of plain data, `process(ParseJob)`. `ParsePool` runs it in a few worker
processes (each loads the language model once, at start); the caller keeps the network and
the store, so SQLite is still written from one thread of one process.

Memory: workers are forked by a forkserver that has imported the parsing modules and loaded
the language model once (`workers_preload`), so they share those pages copy-on-write instead
of each holding its own copy (spawn: ~150 MB per worker; measured in docs/benchmarks.md). The
forkserver is a fresh single-threaded interpreter, never a fork of a process with threads
and sockets. Where there is no forkserver (Windows), workers are spawned as before.

Containment: each worker runs one job at a time, so a worker that dies (a crash in a C
extension, the OOM killer) or outlives the job's deadline costs exactly that job: the job
raises `WorkerFailed`, the worker is killed and replaced, the other jobs go on. Workers
ignore SIGINT: on Ctrl-C the parent cancels and `close()` ends them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any
from zoneinfo import ZoneInfo

from .models import Candidate, NotAFeed, ParsedFeed

# The parsing stack (parse, normalise, language: feedparser, feedparser-rs, ftfy,
# charset-normalizer, pycld2, langcodes) is imported where a document is parsed, not with this
# module: a parent whose workers parse (`run` and `fetch` from POOL_MIN_FEEDS feeds) never
# loads it (11 MB of RSS at import; `run`'s first cycle at 10,000 feeds 293-300 -> 290-291 MB
# of PSS, docs/benchmarks.md). The workers have it from the forkserver (`workers_preload`);
# a parse in this process imports it on its first document.

log = logging.getLogger("aggregator.workers")

JOB_TIMEOUT = 120.0  # seconds one document may take to parse before its worker is killed
START_TIMEOUT = 60.0  # seconds a new worker may take to import and load the language model
# Below this many feeds in one run, parse in a thread of this process: a small site saves the
# forkserver's and workers' memory (about 110 MB of PSS) where parsing is a few seconds. From
# it, the workers are faster: measured on 2 cores (docs/benchmarks.md, issue 15, same runs),
# they took 0.59x the time of threads at 300 feeds and 0.58x at 600 (the cold poll 0.89x and
# 0.83x plain httpx + feedparser). It was 2,000 while a 500-feed world with workers peaked
# over issue 11's 300 MB (301 MB in `fetch`, 321 MB in `run`); with the memory work of issue
# 15 (paged publishing) the same world peaks at 204 and 237 MB with workers.
# The environment variable AGGREGATOR_PARSE_PROCESSES_FROM overrides it (README "Polling").
POOL_MIN_FEEDS = 300


def pool_min_feeds() -> int:
    """The feed count from which a run parses in worker processes: POOL_MIN_FEEDS, or
    $AGGREGATOR_PARSE_PROCESSES_FROM when it is a whole number."""
    value = os.environ.get("AGGREGATOR_PARSE_PROCESSES_FROM", "").strip()
    return int(value) if value.isdigit() else POOL_MIN_FEEDS


ADMIT = 64  # polls at once from download to parse, per pool: twice the default concurrency
PRELOAD = "aggregator.workers_preload"  # what the forkserver imports before forking workers


def _context() -> Any:
    """The multiprocessing context workers start in: a forkserver that preloads PRELOAD, or
    spawn where the platform has no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # Takes effect when the forkserver starts (once per process, at the first worker).
    preload = []
    main = sys.modules.get("__main__")
    if (
        getattr(main, "__spec__", None) is None
        and getattr(main, "__file__", None)
        and "aggregator.cli" in sys.modules
    ):
        # Started by a script (the `aggregator` console script): multiprocessing runs that
        # script again in every worker, importing the whole CLI there (measured: 14 MB private
        # and a second of CPU per worker). Loaded in the forkserver, that re-run costs nothing.
        # (Python 3.11's "__main__" preload would not do it: the forkserver is not told the
        # main path.)
        preload.append("aggregator.cli")
    preload.append(PRELOAD)  # last: it freezes what is loaded by then (gc.freeze)
    ctx.set_forkserver_preload(preload)
    return ctx


@dataclass(frozen=True, slots=True)
class ParseJob:
    """Everything parsing and normalising one fetched document needs, as plain data."""

    body: bytes
    headers: dict[str, str]  # response headers, lower-case names
    url: str  # the URL that answered (relative references resolve against it)
    feed_url: str  # the feed's identity (feeds.yaml URL)
    configured_language: str  # feeds.yaml `language`, or "auto"
    site_languages: tuple[str, ...]
    zone: str  # IANA name of site.timezone
    now: datetime  # aware UTC: the poll's start, for dates that cannot be believed
    translation_patterns: tuple[str, ...] = ()


class WorkerFailed(Exception):
    """The worker running a job died or overran JOB_TIMEOUT; str() says which."""


def process(job: ParseJob) -> tuple[ParsedFeed, list[Candidate]]:
    """Parse `job.body` and prepare its entries. Returns the parsed feed (its `entries`
    emptied: the candidates carry them on) with the feed's warning, and the candidates.
    Raises NotAFeed when the body is not a feed; any other exception is a bug in parsing."""
    from . import normalise
    from .parse import parse_feed

    parsed = parse_feed(job.body, job.headers, job.url)
    candidates, warning = normalise.prepare_feed(
        parsed,
        job.feed_url,
        job.configured_language,
        job.site_languages,
        ZoneInfo(job.zone),
        job.now,
        job.translation_patterns,
    )
    return replace(parsed, entries=(), warning=warning), candidates


Job = Callable[[ParseJob], tuple[ParsedFeed, list[Candidate]]]


def _serve(conn: Connection, function: Job) -> None:  # pragma: no cover - runs in the worker
    """A worker's life: load the model, then answer jobs until the pipe closes."""
    from . import language

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers end
    language.warm()
    conn.send(("ready",))  # a job's deadline starts once the worker can work
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        answer: tuple[Any, ...]
        try:
            answer = ("ok", function(job))
        except NotAFeed as e:
            answer = ("not-a-feed", str(e), e.alternates)
        except Exception as e:
            answer = ("error", f"{type(e).__name__}: {e}")
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as e:  # an answer that does not pickle is that job's error
            conn.send(("error", f"{type(e).__name__}: {e}"))


class _Worker:
    def __init__(self, ctx: Any, function: Job) -> None:
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_serve, args=(child, function), daemon=True, name="aggregator-parse"
        )
        self.process.start()
        child.close()
        self.ready = False

    def call(self, job: ParseJob, timeout: float) -> tuple[Any, ...]:
        """Blocking: send the job, wait for its answer. Raises WorkerFailed."""
        try:
            if not self.ready:
                if not self.conn.poll(START_TIMEOUT):
                    raise WorkerFailed(f"the parse worker did not start within {START_TIMEOUT:.0f} s")
                self.conn.recv()
                self.ready = True
            self.conn.send(job)
            if not self.conn.poll(timeout):
                raise WorkerFailed(f"parsing took longer than {timeout:.0f} s: the parse worker was stopped")
            answer: tuple[Any, ...] = self.conn.recv()
            return answer
        except (EOFError, OSError, BrokenPipeError):
            self.process.join(1)
            raise WorkerFailed(f"the parse worker died (exit code {self.process.exitcode})") from None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class ParsePool:
    """`workers` processes running `function` (`process`); `await pool.run(job)` from one
    event loop.

    Raises from run: NotAFeed (as `process` would), WorkerFailed (crash or timeout: that
    worker is replaced), RuntimeError for any other error the job raised (a parser bug,
    its message kept). Use as an async context manager, or call `close()`."""

    def __init__(
        self,
        workers: int,
        timeout: float = JOB_TIMEOUT,
        function: Job = process,
        admit: int = ADMIT,
        start_method: str | None = None,
    ) -> None:
        # None: a forkserver with the model preloaded (`_context`); "spawn" for comparisons.
        self._ctx = _context() if start_method is None else multiprocessing.get_context(start_method)
        self.timeout = timeout
        self._function = function  # a module-level function (pickled by name); tests inject faults
        # Started at the first job, all at once, so a run whose answers are all 304 starts
        # none, and their imports and model loads overlap the downloads that follow.
        self._idle: list[_Worker | None] = [None] * workers
        self._all: list[_Worker] = []
        self._gate = asyncio.Semaphore(workers)
        # Polls allowed between their download and their parse (pipeline.poll_feed takes it):
        # bodies wait in memory only this many at a time.
        self.admission = asyncio.Semaphore(admit)
        self._closed = False
        self.replaced = 0  # workers replaced after a crash, a timeout or a cancelled job

    async def __aenter__(self) -> ParsePool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def run(self, job: ParseJob) -> tuple[ParsedFeed, list[Candidate]]:
        async with self._gate:
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            if None in self._idle:  # not started yet, or replacing one that failed
                self._idle = [w or self._start() for w in self._idle]
            worker = self._idle.pop()
            assert worker is not None
            healthy = False
            try:
                answer = await asyncio.to_thread(worker.call, job, self.timeout)
                healthy = True
            finally:
                if healthy:
                    self._idle.append(worker)
                else:  # crashed, hung or abandoned mid-job (cancelled): never reused
                    if not self._closed:
                        log.warning("parse worker %s replaced (job for %s)", worker.process.pid, job.feed_url)
                    worker.kill()
                    self._all.remove(worker)
                    self._idle.append(None)
                    self.replaced += 1
        kind = answer[0]
        if kind == "ok":
            result: tuple[ParsedFeed, list[Candidate]] = answer[1]
            return result
        if kind == "not-a-feed":
            raise NotAFeed(answer[1], tuple(answer[2]))
        raise RuntimeError(answer[1])

    def _start(self) -> _Worker:
        worker = _Worker(self._ctx, self._function)
        self._all.append(worker)
        return worker

    def close(self) -> None:
        """Stop every worker now (jobs in flight fail); safe to call twice."""
        self._closed = True
        for worker in self._all:
            worker.kill()


def default_workers() -> int:
    """Worker processes for this machine: one per core, at least 2 (the parent's own work,
    HTTP and SQLite, overlaps theirs)."""
    return max(2, min(os.cpu_count() or 1, 8))
