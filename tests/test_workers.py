"""Three `aggregator worker` processes on one PostgreSQL share a loopback world of feeds.

The world: four hosts (127.0.0.1 … 127.0.0.4, one server each, every request counted and the
requests in flight per host recorded), each serving its share of the feeds; some articles
appear in feeds on two hosts (syndication). Checked at the servers and in the store:
- each feed is polled exactly once per due time, over several cycles;
- no entry is stored twice (a syndicated article is one entry with both sources);
- `fetch.per_host` holds across the workers (requests in flight per host);
- a worker killed with SIGKILL mid-poll: its feeds are polled again once their leases end,
  and nothing is lost or doubled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.models import FeedState
from aggregator.worker import batches, bucket_of, host_of
from tests.conftest import ROOT

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
PER_HOST = 2


class World:
    """One threaded HTTP server per loopback address, all on one port."""

    def __init__(self, feeds_per_host: int, delay: float) -> None:
        self.delay = delay
        self.requests: Counter[str] = Counter()  # "host/path" -> requests
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()
        self.clients_in_flight: Counter[int] = Counter()  # client (source) port -> requests
        self.lock = threading.Lock()
        self.feeds_per_host = feeds_per_host
        self.servers: list[ThreadingHTTPServer] = []
        world = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = self.server.server_address[0]
                key = f"{host}{self.path}"
                with world.lock:
                    world.requests[key] += 1
                    world.in_flight[host] += 1
                    world.clients_in_flight[self.client_address[1]] += 1
                    world.most_in_flight[host] = max(world.most_in_flight[host], world.in_flight[host])
                done = False
                try:
                    time.sleep(world.delay)
                    body = world.feed(host, self.path)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    # Counted out before the last bytes leave: once the client has them it may
                    # send its next request, and a thread descheduled here (loaded machine)
                    # would count that one as a third in flight when the client had two.
                    world.out_of_flight(host, self.client_address[1])
                    done = True
                    self.wfile.write(body)
                finally:
                    if not done:
                        world.out_of_flight(host, self.client_address[1])

            def log_message(self, *args: object) -> None:
                pass

        first = ThreadingHTTPServer((HOSTS[0], 0), Handler)
        self.port = first.server_address[1]
        self.servers = [first] + [ThreadingHTTPServer((h, self.port), Handler) for h in HOSTS[1:]]
        for s in self.servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()

    def out_of_flight(self, host: str, client: int) -> None:
        with self.lock:
            self.in_flight[host] -= 1
            self.clients_in_flight[client] -= 1

    def urls(self) -> list[str]:
        return [f"http://{h}:{self.port}/f{i}.rss" for h in HOSTS for i in range(self.feeds_per_host)]

    @staticmethod
    def feed(host: str, path: str) -> bytes:
        """Two articles of its own, and one shared with the same-numbered feed on the next
        host (a syndicated article: one link, two feeds)."""
        n = int(path.strip("/f.rs") or 0)
        h = HOSTS.index(host)
        shared = (h // 2, n)  # hosts 1+2 and 3+4 share their feed n's article
        items = [
            (
                f"Report {h}-{n}-{k} on the strike at plant {h * 1000 + n * 10 + k}",
                f"https://news.example/{h}/{n}/{k}",
            )
            for k in range(2)
        ]
        items.append(
            (
                f"Joint statement number {shared[0]}-{shared[1]} of the unions",
                f"https://joint.example/{shared[0]}/{shared[1]}",
            )
        )
        body = "".join(
            f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
            f"<pubDate>Sun, 29 Nov 2026 10:00:00 GMT</pubDate><description>About it</description></item>"
            for t, link in items
        )
        channel = f"<channel><title>{host}{path}</title>{body}</channel>"
        return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def world_factory() -> Iterator[type[World]]:
    made: list[World] = []

    def make(feeds_per_host: int, delay: float) -> World:
        w = World(feeds_per_host, delay)
        made.append(w)
        return w

    yield make  # type: ignore[misc]
    for w in made:
        w.close()


def _config(path: Path, urls: list[str]) -> Path:
    lines = ["site:", "  languages: [en]", "defaults:", "  interval: 1h", "fetch:", f"  per_host: {PER_HOST}",
             "  timeout: 20s", "feeds:"]  # fmt: skip
    for u in urls:
        lines += [f"  - url: {u}", "    language: en"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _start_workers(n: int, store: str, config: Path, data: Path, lease: str) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "AGGREGATOR_STORE": store,
        "AGGREGATOR_CONFIG": str(config),
        "AGGREGATOR_DATA": str(data),
    }
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator",
                "worker",
                "--concurrency",
                "4",
                "--lease",
                lease,
                "--dispatch-every",
                "1",
                "--batch",
                "5",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(data.parent / f"worker{i}.log", "wb"),  # the child keeps it
        )
        for i in range(n)
    ]


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGINT)
    for w in workers:
        try:
            w.wait(20)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait(5)


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _recorded(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM feeds WHERE last_polled IS NOT NULL AND leased_until IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


def _entries(url: str) -> tuple[int, int, int]:
    """(entries, distinct links, sources)"""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT link), (SELECT count(*) FROM entry_sources) FROM entries"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _queue_rows(url: str) -> dict[str, int]:
    """procrastinate's jobs left in the queue by status, and their events."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1").fetchall()
        events = conn.execute("SELECT count(*) FROM procrastinate_events").fetchone()
    return {str(k): int(n) for k, n in rows} | {"events": int(events[0]) if events else 0}


