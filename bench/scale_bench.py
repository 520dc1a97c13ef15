#!/usr/bin/env python3
"""Scaled-out polling (issue 16): polls per second and cycle time at N feeds with 1, 2 and 4
`aggregator worker` processes on one PostgreSQL, against the single-process SQLite mode
(`aggregator fetch`) in the same run, and the claim query's cost.

The world: bench/poll_server.py's feeds (5 items each, ETag, 304 on If-None-Match), served on
`--hosts` loopback addresses (127.0.1.1, 127.0.1.2, …; one port), the feeds spread over them.
PostgreSQL is a throw-away server (tests/pg_server.py). Each mode polls every feed twice:
cycle 1 fetches and stores every entry (200s), cycle 2 is conditional GETs (304s). A worker
cycle is timed from the moment every feed is made due (the workers are up and idle) until
every feed's poll is recorded. Everything is bounded (`--timeout` per cycle) and stops itself.

    .venv/bin/python bench/scale_bench.py --feeds 2000 --workers 1,2,4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from aggregator.store import SQLiteStore  # noqa: E402
from aggregator.store.postgres import PostgresStore  # noqa: E402
from tests.pg_server import running_server  # noqa: E402


def host(i: int) -> str:
    return f"127.0.1.{i + 1}"


def serve(feeds: int, hosts: int, lifetime: float) -> None:
    """The world, in this process: prints the port, stops when stdin closes or at lifetime."""
    sys.path.insert(0, str(ROOT / "bench"))
    from poll_server import FeedProtocol, build_answers

    async def main() -> None:
        FeedProtocol.answers = build_answers(feeds, 5)
        loop = asyncio.get_running_loop()
        first = await loop.create_server(FeedProtocol, host(0), 0, backlog=1024)
        port = first.sockets[0].getsockname()[1]
        servers = [first] + [
            await loop.create_server(FeedProtocol, host(i), port, backlog=1024) for i in range(1, hosts)
        ]
        print(port, flush=True)
        gone = asyncio.Event()
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(gone.set)), daemon=True
        ).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), timeout=lifetime)
        for s in servers:
            s.close()

    asyncio.run(main())


def write_config(path: Path, port: int, feeds: int, hosts: int, per_host: int) -> list[str]:
    urls = [f"http://{host(n % hosts)}:{port}/feed/{n}.xml" for n in range(feeds)]
    lines = ["site:", "  languages: [en]", "defaults:", "  interval: 1h", "fetch:", "  concurrency: 32",
             f"  per_host: {per_host}", "feeds:"]  # fmt: skip
    for u in urls:
        lines += [f"  - url: {u}", "    language: en"]
    path.write_text("\n".join(lines) + "\n")
    return urls


def cli(store: str, config: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AGGREGATOR_STORE": store,
        "AGGREGATOR_CONFIG": str(config),
        "AGGREGATOR_DATA": str(data),
    }
    return subprocess.run([sys.executable, "-m", "aggregator", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=900)  # fmt: skip


def sqlite_mode(config: Path, tmp: Path, feeds: int) -> dict[str, Any]:
    db = tmp / "sqlite" / "aggregator.db"
    out: dict[str, Any] = {"mode": "sqlite, aggregator fetch (1 process)"}
    for cycle in (1, 2):
        t = time.perf_counter()
        r = cli(f"sqlite:///{db}", config, tmp / "sqlite", "fetch", "--no-publish")
        took = time.perf_counter() - t
        assert r.returncode == 0, r.stderr[-2000:]
        out[f"cycle{cycle}_s"] = round(took, 2)
        out[f"cycle{cycle}_polls_per_s"] = round(feeds / took, 1)
    store = SQLiteStore(db)
    out["entries"] = store.count_entries()
    store.close()
    return out


def _recorded(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM feeds WHERE leased_until IS NULL AND last_polled >= "
            "(SELECT value::timestamptz FROM meta WHERE key = 'bench_cycle')"
        ).fetchone()
    return int(row[0]) if row else 0


def _make_due(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('bench_cycle', date_trunc('second', now())::text) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        conn.execute("UPDATE feeds SET next_poll = now() - interval '1 second'")


def workers_mode(n: int, url: str, config: Path, tmp: Path, feeds: int, timeout: float) -> dict[str, Any]:
    data = tmp / f"workers{n}"
    data.mkdir()
    store = PostgresStore(url)
    from aggregator.config import load_config
    from aggregator.policy import sync_feeds

    sync_feeds(load_config(config), store)
    with psycopg.connect(url) as conn:  # nothing due until the workers are up
        conn.execute("UPDATE feeds SET next_poll = now() + interval '1 hour'")
    store.close()
    env = {
        **os.environ,
        "AGGREGATOR_STORE": url,
        "AGGREGATOR_CONFIG": str(config),
        "AGGREGATOR_DATA": str(data),
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator",
                "worker",
                "--concurrency",
                "4",
                "--dispatch-every",
                "1",
                "--no-publish",
                "--lease",
                "10m",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(data / f"worker{i}.log", "wb"),  # noqa: SIM115 (the child keeps it open)
        )
        for i in range(n)
    ]
    out: dict[str, Any] = {"mode": f"postgresql, {n} worker(s) x concurrency 4"}
    try:
        time.sleep(6)  # imports, schema check, first heartbeat
        for cycle in (1, 2):
            _make_due(url)
            t = time.perf_counter()
            deadline = t + timeout
            while _recorded(url) < feeds:  # bounded by the deadline
                if time.perf_counter() > deadline:
                    raise TimeoutError(
                        f"{n} workers, cycle {cycle}: {_recorded(url)} of {feeds} after {timeout} s"
                    )
                time.sleep(0.2)
            took = time.perf_counter() - t
            out[f"cycle{cycle}_s"] = round(took, 2)
            out[f"cycle{cycle}_polls_per_s"] = round(feeds / took, 1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM entries").fetchone()
    out["entries"] = int(row[0]) if row else 0
    return out


def claim_cost(url: str, sqlite_db: Path, feeds: int) -> dict[str, Any]:
    """Milliseconds per claim of 25 feeds with every feed due, and of one dispatch claiming
    all of them at once, on each store (leases released between rounds)."""
    out: dict[str, Any] = {}
    now = datetime.now(UTC) + timedelta(days=2)
    for name, store in (("postgresql", PostgresStore(url)), ("sqlite", SQLiteStore(sqlite_db))):
        urls = list(store.feed_states())
        t = time.perf_counter()
        rounds = 0
        while rounds < 40:  # bounded
            got = store.claim_due(now, 25, timedelta(minutes=5))
            rounds += 1
            if not got:
                break
        out[f"{name}_claim25_ms"] = round((time.perf_counter() - t) * 1000 / rounds, 2)
        store.release(urls)
        t = time.perf_counter()
        got = store.claim_due(now, feeds, timedelta(minutes=5))
        out[f"{name}_claim_all_ms"] = round((time.perf_counter() - t) * 1000, 1)
        out[f"{name}_claim_all_feeds"] = len(got)
        store.release(urls)
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a cycle may take at most")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.feeds, args.hosts, lifetime=3600)
        return
    command = [sys.executable, __file__, "--serve", "--feeds", str(args.feeds), "--hosts", str(args.hosts)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp_, running_server() as pg:
            tmp = Path(tmp_)
            config = tmp / "feeds.yaml"
            write_config(config, port, args.feeds, args.hosts, args.per_host)
            results.append(sqlite_mode(config, tmp, args.feeds))
            print(json.dumps(results[-1]), flush=True)
            last_url = ""
            for n in (int(w) for w in args.workers.split(",")):
                last_url = pg.new_database()
                results.append(workers_mode(n, last_url, config, tmp, args.feeds, args.timeout))
                print(json.dumps(results[-1]), flush=True)
            results.append(claim_cost(last_url, tmp / "sqlite" / "aggregator.db", args.feeds))
            print(json.dumps(results[-1]), flush=True)
    finally:
        server.stdin.close()
        server.wait(10)
    setting = {"feeds": args.feeds, "hosts": args.hosts, "per_host": args.per_host, "cpus": os.cpu_count()}
    print(json.dumps(setting | {"load_avg": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
