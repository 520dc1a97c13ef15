"""Ingest benchmark: parse results -> language -> dedupe -> store, against plain sqlite3.

    .venv/bin/python bench/ingest_bench.py            # 100,000 entries (about a minute)
    .venv/bin/python bench/ingest_bench.py --entries 20000 --write-docs

Entries are real titles and summaries (tests/data/language-eval.jsonl) made unique per
copy, spread over feeds of 500 entries each (most declaring their language, some `auto`).
The baseline inserts the very rows our path stored, with plain sqlite3 `executemany` into
the same schema, in the same batches and transactions. Figures are ratios measured in one
run, so a noisy shared machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator import dedupe, language, normalise  # noqa: E402
from aggregator.models import ParsedEntry, ParsedFeed  # noqa: E402
from aggregator.store import SQLiteStore, Store  # noqa: E402

SITE = ("en", "es", "it", "fr", "ru")
ZONE = ZoneInfo("Europe/London")
PER_FEED = 500
AUTO_SHARE = 0.2  # one feed in five is a mixed `language: auto` feed
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def load_rows() -> list[dict[str, str]]:
    path = ROOT / "tests" / "data" / "language-eval.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_feeds(total: int, seed: int = 7) -> Iterator[tuple[str, str, ParsedFeed]]:
    """(feed url, configured language, parsed feed) with `total` entries in all."""
    rng = random.Random(seed)
    rows = load_rows()
    by_lang: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_lang.setdefault(r["lang"], []).append(r)
    site_langs = [lang for lang in SITE if by_lang.get(lang)]
    n_feeds = (total + PER_FEED - 1) // PER_FEED
    made = 0
    for f in range(n_feeds):
        count = min(PER_FEED, total - made)
        auto = rng.random() < AUTO_SHARE
        lang = site_langs[f % len(site_langs)]
        pool = rows if auto else by_lang[lang]
        entries = []
        for i in range(count):
            r = pool[rng.randrange(len(pool))]
            n = made + i
            published = NOW - timedelta(minutes=17 * n)
            entries.append(
                ParsedEntry(
                    source_id=f"urn:bench:{f}:{i}",
                    link=f"https://site{f % 40}.example/{n}/story.htm?utm_source=rss",
                    title=f"{r['title']} ({n})",
                    summary=f"<p>{r['summary']}</p>",
                    content="",
                    author="Bench",
                    published=published,
                )
            )
        made += count
        yield (
            f"https://feeds{f % 40}.example/feed{f}.xml",
            "auto" if auto else lang,
            ParsedFeed(title=f"Feed {f}", link=None, language=None, format="rss20", entries=tuple(entries)),
        )


def run_pipeline(feeds: list[tuple[str, str, ParsedFeed]], db_path: Path) -> tuple[float, Store]:
    store = SQLiteStore(db_path)
    started = time.perf_counter()
    for url, lang, parsed in feeds:
        candidates = normalise.prepare(parsed, url, lang, SITE, ZONE, NOW)
        existing = store.lookup(url, candidates)
        plan = dedupe.decide(candidates, existing, url, NOW, ZONE)
        store.apply(plan)
    return time.perf_counter() - started, store


def run_baseline(source: Path, target: Path) -> float:
    """Plain sqlite3: the rows our path stored, inserted with executemany in the same batches."""
    SQLiteStore(target).close()  # the same schema and indexes
    src = sqlite3.connect(source)
    entries = src.execute("SELECT * FROM entries ORDER BY rowid").fetchall()
    cols = [d[0] for d in src.execute("SELECT * FROM entries LIMIT 0").description]
    sources = src.execute("SELECT * FROM entry_sources ORDER BY rowid").fetchall()
    scols = [d[0] for d in src.execute("SELECT * FROM entry_sources LIMIT 0").description]
    src.close()
    db = sqlite3.connect(target)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    insert = f"INSERT INTO entries ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    sinsert = f"INSERT INTO entry_sources ({', '.join(scols)}) VALUES ({', '.join('?' * len(scols))})"
    started = time.perf_counter()
    for i in range(0, len(entries), PER_FEED):
        with db:
            db.executemany(insert, entries[i : i + PER_FEED])
            db.executemany(sinsert, sources[i : i + PER_FEED])
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def language_rate(feeds: list[tuple[str, str, ParsedFeed]], limit: int = 5000) -> tuple[float, float]:
    """entries/s for identification (what `auto` feeds need) and for checking the declared
    language of feeds that declare one (what every other entry needs)."""
    texts = [(lang, f"{e.title}. {e.summary}") for _, lang, p in feeds for e in p.entries][:limit]
    language.identify("warm up the model", SITE)
    started = time.perf_counter()
    for _, t in texts:
        language.identify(t, SITE)
    identify = len(texts) / (time.perf_counter() - started)
    declared = [(lang, t) for lang, t in texts if lang != "auto"]
    started = time.perf_counter()
    for lang, t in declared:
        language.contradiction(lang, t, SITE)
    check = len(declared) / (time.perf_counter() - started)
    return identify, check


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    feeds = list(make_feeds(args.entries))
    language.identify("warm up the model", SITE)  # the model's one-off load is not ingest cost
    with tempfile.TemporaryDirectory() as tmp:
        ours, store = run_pipeline(feeds, Path(tmp) / "ours.db")
        stored = store.count_entries()
        # Lookups are indexed: a second, larger table costs no more per poll.
        probe_url, probe_lang, probe = feeds[0]
        cands = normalise.prepare(probe, probe_url, probe_lang, SITE, ZONE, NOW)
        plans = []
        started = time.perf_counter()
        for _ in range(5):
            plans.append(dedupe.decide(cands, store.lookup(probe_url, cands), probe_url, NOW, ZONE))
        repoll = (time.perf_counter() - started) / 5
        plan_rows = f"{plans[-1].unchanged} unchanged"
        store.close()
        base = run_baseline(Path(tmp) / "ours.db", Path(tmp) / "base.db")
    ident, check = language_rate(feeds)
    ratio = base / ours
    lines = [
        f"entries ingested: {stored:,} (of {args.entries:,} offered)",
        f"our path (normalise, language, dedupe, store): {ours:.2f} s = {stored / ours:,.0f} entries/s",
        f"plain sqlite3 executemany of the same rows: {base:.2f} s = {stored / base:,.0f} entries/s",
        f"ratio ours / plain: {ratio:.2f}  (goal >= 0.25)",
        f"re-poll of one {PER_FEED}-entry feed, full table: {repoll * 1000:.1f} ms ({plan_rows})",
        f"language: identification {ident:,.0f} entries/s; check of a declared language {check:,.0f}/s",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_docs(lines, args.entries)


def write_docs(lines: list[str], entries: int) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    head = "## Ingest (issue 4)"
    body = "\n".join(
        [
            head,
            "",
            f"Command: `.venv/bin/python bench/ingest_bench.py --entries {entries} --write-docs`",
            f"(run {datetime.now(UTC):%Y-%m-%d}, Python {sys.version.split()[0]}, 2 shared cores).",
            "",
            "Parse results (real titles and summaries from tests/data/language-eval.jsonl, made unique)",
            f"go through normalise, language, dedupe lookup and decision, and store, in feeds of {PER_FEED}",
            "entries, one in five a mixed `language: auto` feed. The baseline inserts the very rows our",
            "path stored with plain sqlite3 `executemany`, into the same schema and indexes, in the",
            "same batches and transactions, in the same run. The re-poll line shows that dedupe",
            "lookups are indexed: polling a known feed against the full table stays a few ms.",
            "",
            "```",
            *lines,
            "```",
            "",
        ]
    )
    if head in text:
        before, _, rest = text.partition(head)
        after = rest[rest.find("\n## ") :] if "\n## " in rest else ""
        text = before + body + after.lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
