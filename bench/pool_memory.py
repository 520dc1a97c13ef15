#!/usr/bin/env python3
"""Where the parse pool's memory goes (issue 15): one process tree per variant, measured.

    .venv/bin/python bench/pool_memory.py [--feeds 300] [--variants spawn:2,forkserver:2,forkserver:1]

Each variant runs in a fresh child process: a `workers.ParsePool` (start method and worker
count as named) parses the same generated world documents (bench/world.py, in memory, no
network), `--feeds` of them, every one once. The parent samples the child's whole process tree
every 0.2 s from /proc/PID/smaps_rollup and reports, at the moment the tree's PSS peaked, each
process's RSS, PSS and private (dirty + clean) memory: the measuring process (which holds the
bodies and results, as a poll's parent does), the forkserver (holding the preloaded modules
and model) and each worker. Also the jobs per second, so a memory lever's cost in time shows.
Bounded: --feeds documents per variant, --timeout seconds per child.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import world  # noqa: E402
from proctree import process_tree  # noqa: E402


def rollup(pid: int) -> dict[str, float]:
    """MB of one process: Rss, Pss, Private (clean + dirty), from smaps_rollup."""
    out = {"rss": 0.0, "pss": 0.0, "private": 0.0}
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, _, rest = line.partition(":")
        if name == "Rss":
            out["rss"] = int(rest.split()[0]) / 1024
        elif name == "Pss":
            out["pss"] = int(rest.split()[0]) / 1024
        elif name in ("Private_Clean", "Private_Dirty"):
            out["private"] += int(rest.split()[0]) / 1024
    return out


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "parent"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    if b"resource_tracker" in cmd:
        return "resource tracker"
    if b"forkserver" in cmd:
        # the forkserver and the workers it forked share its command line
        return "forkserver" if _ppid(pid) == root else "worker"
    return "worker"


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def child(args: argparse.Namespace) -> dict[str, Any]:
    from aggregator.workers import ParseJob, ParsePool

    method, workers = args.child.split(":")
    docs = world._Writer()
    bodies = [docs.document(f) for f in world.feeds(args.feeds)]
    now = datetime(2026, 11, 30, tzinfo=UTC)

    def workers_cpu(pool: Any) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for w in pool._all:
            fields = Path(f"/proc/{w.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    cpu = 0.0

    async def main() -> float:
        nonlocal cpu
        async with ParsePool(int(workers), start_method=None if method == "forkserver" else method) as pool:
            await asyncio.gather(*(pool.run(_job(ParseJob, bodies[0], 0, now)) for _ in range(int(workers))))
            cpu = -workers_cpu(pool)  # all started and warm
            started = time.perf_counter()
            gate = asyncio.Semaphore(2 * int(workers))

            async def one(i: int, body: bytes) -> int:
                async with gate:
                    _, candidates = await pool.run(_job(ParseJob, body, i, now))
                return len(candidates)

            await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
            cpu += workers_cpu(pool)
            return time.perf_counter() - started

    seconds = asyncio.run(main())
    return {
        "seconds": seconds,
        "jobs_per_s": len(bodies) / seconds,
        "cpu_ms_per_job": 1000 * cpu / len(bodies),
    }


def _job(cls: Any, body: bytes, i: int, now: datetime) -> Any:
    url = f"http://127.0.0.1/f/{i}.xml"
    return cls(
        body=body, headers={"content-type": "application/xml"}, url=url, feed_url=url,
        configured_language="auto", site_languages=world.LANGUAGES, zone="Europe/London", now=now,
    )  # fmt: skip


def measure(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", variant, "--feeds", str(args.feeds)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak: dict[str, Any] = {"pss": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            procs = {p: rollup(p) for p in process_tree(proc.pid)}
            total = sum(m["pss"] for m in procs.values())
            if total > peak["pss"]:
                peak.update(
                    pss=total,
                    rss=sum(m["rss"] for m in procs.values()),
                    processes=sorted(
                        ({"role": _role(p, proc.pid), **m} for p, m in procs.items() if m["rss"]),
                        key=lambda m: m["role"],
                    ),
                )

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, _ = proc.communicate(timeout=args.timeout)
    finally:
        stop.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        raise SystemExit(f"{variant}: exit {proc.returncode}")
    return {"variant": variant, **json.loads(out.strip().splitlines()[-1]), **peak}


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(
            f"{r['variant']:<14} peak tree PSS {r['pss']:6.0f} MB (RSS sum {r['rss']:6.0f} MB), "
            f"{r['jobs_per_s']:5.1f} documents/s, workers' CPU {r['cpu_ms_per_job']:.0f} ms per document"
        )
        for m in r["processes"]:
            lines.append(
                f"    {m['role']:<17} RSS {m['rss']:6.1f}  PSS {m['pss']:6.1f}  "
                f"private {m['private']:6.1f} MB"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--variants", default="spawn:2,forkserver:2,forkserver:1")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    results = [measure(v, args) for v in args.variants.split(",")]
    print(report(results))


if __name__ == "__main__":
    main()
