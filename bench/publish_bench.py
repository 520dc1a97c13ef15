"""Publish benchmark: a full rebuild and an incremental one, against feedgen alone.

    .venv/bin/python bench/publish_bench.py                       # 100,000 entries, 365 days, 5 languages
    .venv/bin/python bench/publish_bench.py --entries 10000 --days 60
    .venv/bin/python bench/publish_bench.py --write-docs

A store is filled with `--entries` entries (real titles and summaries from
tests/data/language-eval.jsonl, made unique) spread evenly over `--days` days and the five
site languages. Then, in one run:

- **feedgen alone**: plain feedgen (no extension, no safety work) serialises the same feed
  documents we publish as Atom and RSS: the entry feeds (Atom and RSS, per language and
  combined) and every day archive (Atom), from entries already in memory;
- **full rebuild**: `publish` into an empty directory: store reads, every output (entry
  feeds, daily digests, day archives in Atom and JSON Feed, latest front pages), writes;
- **incremental**: 50 new entries arrive today; `publish(changed_days={today})` into the
  same directory rebuilds the day archives (Atom, JSON Feed) and the day's front pages
  (`archive/YYYY/MM/DD/{lang}.{html,txt,json}`) of today and its neighbours, the entry feeds,
  digests and latest pages (unchanged files are not rewritten); the line says how many day
  pages it rebuilt. Both publishes share one `publish.Digests`, as the service's Publisher
  keeps it, so the incremental one makes only the changed day's digest items (the line says
  how many it made).
- **reads**: how often the store read a day's entries (`Store.day`) in each publish.
- **made safe at ingest**: the CPU time `text.publishable` takes over the same entries (each
  entry's sanitised HTML and lede text), which since schema 6 is spent once, when an entry is
  stored (normalise, in the parse workers), instead of on every publish.

`--long-summaries` repeats each summary to at least 1,500 characters, as real feeds' 1–3 KB
summaries are (issue 15's generated world); the default keeps the short ones of earlier runs.
Figures are ratios to the feedgen-only time of the same run (a shared machine slows both).
CPU time is the process's (user and system: creating the files is kernel work, a quarter of
a full rebuild on this machine's disk); wall time is what a reader waits.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedgen.feed import FeedGenerator  # noqa: E402

from aggregator import publish as publishing  # noqa: E402
from aggregator.config import Config, load_config  # noqa: E402
from aggregator.models import Source, StoredEntry, UpdatePlan  # noqa: E402
from aggregator.store import SQLiteStore  # noqa: E402

LANGS = ("en", "es", "it", "fr", "ru")
PAGES = (".html", ".txt", ".json")
END = date(2024, 6, 1)


def rows() -> dict[str, list[dict[str, str]]]:
    by_lang: dict[str, list[dict[str, str]]] = {}
    path = ROOT / "tests" / "data" / "language-eval.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            by_lang.setdefault(r["lang"], []).append(r)
    return by_lang


LONG = 1_500  # characters a --long-summaries summary has at least


def make_entries(
    total: int, days: int, start: int = 0, seed: int = 7, long_summaries: bool = False
) -> list[StoredEntry]:
    rng = random.Random(seed + start)
    pool = rows()
    out = []
    for i in range(start, start + total):
        lang = LANGS[i % len(LANGS)]
        r = rng.choice(pool[lang])
        day = END - timedelta(days=(i // len(LANGS)) % days) if start == 0 else END
        when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
            seconds=rng.randrange(6 * 3600, 80000)
        )
        eid = f"e{i:07d}"
        feed = f"https://{lang}.example.org/feed"
        link = f"https://{lang}.example.org/{i}"
        summary = r.get("summary", "") or r.get("title", "")
        if long_summaries:
            summary = " ".join([summary] * (LONG // max(len(summary), 1) + 1))
        out.append(
            StoredEntry(
                id=eid, feed_url=feed, source_key=eid, canonical_url=link, fingerprint=eid, link=link,
                title=f"{r.get('title', '')} ({i})", summary=f"<p>{summary}</p>", content="",
                author=None, categories=(), enclosures=(), published=when, updated=None, first_seen=when,
                language=lang, language_tag=lang, language_evidence="config", day=day, content_hash=eid,
                sources=(Source(feed, f"{lang} feed", eid, link, when),),
            )
        )  # fmt: skip
    return out


def config(tmp: Path) -> Config:
    path = tmp / "feeds.yaml"
    path.write_text(
        "site:\n  title: Bench\n  link: https://news.example.org/\n  base_url: http://127.0.0.1:8080/\n"
        f"  timezone: UTC\n  languages: [{', '.join(LANGS)}]\n"
        "feeds:\n  - url: https://en.example.org/feed\n    name: en feed\n    language: en\n"
    )
    return load_config(path)


def feedgen_alone(entries: list[StoredEntry], rss: bool) -> tuple[float, float]:
    """Plain feedgen serialising one document (Atom, and RSS when `rss`): (wall, CPU) seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    fg = FeedGenerator()
    fg.id("http://127.0.0.1:8080/feeds/x.atom")
    fg.title("Bench")
    fg.link(href="http://127.0.0.1:8080/", rel="alternate")
    fg.description("Bench")
    for e in entries:
        fe = fg.add_entry(order="append")
        fe.id(f"tag:news.example.org,2023:entry:{e.id}")
        fe.title(e.title)
        fe.link(href=e.link)
        fe.published(e.published)
        fe.updated(e.published)
        fe.content(e.summary, type="html")
    fg.atom_str(pretty=True)
    if rss:
        fg.rss_str(pretty=True)
    return time.perf_counter() - t0, time.process_time() - c0


