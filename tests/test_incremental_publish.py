"""Incremental publishing (issue 13): after any sequence of polls' changes and of clock moves
across midnight, the tree the service's Publisher keeps up to date by rebuilding only the
touched days (`dedupe.days_touched` -> `Publisher.changed(days)`) equals a full rebuild."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import publish as publishing
from aggregator.config import Config, FeedConfig, load_config
from aggregator.dedupe import days_touched
from aggregator.fetch import Fetcher
from aggregator.models import Source, StoredEntry, UpdatePlan
from aggregator.pipeline import poll_feed
from aggregator.policy import sync_feeds
from aggregator.publish import NEW_DAY_SPAN, days_to_rebuild
from aggregator.schedule import Health, Publisher, file_identity
from aggregator.store import SQLiteStore
from tests.conftest import run_cli
from tests.feedserver import FeedServer
from tests.hostile_server import _item, _rss
from tests.test_feeds_valid import entry
from tests.test_publish import config, tree

START = datetime(2023, 1, 18, 21, tzinfo=UTC)  # 21:00 in London: a few hours before midnight
LANGS = ["en", "es", "ru"]
FEED = "https://src.example/feed.xml"

insert = st.tuples(st.just("insert"), st.integers(-5, 1), st.sampled_from(LANGS))
update = st.tuples(st.just("update"), st.integers(0, 50), st.text("abc <&>", max_size=8))
source = st.tuples(st.just("source"), st.integers(0, 50), st.just(""))
relabel = st.tuples(st.just("relabel"), st.integers(0, 50), st.sampled_from(LANGS))
clock = st.tuples(st.just("clock"), st.integers(1, 30), st.just(""))
steps = st.lists(st.one_of(insert, insert, update, source, relabel, clock), min_size=1, max_size=6)


def _initial(now: datetime) -> list[StoredEntry]:
    out = []
    for back in (0, 1, 3):
        day = (now - timedelta(days=back)).date()
        for lang in LANGS:
            out.append(_entry(f"i{back}{lang}", day, lang, 9))
    return out


def _entry(eid: str, day: date, lang: str, hour: int) -> StoredEntry:
    when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)
    src = Source(FEED, "Source", eid, f"https://news.example.org/{eid}", when)
    return entry(
        id=eid, feed_url=FEED, source_key=eid, fingerprint=eid, language=lang, language_tag=lang,
        day=day, title=f"{lang} {day} {eid}", link=f"https://news.example.org/{eid}",
        published=when, first_seen=when, sources=(src,),
    )  # fmt: skip


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_incremental_publishing_equals_a_full_rebuild_after_any_changes(
    steps: list[tuple[str, int, object]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = config(root)
        db = root / "aggregator.db"
        store = SQLiteStore(db)
        sync_feeds(cfg, store)
        now = [START]
        stored = {e.id: e for e in _initial(START)}
        store.apply(UpdatePlan(inserts=tuple(stored.values())))
        publisher = Publisher(
            cfg, db, root / "inc", Health(db, identity=file_identity(db)), clock=lambda: now[0]
        )
        try:
            publisher.publish_now("start")  # the first publish rebuilds everything
            publishing.publish(store, cfg, root / "full", now=START)  # the same start
            for n, (kind, a, b) in enumerate(steps):
                existing = list(stored.values())
                pick = existing[a % len(existing)]
                if kind == "clock":
                    now[0] += timedelta(hours=a)
                    plan = UpdatePlan()
                elif kind == "insert":
                    new = _entry(f"n{n}", (now[0] + timedelta(days=a)).date(), str(b), 12)
                    plan = UpdatePlan(inserts=(new,))
                elif kind == "update":
                    edited = replace(pick, title=f"{pick.title} {b}", content_hash=f"h{n}")
                    plan = UpdatePlan(updates=(edited,))
                elif kind == "source":
                    plan = UpdatePlan(new_sources=((pick.id, Source(FEED, "Other", f"o{n}", None, now[0])),))
                else:
                    plan = UpdatePlan(language_fixes=((pick.id, str(b), str(b), "document"),))
                store.apply(plan)
                for e in (*plan.inserts, *plan.updates):
                    stored[e.id] = e
                for eid, lang, _tag, _evidence in plan.language_fixes:
                    stored[eid] = replace(stored[eid], language=lang)
                publisher.changed(days_touched(plan, existing))
                report = publisher.publish_now("changes")
                assert report is not None and report.failed == ()
                full = publishing.publish(store, cfg, root / "full", now=now[0])
                assert full.failed == ()
                inc_tree, full_tree = tree(root / "inc"), tree(root / "full")
                assert inc_tree.keys() == full_tree.keys()
                stale = [p for p in full_tree if inc_tree[p] != full_tree[p]]
                assert not stale, f"after {steps[: n + 1]}: stale {stale[:5]}"
        finally:
            publisher.stop()
            store.close()


def test_days_touched_names_every_day_a_plan_changes() -> None:
    d1, d2, d3, d4 = (date(2023, 1, d) for d in (14, 15, 16, 17))
    a, b, c = _entry("a", d1, "en", 8), _entry("b", d2, "es", 8), _entry("c", d3, "ru", 8)
    assert days_touched(UpdatePlan(), [a, b, c]) == frozenset()
    assert days_touched(UpdatePlan(inserts=(_entry("n", d4, "en", 8),)), [a]) == {d4}
    # an update is published on its (kept) day; a stored row on another day is rebuilt too
    assert days_touched(UpdatePlan(updates=(replace(a, day=d4),)), [a]) == {d1, d4}
    src = Source(FEED, "Other", "o", None, START)
    assert days_touched(UpdatePlan(new_sources=(("b", src),)), [a, b]) == {d2}
    assert days_touched(UpdatePlan(language_fixes=(("c", "en", "en", "document"),)), [c]) == {d3}


def _serve(feed_server: FeedServer, items: list[str]) -> None:
    """The source feed at /f.xml holds `items` (its next answer)."""
    feed_server.routes["/f.xml"] = (
        _rss("Src", "https://news.example.org/", items).encode(),
        "application/rss+xml",
    )


def _feeds_yaml(tmp_path: Path, feed_server: FeedServer) -> Path:
    """feeds.yaml of one English source, /f.xml, in a London site."""
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "site:\n  title: Site\n  base_url: http://127.0.0.1:8080/\n  timezone: Europe/London\n"
        f"  languages: [en]\nfeeds:\n  - url: {feed_server.url('/f.xml')}\n    name: Src\n    language: en\n"
    )
    return path


@contextlib.contextmanager
def _service_publisher(
    tmp_path: Path, entries: list[StoredEntry]
) -> Iterator[tuple[Config, SQLiteStore, Publisher]]:
    """A store holding `entries` and `run`'s Publisher on it (clock at START), both closed after."""
    cfg = config(tmp_path)
    db = tmp_path / "aggregator.db"
    store = SQLiteStore(db)
    sync_feeds(cfg, store)
    store.apply(UpdatePlan(inserts=tuple(entries)))
    publisher = Publisher(
        cfg, db, tmp_path / "public", Health(db, identity=file_identity(db)), clock=lambda: START
    )
    try:
        yield cfg, store, publisher
    finally:
        publisher.stop()
        store.close()


