#!/usr/bin/env python3
"""Does serving wait for polling? Latency of `/` and `/feeds/all.atom` from a running
`aggregator run`, during its first poll cycle over N generated feeds and idle, in one run.

    .venv/bin/python bench/serve_latency.py [--feeds 500] [--idle 15] [--write-docs]

Loopback only and bounded: bench/poll_server.py serves the N feeds (5 items each, cold: every
first poll is a 200 to parse, dedupe and store), `aggregator run` polls them all at start-up
(spread over 10 s) and publishes, while one client here asks for the two pages in turn, one
request at a time on a keep-alive connection, as a feed reader would. The cycle ends when
every feed has logged its poll and the publish after it is done; then the same client
measures the idle service for `--idle` seconds. Everything stops after `--timeout` seconds
whatever happens. Goal (issue 11): p99 during the cycle within 3x the idle p99.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/", "/feeds/all.atom")


@dataclass
class Samples:
    phase: str = "cycle"
    got: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    errors: int = 0
    stop: bool = False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client(base: str, samples: Samples) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        i = 0
        while not samples.stop:
            path = PATHS[i % len(PATHS)]
            i += 1
            started = time.perf_counter()
            try:
                r = client.get(path)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = time.perf_counter() - started
            if ok:
                samples.got.setdefault((samples.phase, path), []).append(elapsed)
            else:
                samples.errors += 1
            time.sleep(0.01)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def _count(log: Path, needle: str) -> int:
    try:
        return log.read_text(encoding="utf-8", errors="replace").count(needle)
    except FileNotFoundError:
        return 0


def run(feeds: int, idle: float, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="serve-latency-") as tmp:
        work = Path(tmp)
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "poll_server.py"), "--feeds", str(feeds),
             "--items", "5", "--lifetime", str(timeout + 30)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None
        feed_port = int(server.stdout.readline())
        lines = [
            "site:\n  title: Bench\n  timezone: UTC\n  languages: [en]",
            "defaults:\n  interval: 1h",
            "fetch:\n  concurrency: 32\n  per_host: 32",  # every feed is on one host here
            "feeds:",
        ]
        lines += [
            f"  - url: http://127.0.0.1:{feed_port}/feed/{n}.xml\n    name: Bench {n}\n    language: en"
            for n in range(feeds)
        ]
        config = work / "feeds.yaml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        log = work / "run.log"
        port = _free_port()
        with log.open("wb") as out:
            service = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(work / "data"),
                 "run", "--port", str(port)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        samples = Samples()
        client = threading.Thread(target=_client, args=(f"http://127.0.0.1:{port}", samples), daemon=True)
        try:
            while time.monotonic() < deadline:  # serving: the pages of the start-up publish exist
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/feeds/all.atom", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            cycle_started = time.monotonic()
            client.start()
            while _count(log, "outcome=") < feeds and time.monotonic() < deadline:
                time.sleep(0.2)
            polled = _count(log, "outcome=")
            # The publish after the last change: at most PUBLISH_MAX_DELAY (5 s) plus its own time.
            published = _count(log, "published (")
            settle = time.monotonic() + 30
            while time.monotonic() < min(settle, deadline):
                time.sleep(0.5)
                now = _count(log, "published (")
                if now > published:
                    published = now
                    time.sleep(1)
                    if _count(log, "published (") == now:
                        break
            cycle_seconds = time.monotonic() - cycle_started
            samples.phase = "idle"
            time.sleep(min(idle, max(0.0, deadline - time.monotonic())))
            samples.stop = True
            client.join(15)
        finally:
            service.send_signal(signal.SIGINT)
            try:
                code = service.wait(15)
            except subprocess.TimeoutExpired:
                service.kill()
                code = -9
            if server.stdin:
                server.stdin.close()
            server.wait(10)
        ok = polled >= feeds
        rows = []
        worst = 0.0
        for path in PATHS:
            cycle, quiet = samples.got.get(("cycle", path), []), samples.got.get(("idle", path), [])
            if not cycle or not quiet:
                rows.append(f"{path:<18} no samples (cycle {len(cycle)}, idle {len(quiet)})")
                continue
            ratio50 = _pct(cycle, 0.5) / _pct(quiet, 0.5)
            ratio99 = _pct(cycle, 0.99) / _pct(quiet, 0.99)
            worst = max(worst, ratio99)
            rows.append(
                f"{path:<18} idle p50 {_pct(quiet, 0.5):6.1f} ms  p99 {_pct(quiet, 0.99):6.1f} ms"
                f"  (n={len(quiet)})\n"
                f"{'':<18} cycle p50 {_pct(cycle, 0.5):5.1f} ms  p99 {_pct(cycle, 0.99):6.1f} ms"
                f"  max {max(cycle) * 1000:6.1f} ms  (n={len(cycle)})\n"
                f"{'':<18} cycle / idle: p50 x{ratio50:.2f}, p99 x{ratio99:.2f}"
            )
        with_entries = _count(log, "published (")
        report = [
            f"{feeds} feeds on one loopback server (5 items each, cold), `aggregator run` on loopback, "
            f"{os.cpu_count()} cores shared",
            f"first cycle: {polled} of {feeds} feeds polled, {with_entries} publishes, "
            f"{cycle_seconds:.1f} s until the publish after the last poll; idle {idle:.0f} s after it",
            *rows,
            f"failed requests: {samples.errors}; service exit code {code}",
            f"goal: p99 during the cycle within 3x idle: "
            f"{'met' if ok and 0 < worst <= 3 else 'NOT met'} (worst p99 ratio x{worst:.2f})",
        ]
        return "\n".join(report)


def write_docs(report: str) -> None:
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text(encoding="utf-8")
    title = "## Serving during polling (issue 11)"
    section = (
        f"{title}\n\n"
        f"Command: `.venv/bin/python bench/serve_latency.py --write-docs` (run "
        f"{datetime.now(UTC):%Y-%m-%d}, Python {sys.version.split()[0]}, 2 shared cores; the feed "
        "server, the service and the client are separate processes on the same cores).\n\n"
        f"```\n{report}\n```\n\n"
        "What is measured: one client asks for `/` and `/feeds/all.atom` in turn, a request at a\n"
        "time on one keep-alive connection (10 ms apart), from the moment the service serves\n"
        "until the publish after its first poll cycle, then for the idle period after it. Polling\n"
        "(fetch, parse, dedupe, SQLite) runs in the poll thread's own event loop and publishing\n"
        "in its own thread; uvicorn's loop only serves files, read once per file version.\n"
        "The idle pages are the full ones (every entry stored), so they are at least as large as\n"
        "any served during the cycle.\n"
    )
    if title in text:
        start = text.index(title)
        end = text.find("\n## ", start + len(title))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    docs.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of idle measurement")
    parser.add_argument("--timeout", type=float, default=180.0, help="hard limit for the whole run")
    parser.add_argument("--write-docs", action="store_true", help="put the report in docs/benchmarks.md")
    args = parser.parse_args()
    report = run(args.feeds, args.idle, args.timeout)
    print(report)
    if args.write_docs:
        write_docs(report)


if __name__ == "__main__":
    main()
