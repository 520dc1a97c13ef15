"""What each verbosity logs (issue 14, "Logs"), on the real `aggregator fetch` against 127.0.0.1:
by default one line per failing poll and nothing per request; `-v` a line per poll; `-vv` a
line per HTTP request too; `--log-format json` one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feedserver import FeedServer, refused_url
from tests.test_containment_poll import rss, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer) -> Path:
    urls = {"Good": feed_server.add("/good.rss", rss("one")), "Down": refused_url()}
    return write_config(tmp_path / "feeds.yaml", urls)


def _lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("flags", "per_poll", "per_request"),
    [((), False, False), (("-v",), True, False), (("-vv",), True, True)],
)
def test_each_verbosity_logs_what_it_promises(
    config: Path, tmp_path: Path, flags: tuple[str, ...], per_poll: bool, per_request: bool
) -> None:
    result = run_cli(*flags, "fetch", config=config, data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    lines = _lines(result.stderr)
    failing = [line for line in lines if "feed='Down'" in line and "WARNING" in line]
    assert len(failing) == 1, result.stderr  # the failing poll: always, once
    assert any("feed='Good'" in line for line in lines) is per_poll
    assert any("HTTP Request:" in line for line in lines) is per_request


def test_json_log_lines_are_objects_with_level_logger_and_message(config: Path, tmp_path: Path) -> None:
    result = run_cli("-v", "--log-format", "json", "fetch", config=config, data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in _lines(result.stderr)]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    [down] = [r for r in records if "Down" in r["message"]]
    assert down["level"] == "warning" and down["logger"] == "aggregator.poll"
    assert "connection refused" in down["message"]
    # The kind as data beside the words (issue 14): a log shipper can count and alert on it.
    assert (down["feed"], down["outcome"], down["status"]) == ("Down", "network-error", None)
    assert down["error_kind"] == "ECONNREFUSED"


def test_fetch_progress_through_a_pipe_is_plain_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bar where there is no terminal: a plain line every EVERY seconds, none at the end."""
    from aggregator.cli import _PlainProgress

    monkeypatch.setattr(_PlainProgress, "EVERY", 0.0)
    progress = _PlainProgress(3)
    for _ in range(3):
        progress.advance()
    err = capsys.readouterr().err.splitlines()
    assert err == ["polled 1 of 3 feeds in 0 s", "polled 2 of 3 feeds in 0 s"]