def test_a_publish_after_changes_rebuilds_only_the_touched_days(tmp_path: Path) -> None:
    days = [START.date() - timedelta(days=k) for k in range(10, -1, -1)]
    entries = [_entry(f"e{d:%d}", d, "en", 10) for d in days]
    with _service_publisher(tmp_path, entries) as (_, store, publisher):
        first = publisher.publish_now("start")
        assert first is not None
        new = _entry("late", days[4], "en", 15)
        store.apply(UpdatePlan(inserts=(new,)))
        publisher.changed(days_touched(UpdatePlan(inserts=(new,)), entries))
        report = publisher.publish_now("changes")
        assert report is not None
        per_day = {
            p.split("/")[3] for p in report.written if p.startswith("archive/20") and p.count("/") == 4
        }
        assert per_day == {f"{days[4]:%d}"}  # its neighbours are rebuilt, but their bytes hold
        # Files rebuilt (written or found unchanged): the touched day, its neighbours and what
        # is not per day; a full rebuild makes every day's.
        assert len(report.written) + report.unchanged < (len(first.written) + first.unchanged) / 2
        # nothing changed: a publish still runs (the server asked) but rebuilds no day
        publisher.changed(frozenset())
        idle = publisher.publish_now("changes")
        assert idle is not None and not any(p.startswith("archive/20") for p in idle.written)


