"""Peak memory of the real program (issue 11, "Memory"): one `aggregator fetch` of the hostile
kit (every case of tests/test_hostile.py at once, beside a good feed), and of a 500-feed world,
then `aggregator run` through its first cycle over the same world. Loopback only; bounded.

Peak memory is the largest resident set of the child process (getrusage RUSAGE_CHILDREN,
ru_maxrss, KiB on Linux), measured against the interpreter with the program imported and
nothing done (`aggregator --help`), in the same run.

    .venv/bin/python bench/memory_bench.py [--feeds 500] [--write-docs]
"""

from __future__ import annotations

import argparse
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_server import HostileServer, prepare_bombs  # noqa: E402
from tests.service_kit import FeedWorld, free_port  # noqa: E402
from tests.test_hostile import CASES  # noqa: E402

GOAL_MB = 300


def _peak_of(args: list[str], data: Path, config: Path, timeout: float = 600) -> tuple[float, float, int]:
    """(peak RSS MB, seconds, exit code) of one `aggregator` run in a fresh child process."""
    started = time.monotonic()
    proc = subprocess.run(  # a new child each time: RUSAGE_CHILDREN is the max over children
        [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data), *args],
        capture_output=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    return _maxrss_mb(), time.monotonic() - started, proc.returncode


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _in_fresh_process(what: str, *argv: str) -> tuple[float, float, int]:
    """Run this script again for one measurement, so each peak is its own (ru_maxrss of the
    children only grows)."""
    out = subprocess.run(
        [sys.executable, __file__, "--one", what, *argv], capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stdout}\n{out.stderr}")
    mb, seconds, code = out.stdout.split()
    return float(mb), float(seconds), int(code)


def baseline(tmp: Path) -> tuple[float, float, int]:
    config = tmp / "feeds.yaml"
    config.write_text("feeds: []\n", encoding="utf-8")
    return _peak_of(["check"], tmp / "data", config)


def hostile(tmp: Path) -> tuple[float, float, int]:
    prepare_bombs()
    with HostileServer() as server:
        lines = ["site:", "  languages: [en]", "fetch:", "  timeout: 5s", "feeds:",
                 f"  - url: {server.url('/ok.xml')}", "    name: good", "    language: en"]  # fmt: skip
        for name, case in CASES.items():
            lines += [f"  - url: '{server.url(case.path.format(port=server.port))}'",
                      f"    name: {name}", "    language: en"]  # fmt: skip
        config = tmp / "feeds.yaml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return _peak_of(["fetch"], tmp / "data", config)


def world_fetch(tmp: Path, feeds: int) -> tuple[float, float, int]:
    with FeedWorld(feeds, items=20) as world:
        config = world.config(tmp / "feeds.yaml")
        return _peak_of(["fetch"], tmp / "data", config)


def world_run(tmp: Path, feeds: int) -> tuple[float, float, int]:
    """`run` from start until every feed was polled and published once, then SIGTERM."""
    with FeedWorld(feeds, items=20) as world:
        config = world.config(tmp / "feeds.yaml")
        port = free_port()
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(tmp / "data"),
             "run", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not _all_polled(world, feeds):
                time.sleep(0.5)
            time.sleep(6)  # the publish after the last poll (at most 5 s)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        return _maxrss_mb(), time.monotonic() - started, code


def _all_polled(world: FeedWorld, feeds: int) -> bool:
    return sum(1 for n in range(feeds) if world.hits.get(f"/feed/{n}.xml", 0)) >= feeds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            what = {
                "baseline": lambda: baseline(tmp),
                "hostile": lambda: hostile(tmp),
                "fetch": lambda: world_fetch(tmp, args.feeds),
                "run": lambda: world_run(tmp, args.feeds),
            }
            mb, seconds, code = what[args.one]()
            print(f"{mb:.1f} {seconds:.1f} {code}")
        return
    rows = []
    base, _, _ = _in_fresh_process("baseline")
    for label, what in (("hostile kit, one fetch", "hostile"),
                        (f"{args.feeds}-feed world, one fetch", "fetch"),
                        (f"{args.feeds}-feed world, run's first cycle", "run")):  # fmt: skip
        mb, seconds, code = _in_fresh_process(what, "--feeds", str(args.feeds))
        rows.append((label, mb, seconds, code))
    lines = [
        f"| run | peak RSS | × idle interpreter ({base:.0f} MB) | goal < {GOAL_MB} MB | seconds | exit |",
        "|---|---|---|---|---|---|",
    ]
    for label, mb, seconds, code in rows:
        verdict = "met" if mb < GOAL_MB else "missed"
        lines.append(f"| {label} | {mb:.0f} MB | {mb / base:.1f} | {verdict} | {seconds:.1f} | {code} |")
    table = "\n".join(lines)
    print(table)
    if args.write_docs:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text(encoding="utf-8")
        marker = "## Peak memory (issue 11)"
        section = (
            f"{marker}\n\nCommand: `.venv/bin/python bench/memory_bench.py --feeds {args.feeds} "
            f"--write-docs` (run {time.strftime('%Y-%m-%d')}, 2 shared cores).\n\n{table}\n"
        )
        if marker in text:
            head, _, tail = text.partition(marker)
            nxt = tail.find("\n## ")
            text = head + section + (tail[nxt:] if nxt >= 0 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        doc.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