def _client_ports(pid: int) -> set[int]:
    """Local TCP ports of the IPv4 sockets process `pid` holds (Linux: its fds' socket inodes
    found in /proc/net/tcp)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _make_due(url: str) -> None:
    """The next due time arrives for every feed (instead of waiting an hour)."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE feeds SET next_poll = now() - interval '1 second'")


@pytest.mark.slow
def test_three_workers_poll_each_feed_once_per_due_time(
    tmp_path: Path, pg_url: str, world_factory: type[World]
) -> None:
    world = world_factory(feeds_per_host=60, delay=0.02)  # 240 feeds on 4 hosts
    urls = world.urls()
    config = _config(tmp_path / "feeds.yaml", urls)
    workers = _start_workers(3, pg_url, config, tmp_path / "data", lease="2m")
    try:
        for cycle in (1, 2, 3):
            if cycle > 1:
                _make_due(pg_url)
            expected = cycle * len(urls)
            _wait(
                lambda: sum(world.requests.values()) >= expected and _recorded(pg_url) == len(urls),  # noqa: B023
                120,
                f"cycle {cycle}",
            )
            time.sleep(1.5)  # a double poll would show up within a dispatch or two
            counts = Counter(world.requests.values())
            assert counts == {cycle: len(urls)}, f"cycle {cycle}: polls per feed {counts}"
    finally:
        _stop(workers)
    entries, links, sources = _entries(pg_url)
    articles = 4 * 60 * 2 + 2 * 60  # two own per feed, one shared per pair of hosts
    assert entries == links == articles  # nothing stored twice
    assert sources == 4 * 60 * 3  # every feed credited for each article it carried
    assert max(world.most_in_flight.values()) <= PER_HOST, world.most_in_flight
    assert (tmp_path / "data" / "public" / "feeds" / "all.atom").exists()  # one worker published
    queue = _queue_rows(pg_url)  # finished jobs are gone: the queue does not grow with cycles
    assert "succeeded" not in queue and sum(n for k, n in queue.items() if k != "events") <= 5, queue


@pytest.mark.slow
def test_a_killed_worker_feeds_are_polled_again_and_nothing_is_lost_or_doubled(
    tmp_path: Path, pg_url: str, world_factory: type[World]
) -> None:
    world = world_factory(feeds_per_host=10, delay=1.0)  # 40 feeds, slow answers
    urls = world.urls()
    config = _config(tmp_path / "feeds.yaml", urls)
    workers = _start_workers(3, pg_url, config, tmp_path / "data", lease="6s")
    try:
        # The worker to kill is one with a request in flight: its feeds are leased to it, and
        # only a lease running out lets another worker poll them (any worker will not do: with
        # three, the first was sometimes idle, and nothing was polled again).
        busy: list[subprocess.Popen[bytes]] = []

        def one_busy() -> bool:
            with world.lock:
                clients = {port for port, n in world.clients_in_flight.items() if n > 0}
            busy[:] = [w for w in workers if _client_ports(w.pid) & clients]
            return bool(busy)

        _wait(one_busy, 60, "a worker's poll in flight")
        busy[0].send_signal(signal.SIGKILL)  # mid-poll: its requests are in flight
        busy[0].wait(10)
        _wait(lambda: _recorded(pg_url) == len(urls), 120, "every feed's poll recorded")
    finally:
        _stop(workers)
    entries, links, sources = _entries(pg_url)
    assert entries == links == 4 * 10 * 2 + 2 * 10
    assert sources == 4 * 10 * 3
    assert set(world.requests) == {u.split("//")[1].split(":")[0] + "/" + u.rsplit("/", 1)[1] for u in urls}
    assert sum(world.requests.values()) > len(urls)  # the killed worker's feeds were polled again


# -- the dispatcher's plan (pure) ---------------------------------------------------------------


@given(
    feeds=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10_000)), max_size=300, unique=True),
    batch=st.integers(1, 40),
    buckets=st.integers(1, 70),
)
def test_every_claimed_feed_is_in_one_job_and_each_host_in_one_bucket(
    feeds: list[tuple[int, int]], batch: int, buckets: int
) -> None:
    states = [FeedState(url=f"https://h{h}.example/feed/{n}", name=str(n)) for h, n in feeds]
    plan = batches(states, batch, buckets)
    urls = [u for _, job in plan for u in job]
    assert sorted(urls) == sorted(s.url for s in states)  # each once
    assert all(0 < len(job) <= batch for _, job in plan)
    bucket_of_host: dict[str, int] = {}
    for bucket, job in plan:
        for u in job:
            h = host_of(FeedState(url=u, name=""))
            assert bucket_of_host.setdefault(h, bucket) == bucket == bucket_of(h, buckets)


def test_a_moved_feed_counts_for_the_host_it_is_polled_at() -> None:
    moved = FeedState(url="https://old.example/f", name="f", permanent_url="https://NEW.example/f")
    assert host_of(moved) == "new.example"