async def test_a_poll_reports_the_days_it_touched(tmp_path: Path, feed_server: FeedServer) -> None:
    """The real path: fetch -> parse -> dedupe -> store; `PollReport.days` is what the
    Publisher rebuilds. Days are in site.timezone (Europe/London here): 23:30 -05:00 on the
    16th is the 17th in London."""
    items = [
        _item("Late edition", "https://news.example.org/a", "Mon, 16 Jan 2023 23:30:00 -0500", "One."),
        _item("Morning", "https://news.example.org/b", "Wed, 18 Jan 2023 08:00:00 +0000", "Two."),
    ]
    _serve(feed_server, items)
    cfg = config(tmp_path)
    cfg = cfg.model_copy(
        update={
            "feeds": [
                FeedConfig.model_validate({"url": feed_server.url("/f.xml"), "name": "Src", "language": "en"})
            ]
        }
    )
    store = SQLiteStore(tmp_path / "aggregator.db")
    sync_feeds(cfg, store)
    try:
        async with Fetcher(cfg.fetch) as fetcher:
            first = await poll_feed(cfg.feeds[0], cfg, store, fetcher)
            assert first.inserted == 2 and first.days == {date(2023, 1, 17), date(2023, 1, 18)}
            again = await poll_feed(cfg.feeds[0], cfg, store, fetcher)  # nothing new
            assert not again.changed and again.days == frozenset()
            items[1] = _item(
                "Morning, corrected", "https://news.example.org/b", "Wed, 18 Jan 2023 08:00:00 +0000", "Two!"
            )
            _serve(feed_server, items)
            edited = await poll_feed(cfg.feeds[0], cfg, store, fetcher)
            assert edited.updated == 1 and edited.days == {date(2023, 1, 18)}
    finally:
        store.close()


def test_a_deleted_public_tree_is_rebuilt_whole(tmp_path: Path) -> None:
    public = tmp_path / "public"
    with _service_publisher(tmp_path, _initial(START)) as (_, _store, publisher):
        publisher.publish_now("start")
        before = tree(public)
        for victim in ("archive", ""):  # the archive alone, then everything
            shutil.rmtree(public / victim)
            reason = publisher._check()
            assert reason == "public/ is missing"
            publisher.publish_now(reason)
            assert tree(public) == before


def test_days_to_rebuild_adds_the_days_between_the_last_today_and_this_one() -> None:
    d = date(2026, 11, 28)
    assert days_to_rebuild({d}, None, d) is None  # never published by this process: whole
    assert days_to_rebuild({d}, d, d) == {d}
    assert days_to_rebuild(set(), d, d + timedelta(days=2)) == {
        d,
        d + timedelta(days=1),
        d + timedelta(days=2),
    }
    assert days_to_rebuild(set(), d, d - timedelta(days=1)) == {d, d - timedelta(days=1)}  # clock set back
    assert days_to_rebuild({d}, d, d + timedelta(days=NEW_DAY_SPAN + 1)) is None


def test_the_publisher_rebuilds_days_another_process_marked(tmp_path: Path) -> None:
    """Days marked in the store (a `fetch --no-publish`, a worker's poll) are rebuilt by
    `run`'s next publish though no poll of its own told it."""
    with _service_publisher(tmp_path, _initial(START)) as (cfg, store, publisher):
        publisher.publish_now("start")
        late = _entry("late", START.date() - timedelta(days=3), "es", 15)
        other = SQLiteStore(tmp_path / "aggregator.db")  # another process's poll: its own connection
        with other.poll(FEED) as work:
            work.apply(UpdatePlan(inserts=(late,)))
            work.mark_unpublished({late.day})
        other.close()
        publisher.changed(frozenset())  # woken, but told of no day
        report = publisher.publish_now("changes")
        assert report is not None and f"archive/{late.day:%Y/%m/%d}/es.atom" in report.written
        assert store.take_unpublished() == frozenset()  # taken by that publish
        full = publishing.publish(store, cfg, tmp_path / "full", now=START)
        assert full.failed == () and tree(tmp_path / "public").items() >= tree(tmp_path / "full").items()


