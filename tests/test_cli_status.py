"""`aggregator status` fits the terminal (issue 14): at every width no line is wider, and each
feed's name and the words of its last error are always there; times are relative."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feedserver import FeedServer, refused_url
from tests.test_containment_poll import rss

pytestmark = pytest.mark.slow

NAMES = ["A feed with a rather long name for a narrow terminal", "Short", "Café crème (français)"]


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("status")
    server = FeedServer().start()
    try:
        urls = [server.add(f"/f{i}.rss", rss(f"story {i}")) for i in range(2)] + [refused_url()]
        lines = ["site:", "  languages: [en]", "feeds:"]
        for name, url in zip(NAMES, urls, strict=True):
            lines += [f"  - url: {url}", f"    name: {name}", "    language: en"]
        config = tmp / "feeds.yaml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert run_cli("fetch", config=config, data=tmp / "data").returncode == 0
    finally:
        server.stop()
    return config, tmp / "data"


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160, 220])
def test_status_fits_every_width_and_keeps_names_and_errors(
    polled: tuple[Path, Path], width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, data = polled
    monkeypatch.setenv("COLUMNS", str(width))
    result = run_cli("status", config=config, data=data)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    # Cells fold at word boundaries: every word of every name and of the error is on screen.
    words = set(result.stdout.split())
    for name in NAMES:
        assert set(name.split()) <= words, (name, result.stdout)
    assert set(["could", "not", "connect:", "connection", "refused"]) <= words, result.stdout
    assert "min ago" in result.stdout or "just now" in result.stdout  # relative times
    header = next(line for line in lines if "feed" in line.split())
    assert ("entries" in header.split()) is (width >= 100)  # narrow: fewer, shorter columns


def test_status_json_is_unchanged_by_the_width(
    polled: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, data = polled
    monkeypatch.setenv("COLUMNS", "60")
    narrow = run_cli("status", "--json", config=config, data=data).stdout
    monkeypatch.setenv("COLUMNS", "200")
    wide = run_cli("status", "--json", config=config, data=data).stdout
    assert '"last_polled": "' in narrow and narrow.replace(" ", "") != ""
    strip = re.compile(r'"last_polled": "[^"]*"|"next_poll": "[^"]*"')
    assert strip.sub("", narrow) == strip.sub("", wide)


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Feeds that fail in several ways, polled once by `fetch` into a store."""
    tmp = tmp_path_factory.mktemp("kinds")
    server = FeedServer().start()
    try:
        feeds = {
            "fine": server.add("/ok.rss", rss("story")),
            "missing": server.url("/nothing-here.rss"),  # 404
            "page": server.add("/page.html", b"<html><body>a web page</body></html>"),
            "empty": server.add("/empty.rss", b""),
            "refused": refused_url(),
        }
        lines = ["site:", "  languages: [en]", "defaults:", "  interval: 10m", "feeds:"]
        for name, url in feeds.items():
            lines += [f"  - url: {url}", f"    name: {name}", "    language: en"]
        config = tmp / "feeds.yaml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert run_cli("fetch", config=config, data=tmp / "data").returncode == 0
    finally:
        server.stop()
    return config, tmp / "data"


def test_status_json_gives_each_feeds_error_kind(failing: tuple[Path, Path]) -> None:
    """The kind is derived from the stored poll, so a later process shows it (issue 14)."""
    config, data = failing
    result = run_cli("status", "--json", config=config, data=data)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    kinds = {f["name"]: f["error_kind"] for f in doc["feeds"]}
    assert kinds == {
        "fine": None, "missing": "http_404", "page": "not_a_feed", "empty": "not_a_feed",
        "refused": "ECONNREFUSED",
    }  # fmt: skip
    refused = next(f for f in doc["feeds"] if f["name"] == "refused")
    assert refused["last_error"] == "could not connect: connection refused (ECONNREFUSED)"  # words stay
    history = json.loads(run_cli("status", "--feed", "missing", "--json", config=config, data=data).stdout)
    assert [p["error_kind"] for p in history["polls"]] == ["http_404"]


def test_status_gives_the_cache_lifetime_to_copy_into_nginx(failing: tuple[Path, Path]) -> None:
    config, data = failing
    doc = json.loads(run_cli("status", "--json", config=config, data=data).stdout)
    assert doc["cache_max_age"] == 600  # the shortest poll interval: 10 min
    text = run_cli("status", config=config, data=data).stdout
    assert "Cache-Control: public, max-age=600" in " ".join(text.split())
