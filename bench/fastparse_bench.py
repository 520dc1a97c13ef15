"""Parsing with and without the feedparser-rs fast path, per document (issue 15).

    .venv/bin/python bench/fastparse_bench.py [--world 60] [--repeat 3]

Over the shared corpus's real feeds and a generated world (bench/world.py): CPU time of
`parse_feed` with feedparser only and with the fast path where proven (best of --repeat), how
many documents took the fast path, and the bare parsers on the same bytes for orientation.
Bounded: each document is parsed 4 x --repeat times.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import feedparser
import feedparser_rs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

import world

from aggregator.models import NotAFeed
from aggregator.parse import parse_feed

CORPUS = Path("/work/shared/corpus")
HEADERS = {"content-type": "application/xml"}
BASE = "http://example.org/dir/feed.xml"


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.fast = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.fast += record.getMessage().endswith(": parsed by feedparser-rs")


def _cpu(bodies: list[bytes], fn: Callable[[bytes], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for body in bodies:
            with contextlib.suppress(NotAFeed):
                fn(body)
        best = min(best, time.process_time() - start)
    return best


def measure(name: str, bodies: list[bytes], repeat: int) -> None:
    count = _Count()
    log = logging.getLogger("aggregator.parse")
    log.setLevel(logging.DEBUG)
    log.addHandler(count)
    for body in bodies:
        with contextlib.suppress(NotAFeed):
            parse_feed(body, HEADERS, BASE)
    log.removeHandler(count)
    log.setLevel(logging.WARNING)
    slow = _cpu(bodies, lambda b: parse_feed(b, HEADERS, BASE, fast=False), repeat)
    fast = _cpu(bodies, lambda b: parse_feed(b, HEADERS, BASE), repeat)
    bare_fp = _cpu(
        bodies, lambda b: feedparser.parse(b, sanitize_html=False, resolve_relative_uris=False), repeat
    )
    bare_rs = _cpu(
        bodies, lambda b: feedparser_rs.parse(b, sanitize_html=False, resolve_relative_uris=False), repeat
    )
    n = len(bodies)
    print(
        f"{name}: {n} documents, {sum(map(len, bodies)) / 1e6:.1f} MB, fast path taken for {count.fast}\n"
        f"  parse_feed, feedparser only : {slow:7.3f} s CPU, {slow / n * 1000:6.2f} ms per document\n"
        f"  parse_feed, fast where proven: {fast:7.3f} s CPU, {fast / n * 1000:6.2f} ms per document"
        f" ({fast / slow:.2f}x)\n"
        f"  bare feedparser.parse (no sanitising, no URL pass): {bare_fp:.3f} s;"
        f" bare feedparser_rs.parse: {bare_rs:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--world", type=int, default=60, help="generated world feeds")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if CORPUS.exists():
        real = sorted(p for p in (CORPUS / "real").rglob("*") if p.is_file() and p.suffix != ".md")
        measure("shared corpus, real/", [p.read_bytes() for p in real], args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        feeds = world.write(Path(tmp), args.world)
        measure(f"world of {args.world}", [(Path(tmp) / f.path).read_bytes() for f in feeds], args.repeat)


if __name__ == "__main__":
    main()
