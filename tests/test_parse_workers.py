"""Parsing in worker processes (issue 15): the same results as in-process, and containment:
a worker that crashes or hangs costs its one job, is replaced, and Ctrl-C never waits on it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import Config, FeedConfig, FetchSettings, make_site
from aggregator.models import Candidate, NotAFeed, Outcome, ParsedFeed
from aggregator.pipeline import poll_many
from aggregator.policy import sync_feeds
from aggregator.store import SQLiteStore
from aggregator.workers import ParseJob, ParsePool, WorkerFailed, process
from tests.feedserver import FeedServer

CORPUS = Path("/work/shared/corpus/real")
FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _job(body: bytes, url: str = "https://example.org/feed.xml", language: str = "auto") -> ParseJob:
    return ParseJob(
        body=body, headers={"content-type": "application/rss+xml"}, url=url, feed_url=url,
        configured_language=language, site_languages=("en", "es", "it", "fr", "ru"),
        zone="Europe/London", now=NOW,
    )  # fmt: skip


def _rss(title: str, items: int = 3) -> bytes:
    entries = "".join(
        f"<item><title>{title} story {k}, a headline of some length</title>"
        f"<link>https://example.org/{title}/{k}</link>"
        f"<description>&lt;p&gt;The {k}th story about {title}, told in plain English words.&lt;/p&gt;"
        "</description>"
        f"<pubDate>Tue, 17 Jan 2023 10:0{k}:00 GMT</pubDate></item>"
        for k in range(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://example.org/</link>{entries}</channel></rss>"
    ).encode()


# Faults to inject: module-level, so spawned workers find them by name.
def crash_on_marker(job: ParseJob) -> tuple[ParsedFeed, list[Candidate]]:
    if b"CRASH" in job.body:
        os._exit(3)  # what a segfault in a C extension or the OOM killer looks like from outside
    return process(job)


def hang_on_marker(job: ParseJob) -> tuple[ParsedFeed, list[Candidate]]:
    if b"HANG" in job.body:
        time.sleep(600)
    return process(job)


def _corpus_bodies(limit: int) -> list[tuple[str, bytes]]:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())[:limit] if CORPUS.exists() else []
    return [(f"https://example.org/{p.name}", p.read_bytes()) for p in files]


async def test_pool_gives_what_parsing_in_process_gives() -> None:
    """Same ParsedFeed and candidates, whether parsed here or in a worker (pickled both ways)."""
    bodies = _corpus_bodies(12) or [(f"https://example.org/{i}", _rss(f"t{i}")) for i in range(4)]
    async with ParsePool(2) as pool:
        for url, body in bodies:
            job = _job(body, url)
            try:
                here = process(job)
            except NotAFeed as e:
                with pytest.raises(NotAFeed, match=str(e)[:20]):
                    await pool.run(job)
                continue
            assert await pool.run(job) == here, url


async def test_a_crashing_worker_costs_one_job_and_is_replaced() -> None:
    async with ParsePool(2, function=crash_on_marker) as pool:
        jobs = [_job(_rss("CRASH")), *(_job(_rss(f"good{i}"), f"https://e.org/{i}") for i in range(4))]
        results = await asyncio.gather(*(pool.run(j) for j in jobs), return_exceptions=True)
        assert isinstance(results[0], WorkerFailed) and "died" in str(results[0])
        for r in results[1:]:
            assert not isinstance(r, BaseException), r
            _, candidates = r
            assert len(candidates) == 3
        assert pool.replaced == 1
        # The pool is whole again: as many jobs at once as before.
        again = await asyncio.gather(*(pool.run(_job(_rss(f"more{i}"))) for i in range(3)))
        assert [len(c) for _, c in again] == [3, 3, 3]


async def test_a_hanging_worker_is_stopped_at_the_deadline() -> None:
    async with ParsePool(2, timeout=3, function=hang_on_marker) as pool:
        started = time.monotonic()
        hung, good = await asyncio.gather(
            pool.run(_job(_rss("HANG"))), pool.run(_job(_rss("fine"))), return_exceptions=True
        )
        assert isinstance(hung, WorkerFailed) and "longer than 3 s" in str(hung)
        assert not isinstance(good, BaseException)
        assert time.monotonic() - started < 15
        assert pool.replaced == 1
        _, candidates = await pool.run(_job(_rss("after")))
        assert len(candidates) == 3


async def test_cancelling_a_job_and_closing_never_waits_for_the_worker() -> None:
    """Ctrl-C: the run is cancelled, the pool closed; a worker stuck in a job is killed."""
    pool = ParsePool(1, timeout=600, function=hang_on_marker)
    task = asyncio.create_task(pool.run(_job(_rss("HANG"))))
    await asyncio.sleep(1.0)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pool.close()
    assert time.monotonic() - started < 5
    assert all(not w.process.is_alive() for w in pool._all)


async def test_errors_in_a_worker_come_back_as_errors() -> None:
    async with ParsePool(1) as pool:
        with pytest.raises(NotAFeed, match="empty body"):
            await pool.run(_job(b""))
        with pytest.raises(NotAFeed, match="web page"):
            html = (
                b'<html><head><link rel="alternate" type="application/rss+xml" href="/f.xml"></head></html>'
            )
            await pool.run(_job(html))


@pytest.mark.slow
async def test_poll_many_stores_the_same_with_processes_and_threads(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """`fetch` and `run` poll through poll_feed: with a pool or without, the same entries."""
    server = feed_server
    urls = [server.add(f"/f{i}.rss", _rss(f"feed{i}", items=4)) for i in range(6)]
    config = Config(
        site=make_site(languages=["en"]),
        fetch=FetchSettings(per_host=8),
        feeds=[FeedConfig(url=u, name=f"feed {i}") for i, u in enumerate(urls)],  # type: ignore[arg-type]
    )
    stored = []
    for workers in (2, 0):
        store = SQLiteStore(tmp_path / f"w{workers}" / "aggregator.db")
        sync_feeds(config, store)
        reports = await poll_many(config.feeds, config, store, workers=workers)
        assert [r.outcome for r in reports] == [Outcome.OK] * 6, [r.error for r in reports]
        rows = store.db.execute(
            "SELECT feed_url, source_key, title, summary, language, published FROM entries ORDER BY 1, 2"
        ).fetchall()
        stored.append(rows)
        store.close()
    assert len(stored[0]) == 24
    assert stored[0] == stored[1]


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    parents[int(entry.name)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, grew = set(), True
    while grew:  # bounded: each pass adds a process or stops
        grew = False
        for child, parent in parents.items():
            if (parent == pid or parent in found) and child not in found:
                found.add(child)
                grew = True
    return found


@pytest.mark.slow
def test_run_parses_in_workers_and_ctrl_c_ends_them(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGGREGATOR_PARSE_PROCESSES_FROM", str(POOL_FEEDS))
    """`aggregator run` with 20 feeds or more parses in worker processes; Ctrl-C ends it and
    them within seconds, with no traceback."""
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.test_serve import _free_port

    lines = ["site:", "  languages: [en]", "fetch:", "  per_host: 32", "feeds:"]
    for i in range(POOL_FEEDS):
        lines += [
            f"  - url: {feed_server.add(f'/r{i}.rss', _rss(f'run{i}', items=2))}",
            f"    name: feed {i}",
        ]
    config = tmp_path / "feeds.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data), "run",
         "--port", str(_free_port())],
        cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        stored = 0
        workers: set[int] = set()
        while time.monotonic() < deadline and stored < 2 * POOL_FEEDS:  # bounded
            time.sleep(0.5)
            workers |= {p for p in _descendants(proc.pid) if b"multiprocessing" in _cmdline(p)}
            if (data / "aggregator.db").exists():
                try:
                    stored = (
                        sqlite3.connect(data / "aggregator.db")
                        .execute("SELECT COUNT(*) FROM entries")
                        .fetchone()[0]
                    )
                except sqlite3.Error:
                    continue
        assert stored == 2 * POOL_FEEDS
        assert len(workers) >= 2  # the parse workers (and multiprocessing's resource tracker)
    finally:
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        output, _ = proc.communicate(timeout=20)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert not any(os.path.exists(f"/proc/{p}") and b"multiprocessing" in _cmdline(p) for p in workers)


@pytest.mark.slow
def test_a_reload_past_the_threshold_starts_the_pool(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGGREGATOR_PARSE_PROCESSES_FROM", str(POOL_FEEDS))
    """`run` with few feeds parses in a thread; a reload (SIGHUP) to POOL_MIN_FEEDS feeds or
    more starts the worker processes on the poll thread, the added feeds are parsed there, and
    Ctrl-C ends them."""
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.test_serve import _free_port

    def write(n: int) -> None:
        lines = ["site:", "  languages: [en]", "fetch:", "  per_host: 32", "feeds:"]
        for i in range(n):
            lines += [
                f"  - url: {feed_server.add(f'/g{i}.rss', _rss(f'grow{i}', items=2))}",
                f"    name: feed {i}",
            ]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def wait_for(entries: int) -> set[int]:
        deadline = time.monotonic() + 60
        stored, workers = 0, set()
        while time.monotonic() < deadline and stored < entries:  # bounded
            time.sleep(0.5)
            workers |= {p for p in _descendants(proc.pid) if b"multiprocessing" in _cmdline(p)}
            if (data / "aggregator.db").exists():
                with contextlib.suppress(sqlite3.Error):
                    db = sqlite3.connect(data / "aggregator.db")
                    stored = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                    db.close()
        assert stored == entries
        return workers

    config = tmp_path / "feeds.yaml"
    data = tmp_path / "data"
    write(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data), "run",
         "--port", str(_free_port())],
        cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    workers: set[int] = set()
    try:
        assert wait_for(4) == set()  # two feeds: parsed in a thread, no worker processes
        write(POOL_FEEDS)
        proc.send_signal(signal.SIGHUP)
        workers = wait_for(2 * POOL_FEEDS)
        assert len(workers) >= 2
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert not any(os.path.exists(f"/proc/{p}") and b"multiprocessing" in _cmdline(p) for p in workers)


POOL_FEEDS = 100  # the threshold these tests set through AGGREGATOR_PARSE_PROCESSES_FROM


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


async def test_bodies_waiting_for_their_parse_are_bounded(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downloads outrun parsing; the bodies fetched and not yet parsed stay few (memory)."""
    import aggregator.workers
    from aggregator.fetch import Fetcher

    waiting: set[str] = set()
    most = 0

    class Counting(Fetcher):
        async def fetch(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal most
            result = await super().fetch(*args, **kwargs)
            waiting.add(result.feed_url)
            most = max(most, len(waiting))
            return result

    real = aggregator.workers.process

    def slow(job: ParseJob) -> Any:
        time.sleep(0.02)
        return real(job)

    monkeypatch.setattr(aggregator.workers, "process", slow)
    urls = [feed_server.add(f"/b{i}.rss", _rss(f"b{i}", items=1)) for i in range(40)]
    config = Config(
        site=make_site(languages=["en"]),
        fetch=FetchSettings(concurrency=4, per_host=4),
        feeds=[FeedConfig(url=u, name=f"b{i}") for i, u in enumerate(urls)],  # type: ignore[arg-type]
    )
    store = SQLiteStore(tmp_path / "aggregator.db")
    sync_feeds(config, store)
    try:
        async with Counting(config.fetch) as fetcher:
            reports = await poll_many(
                config.feeds, config, store, fetcher, workers=0, on_done=lambda r: waiting.discard(r.feed_url)
            )
    finally:
        store.close()
    assert [r.outcome for r in reports] == [Outcome.OK] * 40
    assert most <= 2 * 4


async def test_a_pool_bounds_bodies_waiting_whoever_polls(tmp_path: Path, feed_server: FeedServer) -> None:
    """`run` polls each feed on its own (poll_feed, not poll_many): the pool's admission is
    what bounds the bodies between download and parse there."""
    from aggregator.fetch import Fetcher
    from aggregator.pipeline import poll_feed

    waiting: set[str] = set()
    most = 0

    class Counting(Fetcher):
        async def fetch(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal most
            result = await super().fetch(*args, **kwargs)
            waiting.add(result.feed_url)
            most = max(most, len(waiting))
            return result

    urls = [feed_server.add(f"/a{i}.rss", _rss(f"a{i}", items=1)) for i in range(15)]
    config = Config(
        site=make_site(languages=["en"]),
        fetch=FetchSettings(concurrency=15, per_host=15),
        feeds=[FeedConfig(url=u, name=f"a{i}") for i, u in enumerate(urls)],  # type: ignore[arg-type]
    )
    store = SQLiteStore(tmp_path / "aggregator.db")
    sync_feeds(config, store)

    async def one(feed: FeedConfig, fetcher: Fetcher, pool: ParsePool) -> Outcome:
        report = await poll_feed(feed, config, store, fetcher, pool=pool)
        waiting.discard(report.feed_url)
        return report.outcome

    try:
        async with Counting(config.fetch) as fetcher, ParsePool(2, admit=3) as pool:
            outcomes = await asyncio.gather(*(one(f, fetcher, pool) for f in config.feeds))
    finally:
        store.close()
    assert outcomes == [Outcome.OK] * 15
    assert most <= 3


def _private_and_rss_mb(pid: int) -> tuple[float, float]:
    private = rss = 0.0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("Private_Clean", "Private_Dirty"):
                private += int(rest.split()[0]) / 1024
            elif name == "Rss":
                rss = int(rest.split()[0]) / 1024
    return private, rss


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="needs Linux /proc")
async def test_workers_share_the_preloaded_model_copy_on_write() -> None:
    """Workers are forked from a forkserver that loaded the parsing modules and the language
    model (`workers_preload`): each worker maps the model (RSS over 100 MB) but owns little of
    it. Spawned workers each load their own copy (~114 MB private, measured); a preload that
    silently fails to import (the forkserver ignores ImportError) would bring that back."""
    async with ParsePool(2) as pool:
        # two jobs at once: both workers start and identify languages (the model is used)
        await asyncio.gather(*(pool.run(_job(_rss(f"share{i}", items=5))) for i in range(2)))
        pids = [w.process.pid for w in pool._all]
        assert len(pids) == 2
        for pid in pids:
            assert pid is not None
            private, rss = _private_and_rss_mb(pid)
            assert rss > 100, rss  # the model and the imports are mapped...
            assert private < 60, (private, rss)  # ...but shared with the forkserver


async def test_a_killed_forkserver_is_started_again_for_the_next_worker() -> None:
    """The forkserver that forks workers may die too (the OOM killer picks large processes):
    the job whose worker then dies costs that job only, and the next worker comes from a new
    forkserver (multiprocessing starts one when the old one is gone)."""
    import signal
    from multiprocessing import forkserver

    async with ParsePool(1, function=crash_on_marker) as pool:
        await pool.run(_job(_rss("before")))
        server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        assert server is not None
        os.kill(server, signal.SIGKILL)

        # Dead before a worker is asked of it: multiprocessing judges a forkserver alive until
        # it has exited (a kill still being delivered on a loaded machine made the next start's
        # connection refused; that costs one job too, but is not what this test is about).
        def exited() -> bool:  # a zombie (not yet reaped) or gone
            try:
                state = Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return True
            return state == "Z"

        for _ in range(500):  # at most 5 s
            if exited():
                break
            await asyncio.sleep(0.01)
        with pytest.raises(WorkerFailed):
            await pool.run(_job(_rss("CRASH")))
        _, candidates = await pool.run(_job(_rss("after")))
        assert len(candidates) == 3
        assert forkserver._forkserver._forkserver_pid != server  # type: ignore[attr-defined]
