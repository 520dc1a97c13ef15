"""What the audit of issues 11 and 12 found short of the issues' and the README's words, each as
an executable statement of the right behaviour. Strict xfails: each fails today for the reason
given, and turns into a failure (XPASS) the day the gap is closed, so whoever closes it drops
the marker and the test stays as the proof. Real program, real file systems, loopback only.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feedserver import FeedServer
from tests.service_kit import FeedWorld, RunningService
from tests.test_containment_poll import rows, rss, small_fs, write_config

pytestmark = pytest.mark.slow
__all__ = ["small_fs"]  # a fixture, used by name


@pytest.fixture
def read_only_data(small_fs: Path, feed_server: FeedServer, tmp_path: Path) -> tuple[Path, Path]:
    """(feeds.yaml, data directory) where one `fetch` stored two entries, then the file system
    holding the data directory remounted read-only."""
    config = write_config(tmp_path / "feeds.yaml", {"F": feed_server.add("/f.rss", rss("one", "two"))})
    data = small_fs / "data"
    assert run_cli("fetch", config=config, data=data).returncode == 0
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only here: {done.stderr.strip()}")
    return config, data


@pytest.mark.parametrize("command", [("fetch",), ("run", "--port", "0")], ids=" ".join)
def test_a_read_only_data_directory_fails_in_one_line_without_a_traceback(
    read_only_data: tuple[Path, Path], command: tuple[str, ...]
) -> None:
    """What holds today (issue 11, "Exits"): exit 1, no traceback, the last line says it."""
    config, data = read_only_data
    result = run_cli(*command, config=config, data=data, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert str(data / "aggregator.db") in last, last


@pytest.mark.parametrize("command", [("fetch",), ("run", "--port", "0")], ids=" ".join)
def test_a_read_only_data_directory_is_named_as_such(
    read_only_data: tuple[Path, Path], command: tuple[str, ...]
) -> None:
    """README "Exits": a data directory that cannot be written is named as such (audit of issue
    11: a WAL database there was reported as missing)."""
    config, data = read_only_data
    result = run_cli(*command, config=config, data=data, timeout=60)
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot be written" in last and "read-only" in last, last
    assert "StoreMissing" not in last
    assert "serving" not in result.stdout  # `run`: no banner before the refusal


def test_a_lone_surrogate_in_json_feed_content_costs_the_character_not_the_item(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """README "Text": control characters XML cannot carry, lone surrogates and U+FFFE are removed
    as text is read; issue 11: an item is read as far as it can be."""
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {"id": "text", "url": "https://e.org/1", "title": "Text", "content_text": "one \ud800 two"},
            {"id": "html", "url": "https://e.org/2", "title": "Html", "content_html": "<p>three \udfff</p>"},
            {"id": "summary", "url": "https://e.org/3", "title": "Summary", "summary": "four \ud83d five"},
        ],
    }
    url = feed_server.add("/j.json", json.dumps(doc).encode())  # json writes "\ud800" as an escape
    config = write_config(tmp_path / "feeds.yaml", {"J": url})
    data = tmp_path / "data"
    result = run_cli("fetch", config=config, data=data)
    assert result.returncode == 0, result.stderr
    stored = rows(
        data / "aggregator.db", "SELECT source_key, summary || content FROM entries ORDER BY source_key"
    )
    assert [key for key, _ in stored] == ["html", "summary", "text"]
    assert all("\ud800" not in text and "\udfff" not in text for _, text in stored)


def test_an_output_that_cannot_be_written_is_logged_once_without_a_traceback(tmp_path: Path) -> None:
    """README, Guarantees: "the error shows in /healthz and the log (once per reason)"; issue 11:
    log noise bounded. The file's failure is expected (an OSError), so no traceback without -v."""
    data = tmp_path / "data"
    blocked = data / "public" / "feeds" / "all.json"
    with FeedWorld(5, changing=True) as world:
        config = world.config(tmp_path / "feeds.yaml", interval="1s")
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            assert service.wait_for(blocked.is_file, 30)
            blocked.unlink()
            (blocked / "in-the-way").mkdir(parents=True)
            assert service.wait_for(lambda: service.get("/healthz").status_code == 503, 20)
            time.sleep(10)  # changes every second: a publish (and a failure) every 1 to 5 s
            service.stop()
    log = service.output
    assert len(re.findall(r"ERROR aggregator\.\w+ publish", log)) <= 2, log[-3000:]
    assert "Traceback" not in log
