"""Growth linear in N for every pure stage and per-poll bookkeeping (issue 15): a quadratic loop
anywhere shows at 10x.

Each stage runs on generated documents of n and 10n entries (and the byte scans on documents
of n and 10n KB); linear work takes about 10x as long, a quadratic loop about 100x. The bound
is 30x: far from both, so a loaded machine does not make it flaky (CPU time, best of three).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from aggregator import dedupe, normalise
from aggregator.metrics import Metrics
from aggregator.models import Candidate, Outcome, ParsedFeed, PollReport
from aggregator.parse import (
    has_relative_references,
    parse_feed,
    relative_guids,
    strip_doctype,
    unescape_cdata,
)
from aggregator.text import html_to_text, make_lede

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
ZONE = ZoneInfo("Europe/London")
LANGS = ("en", "es", "it", "fr", "ru")
BOUND = 30.0
WORDS = [
    "the",
    "workers",
    "of",
    "the",
    "world",
    "read",
    "their",
    "news",
    "in",
    "many",
    "languages",
    "every",
    "single",
    "day",
]


def _summary(i: int) -> str:
    words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(40))
    return f'<p>{words} <a href="https://example.org/t/{i}">more</a></p>'


def rss(n: int) -> bytes:
    items = "".join(
        f"<item><title>Story number {i}: {WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]}</title>"
        f"<link>https://example.org/story/{i}?utm_source=rss</link><guid>id-{i}</guid>"
        f"<pubDate>Tue, 17 Jan 2023 {i % 24:02d}:{i % 60:02d}:00 GMT</pubDate>"
        f"<description><![CDATA[{_summary(i)}]]></description></item>"
        for i in range(n)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link><language>en</language>{items}</channel></rss>"
    ).encode()


def atom(n: int) -> bytes:
    entries = "".join(
        f"<entry><title>Entry {i} {WORDS[i % len(WORDS)]}</title><id>tag:example.org,2023:{i}</id>"
        f'<link rel="alternate" href="/e/{i}"/><updated>2023-01-17T10:{i % 60:02d}:00Z</updated>'
        f'<summary type="html">{_summary(i).replace("<", "&lt;")}</summary></entry>'
        for i in range(n)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xml:base="https://example.org/"><title>A</title><id>urn:a</id>{entries}</feed>'
    ).encode()


def json_feed(n: int) -> bytes:
    items = [
        {"id": str(i), "url": f"/j/{i}", "title": f"Item {i}", "content_html": _summary(i),
         "date_published": "2023-01-17T10:00:00Z"}
        for i in range(n)
    ]  # fmt: skip
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}).encode()


def cpu(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return max(best, 1e-4)


def ratio(stage: Callable[[int], Callable[[], object]], n: int) -> float:
    small, large = stage(n), stage(10 * n)
    small()  # warm caches (regexes, the language model) outside the timing
    return cpu(large) / cpu(small)


def _parsed(make: Callable[[int], bytes], n: int) -> ParsedFeed:
    return parse_feed(make(n), {"content-type": "application/xml"}, "https://example.org/feed")


def _candidates(n: int) -> list[Candidate]:
    return normalise.prepare(_parsed(rss, n), "https://example.org/feed", "auto", LANGS, ZONE, NOW)


def _parse(make: Callable[[int], bytes]) -> Callable[[int], Callable[[], object]]:
    def stage(n: int) -> Callable[[], object]:
        body = make(n)
        return lambda: parse_feed(body, {}, "https://example.org/f")

    return stage


def _normalise(n: int) -> Callable[[], object]:
    parsed = _parsed(rss, n)
    return lambda: normalise.prepare(parsed, "https://example.org/feed", "auto", LANGS, ZONE, NOW)


def _dedupe_new(n: int) -> Callable[[], object]:
    candidates = _candidates(n)
    return lambda: dedupe.decide(candidates, [], "F", NOW, ZONE)


def _dedupe_repoll(n: int) -> Callable[[], object]:
    candidates = _candidates(n)
    stored = list(dedupe.decide(candidates, [], "F", NOW, ZONE).inserts)
    return lambda: dedupe.decide(candidates, stored, "F", NOW, ZONE)


def _relative_check(n: int) -> Callable[[], object]:
    body = atom(n * 10)
    return lambda: has_relative_references(body)


def _byte_scans(n: int) -> Callable[[], object]:
    body = rss(n * 10)
    return lambda: (strip_doctype(body), unescape_cdata(body), relative_guids(body, "https://e.org/"))


def _text(n: int) -> Callable[[], object]:
    html = "".join(_summary(i) for i in range(n * 5))
    return lambda: make_lede(html, "", 700) + html_to_text(html)


def _metrics_cycle(n: int) -> Callable[[], object]:
    """One cycle of n polls counted by `run`'s metrics, after a first cycle (every feed known)."""
    metrics = Metrics()
    ok, failed = (Outcome.NOT_MODIFIED, 304, None), (Outcome.HTTP_ERROR, 503, "HTTP 503")
    reports = []
    for i in range(n):
        outcome, status, error = failed if i % 10 == 0 else ok  # some feeds failing
        reports.append(PollReport(f"https://f{i}.example.org/", f"feed {i}", outcome, status, error))
    for report in reports:
        metrics.observe_poll(report, now=1.0)
    return lambda: [metrics.observe_poll(report, now=2.0) for report in reports]


STAGES: dict[str, tuple[Callable[[int], Callable[[], object]], int]] = {
    "parse rss": (_parse(rss), 30),
    "parse atom": (_parse(atom), 30),
    "parse json feed": (_parse(json_feed), 30),
    "normalise (language, keys)": (_normalise, 30),
    "dedupe, new entries": (_dedupe_new, 50),
    "dedupe, re-poll of stored entries": (_dedupe_repoll, 50),
    "relative-reference check": (_relative_check, 30),
    "DOCTYPE strip, CDATA, guids": (_byte_scans, 30),
    "text: plain text and lede": (_text, 30),
    "metrics: a cycle of polls": (_metrics_cycle, 300),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_grows_linearly(stage: str) -> None:
    make, n = STAGES[stage]
    measured = ratio(make, n)
    assert measured < BOUND, f"{stage}: 10x the input took {measured:.0f}x the time"


def test_the_test_catches_a_quadratic_loop() -> None:
    """The bound is not so loose that a quadratic stage passes."""

    def quadratic(n: int) -> Callable[[], object]:
        items = list(range(n * 20))
        return lambda: [x for x in items if x not in items[: len(items) // 2]]

    assert ratio(quadratic, 30) > BOUND
