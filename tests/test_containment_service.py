"""Fault injection on the real `aggregator run` (issue 11, service side): signals, SIGKILL at
random moments, a held write lock, a deleted database, a poll that raises, a full disk, a
deleted public/. Each asserts that nothing stored is lost, that feeds keep being polled, and
that the site keeps serving its last good pages. Loopback only; every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.service_kit import (
    FeedWorld,
    RunningService,
    check_outputs,
    db_counts,
    polled_since,
    temp_files,
)

pytestmark = pytest.mark.slow


def _entries_on_front_page(service: RunningService) -> bool:
    r = service.get("/")
    return r.status_code == 200 and "World" in r.text and "story" in r.text


@pytest.mark.parametrize(
    ("sig", "twice"), [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)]
)
def test_signal_mid_cycle_exits_0_within_10_s_without_traceback(
    tmp_path: Path, sig: int, twice: bool
) -> None:
    # Slow answers (0.5 s, two at a time per host) keep most of 150 polls waiting or in flight
    # when the signal comes.
    with FeedWorld(150, changing=True, delay=0.5) as world:
        config = world.config(tmp_path / "feeds.yaml")
        with RunningService(config, tmp_path / "data", tmp_path / "run.log") as service:
            assert service.serving()
            time.sleep(4)
            in_flight = sum(world.hits.values())
            if twice:  # an impatient operator: Ctrl-C, then Ctrl-C again during the shutdown
                service.proc.send_signal(sig)
                time.sleep(0.3)
            code, seconds = service.stop(sig)
    output = service.output
    assert 3 <= in_flight < 150, "the signal did not come mid-cycle"
    assert code == 0, output
    assert seconds < 10
    assert "Traceback" not in output
    public = tmp_path / "data" / "public"
    if not twice:  # a second signal may abandon a publish: its temporary file goes at next start
        assert temp_files(public) == []
    assert check_outputs(public) == []
    assert db_counts(tmp_path / "data" / "aggregator.db")[0] == "ok"


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(1111)
    data = tmp_path / "data"
    db, public = data / "aggregator.db", data / "public"
    entries = 0
    with FeedWorld(30, changing=True) as world:
        config = world.config(tmp_path / "feeds.yaml", interval="1s")
        mid_publish = rounds = 0
        # Ten rounds, and more (up to 20) until a kill has landed inside a publish (publishing
        # is fast: an incremental one writes a few files).
        for round_ in range(20):
            if round_ >= 10 and mid_publish:
                break
            rounds += 1
            with RunningService(config, data, tmp_path / "run.log") as service:
                assert service.serving(), service.output
                if round_ % 2:
                    time.sleep(rng.uniform(0.5, 6.0))  # polls and publishes run all the time here
                else:
                    _stop_in_a_publish(service.proc.pid, public, 8)
                service.kill()
            mid_publish += bool(temp_files(public))
            integrity, count, _ = db_counts(db)
            assert integrity == "ok", f"round {round_}"
            assert count >= entries, f"round {round_}: entries lost"
            entries = count
            assert check_outputs(public) == [], f"round {round_}"
        assert entries > 30  # the rounds did store things
        assert mid_publish >= 1, "no kill landed during a publish"
        print(f"SIGKILL x{rounds}: {mid_publish} during a publish, entries {entries}")
        # Started again: leftovers of killed publishes are gone and polling resumes.
        restart = datetime.now(UTC).replace(microsecond=0)
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            assert temp_files(public) == []
            assert service.wait_for(lambda: len(polled_since(db, restart)) == 30, 30)
            assert service.wait_for(lambda: service.get("/healthz").status_code == 200, 10)
            code, _ = service.stop()
    assert code == 0
    assert db_counts(db)[1] >= entries


def _stop_in_a_publish(pid: int, public: Path, seconds: float) -> None:
    """Freeze the service (SIGSTOP) while a publisher's temporary file exists, so the SIGKILL
    that follows lands inside a publish, or give up after `seconds`. A file is written in
    well under a millisecond, so a kill aimed at a temporary file seen on disk usually lands
    after its rename; stopping first and looking again tells (a stop that came too late is
    undone with SIGCONT). Looks every half millisecond: bounded by the deadline."""
    deadline = time.monotonic() + seconds
    today = public / "archive" / datetime.now(UTC).strftime("%Y/%m/%d")  # the world's day (UTC)
    dirs = [public, public / "feeds", public / "daily", public / "en", today]

    def writing() -> bool:
        for d in dirs:
            with contextlib.suppress(OSError), os.scandir(d) as it:
                if any(e.name.startswith(".") and e.name.endswith(".tmp") for e in it):
                    return True
        return False

    while time.monotonic() < deadline:
        if writing():
            os.kill(pid, signal.SIGSTOP)
            if writing():
                return  # frozen mid-write: the caller's SIGKILL lands here
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.0005)


def test_write_lock_held_15_s_front_page_answers_fast(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "aggregator.db"
    with FeedWorld(20, changing=True) as world:
        config = world.config(tmp_path / "feeds.yaml", interval="1s")
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            assert service.wait_for(lambda: _entries_on_front_page(service), 30)
            holder = subprocess.Popen(
                [sys.executable, "-c",
                 "import sqlite3, sys, time\n"
                 "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
                 "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(15)\n"
                 "c.execute('COMMIT')\n", str(db)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
                latencies = []
                deadline = time.monotonic() + 14
                while time.monotonic() < deadline:
                    started = time.monotonic()
                    r = service.get("/", timeout=5)
                    latencies.append(time.monotonic() - started)
                    assert r.status_code == 200 and "World" in r.text
                    time.sleep(0.1)
            finally:
                holder.wait(30)
            released = datetime.now(UTC).replace(microsecond=0)
            # Every feed is polled again once the lock is gone (none was dropped from the schedule).
            assert service.wait_for(lambda: len(polled_since(db, released)) == 20, 40), service.output
            code, _ = service.stop()
    latencies.sort()
    assert len(latencies) > 50
    assert latencies[len(latencies) * 99 // 100] < 0.5, latencies[-5:]
    assert code == 0 and "Traceback" not in service.output


def test_healthz_tells_the_truth_while_all_is_well(tmp_path: Path) -> None:
    """Issue 11: 200 with JSON saying the store is reachable, the scheduler alive, the times of
    the last successful poll and publish, and how many feeds fail (a failing feed is news, not
    an unhealthy service). The 503 side: test_database_deleted_keeps_last_good_pages,
    test_full_disk_then_every_feed_polled_again, test_schedule.py."""
    broken = "  - url: {base}/missing.xml\n    name: Broken\n    language: en\n"
    with FeedWorld(3) as world:
        config = world.config(tmp_path / "feeds.yaml", extra=broken.format(base=world.base_url))
        started = datetime.now(UTC).replace(microsecond=0)
        with RunningService(config, tmp_path / "data", tmp_path / "run.log") as service:
            assert service.serving()

            def settled() -> bool:
                doc = service.get("/healthz").json()
                return bool(doc["last_poll"] and doc["last_publish"] and doc["feeds_failing"] == 1)

            assert service.wait_for(settled, 30), service.output
            health = service.get("/healthz")
            code, _ = service.stop()
    assert health.status_code == 200 and health.headers["cache-control"] == "no-store"
    doc = health.json()
    assert doc["status"] == "ok" and doc["reasons"] == []
    assert (doc["store"], doc["scheduler"], doc["feeds_failing"]) == ("ok", "alive", 1)
    for moment in ("last_poll", "last_publish"):
        assert datetime.fromisoformat(doc[moment]) >= started, doc
    assert code == 0


def test_an_output_that_cannot_be_written_shows_in_healthz_and_costs_that_file(tmp_path: Path) -> None:
    """Issue 11: once, one output failing stopped every publish while /healthz said ok. Under
    `run`: the other files keep being published, /healthz says 503 and names the file, and once
    it can be written again it is, and /healthz is 200 again."""
    data = tmp_path / "data"
    public = data / "public"
    blocked = public / "feeds" / "all.json"
    with FeedWorld(5, changing=True) as world:
        config = world.config(tmp_path / "feeds.yaml", interval="1s")
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            assert service.wait_for(lambda: _entries_on_front_page(service), 30)
            blocked.unlink()
            (blocked / "in-the-way").mkdir(parents=True)  # a non-empty directory where the file goes

            def says_which() -> bool:
                r = service.get("/healthz")
                reasons = " ".join(r.json()["reasons"])
                return (
                    r.status_code == 503 and "could not be written" in reasons and "feeds/all.json" in reasons
                )

            assert service.wait_for(says_which, 20), service.output
            atom = (public / "feeds" / "all.atom").read_bytes()
            assert service.wait_for(lambda: (public / "feeds" / "all.atom").read_bytes() != atom, 20)
            assert _entries_on_front_page(service)  # the rest of the site is published and served
            shutil.rmtree(blocked)
            assert service.wait_for(lambda: service.get("/healthz").status_code == 200, 40), service.output
            assert service.wait_for(lambda: blocked.is_file(), 10)
            assert json.loads(blocked.read_bytes())["items"]
            code, _ = service.stop()
    assert code == 0  # the log's noise meanwhile: tests/test_audit_gaps.py


def test_database_deleted_keeps_last_good_pages(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "aggregator.db"
    with FeedWorld(10, changing=True) as world:
        config = world.config(tmp_path / "feeds.yaml", interval="1s")
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            assert service.wait_for(lambda: _entries_on_front_page(service), 30)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            assert service.wait_for(lambda: service.get("/healthz").status_code == 503, 10)
            page = (data / "public" / "index.html").read_bytes()
            time.sleep(8)  # polls keep coming (and would have published twice by now)
            health = service.get("/healthz")
            assert health.status_code == 503
            assert any("missing" in r for r in health.json()["reasons"])
            assert (data / "public" / "index.html").read_bytes() == page
            assert _entries_on_front_page(service)
            assert not db.exists(), "the database must not be recreated empty under a running service"
            code, _ = service.stop()
    assert code == 0
    assert "Traceback" not in service.output


def test_a_poll_that_raises_is_polled_again(tmp_path: Path) -> None:
    # A non-ASCII ETag is stored, then sent back: httpx refuses to encode it (UnicodeEncodeError),
    # an exception no fetch code expected. Whatever raises, the feed stays on the schedule.
    data = tmp_path / "data"
    with FeedWorld(3) as world:
        world.headers["/feed/0.xml"] = [("ETag", '"caf\xe9"')]
        config = world.config(tmp_path / "feeds.yaml", interval="1s")
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            time.sleep(14)
            code, _ = service.stop()
    output = service.output
    assert code == 0
    logged = len(re.findall(r"feed='World 0' poll (?:crashed|failed)", output))
    _, _, polls = db_counts(data / "aggregator.db")
    attempts = logged + polls.get(world.url(0), 0)
    assert attempts >= 3, output  # 1 s interval, back-off 2 s, 4 s …: at least three in 14 s
    assert polls.get(world.url(1), 0) >= 5  # the others go on at their interval


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a full disk ({mounted.stderr.strip()}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the file system: unbuffered writes until ENOSPC (a buffered file could raise it
    again when closed, whoever else is writing to the disk meanwhile)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        for _ in range(1 << 20):  # bounded: 64 GiB, far beyond any test tmpfs
            f.write(b"\0" * 65536)
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs for a full disk needs root")
def test_full_disk_then_every_feed_polled_again(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "16m") as disk, FeedWorld(20, changing=True) as world:
        data = disk / "data"
        db = data / "aggregator.db"
        config = world.config(tmp_path / "feeds.yaml", interval="1s")
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            assert service.wait_for(lambda: _entries_on_front_page(service), 30)
            filler = _fill(disk)
            assert service.wait_for(lambda: service.get("/healthz").status_code == 503, 20), service.output
            assert _entries_on_front_page(service)  # the last good pages stay
            time.sleep(3)
            filler.unlink()
            cleared = datetime.now(UTC).replace(microsecond=0)
            assert service.wait_for(lambda: len(polled_since(db, cleared)) == 20, 40), service.output
            assert service.wait_for(lambda: service.get("/healthz").status_code == 200, 20)
            code, _ = service.stop()
        assert code == 0
        assert db_counts(db)[0] == "ok"
        assert check_outputs(data / "public") == []
    assert "No space left" in service.output or "disk is full" in service.output


def test_public_deleted_and_leftover_temp_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    public = data / "public"
    (public / "feeds").mkdir(parents=True)
    leftovers = [public / ".index.html.k1.tmp", public / "feeds" / ".all.atom.k2.tmp"]
    for tmp in leftovers:
        tmp.write_text("half a file")
    with FeedWorld(5) as world:
        config = world.config(tmp_path / "feeds.yaml")
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving()
            assert not any(t.exists() for t in leftovers)
            assert service.get("/.index.html.k1.tmp").status_code == 404
            assert service.wait_for(lambda: _entries_on_front_page(service), 30)
            # Gone in one step (a publish may be writing into the tree meanwhile), then deleted.
            public.rename(tmp_path / "deleted-public")
            shutil.rmtree(tmp_path / "deleted-public")
            # The first request for a page notices; the tree is rebuilt at once, not at a change.
            assert service.wait_for(lambda: _entries_on_front_page(service), 10)
            assert service.get("/feeds/all.atom").status_code == 200
            code, _ = service.stop()
    assert code == 0


def test_more_unfinished_requests_than_descriptors(tmp_path: Path) -> None:
    # 1,100 clients that never finish their headers, at a 1,024 open-files limit: once the
    # server answered no one and wrote a 188 MB log. Now excess connections are closed as they
    # arrive, the slow ones are cut off after the 10 s header deadline, the log stays small.
    with FeedWorld(3) as world:
        config = world.config(tmp_path / "feeds.yaml")
        log = tmp_path / "run.log"
        with RunningService(config, tmp_path / "data", log, max_files=1024) as service:
            assert service.serving()
            assert service.wait_for(lambda: _entries_on_front_page(service), 30)
            slow = []
            try:
                for _ in range(1100):
                    try:
                        s = socket.create_connection(("127.0.0.1", service.port), timeout=5)
                        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                        slow.append(s)
                    except OSError:
                        pass  # refused or reset under load: that is the server protecting itself
                assert service.wait_for(lambda: service.get("/", timeout=3).status_code == 200, 20)
            finally:
                for s in slow:
                    s.close()
            assert service.get("/healthz").status_code == 200
            code, _ = service.stop()
    assert code == 0
    assert log.stat().st_size < 100_000, log.stat().st_size