def feedgen_documents(store: SQLiteStore, cfg: Config, today: date) -> tuple[float, float, int]:
    """The baseline of a publish: the Atom and RSS documents it writes (the entry feeds per
    language and combined, and every day archive up to `today`), each read from `store` and
    serialised by feedgen alone; only feedgen is timed. (wall s, CPU s, items)."""
    base = base_cpu = 0.0
    items = 0
    for lang in [*cfg.site.languages, None]:
        docs = [(store.latest(lang, cfg.site.entries_per_feed), True)]
        docs += [(store.day(day, lang), False) for day in publishing.entry_days(store, lang, today)]
        for entries_of_doc, rss in docs:
            wall, cpu = feedgen_alone(entries_of_doc, rss)
            base, base_cpu, items = base + wall, base_cpu + cpu, items + len(entries_of_doc)
    return base, base_cpu, items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--new", type=int, default=50)
    ap.add_argument("--long-summaries", action="store_true", help=f"summaries of {LONG:,}+ characters")
    ap.add_argument(
        "--write-docs", action="store_true", help="replace the Publish section of docs/benchmarks.md"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cfg = config(tmp)
        store = SQLiteStore(tmp / "aggregator.db")
        t0 = time.perf_counter()
        entries = make_entries(args.entries, args.days, long_summaries=args.long_summaries)
        for i in range(0, len(entries), 5000):
            store.apply(UpdatePlan(inserts=tuple(entries[i : i + 5000])))
        fill = time.perf_counter() - t0
        now = datetime.combine(END, datetime.min.time(), UTC) + timedelta(hours=23)

        base, base_cpu, items = feedgen_documents(store, cfg, END)

        digests = publishing.Digests() if hasattr(publishing, "Digests") else None
        kept = {"digests": digests} if digests is not None else {}
        reads = [0]
        read_day = store.day

        def counted_day(day: date, language: str | None) -> list[StoredEntry]:
            reads[0] += 1
            return read_day(day, language)

        store.day = counted_day  # type: ignore[method-assign]
        t0, c0 = time.perf_counter(), time.process_time()
        full = publishing.publish(store, cfg, tmp / "public", now=now, **kept)  # type: ignore[arg-type]
        full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
        full_reads, reads[0] = reads[0], 0
        made = digests.made if digests is not None else 0

        new = make_entries(args.new, args.days, start=args.entries, long_summaries=args.long_summaries)
        store.apply(UpdatePlan(inserts=tuple(new)))
        t0, c0 = time.perf_counter(), time.process_time()
        inc = publishing.publish(store, cfg, tmp / "public", now=now, changed_days={END}, **kept)  # type: ignore[arg-type]
        inc_s, inc_cpu = time.perf_counter() - t0, time.process_time() - c0
        inc_reads = reads[0]
        inc_made = (digests.made - made) if digests is not None else None
        store.close()
    day_pages = [
        p
        for p in inc.written
        if p.startswith(f"archive/{END:%Y/%m/%d}/") and p.endswith(PAGES) and not p.endswith(".feed.json")
    ]

    ingest = ""
    try:
        from aggregator.text import publishable
    except ImportError:  # code from before schema 6: nothing is made at ingest
        pass
    else:
        c0 = time.process_time()
        for e in entries:
            publishable(e.summary, e.content)
        made = time.process_time() - c0
        ingest = (
            f"made safe at ingest, once per entry: {made:.2f} s CPU for {len(entries):,} entries "
            f"({made / len(entries) * 1e6:.0f} us each)"
        )

    lines = [
        f"entries: {args.entries:,} over {args.days} days and {len(LANGS)} languages"
        + (f", summaries of {LONG:,}+ characters" if args.long_summaries else "")
        + f" (store filled in {fill:.1f} s)",
        f"feedgen alone, the same Atom/RSS documents ({items:,} items): {base:.2f} s ({base_cpu:.2f} s CPU)",
        f"full rebuild: {full_s:.2f} s ({full_cpu:.2f} s CPU), {len(full.written):,} files written, "
        f"{len(full.failed)} failed, {full_reads:,} day reads",
        f"  -> {full_s / base:.2f} x feedgen alone, {full_cpu / base_cpu:.2f} x in CPU time (goal < 5)",
        f"incremental after {args.new} new entries today: {inc_s:.2f} s ({inc_cpu:.2f} s CPU), "
        f"{len(inc.written):,} files rewritten ({len(day_pages)} of them the day's front pages), "
        f"{inc.unchanged:,} unchanged, {inc_reads} day reads"
        + (f", {inc_made} digest items made" if inc_made is not None else ""),
        f"  -> {inc_s / base:.3f} x feedgen alone, {inc_cpu / base_cpu:.3f} x in CPU time "
        "(goal: under 1 s of work)",
        *([ingest] if ingest else []),
    ]
    print("\n".join(lines))
    if args.write_docs:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text(encoding="utf-8")
        head = "## Publish (issue 13)"
        section = (
            f"{head}\n\nCommand: `.venv/bin/python bench/publish_bench.py --write-docs` "
            f"(run {date.today()}, Python {sys.version.split()[0]}, 2 shared cores). See the script's "
            "docstring for what each line measures.\n\n```\n" + "\n".join(lines) + "\n```\n"
        )
        if head in text:
            start = text.index(head)
            end = text.find("\n## ", start + len(head))
            text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        doc.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
