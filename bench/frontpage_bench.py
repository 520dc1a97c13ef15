#!/usr/bin/env python3
"""`aggregator frontpage` against a plain sqlite3 page query (issue 15: goal <= 3x).

    .venv/bin/python bench/frontpage_bench.py [--entries 100000] [--days 365] [--repeat 5]
        [--feeds 1] [--compare DIR]...

A store of `--entries` entries over `--days` days and five languages (bench/publish_bench.py's
generator: real titles and summaries) is filled once. Then, best of `--repeat`, in one run:

- **command**: `aggregator frontpage --lang all --format text` as a user runs it (a fresh
  interpreter: imports, feeds.yaml, store, query, the page rendered as text), against the
  baseline command: a fresh interpreter running a plain sqlite3 script that finds the latest
  day, selects its entries in section order and prints each title and its summary's text.
  Every command runs once untimed first and with its bytecode kept, as an installed program
  runs (PYTHONDONTWRITEBYTECODE is left out of their environment). `frontpage` then reads
  the site's settings from its snapshot (`settings.py`); **edited** is the same command
  right after an edit of feeds.yaml (the snapshot deleted before each run);
- **in process**: `frontpages.frontpage` + `render.frontpage_text` on an open store, against the
  baseline's query and printing on an open sqlite3 connection (what is left once imports and
  start-up are paid).

Also: the interpreter's start alone (`python -c pass`), `aggregator --help` (the CLI's own
start), the **floor** (an interpreter importing only the libraries the command is made of:
`LIBRARIES`), and where the command's imports go: one run under `python -X importtime`, each
module's own time added up by library (which inflates every figure by its own bookkeeping:
read them as shares). `--feeds N` lists N feeds in feeds.yaml (the page does not depend on
them). `--compare DIR` (repeatable) times the same command on the code in DIR, another tree
of this repository (`git archive COMMIT | tar -x -C DIR`), in the same run: before and after
on the same store, at the same load.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import publish_bench  # noqa: E402

from aggregator import frontpages, render  # noqa: E402
from aggregator.models import UpdatePlan  # noqa: E402
from aggregator.settings import SNAPSHOT  # noqa: E402
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


# What the command cannot start without while it is made of these: the CLI (click), dates
# and language names in each page language (babel), the store (sqlite3), the plain data
# (dataclasses) and the HTML sanitiser the text rules use (nh3).
LIBRARIES = "import click, babel.dates, sqlite3, dataclasses, nh3"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


@dataclass
class Took:
    """Best (least) wall and CPU seconds of a command over the repeats."""

    wall: float = float("inf")
    cpu: float = float("inf")


# Commands run as an installed program runs: with its compiled bytecode (`__pycache__`) kept
# and used. PYTHONDONTWRITEBYTECODE (set on some machines) would compile every module of
# ours from source on every run: about 30 ms of `frontpage` that no user pays.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_commands(commands: dict[str, tuple[list[str], Path]], repeat: int) -> dict[str, Took]:
    """Each command (name -> argv, working directory) `repeat` times, taking turns, so a change
    of the machine's load touches all alike; CPU is the child's user + system time, which the
    other engineers' load on this shared machine disturbs far less than the wall time. Each
    runs once first, untimed (its bytecode is then compiled and kept)."""
    for cmd, cwd in commands.values():
        subprocess.run(cmd, capture_output=True, cwd=cwd, timeout=120, env=ENV)
    took = {name: Took() for name in commands}
    for _ in range(repeat):
        for name, (cmd, cwd) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, cwd=cwd, timeout=120, env=ENV)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                raise SystemExit(f"{cmd} failed: {done.stderr.decode()[-2000:]}")
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            took[name] = Took(min(took[name].wall, wall), min(took[name].cpu, cpu))
    return took


# Libraries pydantic imports for itself, counted as pydantic's.
PYDANTIC_PARTS = {"pydantic_core", "annotated_types", "typing_extensions", "typing_inspection"}


def import_shares(cmd: list[str]) -> list[tuple[str, float]]:
    """(part, ms) of one run of `cmd` under `-X importtime`, largest first: every module's own
    import time (its children excluded) added up by library (`aggregator.x` by module, the
    standard library as one): a partition of the command's imports."""
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, cwd=ROOT, timeout=120, env=ENV
    )
    parts: dict[str, float] = {}
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| +(\S+)$", line)
        if not m:
            continue
        name = m.group(2)
        top = name.split(".")[0]
        if top == "aggregator":
            part = ".".join(name.split(".")[:2])
        elif top in PYDANTIC_PARTS:
            part = "pydantic"
        elif top.lstrip("_") in sys.stdlib_module_names or top in sys.stdlib_module_names:
            part = "stdlib"
        else:
            part = top
        parts[part] = parts.get(part, 0.0) + int(m.group(1)) / 1000
    return sorted(parts.items(), key=lambda kv: -kv[1])


