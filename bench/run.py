#!/usr/bin/env python3
"""The benchmark suite of issue 15, one command: the product against its baselines, same run.

    .venv/bin/python bench/run.py --sizes 1000,3000 [--write-docs] [--profile]
    .venv/bin/python bench/run.py --quick            # sizes 200,600: a minute or two

For each size N a world of N feeds (bench/world.py) is written and served by nginx on
127.0.0.1. Each measurement runs in a fresh child process, so its peak memory (the RSS of its
whole process tree, sampled every second: parse workers included) and CPU time are its own:

  plain     the baseline: plain httpx over the same client layout as the fetcher (16 clients,
            32 requests in flight), reading every body; then `feedparser.parse` (its defaults)
            on the same bytes, one after the other; the steady cycle with If-None-Match
  pool      the product, `pipeline.poll_many` into a fresh SQLite store, parsing in worker
            processes: a cold poll + ingest, then a steady cycle (95% 304, 5% one new entry)
  threads   the same with parsing in threads of the one process (the design before issue 15)
  sqlite    the baseline for the store: plain sqlite3 `executemany` of the very rows the
            product stored (entries, entry_sources), one transaction per feed

Bounded: every child has a deadline (--child-timeout), and sizes are skipped once the whole
run passes --budget seconds. Results go to bench/results/ (JSON), and with --write-docs to
docs/benchmarks.md and docs/bench-scaling.png (time and memory against N).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# AGGREGATOR_SRC: measure another checkout's aggregator package (the "before" of a profile).
sys.path.insert(0, os.environ.get("AGGREGATOR_SRC") or str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import nginx  # noqa: E402
import world  # noqa: E402
from proctree import process_tree  # noqa: E402

CONCURRENCY = 32
SECTION = "## Cold poll, steady cycle and memory against N (issue 15)"
PROFILE_SECTION = "## Where the cold poll's time goes (issue 15)"


# -- measuring a child's own process tree -------------------------------------------------------


class TreeSampler:
    """Peak memory (MB) of this process and all its descendants, sampled every `interval` s:
    `peak_mb` the sum of RSS (shared pages counted once per process), `peak_pss_mb` the sum of
    PSS (shared pages divided among the processes that map them: what the tree really holds,
    and the figure issue 15's goal is about once workers share their parent's pages)."""

    # Once a second: reading smaps_rollup walks each process's page tables, and at 4 Hz over
    # five processes it was 4% of the product child's CPU samples (py-spy, 300 feeds), charged
    # to the product; memory peaks last far longer than a second (64 bodies, a worker's heap).
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self.peak_pss_mb = 0.0
        self.at_peak: list[dict[str, Any]] = []  # each process's role, RSS and PSS at the PSS peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        processes = tree_memory(os.getpid())
        rss = sum(p["rss_mb"] for p in processes)
        pss = sum(p["pss_mb"] for p in processes)
        self.peak_mb = max(self.peak_mb, rss)
        if pss > self.peak_pss_mb:
            self.peak_pss_mb, self.at_peak = pss, processes

    def reset(self) -> None:
        """Start the peaks again (the steady cycle's own peak, after the cold poll's)."""
        self.peak_mb = self.peak_pss_mb = 0.0
        self.at_peak = []


def tree_memory(root: int) -> list[dict[str, Any]]:
    """Each process of `root`'s tree: its role (parent, forkserver, worker, resource tracker)
    and its RSS and PSS in MB, from /proc/PID/smaps_rollup (Linux)."""
    out = []
    for pid in process_tree(root):
        rss = pss = 0
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Rss:"):
                        rss = int(line.split()[1])
                    elif line.startswith(b"Pss:"):
                        pss = int(line.split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, IndexError, ValueError):
            continue
        if pid == root:
            role = "parent"
        elif b"resource_tracker" in cmd:
            role = "resource tracker"
        elif b"forkserver" in cmd and _ppid(pid) == str(root).encode():
            role = "forkserver"
        else:
            role = "worker"
        out.append({"role": role, "rss_mb": rss / 1024, "pss_mb": pss / 1024})
    return out


def _ppid(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[1]
    except (OSError, IndexError):
        return b""


def cpu_seconds() -> float:
    """CPU seconds of this process and its whole tree: its own, its reaped children's, and
    each live descendant's (with what it reaped). Workers forked by a forkserver are not our
    children: they are counted through the forkserver, live or as its reaped children."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in process_tree(os.getpid())[1:]:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / ticks  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            continue
    return total


