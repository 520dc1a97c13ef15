"""Crash safety: `aggregator fetch` killed with SIGKILL in the middle of polling 200 feeds.

Afterwards the database passes PRAGMA integrity_check, every entry committed before the kill
is still there, and the next poll stores exactly what was missing: nothing lost, nothing twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli
from tests.hostile_server import HostileServer

pytestmark = pytest.mark.slow

FEEDS = 200
ITEMS = 5
SLOW_EVERY = 10  # every 10th feed holds its answer back, so the run is surely mid-way
SLOW_SECONDS = 2


def _config(path: Path, server: HostileServer) -> Path:
    lines = [
        "site:",
        f"  base_url: {server.base_url}/",
        "  languages: [en]",
        "fetch:",
        "  concurrency: 32",
        "  per_host: 32  # one loopback host stands for many sites here",
        "  timeout: 20s",
        "feeds:",
    ]
    for i in range(FEEDS):
        delay = f"&delay={SLOW_SECONDS}" if i % SLOW_EVERY == 0 else ""
        lines += [f"  - url: {server.url(f'/gen/crash-{i}.xml?items={ITEMS}{delay}')}", f"    name: feed {i}"]
        lines += ["    language: en"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _count(db_path: Path) -> int:
    try:
        return int(_rows(db_path, "SELECT COUNT(*) FROM entries")[0][0])
    except sqlite3.Error:
        return 0  # not created (or not migrated) yet


def test_sigkill_mid_poll_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with HostileServer() as server:
        config = _config(tmp_path / "feeds.yaml", server)
        data = tmp_path / "data"
        db_path = data / "aggregator.db"
        env = {**os.environ, "AGGREGATOR_CONFIG": str(config), "AGGREGATOR_DATA": str(data)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "fetch", "--no-publish"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _count(db_path) < FEEDS * ITEMS // 3:
                assert proc.poll() is None, "fetch ended before it could be killed"
                time.sleep(0.02)
            before = set(_rows(db_path, "SELECT id, feed_url, source_key, title FROM entries"))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        total = FEEDS * ITEMS
        assert total // 3 <= len(before) < total  # killed mid-way, some feeds still in flight

        # After the crash: a sound database holding everything committed before the kill.
        assert _rows(db_path, "PRAGMA integrity_check") == [("ok",)]
        after_kill = set(_rows(db_path, "SELECT id, feed_url, source_key, title FROM entries"))
        assert before <= after_kill

        # The next run stores exactly what was missing.
        result = run_cli("fetch", config=config, data=data)
        assert result.returncode == 0, result.stderr
        assert f"{FEEDS} ok, 0 failed; {total - len(after_kill)} new" in result.stdout, result.stdout
        final = set(_rows(db_path, "SELECT id, feed_url, source_key, title FROM entries"))
        assert before <= after_kill <= final and len(final) == total
        assert _rows(
            db_path, "SELECT COUNT(*), COUNT(DISTINCT feed_url || ' ' || source_key) FROM entry_sources"
        ) == [(total, total)]
        per_feed = _rows(db_path, "SELECT COUNT(*) FROM entries GROUP BY feed_url")
        assert len(per_feed) == FEEDS and {n for (n,) in per_feed} == {ITEMS}
        assert _rows(db_path, "PRAGMA integrity_check") == [("ok",)]

        # And once more: all 304s, nothing new.
        again = run_cli("fetch", config=config, data=data)
        assert f"{FEEDS} ok, 0 failed; 0 new" in again.stdout, again.stdout
        assert len(set(_rows(db_path, "SELECT id FROM entries"))) == total
