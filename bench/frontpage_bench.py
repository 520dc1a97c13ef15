#!/usr/bin/env python3
"""`aggregator frontpage` against a plain sqlite3 page query (issue 15: goal <= 3x).

    .venv/bin/python bench/frontpage_bench.py [--entries 100000] [--days 365] [--repeat 5]

A store of `--entries` entries over `--days` days and five languages (bench/publish_bench.py's
generator: real titles and summaries) is filled once. Then, best of `--repeat`, in one run:

- **command**: `aggregator frontpage --lang all --format text` as a user runs it (a fresh
  interpreter: imports, feeds.yaml, store, query, the page rendered as text), against the
  baseline command: a fresh interpreter running a plain sqlite3 script that finds the latest
  day, selects its entries in section order and prints each title and its summary's text;
- **in process**: `publish.frontpage` + `render.frontpage_text` on an open store, against the
  baseline's query and printing on an open sqlite3 connection (what is left once imports and
  start-up are paid).

Also `python -c "import aggregator.cli"`: the part of the command that is the import alone.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import publish_bench  # noqa: E402

from aggregator import publish, render  # noqa: E402
from aggregator.models import UpdatePlan  # noqa: E402
from aggregator.store import SQLiteStore  # noqa: E402

# The baseline: what a plain script needs to print a day's page from the same database.
PLAIN = r"""
import re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(day,) = db.execute("SELECT MAX(day) FROM entries").fetchone()
order = {lang: i for i, lang in enumerate(sys.argv[2].split(","))}
rows = db.execute(
    "SELECT language, title, summary FROM entries WHERE day = ? ORDER BY published DESC, id", [day]
).fetchall()
rows.sort(key=lambda r: order.get(r[0], len(order)))
out = [day, ""]
for language, title, summary in rows:
    out += [title, re.sub(r"<[^>]+>", "", summary or ""), ""]
sys.stdout.write("\n".join(out))
"""


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def command(cmd: list[str]) -> Callable[[], object]:
    def go() -> None:
        done = subprocess.run(cmd, capture_output=True, cwd=ROOT, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"{cmd} failed: {done.stderr.decode()[-2000:]}")

    return go


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="aggfront-") as name:
        tmp = Path(name)
        config = publish_bench.config(tmp)
        data = tmp / "data"
        data.mkdir()
        db = data / "aggregator.db"
        store = SQLiteStore(db)
        entries = publish_bench.make_entries(args.entries, args.days)
        for i in range(0, len(entries), 5000):
            store.apply(UpdatePlan(inserts=tuple(entries[i : i + 5000])))
        del entries
        languages = ",".join(config.site.languages)
        ours = [sys.executable, "-m", "aggregator", "--config", str(tmp / "feeds.yaml"), "--data", str(data),
                "frontpage", "--lang", "all", "--format", "text"]  # fmt: skip
        plain = [sys.executable, "-c", PLAIN, str(db), languages]
        page = subprocess.run(ours, capture_output=True, text=True, cwd=ROOT, check=True).stdout
        plain_page = subprocess.run(plain, capture_output=True, text=True, cwd=ROOT, check=True).stdout
        cmd_ours = best(command(ours), args.repeat)
        cmd_plain = best(command(plain), args.repeat)
        cmd_import = best(command([sys.executable, "-c", "import aggregator.cli"]), args.repeat)
        cmd_bare = best(command([sys.executable, "-c", "pass"]), args.repeat)

        def ours_in_process() -> None:
            text = render.frontpage_text(publish.frontpage(store, config, "all"), config.site)
            io.StringIO().write(text)

        conn = sqlite3.connect(db)

        def plain_in_process() -> None:
            (day,) = conn.execute("SELECT MAX(day) FROM entries").fetchone()
            order = {lang: i for i, lang in enumerate(config.site.languages)}
            rows = conn.execute(
                "SELECT language, title, summary FROM entries WHERE day = ? ORDER BY published DESC, id",
                [day],
            ).fetchall()
            rows.sort(key=lambda r: order.get(r[0], len(order)))
            out = [day, ""]
            for _, title, summary in rows:
                out += [title, re.sub(r"<[^>]+>", "", summary or ""), ""]
            io.StringIO().write("\n".join(out))

        proc_ours = best(ours_in_process, args.repeat)
        proc_plain = best(plain_in_process, args.repeat)
        conn.close()
        store.close()
    print(f"store: {args.entries:,} entries over {args.days} days; the latest day's page: "
          f"{page.count(chr(10))} lines (plain: {plain_page.count(chr(10))})")  # fmt: skip
    print(f"command:    aggregator frontpage {cmd_ours * 1000:7.1f} ms   plain sqlite3 script "
          f"{cmd_plain * 1000:7.1f} ms   ratio {cmd_ours / cmd_plain:.2f}x (goal <= 3)")  # fmt: skip
    print(f"            of which: interpreter start {cmd_bare * 1000:.1f} ms, `import aggregator.cli` "
          f"{(cmd_import - cmd_bare) * 1000:.1f} ms")  # fmt: skip
    print(f"in process: frontpage + render    {proc_ours * 1000:7.2f} ms   plain query + print    "
          f"{proc_plain * 1000:7.2f} ms   ratio {proc_ours / proc_plain:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