def test_fetch_publishes_incrementally_after_a_whole_publish_by_the_same_code_and_config(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """The real program: `fetch` rebuilds only the days its polls touched once the tree was
    published whole (a stamp records by which code and configuration); a changed
    configuration, or `publish`, rebuilds everything."""
    items = [
        _item("Old news", "https://news.example.org/a", "Mon, 16 Jan 2023 09:00:00 +0000", "One."),
        _item("Other day", "https://news.example.org/b", "Wed, 11 Jan 2023 09:00:00 +0000", "Two."),
        _item("Long ago", "https://news.example.org/d", "Thu, 05 Jan 2023 09:00:00 +0000", "Four."),
    ]
    _serve(feed_server, items)
    path = _feeds_yaml(tmp_path, feed_server)
    data = tmp_path / "data"
    public = data / "public"
    assert run_cli("fetch", config=path, data=data).returncode == 0
    assert (public / ".published.json").is_file()
    # A file of a day no poll touches, nor its neighbours (the 11th is the 16th's): a whole
    # rebuild would put it right, an incremental one leaves it.
    untouched = public / "archive/2023/01/05/en.html"
    untouched.write_text("tampered")
    items.append(
        _item("New on the 16th", "https://news.example.org/c", "Mon, 16 Jan 2023 18:00:00 +0000", "3")
    )
    _serve(feed_server, items)
    assert run_cli("fetch", config=path, data=data).returncode == 0
    assert "New on the 16th" in (public / "archive/2023/01/16/en.html").read_text()
    assert untouched.read_text() == "tampered"  # not rebuilt: the fetch was incremental
    path.write_text(path.read_text().replace("title: Site", "title: Site renamed"))
    assert run_cli("fetch", config=path, data=data).returncode == 0  # another config: whole
    assert untouched.read_text() != "tampered" and "Site renamed" in untouched.read_text()
    untouched.write_text("tampered")
    assert run_cli("publish", config=path, data=data).returncode == 0  # always whole
    assert untouched.read_text() != "tampered"
    whole = tmp_path / "whole"
    store = SQLiteStore(data / "aggregator.db")
    try:
        publishing.publish(store, load_config(path), whole)
    finally:
        store.close()
    ours = {k: v for k, v in tree(public).items() if k != ".published.json"}
    assert ours == {k: v for k, v in tree(whole).items() if k != ".published.json"}


def test_a_fetch_that_changed_nothing_publishes_nothing(tmp_path: Path, feed_server: FeedServer) -> None:
    """Nothing owed, the same day, entries stored: `fetch` makes no publish at all (it would
    rewrite nothing); a missing index or a new entry brings publishing back."""
    items = [_item("Only news", "https://news.example.org/a", "Mon, 16 Jan 2023 09:00:00 +0000", "One.")]
    _serve(feed_server, items)
    path = _feeds_yaml(tmp_path, feed_server)
    data, public = tmp_path / "data", tmp_path / "data" / "public"
    assert run_cli("fetch", config=path, data=data).returncode == 0
    feed = public / "feeds/en.atom"
    feed.write_text("tampered")  # any publish would put it right: it stays, so none ran
    quiet = run_cli("fetch", config=path, data=data)
    assert quiet.returncode == 0 and "is up to date" in quiet.stdout
    assert feed.read_text() == "tampered"
    items.append(_item("More news", "https://news.example.org/b", "Mon, 16 Jan 2023 10:00:00 +0000", "Two."))
    _serve(feed_server, items)
    busy = run_cli("fetch", config=path, data=data)
    assert busy.returncode == 0 and "is up to date" not in busy.stdout
    assert "More news" in feed.read_text()
    (public / "index.html").unlink()
    assert run_cli("fetch", config=path, data=data).returncode == 0
    assert (public / "index.html").is_file()


def test_a_fetch_publishes_while_a_language_shows_failing_feeds(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """`it` has no entries, so its page lists the failing feeds; a fetch in which a feed starts
    failing changes that page though no day changed: it must publish."""
    items = [_item("Only news", "https://news.example.org/a", "Mon, 16 Jan 2023 09:00:00 +0000", "One.")]
    _serve(feed_server, items)
    feed_server.routes["/it.xml"] = (
        _rss("Fonte", "https://it.example.org/", []).encode(),
        "application/rss+xml",
    )
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "site:\n  title: Site\n  base_url: http://127.0.0.1:8080/\n  timezone: Europe/London\n"
        f"  languages: [en, it]\nfeeds:\n"
        f"  - url: {feed_server.url('/f.xml')}\n    name: Src\n    language: en\n"
        f"  - url: {feed_server.url('/it.xml')}\n    name: Fonte\n    language: it\n"
    )
    data, public = tmp_path / "data", tmp_path / "data" / "public"
    assert run_cli("fetch", config=path, data=data).returncode == 0
    assert "Fonte" not in (public / "it/index.html").read_text()
    feed_server.routes["/it.xml"] = (b"<html>moved</html>", "text/html")  # now it fails
    again = run_cli("fetch", config=path, data=data)
    assert again.returncode == 0 and "is up to date" not in again.stdout
    assert "Fonte" in (public / "it/index.html").read_text()


def test_after_a_failed_file_the_next_publish_is_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Which files failed is not kept: whatever publish comes next (a retry, or one for new
    changes that comes first) rebuilds everything, so the failed file is made again."""
    with _service_publisher(tmp_path, _initial(START)) as (_cfg, _store, publisher):
        publisher.publish_now("start")
        page = tmp_path / "public" / f"archive/{START:%Y/%m/%d}/en.html"
        page.unlink()
        page.mkdir()  # the write of that page now fails
        (page / "x").write_text("x")
        publisher.changed({START.date()})
        failed = publisher.publish_now("changes")
        assert failed is not None and f"archive/{START:%Y/%m/%d}/en.html" in dict(failed.failed)
        shutil.rmtree(page)
        caplog.set_level("INFO", logger="aggregator.schedule")
        publisher.changed(frozenset())  # new changes, on no day: still a whole rebuild
        again = publisher.publish_now("changes")
        assert again is not None and again.failed == () and page.is_file()
        assert "days=all" in caplog.text
