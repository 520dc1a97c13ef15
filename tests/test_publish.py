"""Publishing: every output from a real store, each file alone, deterministic, archives that
walk back to every entry, and incremental rebuilds equal to full ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from aggregator import publish as publishing
from aggregator.config import Config, load_config
from aggregator.models import Enclosure, Source, UpdatePlan
from aggregator.render import atom_id, feeds
from aggregator.store import SQLiteStore, Store
from tests.conftest import FIXTURES, run_cli
from tests.feedserver import FeedServer
from tests.test_feeds_valid import ATOM, check_atom, check_feedparser, check_json_feed, check_rss, entry

NOW = datetime(2023, 1, 18, 12, tzinfo=UTC)
DAYS = [date(2023, 1, 14), date(2023, 1, 16), date(2023, 1, 17), date(2023, 1, 18)]
LANGS = ["en", "es", "ru"]


def config(tmp_path: Path) -> Config:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "site:\n  title: Site\n  link: https://news.example.org/\n  base_url: http://127.0.0.1:8080/\n"
        "  timezone: Europe/London\n  languages: [en, es, ru]\n  entries_per_feed: 5\n"
        "feeds:\n  - url: https://src.example/feed.xml\n    name: Source\n    language: auto\n"
    )
    return load_config(path)


def stored_entries() -> list[Any]:
    src = Source("https://src.example/feed.xml", "Source", "k", None, NOW)
    out = []
    for day in DAYS:
        for l_i, lang in enumerate(LANGS):
            for n in range(2):
                when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=8 + n + l_i)
                eid = f"{day:%m%d}-{lang}-{n}"
                out.append(
                    entry(id=eid, source_key=eid, fingerprint=eid, language=lang, language_tag=lang, day=day,
                          title=f"{lang} {day} #{n}", link=f"https://news.example.org/{eid}",
                          published=when, first_seen=when, sources=(replace(src, source_key=eid),))
                )  # fmt: skip
    # the kinds that used to stop publishing: no link, a javascript: link, control characters
    out[0] = replace(out[0], link=None)
    out[1] = replace(
        out[1],
        link="javascript:alert(1)",
        enclosures=(Enclosure("https://cdn.example/a.jpg", "image/jpeg", 9),),
    )
    out[2] = replace(out[2], title="Terminal colours\x08 explained", content="<p>bus\u0002 stop\ufffe</p>")
    out[3] = replace(out[3], date_only=True)
    return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = SQLiteStore(tmp_path / "aggregator.db")
    s.apply(UpdatePlan(inserts=tuple(stored_entries())))
    try:
        yield s
    finally:
        s.close()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_output_is_written_and_valid(tmp_path: Path, store: Store) -> None:
    cfg = config(tmp_path)
    report = publishing.publish(store, cfg, tmp_path / "public", now=NOW)
    assert report.failed == ()
    files = tree(tmp_path / "public")
    for lang in [*LANGS, "all"]:
        for kind in ("feeds", "daily"):
            check_atom(files[f"{kind}/{lang}.atom"])
            check_rss(files[f"{kind}/{lang}.rss"])
            check_feedparser(files[f"{kind}/{lang}.atom"])
            check_feedparser(files[f"{kind}/{lang}.rss"])
            check_json_feed(files[f"{kind}/{lang}.json"].decode())
        for day in DAYS:
            check_atom(files[f"archive/{day:%Y/%m/%d}/{lang}.atom"])
            check_json_feed(files[f"archive/{day:%Y/%m/%d}/{lang}.feed.json"].decode())
        assert f"archive/2023/01/15/{lang}.atom" not in files  # a day without entries has none
    assert {"index.html", "index.txt", "index.json", "en/index.html"} <= files.keys()
    daily = etree.fromstring(files["daily/all.atom"])
    days = [e.findtext(f"{ATOM}id") for e in daily.findall(f"{ATOM}entry")]
    assert days == [f"tag:news.example.org,2023:daily:all:{d}" for d in reversed(DAYS)]  # one item a day
    assert "en 2023-01-18 #1" in daily.findtext(f"{ATOM}entry/{ATOM}content")


def test_archives_walk_back_to_every_entry(tmp_path: Path, store: Store) -> None:
    """RFC 5005: from the entry feed, prev-archive links reach every stored entry, and each
    archive points back to the entry feed (`current`) and forward (`next-archive`)."""
    cfg = config(tmp_path)
    publishing.publish(store, cfg, tmp_path / "public", now=NOW)
    public = tmp_path / "public"
    base = "http://127.0.0.1:8080/"

    def load(url: str) -> etree._Element:
        return etree.fromstring((public / url.removeprefix(base)).read_bytes())

    for lang in [*LANGS, "all"]:
        doc = load(f"{base}feeds/{lang}.atom")
        seen: set[str] = set()
        visited = []
        while True:
            seen |= {e.findtext(f"{ATOM}id") or "" for e in doc.findall(f"{ATOM}entry")}
            links = {x.get("rel"): x.get("href") for x in doc.findall(f"{ATOM}link")}
            if visited:
                assert links["current"] == f"{base}feeds/{lang}.atom"
                assert links.get("next-archive") == (visited[-2] if len(visited) > 1 else None)
            if "prev-archive" not in links:
                break
            visited.append(links["prev-archive"])
            doc = load(links["prev-archive"])
        expected = {atom_id(e, cfg.site) for e in stored_entries() if lang == "all" or e.language == lang}
        assert seen == expected
        assert len(visited) == len(DAYS)


def test_two_builds_from_one_database_are_byte_identical(tmp_path: Path, store: Store) -> None:
    cfg = config(tmp_path)
    publishing.publish(store, cfg, tmp_path / "a", now=NOW)
    publishing.publish(store, cfg, tmp_path / "b", now=NOW)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a == b and len(a) > 50


def test_a_failing_output_costs_that_file_only(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    public = tmp_path / "public"
    publishing.publish(store, cfg, public, now=NOW)
    before = tree(public)
    # a new entry arrives; then one renderer fails (fault injected) and one file cannot be
    # written (a directory stands where it goes)
    late = replace(stored_entries()[-1], id="late", source_key="late", fingerprint="late", title="Late news",
                   published=NOW, first_seen=NOW, sources=())  # fmt: skip
    store.apply(UpdatePlan(inserts=(late,)))
    real = feeds.rss_document

    def failing(meta: feeds.FeedMeta, items: Any, *elements: Any) -> bytes:
        if meta.self_url.endswith("/feeds/ru"):
            raise RuntimeError("injected")
        return real(meta, items, *elements)

    monkeypatch.setattr(feeds, "rss_document", failing)
    (public / "feeds" / "all.json").unlink()
    (public / "feeds" / "all.json").mkdir()
    report = publishing.publish(store, cfg, public, now=NOW)
    assert dict(report.failed).keys() == {"feeds/ru.rss", "feeds/all.json"}
    assert "RuntimeError: injected" in dict(report.failed)["feeds/ru.rss"]
    after = tree(public)
    assert after["feeds/ru.rss"] == before["feeds/ru.rss"]  # its last good version stays
    assert b"Late news" in after["feeds/ru.atom"] and b"Late news" in after["feeds/all.rss"]
    assert "feeds/ru.atom" in report.written and "feeds/all.atom" in report.written


def test_incremental_publish_equals_a_full_rebuild(tmp_path: Path, store: Store) -> None:
    cfg = config(tmp_path)
    inc, full = tmp_path / "inc", tmp_path / "full"
    publishing.publish(store, cfg, inc, now=NOW)
    # a new day between two others, and an entry on an existing day
    new_day = date(2023, 1, 15)
    base = stored_entries()[0]
    added = [
        replace(base, id="n1", source_key="n1", fingerprint="n1", day=new_day, link="https://news.example.org/n1",
                published=datetime(2023, 1, 15, 9, tzinfo=UTC), sources=()),
        replace(base, id="n2", source_key="n2", fingerprint="n2", day=DAYS[-1], link="https://news.example.org/n2",
                published=datetime(2023, 1, 18, 10, tzinfo=UTC), sources=()),
    ]  # fmt: skip
    store.apply(UpdatePlan(inserts=tuple(added)))
    report = publishing.publish(store, cfg, inc, now=NOW, changed_days={new_day, DAYS[-1]})
    publishing.publish(store, cfg, full, now=NOW)
    assert tree(inc) == tree(full)
    rebuilt_days = {p.split("/")[3] for p in report.written if p.startswith("archive/") and p.count("/") == 4}
    assert rebuilt_days == {"14", "15", "16", "18"}  # the changed days and the new day's neighbours
    assert not any(p.startswith("archive/2023/01/17") for p in report.written)


def test_empty_store_publishes_valid_empty_feeds(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "aggregator.db")
    report = publishing.publish(store, config(tmp_path), tmp_path / "public", now=NOW)
    store.close()
    assert report.failed == ()
    files = tree(tmp_path / "public")
    root = check_atom(files["feeds/all.atom"])
    assert root.findtext(f"{ATOM}updated") == "2023-01-01T00:00:00+00:00"
    check_rss(files["daily/en.rss"])
    assert json.loads(files["feeds/all.json"])["items"] == []


@pytest.mark.slow
def test_fetch_and_publish_a_feed_whose_item_has_no_link(tmp_path: Path, feed_server: FeedServer) -> None:
    """The RSS item without <link> (valid RSS 2.0) that used to stop every output (issue 11)."""
    body = (FIXTURES / "corpus" / "dival-personal-1item.xml").read_bytes()
    feed_server.routes["/dival.xml"] = (body, "application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: Site\n  base_url: {feed_server.base_url}/\n  languages: [es, en]\n"
        f"feeds:\n  - url: {feed_server.url('/dival.xml')}\n    name: Dival\n    language: es\n"
    )
    data = tmp_path / "data"
    fetch = run_cli("fetch", config=cfg, data=data)
    assert fetch.returncode == 0, fetch.stderr
    assert "Traceback" not in fetch.stderr
    assert run_cli("publish", config=cfg, data=data).returncode == 0
    public = data / "public"
    for lang in ("es", "all"):
        root = check_atom((public / "feeds" / f"{lang}.atom").read_bytes())
        assert len(root.findall(f"{ATOM}entry")) == 1
        check_rss((public / "feeds" / f"{lang}.rss").read_bytes())
        check_json_feed((public / "feeds" / f"{lang}.json").read_text())