class Phase:
    """Wall and CPU seconds of a block (CPU of this process and its whole tree)."""

    def __enter__(self) -> Phase:
        self.wall = time.perf_counter()
        self.cpu = cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = cpu_seconds() - self.cpu


# -- children: one measurement each -------------------------------------------------------------


def _urls(port: int, feeds: list[world.WorldFeed]) -> list[str]:
    return [f"http://127.0.0.1:{port}/{f.path}" for f in feeds]


class PlainClients:
    """The baseline's HTTP: plain httpx clients in the fetcher's layout (two requests in flight
    per client, 32 in all), created once, outside every timed phase."""

    def __init__(self) -> None:
        import httpx

        from aggregator.fetch import REQUESTS_PER_CLIENT

        self.clients = [httpx.AsyncClient(timeout=60) for _ in range(-(-CONCURRENCY // REQUESTS_PER_CLIENT))]

    async def get_all(
        self, urls: list[str], etags: dict[str, str] | None
    ) -> tuple[dict[str, bytes], dict[str, str], Counter[int]]:
        """GET every URL (conditional when `etags` has its ETag): bodies and ETags of the 200s."""
        gate = asyncio.Semaphore(CONCURRENCY)
        bodies: dict[str, bytes] = {}
        new_etags: dict[str, str] = {}
        statuses: Counter[int] = Counter()

        async def get(i: int, url: str) -> None:
            headers = {"If-None-Match": etags[url]} if etags and url in etags else {}
            async with gate:
                response = await self.clients[i % len(self.clients)].get(url, headers=headers)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                bodies[url] = response.content
                new_etags[url] = response.headers.get("etag", "")

        await asyncio.gather(*(get(i, u) for i, u in enumerate(urls)))
        return bodies, new_etags, statuses

    async def aclose(self) -> None:
        for c in self.clients:
            await c.aclose()


def child_plain(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_plain(args))


async def _plain(args: argparse.Namespace) -> dict[str, Any]:
    import feedparser

    feeds = world.feeds(args.n)
    urls = _urls(args.port, feeds)
    out: dict[str, Any] = {}
    with TreeSampler() as mem:
        http_clients = PlainClients()
        with Phase() as http:
            bodies, etags, statuses = await http_clients.get_all(urls, None)
        assert statuses[200] == len(urls), statuses
        with Phase() as parse:
            entries = sum(len(feedparser.parse(bodies[u]).entries) for u in urls)
        out["cold_mb"], out["cold_pss_mb"] = mem.peak_mb, mem.peak_pss_mb
        del bodies
        world.advance(Path(args.root), feeds)
        try:
            with Phase() as steady:
                _, changed, statuses = await http_clients.get_all(urls, etags)
            etags.update(changed)
            with Phase() as quiet:
                _, _, quiet_statuses = await http_clients.get_all(urls, etags)
            assert quiet_statuses[304] == len(urls), quiet_statuses
        finally:
            world.rewind(Path(args.root), feeds)
            await http_clients.aclose()
    out.update(
        http_s=http.wall, parse_s=parse.wall, cold_s=http.wall + parse.wall, cold_cpu_s=http.cpu + parse.cpu,
        entries=entries, steady_s=steady.wall, steady_statuses=dict(statuses), peak_mb=mem.peak_mb,
        peak_pss_mb=mem.peak_pss_mb,
        quiet_s=quiet.wall,
    )  # fmt: skip
    return out


def _config(args: argparse.Namespace, feeds: list[world.WorldFeed]) -> Any:
    """The product's configuration for the world's `feeds` served on `args.port`."""
    from aggregator.config import Config, FeedConfig, FetchSettings, make_site

    urls = _urls(args.port, feeds)
    return Config(
        site=make_site(languages=list(world.LANGUAGES), timezone="Europe/London"),  # type: ignore[arg-type]
        fetch=FetchSettings(concurrency=CONCURRENCY, per_host=CONCURRENCY, timeout=timedelta(seconds=120)),
        feeds=[
            FeedConfig(url=u, name=f"feed {f.n}", language=f.language if f.n % 4 else "auto")  # type: ignore[arg-type]
            for u, f in zip(urls, feeds, strict=True)
        ],
    )


def child_product(args: argparse.Namespace) -> dict[str, Any]:
    from aggregator.fetch import Fetcher
    from aggregator.models import Outcome
    from aggregator.pipeline import poll_many
    from aggregator.policy import sync_feeds
    from aggregator.store import SQLiteStore

    feeds = world.feeds(args.n)
    config = _config(args, feeds)
    db = Path(args.db)
    out: dict[str, Any] = {}
    with TreeSampler() as mem:
        store = SQLiteStore(db)
        sync_feeds(config, store)

        options = {"workers": args.workers} if "workers" in inspect.signature(poll_many).parameters else {}

        async def cycle() -> list[Any]:
            async with Fetcher(config.fetch) as fetcher:
                return await poll_many(config.feeds, config, store, fetcher, **options)

        with Phase() as cold:
            reports = asyncio.run(cycle())
        bad = [r.error for r in reports if r.outcome is not Outcome.OK]
        assert not bad, bad[:3]
        out["cold_mb"], out["cold_pss_mb"] = mem.peak_mb, mem.peak_pss_mb
        out["cold_at_peak"] = mem.at_peak
        mem.reset()
        out["inserted"] = sum(r.inserted for r in reports)
        out["merged"] = sum(r.merged for r in reports)
        world.advance(Path(args.root), feeds)
        try:
            with Phase() as steady:
                reports = asyncio.run(cycle())
            mem.sample()  # a cycle shorter than the sampling interval still has its figure
            out["steady_mb"], out["steady_pss_mb"] = mem.peak_mb, mem.peak_pss_mb
            out["steady_at_peak"] = mem.at_peak
            with Phase() as quiet:
                quiet_reports = asyncio.run(cycle())
            assert all(r.outcome is Outcome.NOT_MODIFIED for r in quiet_reports)
        finally:
            world.rewind(Path(args.root), feeds)
        store.close()
    out.update(
        cold_s=cold.wall, cold_cpu_s=cold.cpu, steady_s=steady.wall, steady_cpu_s=steady.cpu,
        steady_outcomes=dict(Counter(r.outcome.value for r in reports)),
        steady_inserted=sum(r.inserted for r in reports), peak_mb=max(mem.peak_mb, out["cold_mb"]),
        peak_pss_mb=max(mem.peak_pss_mb, out["cold_pss_mb"]),
        quiet_s=quiet.wall, quiet_cpu_s=quiet.cpu,
        db_mb=sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20,
    )  # fmt: skip
    return out


def child_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    """Plain sqlite3: the product's stored rows into a fresh database of the same schema."""
    src = sqlite3.connect(args.db)
    schema = [
        sql
        for (sql,) in src.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        )
    ]
    tables = {}
    for table in ("feeds", "entries", "entry_sources"):
        cur = src.execute(f"SELECT * FROM {table}")
        tables[table] = ([d[0] for d in cur.description], cur.fetchall())
    src.close()
    dst_path = Path(args.db).with_name("plain.db")
    dst = sqlite3.connect(dst_path, isolation_level=None)
    dst.execute("PRAGMA journal_mode=WAL")
    dst.execute("PRAGMA synchronous=NORMAL")
    for sql in schema:
        dst.execute(sql)
    cols, rows = tables["feeds"]
    dst.executemany(f"INSERT INTO feeds ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)
    by_feed: dict[str, list[tuple[str, list[Any]]]] = {}
    for table in ("entries", "entry_sources"):
        cols, rows = tables[table]
        key = cols.index("feed_url")
        for row in rows:
            by_feed.setdefault(row[key], []).append((table, row))
    with Phase() as insert:
        for items in by_feed.values():
            dst.execute("BEGIN IMMEDIATE")
            for table in ("entries", "entry_sources"):
                cols = tables[table][0]
                dst.executemany(
                    f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                    [row for t, row in items if t == table],
                )
            dst.execute("COMMIT")
    dst.close()
    size = sum(p.stat().st_size for p in dst_path.parent.glob(dst_path.name + "*")) / 2**20
    return {"insert_s": insert.wall, "rows": len(tables["entries"][1]), "db_mb": size}


NEW_ENTRIES = 50  # entries added on the latest day before the incremental publish


def child_publish(args: argparse.Namespace) -> dict[str, Any]:
    """`publish` of the store the product filled (cold poll and steady cycle): a full rebuild
    into an empty directory, then, after NEW_ENTRIES new entries on the latest day, an
    incremental one (`changed_days`, one `Digests` kept between them as `run` keeps it).
    Baseline: feedgen alone serialising the same Atom and RSS documents from the same store
    (bench/publish_bench.py's `feedgen_documents`; with the NEW_ENTRIES entries, a rounding
    error at these sizes), in this process after the publishes, so that its reads do not
    count in their peak memory."""
    import publish_bench

    from aggregator import publish as publishing
    from aggregator.models import UpdatePlan
    from aggregator.store import SQLiteStore

    config = _config(args, world.feeds(args.n))
    store = SQLiteStore(Path(args.db))
    now = datetime.now(UTC)
    latest = store.latest_day(None, not_after=now.date())
    assert latest is not None
    out = Path(args.db).parent / "public"
    digests = publishing.Digests()
    before = sum(p["pss_mb"] for p in tree_memory(os.getpid()))  # imports and the configuration
    with TreeSampler() as mem:
        with Phase() as full:
            report = publishing.publish(store, config, out, now=now, digests=digests)
        at = datetime.combine(latest, datetime.min.time(), UTC) + timedelta(hours=12)
        new = [
            replace(e, day=latest, published=at, first_seen=at)
            for e in publish_bench.make_entries(NEW_ENTRIES, 1, start=10**7)
        ]
        store.apply(UpdatePlan(inserts=tuple(new)))
        with Phase() as inc:
            inc_report = publishing.publish(
                store, config, out, now=now, changed_days={latest}, digests=digests
            )
    # The baseline after the publishes: its reads would otherwise stay in this process's heap
    # and count in the publishes' peak memory.
    with Phase() as base:
        feedgen_wall, feedgen_cpu, items = publish_bench.feedgen_documents(store, config, latest)
    store.close()
    assert not report.failed and not inc_report.failed, (report.failed, inc_report.failed)
    return {
        "feedgen_s": feedgen_wall, "feedgen_cpu_s": feedgen_cpu, "feedgen_items": items,
        "feedgen_phase_s": base.wall, "full_s": full.wall, "full_cpu_s": full.cpu,
        "full_files": len(report.written), "inc_s": inc.wall, "inc_cpu_s": inc.cpu,
        "inc_files": len(inc_report.written), "inc_unchanged": inc_report.unchanged,
        "publish_mb": mem.peak_mb, "publish_pss_mb": mem.peak_pss_mb, "before_publish_pss_mb": before,
    }  # fmt: skip


CHILDREN = {
    "plain": child_plain, "pool": child_product, "threads": child_product, "sqlite": child_sqlite,
    "publish": child_publish,
}  # fmt: skip


# -- the parent ---------------------------------------------------------------------------------


def run_child(
    kind: str, n: int, port: int, root: Path, db: Path, timeout: float, profile: Path | None = None
) -> dict[str, Any]:
    workers = {"pool": 2, "threads": 0}.get(kind, 0)
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n), "--port", str(port),
           "--root", str(root), "--db", str(db), "--workers", str(workers)]  # fmt: skip
    if profile is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [spy, "record", "--subprocesses", "--rate", "50", "--format", "raw",
               "-o", str(profile), "--", *cmd]  # fmt: skip
    load = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{kind} at N={n} failed:\n{done.stderr[-4000:]}")
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("{"))  # py-spy talks too
    result: dict[str, Any] = json.loads(line)
    result["child_wall_s"] = time.perf_counter() - started
    result["load"] = "/".join(f"{x:.1f}" for x in load)  # uptime's 1, 5, 15 min, as it started
    return result


