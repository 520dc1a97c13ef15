#!/usr/bin/env python3
"""Publish: no work when nothing changed (issue 15). A poll cycle in which every answer is a
304 (or a 200 with the very body stored last time) must not publish; measured on the real
program, `aggregator run` and `aggregator fetch`, over N generated feeds on loopback nginx.

    .venv/bin/python bench/quiet_cycle.py [--feeds 1000] [--timeout 600]

For each kind of quiet server (`304`: nginx with validators; `unchanged`: nginx with no ETag
and If-Modified-Since ignored, so every poll is a full 200 of the same bytes):

1. setup (untimed): `aggregator fetch` polls every feed into a fresh store and publishes;
2. `aggregator fetch --no-publish`, then `aggregator fetch` again: CPU and wall of each
   (their difference is what `fetch` spends publishing after a cycle with no change);
3. `aggregator -v run`, started right after: it publishes at start (expected: pages exist
   before polls), then polls each feed when its `--interval` from the last fetch is up (all
   within a minute or so of each other, long after the start publish). Every publish after
   the start one is work done for nothing. Counted from the log, with the CPU of the whole
   process tree from the end of the start publish until every feed has logged its poll and
   the publisher has had PUBLISH_MAX_DELAY + 2 s to react.

Loopback only; bounded (every command has --timeout seconds).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import nginx  # noqa: E402
import world  # noqa: E402
from proctree import process_tree  # noqa: E402

AGGREGATOR = [sys.executable, "-m", "aggregator"]
SETTLE = 5.0 + 2.0  # schedule.PUBLISH_MAX_DELAY and a margin: a publish the cycle caused has begun


def write_config(path: Path, port: int, feeds: list[world.WorldFeed], interval: str) -> None:
    lines = [
        "site:",
        f"  languages: [{', '.join(world.LANGUAGES)}]",
        "  timezone: Europe/London",
        "defaults:",
        f"  interval: {interval}",
        "fetch:",
        "  concurrency: 32",
        "  per_host: 32",
        "feeds:",
    ]
    for f in feeds:
        lines += [
            f"  - url: http://127.0.0.1:{port}/{f.path}",
            f"    name: feed {f.n}",
            f"    language: {f.language}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def timed(cmd: list[str], timeout: float) -> tuple[float, float]:
    """(wall, CPU) seconds of a command and everything it started (rusage of reaped children)."""
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[3:])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )


def tree_cpu(pid: int) -> float:
    """CPU seconds so far of `pid` and every live descendant (with what each reaped)."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return total


def run_cycle(config: Path, data: Path, n: int, timeout: float) -> dict[str, float]:
    port = nginx.free_port()
    cmd = [*AGGREGATOR, "-v", "--config", str(config), "--data", str(data), "run", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    polls = 0
    outcomes: dict[str, int] = {}
    publishes: list[tuple[float, str]] = []
    lock = threading.Lock()

    def read() -> None:
        nonlocal polls
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                if "outcome=" in line:
                    polls += 1
                    kind = line.split("outcome=", 1)[1].split()[0]
                    outcomes[kind] = outcomes.get(kind, 0) + 1
                elif "published (" in line:
                    publishes.append((time.monotonic(), line.strip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:  # bounded
            with lock:
                if publishes:
                    break
            time.sleep(0.05)
        cpu0, t0 = tree_cpu(proc.pid), time.monotonic()
        with lock:
            polls_before = polls
        while time.monotonic() < deadline:  # bounded
            with lock:
                if polls >= n:
                    break
            time.sleep(0.1)
        last_poll = time.monotonic()
        time.sleep(SETTLE)
        cpu1, t1 = tree_cpu(proc.pid), time.monotonic()
        with lock:
            later = [line for when, line in publishes[1:] if when >= t0]
            result = {
                "polls": float(polls), "polls_before_window": float(polls_before),
                "publishes_in_cycle": float(len(later)), "cpu_s": cpu1 - cpu0, "window_s": t1 - t0,
                "cycle_s": last_poll - t0,
            }  # fmt: skip
            result.update({f"outcome {k}": float(v) for k, v in outcomes.items()})
        for line in later:
            print(f"    {line}")
        return result
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--interval", default="2m", help="the feeds' poll interval: longer than a fetch of them all, all-304"
    )
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="aggquiet-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)
        feeds = world.write(tmp / "www", args.feeds)
        for kind, validators in (("304", True), ("unchanged", False)):
            ngx = tmp / f"nginx-{kind}"
            ngx.mkdir()
            with nginx.serving(tmp / "www", ngx, validators=validators) as port:
                config, data = tmp / f"{kind}.yaml", tmp / f"data-{kind}"
                write_config(config, port, feeds, args.interval)
                base = [*AGGREGATOR, "--config", str(config), "--data", str(data)]
                setup, _ = timed([*base, "fetch"], args.timeout)
                bare = timed([*base, "fetch", "--no-publish"], args.timeout)
                full = timed([*base, "fetch"], args.timeout)
                print(f"{args.feeds:,} feeds, every poll {kind} (setup: cold fetch {setup:.1f} s)")
                print(f"  fetch --no-publish: {bare[0]:.2f} s wall, {bare[1]:.2f} s CPU")
                print(
                    f"  fetch:              {full[0]:.2f} s wall, {full[1]:.2f} s CPU "
                    f"(publishing after no change: {full[1] - bare[1]:+.2f} s CPU)"
                )
                r = run_cycle(config, data, args.feeds, args.timeout)
                outcomes = ", ".join(
                    f"{k.split()[1]} {v:.0f}" for k, v in r.items() if k.startswith("outcome ")
                )
                print(
                    f"  run: {r['polls']:.0f} polls ({outcomes}; {r['polls_before_window']:.0f} "
                    f"before the start publish ended), publishes after the start one: "
                    f"{r['publishes_in_cycle']:.0f} (goal 0); CPU {r['cpu_s']:.2f} s over "
                    f"{r['window_s']:.1f} s (the cycle's polls took {r['cycle_s']:.1f} s)"
                )


if __name__ == "__main__":
    main()
