"""Hot reload of feeds.yaml under the real `aggregator run` (issue 14): an added feed is polled
without a restart, a broken edit is reported with file, line and field and changes nothing,
SIGHUP reloads too, and a removed feed stops being polled (its entries are kept). Loopback
only; every wait bounded."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.service_kit import FeedWorld, RunningService

pytestmark = pytest.mark.slow


def _feeds(world: FeedWorld, numbers: list[int]) -> str:
    lines = ["site:", "  title: Reload", "  timezone: UTC", "  languages: [en]",
             "defaults:", "  interval: 1s", "  min_interval: 1s", "feeds:"]  # fmt: skip
    for n in numbers:
        lines += [f"  - url: {world.url(n)}", f"    name: World {n}", "    language: en"]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")  # as editors save: a new file renamed over the old one
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def test_edits_apply_without_a_restart_and_a_broken_edit_changes_nothing(tmp_path: Path) -> None:
    with FeedWorld(3) as world:
        config = tmp_path / "feeds.yaml"
        _write(config, _feeds(world, [0]))
        with RunningService(config, tmp_path / "data", tmp_path / "run.log") as service:
            hits = lambda n: world.hits.get(f"/feed/{n}.xml", 0)  # noqa: E731
            assert service.wait_for(lambda: hits(0) >= 1, 30), service.output
            assert hits(1) == 0

            _write(config, _feeds(world, [0, 1]))  # a feed added: polled within seconds
            assert service.wait_for(lambda: hits(1) >= 1, 20), service.output
            assert "feeds added" in service.output

            broken = _feeds(world, [0, 1, 2]).replace("language: en\n", "language: xq\n")
            _write(config, broken)  # refused: file, line and field; the last good config runs
            assert service.wait_for(lambda: "not reloaded" in service.output, 20), service.output
            assert "feeds[0].language" in service.output and "feeds.yaml:" in service.output
            assert service.get("/healthz").json()["config_error"]
            time.sleep(3)
            assert hits(2) == 0
            before = hits(1)
            assert service.wait_for(lambda: hits(1) > before, 20)  # still polling the good config

            # SIGHUP reloads too: feed 0 removed, so it is polled no more, and its series leave
            # /metrics (a failing one would count in aggregator_failing_feeds for ever).
            assert 'feed="World 0"' in service.get("/metrics").text
            config.write_text(_feeds(world, [1]), encoding="utf-8")
            service.proc.send_signal(signal.SIGHUP)
            assert service.wait_for(lambda: "1 removed" in service.output, 20), service.output
            time.sleep(2)  # a poll of feed 0 already under way may still land
            stopped_at = hits(0)
            later = hits(1)
            time.sleep(4)
            assert hits(0) == stopped_at and hits(1) > later
            exposition = service.get("/metrics").text
            assert 'feed="World 0"' not in exposition and 'feed="World 1"' in exposition
            assert service.get("/healthz").json()["config_error"] is None
            code, seconds = service.stop(signal.SIGTERM)
            assert code == 0 and seconds < 10


def test_a_feed_removed_while_it_is_polled_is_not_polled_again(tmp_path: Path) -> None:
    """A reload that removes a feed whose poll is under way: that poll ends, and the feed is not
    put back on the schedule (the poll reschedules itself when it ends, after the reload took
    its job away), nor counted in /metrics. Every answer takes 3 s, so the poll is in flight."""
    with FeedWorld(2, delay=3.0) as world:
        config = tmp_path / "feeds.yaml"
        _write(config, _feeds(world, [0, 1]))
        with RunningService(config, tmp_path / "data", tmp_path / "run.log") as service:
            hits = lambda n: world.hits.get(f"/feed/{n}.xml", 0)  # noqa: E731
            assert service.wait_for(lambda: hits(0) >= 1, 30), service.output  # asked: 3 s to answer
            _write(config, _feeds(world, [1]))
            assert service.wait_for(lambda: "1 removed" in service.output, 20), service.output
            removed_at = hits(0)
            later = hits(1)
            time.sleep(10)  # the poll in flight ends; feed 0's interval is 1 s
            assert hits(0) == removed_at, "a removed feed was polled again"
            assert hits(1) > later  # the other goes on
            assert 'feed="World 0"' not in service.get("/metrics").text
            code, _seconds = service.stop(signal.SIGTERM)
            assert code == 0