def code_of(tree: Path) -> Path:
    """The aggregator package `python -m aggregator` runs from `tree` (checked, so a
    comparison never silently times this tree's code)."""
    done = subprocess.run(
        [sys.executable, "-c", "import aggregator; print(aggregator.__file__)"],
        capture_output=True, text=True, cwd=tree, check=True,
    )  # fmt: skip
    found = Path(done.stdout.strip()).parent
    if found.resolve() != (tree / "aggregator").resolve():
        raise SystemExit(f"--compare {tree}: python -m aggregator would run {found}, not {tree}/aggregator")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--feeds", type=int, default=1,
                        help="Feeds listed in feeds.yaml (issue 15's world has 10,000).")  # fmt: skip
    parser.add_argument(
        "--compare", type=Path, action="append", default=[], metavar="DIR",
        help="Also time the command on the code in DIR (another tree of the repository).",
    )  # fmt: skip
    args = parser.parse_args()
    for tree in args.compare:
        code_of(tree)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="aggfront-") as name:
        tmp = Path(name)
        config = publish_bench.config(tmp)
        with (tmp / "feeds.yaml").open("a", encoding="utf-8") as more:
            for i in range(1, args.feeds):  # the first is publish_bench's
                lang = config.site.languages[i % len(config.site.languages)]
                more.write(f"  - url: https://feeds{i}.example.org/{lang}.xml\n    name: Feed {i}\n"
                           f"    language: {lang}\n")  # fmt: skip
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
        page = subprocess.run(ours, capture_output=True, text=True, cwd=ROOT, check=True, env=ENV).stdout
        plain_page = subprocess.run(
            plain, capture_output=True, text=True, cwd=ROOT, check=True, env=ENV
        ).stdout
        others = []
        for tree in args.compare:
            theirs = subprocess.run(
                ours, capture_output=True, text=True, cwd=tree, check=True, env=ENV
            ).stdout
            others.append((tree, theirs == page))
        # The first page after an edit of feeds.yaml: no snapshot of the site's settings, so
        # they are validated (YAML, pydantic) and the snapshot written again.
        edited = ["sh", "-c", 'rm -f "$0" && exec "$@"', str(data / SNAPSHOT), *ours]
        took = time_commands(
            {
                "ours": (ours, ROOT),
                "plain": (plain, ROOT),
                "edited": (edited, ROOT),
                "help": ([sys.executable, "-m", "aggregator", "--help"], ROOT),
                "bare": ([sys.executable, "-c", "pass"], ROOT),
                "libraries": ([sys.executable, "-c", LIBRARIES], ROOT),
                **{str(tree): (ours, tree) for tree in args.compare},
            },
            args.repeat,
        )
        shares = import_shares(ours)

        def ours_in_process() -> None:
            text = render.frontpage_text(frontpages.frontpage(store, config.site, "all"), config.site)
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
    print(f"store: {args.entries:,} entries over {args.days} days, {args.feeds:,} feeds in feeds.yaml; "
          "the latest day's page: "
          f"{page.count(chr(10))} lines (plain: {plain_page.count(chr(10))})")  # fmt: skip
    ours_t, plain_t, help_t, bare_t = took["ours"], took["plain"], took["help"], took["bare"]
    edited_t, libraries_t = took["edited"], took["libraries"]
    print(f"command:    aggregator frontpage {ours_t.wall * 1000:7.1f} ms   plain sqlite3 script "
          f"{plain_t.wall * 1000:7.1f} ms   ratio {ours_t.wall / plain_t.wall:.2f}x (goal <= 3)")  # fmt: skip
    print(f"  CPU:      aggregator frontpage {ours_t.cpu * 1000:7.1f} ms   plain sqlite3 script "
          f"{plain_t.cpu * 1000:7.1f} ms   ratio {ours_t.cpu / plain_t.cpu:.2f}x")  # fmt: skip
    print(f"  edited:   the first page after an edit of feeds.yaml (no settings snapshot) "
          f"{edited_t.wall * 1000:.1f} ms, ratio {edited_t.wall / plain_t.wall:.2f}x")  # fmt: skip
    print(f"  floor:    the interpreter importing the libraries the command is made of ({LIBRARIES[7:]}) "
          f"{libraries_t.wall * 1000:.1f} ms, ratio {libraries_t.wall / plain_t.wall:.2f}x")  # fmt: skip
    print(f"            interpreter start {bare_t.wall * 1000:.1f} ms (CPU {bare_t.cpu * 1000:.1f}); "
          f"`aggregator --help` {help_t.wall * 1000:.1f} ms (CPU {help_t.cpu * 1000:.1f})")  # fmt: skip
    print(f"            imports under -X importtime (inflated: read as shares), "
          f"{sum(ms for _, ms in shares):.0f} ms: "
          + ", ".join(f"{name} {ms:.0f}" for name, ms in shares if ms >= 2))  # fmt: skip
    for tree, same in others:
        t = took[str(tree)]
        print(f"compare:    {tree}: aggregator frontpage {t.wall * 1000:7.1f} ms (CPU {t.cpu * 1000:.1f}), "
              f"ratio {t.wall / plain_t.wall:.2f}x (CPU {t.cpu / plain_t.cpu:.2f}x); this tree takes "
              f"{ours_t.wall / t.wall:.2f}x its time (CPU {ours_t.cpu / t.cpu:.2f}x); "
              f"same page: {'yes' if same else 'NO'}")  # fmt: skip
    print(f"in process: frontpage + render    {proc_ours * 1000:7.2f} ms   plain query + print    "
          f"{proc_plain * 1000:7.2f} ms   ratio {proc_ours / proc_plain:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
