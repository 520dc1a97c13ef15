"""Corpus-wide fidelity report: what parse and normalise make of every real feed in the
shared corpus (`../shared/corpus/real/`, or the directory given), written to docs/fidelity.md.

    .venv/bin/python scripts/build_fidelity_eval.py [CORPUS_DIR] [--out docs/fidelity.md]

Reports, per the rules of issue 12: the encoding each document was read in and every warning;
every mojibake repair (before -> after, each field) and a check that no entry ftfy did not
judge bad changed (the same parse with the repair switched off); ledes cut at the default
`site.lede_length` and how (sentence or word); dates read by this program rather than feedparser
(zone abbreviations, zone-less dates, date-only dates); titles kept as plain text that the
old rule (any `<` or `&` means HTML) would have changed. Deterministic; reads only local files.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator import parse
from aggregator.config import SiteModel
from aggregator.models import ParsedFeed
from aggregator.text import html_to_text, make_lede

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ZONE = ZoneInfo("Europe/London")
SITE = ("en", "es", "it", "fr", "ru")
LEDE: int = SiteModel.model_fields["lede_length"].default  # what an operator gets unless configured


def _parse(path: Path) -> ParsedFeed | str:
    ctype = "application/feed+json" if path.suffix == ".json" else "application/xml"
    try:
        return parse.parse_feed(path.read_bytes(), {"content-type": ctype}, f"http://127.0.0.1/{path.name}")
    except Exception as e:  # the report lists what does not parse
        return f"{type(e).__name__}: {e}"


def main() -> None:
    ap = argparse.ArgumentParser()
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("corpus", nargs="?", default=str(root.parent / "shared" / "corpus" / "real"))
    ap.add_argument("--out", default=str(root / "docs" / "fidelity.md"))
    args = ap.parse_args()
    corpus = Path(args.corpus)
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix != ".md")

    lines: list[str] = []
    repairs: list[str] = []
    warnings: list[str] = []
    unchanged_clean = changed_clean = 0
    ledes: Counter[str] = Counter()
    lede_examples: list[str] = []
    dates: Counter[str] = Counter()
    date_examples: dict[str, str] = {}
    titles_kept: list[str] = []
    entries = failed = 0

    real_repair = parse.repair_mojibake
    for path in files:
        rel = path.relative_to(corpus)
        parsed = _parse(path)
        if isinstance(parsed, str):
            failed += 1
            warnings.append(f"| `{rel}` | not read: {parsed[:160]} |")
            continue
        parse.repair_mojibake = lambda text: text  # type: ignore[assignment]
        try:
            raw = _parse(path)
        finally:
            parse.repair_mojibake = real_repair  # type: ignore[assignment]
        if parsed.warning:
            warnings.append(f"| `{rel}` | {parsed.warning[:300].replace('|', '/')} |")
        raw_entries = raw.entries if isinstance(raw, ParsedFeed) else ()
        for i, e in enumerate(parsed.entries):
            entries += 1
            before = raw_entries[i] if i < len(raw_entries) else None
            fields = [("title", e.title), ("summary", e.summary), ("content", e.content)]
            if before is not None:
                old = {"title": before.title, "summary": before.summary, "content": before.content}
                diffs = [(name, old[name], new) for name, new in fields if old[name] != new]
                if diffs:
                    for name, a, b in diffs:
                        a_text, b_text = html_to_text(a)[:70], html_to_text(b)[:70]
                        repairs.append(f"| `{rel}` #{i} | {name} | {a_text} | {b_text} |")
                        if not parse.looks_bad(a):
                            changed_clean += 1
                else:
                    unchanged_clean += 1
            lede = make_lede(e.summary, e.content, LEDE)
            full = html_to_text(e.summary) or html_to_text(e.content)
            if lede == full:
                ledes["whole"] += 1
            elif lede.endswith("…"):
                ledes["cut at a word"] += 1
            else:
                ledes["cut at a sentence"] += 1
            if lede != full and len(lede_examples) < 12 and not any(f"`{rel}`" in x for x in lede_examples):
                lede_examples.append(f"| `{rel}` | {len(full):,} | {len(lede)} | …{lede[-60:]} |")
            if e.date_only:
                dates["date only"] += 1
                date_examples.setdefault("date only", f"`{rel}`")
            if e.published_zone and e.published is not None:
                dates["with the source's offset"] += 1
            if e.published is None:
                dates["no date (first-seen time is used)"] += 1
            if ("<" in e.title or "&" in e.title) and html_to_text(e.title) != e.title:
                titles_kept.append(f"| `{rel}` | {e.title[:90].replace('|', '/')} |")
        for w in (parsed.warning or "").split("; "):
            if "without a time zone" in w:
                dates["zone-less, read as UTC (feeds)"] += 1
                date_examples.setdefault("zone-less", f"`{rel}`: {w}")
        abbreviations = _abbreviations(path)
        for abbr, n in abbreviations.items():
            dates[f"zone {abbr}"] += n

    lines += [
        "# What goes in comes out right: the corpus-wide report",
        "",
        "Generated by `scripts/build_fidelity_eval.py` over the shared corpus of real feeds",
        f"(`shared/corpus/real/`): {len(files)} documents, {entries:,} entries"
        + (f", {failed} not read" if failed else "")
        + ". Rerun it after changing parse, normalise or text; the numbers below are its output.",
        "",
        'The rules these figures measure are in README.md ("How entries are handled") and',
        "are tested by kind in tests/test_fidelity_kinds.py and tests/test_cases.py, and end to end",
        "(the real `aggregator` on a loopback server) in tests/test_audit_cases.py (every field case)",
        "and tests/test_audit_kinds.py.",
        "",
        "## Encodings and other document warnings",
        "",
        "Every document whose reading needed a decision, with the warning `status` shows for it.",
        "",
        "| document | warning (as `status` shows it) |",
        "|---|---|",
        *warnings,
        "",
        "## Mojibake repaired (ftfy `fix_encoding`)",
        "",
        f"{len(repairs)} fields repaired; {unchanged_clean:,} entries unchanged by the repair; "
        f"**{changed_clean} changed text that ftfy did not judge bad** (must be 0). Each repair is",
        "listed (the first 70 characters of the field before and after); every one is UTF-8 that",
        "was read as windows-1252 or latin-1 before the publisher wrote it into the feed.",
        "",
        "| entry | field | as in the source | repaired |",
        "|---|---|---|---|",
        *repairs,
        "",
        f"## Ledes at the default length ({LEDE} characters)",
        "",
        ", ".join(f"{k}: {v:,}" for k, v in sorted(ledes.items())) + ".",
        "",
        "| document | text | lede | lede ends |",
        "|---|---|---|---|",
        *lede_examples,
        "",
        "## Dates",
        "",
        *(f"- {k}: {v:,}" for k, v in sorted(dates.items())),
        *(f"- e.g. {k}: {v}" for k, v in sorted(date_examples.items())),
        "",
        "## Titles kept as plain text",
        "",
        f"{len(titles_kept)} titles hold `<` or `&` as text that reading them as HTML would change:",
        "",
        "| document | title as stored |",
        "|---|---|",
        *titles_kept[:30],
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}: {entries} entries, {len(repairs)} repairs, {changed_clean} clean changed")


def _abbreviations(path: Path) -> Counter[str]:
    """Zone abbreviations feedparser does not know, as written in the document's dates."""
    found: Counter[str] = Counter()
    text = path.read_bytes().decode("latin-1")
    known = {"GMT", "UT", "UTC", "Z", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "MEST", "MET"}
    for m in re.finditer(r"\d\d:\d\d(?::\d\d)?\s+([A-Z]{2,5})\s*<", text):
        abbr = m.group(1)
        if abbr in parse.ZONE_ABBREVIATIONS and abbr not in known:
            found[abbr] += 1
    return found


if __name__ == "__main__":
    main()
