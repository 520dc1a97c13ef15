#!/usr/bin/env python3
"""The dispatcher's cost (issue 16): one `aggregator.dispatch` run, which fails stalled jobs,
claims the due feeds (`Store.claim_due`) and defers their poll jobs, timed in-process against
a throw-away PostgreSQL (tests/pg_server.py) holding `--feeds` feeds on 64 hosts, with `--due`
of them due. No feed is polled (no worker takes the jobs): this is the dispatch alone.
Three rounds per size (leases ended and jobs deleted between them); bounded, stops itself.

    .venv/bin/python bench/dispatch_bench.py --feeds 10000 --due 1110,10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from aggregator.store.coordination import start_worker  # noqa: E402
from aggregator.worker import WorkerSettings, build_app, queue_schema  # noqa: E402
from tests.pg_server import running_server  # noqa: E402


def write_config(path: Path, feeds: int) -> None:
    lines = ["site:", "  languages: [en]", "defaults:", "  interval: 15m", "feeds:"]
    for n in range(feeds):
        lines += [f"  - url: http://h{n % 64}.example/feed/{n}.xml", "    language: en"]
    path.write_text("\n".join(lines) + "\n")


def make_due(url: str, due: int) -> None:
    """`due` feeds due now, the others in an hour; no lease, no job waiting."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM procrastinate_jobs")
        conn.execute("UPDATE feeds SET leased_until = NULL, next_poll = now() + interval '1 hour'")
        conn.execute(
            "UPDATE feeds SET next_poll = now() - interval '1 second' "
            "WHERE url IN (SELECT url FROM feeds ORDER BY url LIMIT %s)",
            [due],
        )


async def rounds(url: str, config: Path, data: Path, dues: list[int]) -> list[dict[str, Any]]:
    settings = WorkerSettings(config_path=config, store_url=url, public_dir=None)
    app, runtime = build_app(settings)
    start_worker(url, queue_schema(), alive_within=30).close()
    dispatch = app.tasks["aggregator.dispatch"].func
    out = []
    try:
        async with app.open_async():
            for due in dues:
                times = []
                for _ in range(3):  # bounded
                    make_due(url, due)
                    t = time.perf_counter()
                    dispatched = await dispatch(timestamp=0)
                    times.append((time.perf_counter() - t) * 1000)
                    assert dispatched == min(due, settings.claim_max), dispatched
                with psycopg.connect(url) as conn:
                    row = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
                out.append({
                    "feeds": len(runtime.feeds), "due": due, "jobs": int(row[0]) if row else 0,
                    "dispatch_ms": [round(x, 1) for x in times],
                    "median_ms": round(statistics.median(times), 1),
                    "per_feed_us": round(statistics.median(times) * 1000 / min(due, settings.claim_max), 1),
                })  # fmt: skip
                print(json.dumps(out[-1]), flush=True)
    finally:
        await runtime.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=10000)
    parser.add_argument("--due", default="1110,5000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_, running_server() as pg:
        tmp = Path(tmp_)
        config = tmp / "feeds.yaml"
        write_config(config, args.feeds)
        results = asyncio.run(
            rounds(pg.new_database(), config, tmp / "data", [int(d) for d in args.due.split(",")])
        )
    print(json.dumps({"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
