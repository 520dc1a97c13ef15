"""Every command fails with one clear line and exit 1 when the store or its directory cannot
be used: missing, corrupt, read-only, full, locked (issue 11). `-v` adds the traceback.

The real `aggregator` command in a subprocess, on real files and file systems (a small tmpfs
for full and read-only, skipped where mounting is not permitted).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.config import load_config
from tests.conftest import ROOT, run_cli
from tests.feedserver import FeedServer
from tests.test_containment_poll import fill, rss, small_fs, write_config, write_lock_held

pytestmark = pytest.mark.slow
__all__ = ["small_fs"]  # a fixture, used by name

READ_COMMANDS = [("status",), ("status", "--json"), ("publish",), ("frontpage",)]


def one_line_failure(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer) -> Path:
    url = feed_server.add("/f.rss", rss("one", "two"))
    return write_config(tmp_path / "feeds.yaml", {"F": url})


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_missing_database_is_an_error_not_an_empty_site(
    tmp_path: Path, config: Path, command: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    line = one_line_failure(run_cli(*command, config=config, data=data), "no database at", "aggregator fetch")
    assert str(data / "aggregator.db") in line
    assert not (data / "aggregator.db").exists() and not (data / "public").exists()


@pytest.mark.parametrize("command", [("fetch",), *READ_COMMANDS], ids=" ".join)
def test_a_corrupt_database_is_one_line(tmp_path: Path, config: Path, command: tuple[str, ...]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "aggregator.db").write_bytes(b"this is no database " * 500)
    one_line_failure(run_cli(*command, config=config, data=data), "is not a sound SQLite database")


def test_verbose_adds_the_traceback(tmp_path: Path, config: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "aggregator.db").write_bytes(b"this is no database " * 500)
    result = run_cli("-v", "status", config=config, data=data)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "sqlite3.DatabaseError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_a_locked_database_fails_after_the_busy_timeout(tmp_path: Path, config: Path) -> None:
    """A command that must write (here the first `fetch`, creating the feed rows) waits for
    another process's write lock up to AGGREGATOR_BUSY_TIMEOUT, then says so; reading commands
    go on reading meanwhile (WAL)."""
    data = tmp_path / "data"
    assert run_cli("fetch", config=config, data=data).returncode == 0
    configured = config.read_text()
    write_config(config, {"F": "http://127.0.0.1:9/f.rss", "New": "http://127.0.0.1:9/n.rss"})
    env = {**os.environ, "AGGREGATOR_CONFIG": str(config), "AGGREGATOR_DATA": str(data),
           "AGGREGATOR_BUSY_TIMEOUT": "0.5"}  # fmt: skip
    with write_lock_held(data / "aggregator.db"):
        result = subprocess.run([sys.executable, "-m", "aggregator", "fetch"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        one_line_failure(result, "is locked by another process")
        config.write_text(configured)  # as stored: nothing to write
        status = subprocess.run([sys.executable, "-m", "aggregator", "status", "--json"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert '"entries_total": 2' in status.stdout


@pytest.fixture
def mounted(small_fs: Path) -> Iterator[Path]:
    yield small_fs


def test_a_read_only_data_directory_is_one_line(config: Path, mounted: Path) -> None:
    data = mounted / "data"
    assert run_cli("fetch", config=config, data=data).returncode == 0
    done = subprocess.run(["mount", "-o", "remount,ro", str(mounted)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only here: {done.stderr.strip()}")
    for command in (("fetch",), ("publish",), ("status",)):
        result = run_cli(*command, config=config, data=data)
        if result.returncode == 0:
            # SQLite may open a WAL database read-only after all; reading commands then work.
            assert command == ("status",), (command, result.stderr)
            continue
        line = one_line_failure(result)
        assert any(w in line for w in ("cannot be written", "cannot write", "Read-only", "cannot open")), line


def test_a_full_disk_is_one_line_and_nothing_stored_is_lost(config: Path, mounted: Path) -> None:
    data = mounted / "data"
    assert run_cli("fetch", config=config, data=data).returncode == 0
    fill(mounted)
    # A new feed to write about, so even the first statements of `fetch` need the disk.
    write_config(config, {"F": load_config(config).feeds[0].key, "G": "http://127.0.0.1:9/g"})
    for command in (("fetch",), ("publish",)):
        result = run_cli(*command, config=config, data=data)
        assert "Traceback" not in result.stderr + result.stdout
        if result.returncode == 1:
            one_line_failure(result, "full")
        else:  # every poll failed on the full disk, in words, and the run completed
            assert "full" in result.stdout, result.stdout
    (mounted / "filler").unlink()
    status = run_cli("status", "--json", config=config, data=data)
    assert status.returncode == 0 and '"entries_total": 2' in status.stdout, status.stderr
