"""The whole pipeline against a real loopback server: fetch -> store -> publish -> read back.
Every test runs on both stores (the `store_url` fixture: SQLite, then PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest

from tests.conftest import FIXTURES, read_store, run_cli
from tests.feedserver import FeedServer, refused_url

SEED = FIXTURES / "seed"
SEED_FEEDS = [
    ("/en.atom", "en.atom", "English", "en"),
    ("/es.rss", "es.rss", "Spanish", "es"),
    ("/it.rdf", "it.rdf", "Italian", "it"),
    ("/fr.xml", "fr-latin1.xml", "French", "fr"),
    ("/ru.xml", "ru-cp1251.xml", "Russian", "ru"),
    ("/mixed.json", "mixed.json", "All languages", "auto"),
]


def write_config(path: Path, server: FeedServer, extra_feeds: list[tuple[str, str, str]] = ()) -> Path:
    lines = [
        "site:",
        "  title: In Defence of Marxism",
        "  link: https://www.marxist.com/",
        f"  base_url: {server.base_url}/",
        "  timezone: Europe/London",
        "  languages: [en, es, it, fr, ru]",
        "defaults:",
        "  interval: 15m",
        "feeds:",
    ]
    for route, _file, name, lang in SEED_FEEDS:
        lines += [f"  - url: {server.url(route)}", f"    name: {name}", f"    language: {lang}"]
    for url, name, lang in extra_feeds:
        lines += [f"  - url: {url}", f"    name: {name}", f"    language: {lang}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def serve_seed(server: FeedServer) -> None:
    for route, file, _name, _lang in SEED_FEEDS:
        server.add_file(route, SEED / file)


def _paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.fixture
def seeded(tmp_path: Path, feed_server: FeedServer, store_url: str | None) -> tuple[Path, Path, FeedServer]:
    serve_seed(feed_server)
    config = write_config(tmp_path / "feeds.yaml", feed_server)
    data = tmp_path / "data"
    result = run_cli("fetch", config=config, data=data)
    assert result.returncode == 0, result.stderr
    assert "6 ok, 0 failed" in result.stdout, result.stdout
    return config, data, feed_server


def test_seed_front_page_is_reproduced(seeded: tuple[Path, Path, FeedServer]) -> None:
    config, data, _ = seeded
    result = run_cli("frontpage", "--date", "2023-01-17", "--lang", "all", "--format", "text",
                     config=config, data=data)  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = (SEED / "seed-frontpage-2023-01-17.txt").read_text(encoding="utf-8")
    assert _paragraphs(result.stdout) == _paragraphs(expected)


def test_mixed_feed_duplicates_are_merged_with_both_sources(seeded: tuple[Path, Path, FeedServer]) -> None:
    config, data, _ = seeded
    with read_store(data) as store:
        entries = store.latest(None, 100)
    # 7 distinct articles (6 on the seed day + Monday's); the mixed feed adds none.
    assert len(entries) == 7
    merged = sorted((e.title for e in entries if len(e.sources) > 1), key=str.encode)
    assert [t.split(":")[0] for t in merged] == ["Britain", "Peru", "Борьба Ленина с бюрократией"]
    assert all(len(e.sources) == 2 for e in entries if len(e.sources) > 1)
    langs = {e.title: e.language for e in entries}
    assert langs["Борьба Ленина с бюрократией"] == "ru"
    # The JSON front page lists both sources.
    result = run_cli("frontpage", "--date", "2023-01-17", "--format", "json", config=config, data=data)
    page = json.loads(result.stdout)
    britain = next(e for e in page["entries"] if e["title"].startswith("Britain"))
    assert {s["name"] for s in britain["sources"]} == {"English", "All languages"}
    assert [e["language"] for e in page["entries"]] == ["en", "en", "es", "it", "fr", "ru"]


def test_outputs_are_valid_feeds_for_every_language(seeded: tuple[Path, Path, FeedServer]) -> None:
    _, data, _ = seeded
    public = data / "public"
    for lang in ["en", "es", "it", "fr", "ru", "all"]:  # one fetch per store for all of them
        _check_language_outputs(public, lang)


def _check_language_outputs(public: Path, lang: str) -> None:
    atom = feedparser.parse((public / "feeds" / f"{lang}.atom").read_bytes())
    rss = feedparser.parse((public / "feeds" / f"{lang}.rss").read_bytes())
    assert not atom.bozo and atom.version == "atom10", lang
    assert not rss.bozo and rss.version == "rss20", lang
    doc = json.loads((public / "feeds" / f"{lang}.json").read_text(encoding="utf-8"))
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    expected = {"en": 3, "es": 1, "it": 1, "fr": 1, "ru": 1, "all": 7}[lang]
    assert len(atom.entries) == len(rss.entries) == len(doc["items"]) == expected, lang
    # Newest first, ids stable and shared by all three formats.
    dates = [e.published_parsed for e in atom.entries]
    assert dates == sorted(dates, reverse=True), lang
    ids = [e.id for e in atom.entries]
    assert ids == [i["id"] for i in doc["items"]] == [e.id for e in rss.entries], lang
    page = (public / ("index.html" if lang == "all" else f"{lang}/index.html")).read_text(encoding="utf-8")
    assert "Tuesday, 17 January 2023" in page if lang in ("en", "all") else "2023-01-17" in page


def test_refused_and_garbage_feeds_fail_without_stopping_others(
    tmp_path: Path, feed_server: FeedServer, store_url: str | None
) -> None:
    serve_seed(feed_server)
    garbage = feed_server.add("/garbage.xml", bytes(range(256)) * 8, "application/xml")
    config = write_config(
        tmp_path / "feeds.yaml",
        feed_server,
        [(refused_url(), "Refused", "en"), (garbage, "Garbage", "en")],
    )
    data = tmp_path / "data"
    result = run_cli("fetch", config=config, data=data)
    assert result.returncode == 0, result.stderr
    assert "6 ok, 2 failed" in result.stdout
    assert "FAILED   Refused: could not connect" in result.stdout
    assert "FAILED   Garbage: not a feed" in result.stdout
    status = json.loads(run_cli("status", "--json", config=config, data=data).stdout)
    assert status["entries_total"] == 7
    by_name = {f["name"]: f for f in status["feeds"]}
    assert by_name["Refused"]["last_error"].startswith("could not connect")
    assert by_name["Garbage"]["outcome"] == "not-a-feed"
    assert by_name["English"]["entries"] == 3


def test_second_poll_is_conditional_and_changes_nothing(seeded: tuple[Path, Path, FeedServer]) -> None:
    config, data, server = seeded
    before = {p: p.read_bytes() for p in (data / "public").rglob("*") if p.is_file()}
    result = run_cli("fetch", config=config, data=data)
    assert result.returncode == 0
    assert "0 new, 0 updated" in result.stdout
    # Every second request carried the validator the first answer gave.
    for route, *_ in SEED_FEEDS:
        conditional = [h for p, h in server.requests if p == route and "if-none-match" in h]
        assert len(conditional) == 1, route
    after = {p: p.read_bytes() for p in (data / "public").rglob("*") if p.is_file()}
    assert before == after  # unchanged outputs stay byte-identical


def test_empty_site_says_so_and_lists_failing_feeds(
    tmp_path: Path, feed_server: FeedServer, store_url: str | None
) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"site:\n  languages: [en]\n  base_url: {feed_server.base_url}/\n"
        f"feeds:\n  - url: {refused_url()}\n    name: Down\n    language: en\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    assert run_cli("fetch", config=config, data=data).returncode == 0
    page = (data / "public" / "index.html").read_text(encoding="utf-8")
    assert "No entries yet" in page and "Down" in page and "could not connect" in page
