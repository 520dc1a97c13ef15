"""Daily digest items kept across publishes (`publish.Digests`, issue 13's incremental publish):
after any sequence of changes told as `changed_days` (new entries, edited entries, the clock
moving past midnight, a site setting changed, entries stored without telling), the digests an
incremental publish writes with kept items are byte-identical to a full rebuild's, and only the
items of changed days are made again."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import publish as publishing
from aggregator.config import Config
from aggregator.models import Source, StoredEntry, UpdatePlan
from aggregator.store import SQLiteStore
from tests.test_feeds_valid import entry
from tests.test_publish import config, tree

START = datetime(2023, 1, 18, 21, tzinfo=UTC)  # 21:00 in London, the config's zone
FEED = "https://src.example/feed.xml"
LANGS = ["en", "es", "ru", None]
LONG = "Words that make the lede longer than the shortest lede length. " * 5  # ~300 characters


def _entry(n: int, day: date, lang: str | None, hour: int, title: str = "") -> StoredEntry:
    when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour, minutes=n % 60)
    eid = f"e{n}"
    return entry(
        id=eid, feed_url=FEED, source_key=eid, fingerprint=eid, language=lang, language_tag=lang,
        day=day, title=title or f"{lang} {day} {eid}", link=f"https://news.example.org/{eid}",
        summary=f"<p>Entry {eid} of {day}. {LONG}</p>", published=when, first_seen=when,
        sources=(Source(FEED, "Source", eid, f"https://news.example.org/{eid}", when),),
    )  # fmt: skip


def _daily(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree(root).items() if k.startswith("daily/")}


insert = st.tuples(st.just("insert"), st.integers(-16, 0), st.sampled_from(LANGS))
edit = st.tuples(st.just("edit"), st.integers(0, 80), st.sampled_from(["x", "<b>&</b>", "Ünïcode"]))
untold = st.tuples(st.just("untold"), st.integers(-13, -1), st.sampled_from(LANGS))
clock = st.tuples(st.just("clock"), st.integers(1, 30), st.just(""))
setting = st.tuples(st.just("setting"), st.integers(60, 300), st.just(""))
steps = st.lists(st.one_of(insert, insert, edit, untold, clock, setting), min_size=1, max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_kept_digest_items_give_the_digests_of_a_full_rebuild(steps: list[tuple[str, int, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg: Config = config(root)
        store = SQLiteStore(root / "aggregator.db")
        try:
            now = START
            stored = {}
            for n in range(40):  # 20 days, two entries a day in turn of the languages
                e = _entry(n, now.date() - timedelta(days=n // 2), LANGS[n % len(LANGS)], 6 + n % 12)
                stored[e.id] = e
            store.apply(UpdatePlan(inserts=tuple(stored.values())))
            digests = publishing.Digests()
            publishing.publish(store, cfg, root / "inc", now=now, digests=digests)
            for kind, a, b in steps:
                today = now.astimezone(cfg.site.zone).date()
                changed: set[date] = set()
                if kind == "insert":
                    e = _entry(len(stored), today + timedelta(days=a), b if isinstance(b, str) else None, 7)
                    store.apply(UpdatePlan(inserts=(e,)))
                    stored[e.id] = e
                    changed.add(e.day)
                elif kind == "edit":
                    old = stored[f"e{a % len(stored)}"]
                    new = replace(old, title=f"{old.title} {b}", updated=old.published + timedelta(hours=1))
                    store.apply(UpdatePlan(updates=(new,)))
                    stored[new.id] = new
                    changed.add(new.day)
                elif kind == "untold":  # stored by another process: the publisher is not told
                    e = _entry(len(stored), today + timedelta(days=a), b if isinstance(b, str) else None, 8)
                    store.apply(UpdatePlan(inserts=(e,)))
                    stored[e.id] = e
                elif kind == "clock":  # past midnight: the Publisher tells the old and new today
                    now += timedelta(hours=a)
                    changed |= {today, now.astimezone(cfg.site.zone).date()}
                else:  # a setting changed: Digests sees a different site
                    cfg = cfg.model_copy(update={"site": replace(cfg.site, lede_length=a)})
                before = digests.made
                report = publishing.publish(
                    store, cfg, root / "inc", now=now, changed_days=changed, digests=digests
                )
                assert not report.failed
                publishing.publish(store, cfg, root / "full", now=now)
                assert _daily(root / "inc") == _daily(root / "full")
                if kind in ("insert", "edit", "clock"):  # only the changed days' items are made
                    assert digests.made - before <= len(changed) * (len(cfg.site.languages) + 1)
        finally:
            store.close()


def test_an_incremental_publish_makes_only_the_changed_days_items(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = SQLiteStore(tmp_path / "aggregator.db")
    try:
        today = START.date()
        entries = [_entry(n, today - timedelta(days=n // 3), LANGS[n % 3], 9) for n in range(60)]
        store.apply(UpdatePlan(inserts=tuple(entries)))
        digests = publishing.Digests()
        publishing.publish(store, cfg, tmp_path / "public", now=START, digests=digests)
        full = digests.made
        assert full == 14 * 4  # 14 days in each of en, es, ru and all
        new = _entry(100, today, "es", 20)
        store.apply(UpdatePlan(inserts=(new,)))
        publishing.publish(store, cfg, tmp_path / "public", now=START, changed_days={today}, digests=digests)
        assert digests.made - full == 4  # today's items: en, es, ru and all
        assert b"e100" in (tmp_path / "public/daily/es.atom").read_bytes()
        # a full rebuild makes every item again
        publishing.publish(store, cfg, tmp_path / "public", now=START, digests=digests)
        assert digests.made - full == 4 + 14 * 4
    finally:
        store.close()
