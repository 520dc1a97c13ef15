"""Peak memory of the real program (issue 11, "Memory"): one `aggregator fetch` of the hostile
kit (every case of tests/test_hostile.py at once, beside a good feed), and of a 500-feed world,
then `aggregator run` through its first cycle over the same world. Loopback only; bounded.

Peak memory is sampled over the whole process tree (worker processes included) from
/proc/PID/smaps_rollup: the sum of RSS and the sum of PSS (shared pages divided among the
processes that share them), against the interpreter with the program loaded and nothing done
(`aggregator check`), in the same run.

    .venv/bin/python bench/memory_bench.py [--feeds 500] [--write-docs]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from proctree import process_tree  # noqa: E402

from tests.hostile_server import HostileServer, prepare_bombs  # noqa: E402
from tests.service_kit import FeedWorld, free_port  # noqa: E402
from tests.test_hostile import CASES  # noqa: E402

GOAL_MB = 300


def _tree_memory_mb(pid: int) -> tuple[float, float]:
    """(RSS sum, PSS sum) of the process tree in MB. PSS shares each shared page among the
    processes that map it: the honest total when worker processes share the parent's pages."""
    rss = pss = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


class _Sampler:
    """Samples the tree's memory every 0.1 s while a command runs; keeps the peaks."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.rss, self.pss = proc, 0.0, 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self.proc.poll() is None:
            rss, pss = _tree_memory_mb(self.proc.pid)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            time.sleep(0.1)

    def join(self) -> None:
        self._thread.join(5)


def _peak_of(
    args: list[str], data: Path, config: Path, timeout: float = 600
) -> tuple[float, float, float, int]:
    """(peak tree RSS MB, peak tree PSS MB, seconds, exit code) of one `aggregator` run."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    sampler = _Sampler(proc)
    code = proc.wait(timeout=timeout)
    sampler.join()
    return sampler.rss, sampler.pss, time.monotonic() - started, code


Result = tuple[float, float, float, int]  # peak tree RSS MB, peak tree PSS MB, seconds, exit code


def baseline(tmp: Path) -> Result:
    config = tmp / "feeds.yaml"
    config.write_text("feeds: []\n", encoding="utf-8")
    return _peak_of(["check"], tmp / "data", config)


def hostile(tmp: Path) -> Result:
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


def world_fetch(tmp: Path, feeds: int) -> Result:
    with FeedWorld(feeds, items=20) as world:
        config = world.config(tmp / "feeds.yaml")
        return _peak_of(["fetch"], tmp / "data", config, timeout=max(600.0, 0.1 * feeds))


def world_run(tmp: Path, feeds: int) -> Result:
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
        sampler = _Sampler(proc)
        try:
            deadline = time.monotonic() + max(300.0, 0.1 * feeds)  # bounded, and time for 10,000
            while time.monotonic() < deadline and not _all_polled(world, feeds):
                time.sleep(0.5)
            time.sleep(6)  # the publish after the last poll (at most 5 s)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            sampler.join()
        return sampler.rss, sampler.pss, time.monotonic() - started, code


def _all_polled(world: FeedWorld, feeds: int) -> bool:
    return sum(1 for n in range(feeds) if world.hits.get(f"/feed/{n}.xml", 0)) >= feeds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "base").mkdir()
        base = baseline(Path(d) / "base")
        for label, what in (
            ("hostile kit, one fetch", hostile),
            (f"{args.feeds}-feed world, one fetch", lambda t: world_fetch(t, args.feeds)),
            (f"{args.feeds}-feed world, run's first cycle", lambda t: world_run(t, args.feeds)),
        ):
            tmp = Path(d) / str(len(rows))
            tmp.mkdir()
            rows.append((label, *what(tmp)))
    lines = [
        f"| run | peak RSS (process tree) | peak PSS (process tree) | × idle interpreter "
        f"({base[1]:.0f} MB PSS) | goal: PSS < {GOAL_MB} MB | seconds | exit |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, rss, pss, seconds, code in rows:
        verdict = "met" if pss < GOAL_MB else "missed"
        lines.append(
            f"| {label} | {rss:.0f} MB | {pss:.0f} MB | {pss / base[1]:.1f} | {verdict} "
            f"| {seconds:.1f} | {code} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write_docs:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text(encoding="utf-8")
        marker = "## Peak memory (issue 11)"
        section = (
            f"{marker}\n\nCommand: `.venv/bin/python bench/memory_bench.py --feeds {args.feeds} "
            f"--write-docs` (run {time.strftime('%Y-%m-%d')}, 2 shared cores). The whole process "
            "tree is sampled every 0.1 s (worker processes included): RSS counts pages shared "
            "between processes once per process, PSS divides them among the processes that share "
            f"them, so PSS is the memory the run really holds.\n\n{table}\n"
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
