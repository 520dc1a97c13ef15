#!/usr/bin/env python3
"""Polling throughput: our pipeline against plain httpx, on one loopback server.

A separate process (bench/poll_server.py) serves 2,000 distinct small RSS feeds with ETags.
Measured, each in a fresh child process (so its peak RSS is its own), best of --repeats:

  plain    plain httpx.AsyncClient: GET every URL with the same concurrency, read the body,
           nothing else; then the same requests with If-None-Match (all 304).
  pipeline aggregator.pipeline.poll_many with a real Store in a temporary directory:
           cold (fetch + parse + normalise + dedupe + store every feed), then steady
           state (every answer a 304, only the poll record written).

Each runs with one httpx client (stock) and with the fetcher's pool of clients, to show what
spreading requests over several clients buys. One command, bounded in time:

    .venv/bin/python bench/poll_bench.py [--feeds 2000] [--repeats 3] [--write-docs]
    .venv/bin/python bench/poll_bench.py --profile      # cProfile of the 304 poll
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD_TIMEOUT = 300  # seconds for one measurement, whatever happens
ITEMS = 5
SECTION = "## Polling (issue 3)"


# -- children: one measurement each ------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def plain(urls: list[str], concurrency: int, clients: int) -> dict[str, Any]:
    import httpx

    per_client = -(-concurrency // clients)
    pool = [
        httpx.AsyncClient(
            limits=httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        )
        for _ in range(clients)
    ]
    gate = asyncio.Semaphore(concurrency)
    etags: dict[str, str] = {}

    async def get(i: int, url: str, conditional: bool) -> int:
        async with gate:
            headers = {"If-None-Match": etags[url]} if conditional else {}
            response = await pool[i % clients].get(url, headers=headers)
            if not conditional:
                etags[url] = response.headers["etag"]
            return response.status_code

    out: dict[str, Any] = {"rss_start_mb": _rss_mb()}
    for phase, conditional, expected in (("cold", False, 200), ("steady", True, 304)):
        started = time.perf_counter()
        statuses = await asyncio.gather(*(get(i, u, conditional) for i, u in enumerate(urls)))
        out[f"{phase}_s"] = time.perf_counter() - started
        assert statuses.count(expected) == len(urls), (phase, statuses[:5])
    for client in pool:
        await client.aclose()
    out["rss_peak_mb"] = _rss_mb()
    return out


async def pipeline(urls: list[str], concurrency: int, clients: int | None, profile: bool) -> dict[str, Any]:
    from aggregator.config import Config, FeedConfig, FetchSettings, make_site
    from aggregator.fetch import Fetcher
    from aggregator.models import Outcome
    from aggregator.pipeline import poll_many
    from aggregator.policy import sync_feeds
    from aggregator.store import SQLiteStore

    config = Config(
        site=make_site(languages=["en"]),
        fetch=FetchSettings(concurrency=concurrency, per_host=concurrency, timeout=timedelta(seconds=60)),
        feeds=[FeedConfig(url=u, name=f"feed {i}", language="en") for i, u in enumerate(urls)],  # type: ignore[arg-type]
    )
    out: dict[str, Any] = {"rss_start_mb": _rss_mb()}
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "aggregator.db")
        sync_feeds(config, store)
        fetcher = Fetcher(config.fetch, clients=clients)
        out["clients"] = len(fetcher._clients)
        started = time.perf_counter()
        reports = await poll_many(config.feeds, config, store, fetcher)
        out["cold_s"] = time.perf_counter() - started
        assert all(r.outcome is Outcome.OK for r in reports), [r.error for r in reports if r.error][:3]
        assert sum(r.inserted for r in reports) == len(urls) * ITEMS
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        reports = await poll_many(config.feeds, config, store, fetcher)
        if profiler:
            profiler.disable()
        out["steady_s"] = time.perf_counter() - started
        assert all(r.outcome is Outcome.NOT_MODIFIED for r in reports)
        await fetcher.aclose()
        store.close()
    out["rss_peak_mb"] = _rss_mb()
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
    return out


def child(args: argparse.Namespace) -> None:
    urls = [f"http://127.0.0.1:{args.port}/feed/{n}.xml" for n in range(args.feeds)]
    clients = None if args.clients == 0 else args.clients
    if args.child == "plain":
        result = asyncio.run(plain(urls, args.concurrency, clients or 1))
    else:
        result = asyncio.run(pipeline(urls, args.concurrency, clients, args.profile))
    print(json.dumps(result))


# -- the parent: server, children, report ----------------------------------------------------


def measure(
    kind: str, clients: int, port: int, args: argparse.Namespace, profile: bool = False
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--port", str(port), "--feeds", str(args.feeds),
           "--concurrency", str(args.concurrency), "--clients", str(clients)]  # fmt: skip
    if profile:
        cmd.append("--profile")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    if profile:
        print(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Fastest of each phase (the least disturbed run), and the highest memory peak."""
    return {
        "cold_s": min(r["cold_s"] for r in runs),
        "steady_s": min(r["steady_s"] for r in runs),
        "cold_median_s": statistics.median(r["cold_s"] for r in runs),
        "steady_median_s": statistics.median(r["steady_s"] for r in runs),
        "rss_peak_mb": max(r["rss_peak_mb"] for r in runs),
        "rss_start_mb": max(r["rss_start_mb"] for r in runs),
        "clients": runs[0].get("clients"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--pool", type=int, default=0, help="clients in the pooled runs (0: the fetcher's default)"
    )
    parser.add_argument(
        "--write-docs", action="store_true", help=f"write the figures to docs/benchmarks.md, {SECTION}"
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the pipeline's 304 poll")
    parser.add_argument("--child", choices=["plain", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "poll_server.py"), "--feeds", str(args.feeds),
         "--items", str(ITEMS), "--lifetime", "1800"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        if args.profile:
            measure("pipeline", args.pool, port, args, profile=True)
            return
        from aggregator.fetch import REQUESTS_PER_CLIENT

        pooled = args.pool or -(-args.concurrency // REQUESTS_PER_CLIENT)
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all alike
            for kind, clients in (("plain", 1), ("plain", pooled), ("pipeline", 1), ("pipeline", pooled)):
                runs.setdefault(f"{kind}/{clients}", []).append(measure(kind, clients, port, args))
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    results = {key: best(value) for key, value in runs.items()}
    report = render(results, args, pooled)
    print(report)
    if args.write_docs:
        write_docs(report)


def render(r: dict[str, dict[str, Any]], args: argparse.Namespace, pooled: int) -> str:
    n = args.feeds
    stock_plain, pool_plain = r["plain/1"], r[f"plain/{pooled}"]
    stock_ours, pool_ours = r["pipeline/1"], r[f"pipeline/{pooled}"]

    def rate(seconds: float) -> str:
        return f"{seconds:6.2f} s  {n / seconds:7,.0f} feeds/s"

    lines = [
        f"{n:,} feeds on one loopback server, concurrency {args.concurrency}, best of {args.repeats}",
        "",
        "                                  cold (200, full body)        steady (all 304)         peak RSS",
        f"plain httpx, 1 client          {rate(stock_plain['cold_s'])}   {rate(stock_plain['steady_s'])}"
        f"   {stock_plain['rss_peak_mb']:5.0f} MB",
        f"plain httpx, {pooled} clients         {rate(pool_plain['cold_s'])}   {rate(pool_plain['steady_s'])}"
        f"   {pool_plain['rss_peak_mb']:5.0f} MB",
        f"pipeline, 1 client             {rate(stock_ours['cold_s'])}   {rate(stock_ours['steady_s'])}"
        f"   {stock_ours['rss_peak_mb']:5.0f} MB",
        f"pipeline, {pooled} clients (default) {rate(pool_ours['cold_s'])}   {rate(pool_ours['steady_s'])}"
        f"   {pool_ours['rss_peak_mb']:5.0f} MB",
        "",
        "ratios (throughput of the pipeline / throughput of plain httpx, same run):",
        f"  (a) cold:   {stock_plain['cold_s'] / pool_ours['cold_s']:.2f} of stock httpx, "
        f"{pool_plain['cold_s'] / pool_ours['cold_s']:.2f} of httpx with the same {pooled} clients",
        f"  (b) steady: {stock_plain['steady_s'] / pool_ours['steady_s']:.2f} of stock httpx, "
        f"{pool_plain['steady_s'] / pool_ours['steady_s']:.2f} of httpx with the same {pooled} clients"
        "  (goal >= 0.7)",
        f"  pool of {pooled} clients vs 1: "
        f"pipeline steady x{stock_ours['steady_s'] / pool_ours['steady_s']:.2f}, "
        f"cold x{stock_ours['cold_s'] / pool_ours['cold_s']:.2f}; "
        f"plain httpx steady x{stock_plain['steady_s'] / pool_plain['steady_s']:.2f}",
        f"  pipeline peak RSS {pool_ours['rss_peak_mb']:.0f} MB "
        f"(of which {pool_ours['rss_start_mb']:.0f} MB after imports, before polling)",
    ]
    return "\n".join(lines)


def write_docs(report: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    command = ".venv/bin/python bench/poll_bench.py --write-docs"
    section = (
        f"{SECTION}\n\n"
        f"Command: `{command}` (run {date.today().isoformat()}, Python {platform.python_version()}, "
        "2 shared cores; the server is a separate process on the same cores).\n\n"
        f"```\n{report}\n```\n\n"
        "What is compared: plain httpx does nothing but the requests (a semaphore, `client.get`, read\n"
        "the body); the pipeline polls with `pipeline.poll_many` and a real SQLite store: per feed a\n"
        "state read, the request with its validators, and for a 200 parsing, normalising, dedupe and\n"
        "the entries' transaction; for a 304 only the poll record (feeds row + fetch_log row).\n"
        "`per_host` is raised to the concurrency, since every feed is on one host here.\n\n"
        "How the 304 poll got there (steady state, 2,000 feeds, one run each while profiling):\n\n"
        "| step | pipeline | plain httpx |\n"
        "|---|---|---|\n"
        "| as found: one client; `sniffio` not installed; a 304's connection closed | 2.25 s | 2.45 s |\n"
        "| `sniffio` installed (httpcore imports it for every lock it makes; when it is missing, "
        "each of ~6 imports per request searches sys.path: 1.2 s for 2,000 requests) | 1.65 s | 2.13 s |\n"
        "| 16 clients instead of one (httpx's pool slows down with requests in flight) | 1.33 s | 0.70 s |\n"
        "| unread 304/redirect/error bodies drained, so connections are kept alive | 1.03 s | 0.69 s |\n"
        "| the feed's state read once per run, not per poll; no new `Random` per poll | 0.89 s | 0.68 s |\n\n"
        "The clients share one TLS context (each new one would load the CA bundle: 32 clients took\n"
        "0.6 s to create, 30 ms with a shared context). What is left of a 304 beyond the request is\n"
        "the poll record's transaction (one UPDATE and one INSERT) and the back-off arithmetic.\n"
        "The cold poll is bound by parsing and the entries' SQLite work (the ingest path above, on\n"
        "the same two cores as the server), not by HTTP.\n"
    )
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({SECTION})")


if __name__ == "__main__":
    main()
