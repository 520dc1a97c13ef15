"""Duplicate detection measured on labelled pairs of real entries (tests/data/dedupe-eval.jsonl).

Each pair runs through the real decision: entry `a` is polled and stored, then entry `b` is
polled against it; `b` counts as "same" when the plan inserts nothing new. Pairs marked
`together` (both items stand in one captured document) are replayed as that document: the
second poll carries `a` and `b` at once, as the real feed did. Prints precision,
recall and per-kind results (run with -s); holds precision >= 99.5% and recall >= 97%.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aggregator import dedupe, normalise
from aggregator.models import ParsedEntry, ParsedFeed, StoredEntry

DATA = Path(__file__).parent / "data" / "dedupe-eval.jsonl"
PAIRS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
SITE = ("en", "es", "it", "fr", "ru")
ZONE = ZoneInfo("Europe/London")
DEFAULT_TIME = datetime(2023, 1, 17, 12, tzinfo=UTC)


def _when(side: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(side["published"]) if side.get("published") else None


def _entry(side: dict[str, Any]) -> ParsedEntry:
    return ParsedEntry(
        source_id=side.get("id"),
        link=side.get("link"),
        title=side["title"],
        summary=side.get("summary") or "",
        content="",
        published=_when(side),
    )


def poll(
    document: list[dict[str, Any]], stored: list[StoredEntry], now: datetime
) -> tuple[list[StoredEntry], int]:
    side = document[-1]
    entries = tuple(_entry(s) for s in document)
    feed = ParsedFeed(title=None, link=None, language=None, format="rss20", entries=entries)
    candidates = normalise.prepare(feed, side["feed"], side["language"], SITE, ZONE, now)
    plan = dedupe.decide(candidates, stored, side["feed"], now, ZONE)
    return [*stored, *plan.inserts], len(plan.inserts)


def judged_same(pair: dict[str, Any]) -> bool:
    a, b = pair["a"], pair["b"]
    a_now = (_when(a) or DEFAULT_TIME) + timedelta(hours=1)
    b_now = max(a_now, (_when(b) or DEFAULT_TIME) + timedelta(hours=1))
    stored, _ = poll([a], [], a_now)
    _, inserted = poll([a, b] if pair.get("together") else [b], stored, b_now)
    return inserted == 0


def test_dedupe_precision_and_recall() -> None:
    assert len(PAIRS) >= 300
    outcome: Counter[tuple[str, bool, bool]] = Counter()
    mistakes = []
    for pair in PAIRS:
        said = judged_same(pair)
        outcome[(pair["kind"], pair["same"], said)] += 1
        if said != pair["same"]:
            mistakes.append(f"{pair['pair']} ({'missed' if pair['same'] else 'wrongly merged'})")
    tp = sum(n for (_, same, said), n in outcome.items() if same and said)
    fp = sum(n for (_, same, said), n in outcome.items() if not same and said)
    fn = sum(n for (_, same, said), n in outcome.items() if same and not said)
    precision = 100 * tp / (tp + fp) if tp + fp else 100.0
    recall = 100 * tp / (tp + fn) if tp + fn else 100.0
    print(f"\n{len(PAIRS)} pairs: precision {precision:.1f}%, recall {recall:.1f}%")
    for kind in sorted({k for k, _, _ in outcome}):
        right = sum(n for (k, same, said), n in outcome.items() if k == kind and same == said)
        total = sum(n for (k, _, _), n in outcome.items() if k == kind)
        print(f"  {kind:30} {right:3}/{total:3} right")
    if mistakes:
        print("  mistakes: " + ", ".join(mistakes))
    assert precision >= 99.5
    assert recall >= 97.0