def measure_size(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    root = tmp / f"www-{n}"
    started = time.perf_counter()
    world.write(root, n)
    size_mb = sum(p.stat().st_size for p in (root / "f").iterdir()) / 2**20
    print(f"N={n}: world written ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s", flush=True)
    out: dict[str, Any] = {"n": n, "world_mb": size_mb}
    ngx = tmp / f"nginx-{n}"
    ngx.mkdir()
    with nginx.serving(root, ngx) as port:
        for kind in ("plain", "pool", "threads"):
            if kind == "threads" and args.no_threads:
                continue
            db = tmp / f"{kind}-{n}" / "aggregator.db"
            db.parent.mkdir()
            out[kind] = run_child(kind, n, port, root, db, args.child_timeout)
            print(f"N={n}: {kind}: {_brief(out[kind])}", flush=True)
            if kind == "pool":
                out["sqlite"] = run_child("sqlite", n, port, root, db, args.child_timeout)
                print(f"N={n}: sqlite: {_brief(out['sqlite'])}", flush=True)
                if not args.no_publish:
                    out["publish"] = run_child("publish", n, port, root, db, args.child_timeout)
                    print(f"N={n}: publish: {_brief(out['publish'])}", flush=True)
            shutil.rmtree(db.parent)
    shutil.rmtree(root)
    return out


def profile_cold(n: int, tmp: Path, timeout: float) -> str:
    """py-spy (all threads and worker processes) over a cold poll of N feeds with the pool."""
    root = tmp / "www-profile"
    world.write(root, n)
    ngx = tmp / "nginx-profile"
    ngx.mkdir()
    raw = tmp / "profile.txt"
    db = tmp / "profile" / "aggregator.db"
    db.parent.mkdir()
    with nginx.serving(root, ngx) as port:
        run_child("pool", n, port, root, db, timeout, profile=raw)
    return summarise_profile(raw.read_text())


def summarise_profile(raw: str, top: int = 15) -> str:
    """py-spy's collapsed stacks -> the functions with the most samples, inclusive (a
    function counted once per stack) and where the samples were taken (self)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = [re.sub(r" \((?:/[^)]*/)?([^/)]+)\)", r" (\1)", f).split(":")[0] for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ")]
        if not frames:
            continue
        total += k
        own[frames[-1]] += k
        for f in set(frames):
            inclusive[f] += k
    lines = [f"samples: {total} (50 Hz, on CPU only)", "", "inclusive share  function"]
    lines += [f"{100 * c / total:6.1f}%          {f}" for f, c in inclusive.most_common(top)]
    lines += ["", "self share       function"]
    lines += [f"{100 * c / total:6.1f}%          {f}" for f, c in own.most_common(top)]
    return "\n".join(lines)


def _brief(r: dict[str, Any]) -> str:
    keys = (
        "cold_s",
        "cold_cpu_s",
        "steady_s",
        "peak_mb",
        "peak_pss_mb",
        "cold_pss_mb",
        "steady_pss_mb",
        "insert_s",
        "db_mb",
        "http_s",
        "parse_s",
        "feedgen_s",
        "full_s",
        "inc_s",
        "publish_pss_mb",
    )
    return ", ".join(f"{k}={r[k]:.2f}" for k in keys if k in r)


def _mb(r: dict[str, Any], phase: str) -> str:
    pss = r.get(f"{phase}_pss_mb")
    return f"{r[f'{phase}_mb']:.0f} / {pss:.0f} MB" if pss is not None else f"{r[f'{phase}_mb']:.0f} MB"


def render(results: list[dict[str, Any]], load: str) -> str:
    rows = []
    for r in results:
        n, plain, pool = r["n"], r["plain"], r["pool"]
        threads = r.get("threads")
        sql = r["sqlite"]
        rows.append(
            f"| {n:,} | cold: pool | {pool['cold_s']:.1f} s | {pool['cold_cpu_s'] / pool['cold_s']:.2f} | "
            f"{_mb(pool, 'cold')} | httpx + feedparser {plain['cold_s']:.1f} s "
            f"({plain['http_s']:.1f} + {plain['parse_s']:.1f}), {_mb(plain, 'cold')} | "
            f"**{pool['cold_s'] / plain['cold_s']:.2f}×** (CPU {pool['cold_cpu_s']:.0f} s / "
            f"{plain['cold_cpu_s']:.0f} s = {pool['cold_cpu_s'] / plain['cold_cpu_s']:.2f}×) | "
            f"{pool.get('load', '')}; {plain.get('load', '')} |"
        )
        if threads:
            rows.append(
                f"| {n:,} | cold: threads | {threads['cold_s']:.1f} s | "
                f"{threads['cold_cpu_s'] / threads['cold_s']:.2f} | {_mb(threads, 'cold')} | same | "
                f"{threads['cold_s'] / plain['cold_s']:.2f}× "
                f"(pool {pool['cold_s'] / threads['cold_s']:.2f}× of threads) | {threads.get('load', '')} |"
            )
        rows.append(
            f"| {n:,} | steady (95% 304) | {pool['steady_s']:.2f} s | "
            f"{pool['steady_cpu_s'] / pool['steady_s']:.2f} | "
            f"{_mb(pool, 'steady')} | httpx, same clients {plain['steady_s']:.2f} s | "
            f"**{pool['steady_s'] / plain['steady_s']:.2f}×** | |"
        )
        rows.append(
            f"| {n:,} | steady (all 304) | {pool['quiet_s']:.2f} s | "
            f"{pool['quiet_cpu_s'] / pool['quiet_s']:.2f} | | httpx, same clients {plain['quiet_s']:.2f} s | "
            f"**{pool['quiet_s'] / plain['quiet_s']:.2f}×** | |"
        )
        rows.append(
            f"| {n:,} | store | {pool['db_mb']:.0f} MB db, {pool['inserted']:,} entries "
            f"({pool['merged']:,} merged) | | | "
            f"sqlite3 executemany of the same rows {sql['insert_s']:.2f} s | "
            f"{pool['cold_s'] / sql['insert_s']:.0f}× (whole cold poll / inserts alone) | "
            f"{sql.get('load', '')} |"
        )
        pub = r.get("publish")
        if pub:
            rows.append(
                f"| {n:,} | publish: full rebuild ({pub['full_files']:,} files) | {pub['full_s']:.1f} s | "
                f"{pub['full_cpu_s'] / pub['full_s']:.2f} | {_mb(pub, 'publish')} | "
                f"feedgen alone, the same Atom/RSS documents ({pub['feedgen_items']:,} items) "
                f"{pub['feedgen_s']:.1f} s | **{pub['full_s'] / pub['feedgen_s']:.2f}×** "
                f"(CPU {pub['full_cpu_s'] / pub['feedgen_cpu_s']:.2f}×) | {pub.get('load', '')} |"
            )
            rows.append(
                f"| {n:,} | publish: incremental, {NEW_ENTRIES} new entries on the latest day "
                f"({pub['inc_files']:,} files rewritten, {pub['inc_unchanged']:,} unchanged) | "
                f"{pub['inc_s']:.2f} s | | | same | {pub['inc_s'] / pub['feedgen_s']:.3f}× | |"
            )
    table = "\n".join(rows)
    peaks = []
    for r in results:
        for phase in ("cold", "steady"):
            at = r["pool"].get(f"{phase}_at_peak")
            if at:
                parts = ", ".join(f"{p['role']} {p['pss_mb']:.0f}" for p in at)
                peaks.append(f"- {r['n']:,} feeds, {phase}: {parts} (MB of PSS, at the tree's peak)")
    where = "\n".join(peaks)
    return f"""{SECTION}

Command: `.venv/bin/python bench/run.py --sizes {",".join(str(r["n"]) for r in results)} --write-docs`
(run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {os.cpu_count()} shared
cores, load average at start {load}: other work may share these cores, so the absolute
times are noisy; the ratios compare runs of the same minutes).

The world (bench/world.py): N feeds served by nginx on 127.0.0.1, RSS 2.0, Atom and RSS 1.0
in turn, 20-50 entries of 1-3 KB HTML, five languages, an article in seven carried by several
feeds under tracking links, relative URLs in one feed of five. Cold: every feed polled into a
fresh store. Steady: 95% of the feeds answer 304, 5% have one new entry. Memory is the peak
of the measuring process and all its children (forkserver and parse workers), as the sum of
RSS and the sum of PSS (shared pages divided among the processes sharing them: the goal's
measure). CPU/wall counts the workers' CPU too: above 1 means both cores worked. Load is
`uptime`'s 1/5/15-minute load average as each measuring process started (product; baseline).

| N | measure | product | CPU/wall | peak memory: RSS sum / PSS sum | baseline (same run) | ratio | load |
|---|---|---|---|---|---|---|---|
{table}

Where the product's peak PSS was, process by process:

{where}

![time and memory against N](bench-scaling.png)
"""


def plot(results: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e .[bench]): no plot", file=sys.stderr)
        return False
    ns = [r["n"] for r in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(ns, [r["pool"]["cold_s"] for r in results], "o-", label="cold: product (pool)")
    if all("threads" in r for r in results):
        ax1.plot(ns, [r["threads"]["cold_s"] for r in results], "o--", label="cold: product (threads)")
    ax1.plot(ns, [r["plain"]["cold_s"] for r in results], "s-", label="cold: httpx + feedparser")
    ax1.plot(ns, [r["pool"]["steady_s"] for r in results], "o-", label="steady: product")
    ax1.plot(ns, [r["plain"]["steady_s"] for r in results], "s-", label="steady: httpx")
    if all("publish" in r for r in results):
        ax1.plot(ns, [r["publish"]["full_s"] for r in results], "^-", label="publish: full rebuild")
        ax1.plot(ns, [r["publish"]["feedgen_s"] for r in results], "v-", label="publish: feedgen alone")
    ax1.set_xlabel("feeds")
    ax1.set_ylabel("seconds")
    ax1.legend(fontsize=8)
    ax2.plot(ns, [r["pool"]["peak_mb"] for r in results], "o-", label="product (pool), peak RSS sum")
    ax2.plot(ns, [r["pool"]["peak_pss_mb"] for r in results], "o:", label="product (pool), peak PSS sum")
    if all("threads" in r for r in results):
        ax2.plot(ns, [r["threads"]["peak_mb"] for r in results], "o--", label="product (threads), peak")
    ax2.plot(ns, [r["plain"]["peak_mb"] for r in results], "s-", label="httpx + feedparser, peak")
    if all("publish" in r for r in results):
        ax2.plot(ns, [r["publish"]["publish_pss_mb"] for r in results], "^-", label="publish, peak PSS")
    ax2.axhline(300, color="grey", linewidth=0.8, linestyle="--", label="goal: 300 MB")
    ax2.set_xlabel("feeds")
    ax2.set_ylabel("MB (process tree)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def replace_section(text: str, section: str, body: str) -> str:
    start = text.find(section)
    if start < 0:
        return text.rstrip() + "\n\n" + body.rstrip() + "\n"
    end = text.find("\n## ", start + len(section))
    end = len(text) if end < 0 else end + 1
    return text[:start] + body.rstrip() + "\n" + ("\n" if end < len(text) else "") + text[end:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,3000", help="comma-separated feed counts")
    parser.add_argument("--quick", action="store_true", help="sizes 200,600")
    parser.add_argument("--no-threads", action="store_true", help="skip the threads comparison")
    parser.add_argument("--no-publish", action="store_true", help="skip the publish measurement")
    parser.add_argument("--budget", type=float, default=1200, help="seconds; later sizes are skipped after")
    parser.add_argument("--child-timeout", type=float, default=600)
    parser.add_argument("--profile", action="store_true", help="py-spy over a cold poll of the first size")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return
    sizes = [200, 600] if args.quick else [int(s) for s in args.sizes.split(",")]
    load = f"{os.getloadavg()[0]:.2f}"
    deadline = time.monotonic() + args.budget
    results = []
    with tempfile.TemporaryDirectory(prefix="aggbench-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)
        for n in sizes:
            if time.monotonic() > deadline:
                print(f"N={n}: skipped, past the --budget", flush=True)
                continue
            results.append(measure_size(n, args, tmp))
        profile = profile_cold(sizes[0], tmp, args.child_timeout) if args.profile else None
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (out_dir / f"run-{stamp}.json").write_text(json.dumps({"load": load, "results": results}, indent=1))
    report = render(results, load)
    print(report)
    if profile:
        print(profile)
    if args.write_docs:
        docs = ROOT / "docs" / "benchmarks.md"
        text = replace_section(docs.read_text(), SECTION, report)
        if profile:
            text = replace_section(
                text, PROFILE_SECTION,
                f"{PROFILE_SECTION}\n\npy-spy over a cold poll of {sizes[0]:,} feeds (parent and parse "
                f"workers, every thread; `bench/run.py --profile`):\n\n```\n{profile}\n```\n",
            )  # fmt: skip
        docs.write_text(text)
        plot(results, ROOT / "docs" / "bench-scaling.png")


if __name__ == "__main__":
    main()
