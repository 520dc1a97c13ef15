"""Issue 16, what keeps a shared PostgreSQL store sound between processes:

- `aggregator run` and `aggregator worker`s never schedule on one store (two schedulers would
  poll every feed twice), nor two `run`s: the one that comes second stops with one line naming
  the holder; a killed holder frees the store (real processes on a real PostgreSQL);
- procrastinate's tables made by an older procrastinate are brought to the installed release
  by `aggregator worker` (the result is the same database as a new one gets), only when no
  other worker runs; otherwise, and for tables newer than the code, one line says what to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.store import StoreSchemaError, coordination
from aggregator.store.coordination import (
    Holder,
    QueueSchemaBehind,
    busy_message,
    format_position,
    pending,
    release_of,
    start_worker,
)
from aggregator.worker import queue_schema
from tests.conftest import ROOT, run_cli
from tests.pg_server import PostgresServer
from tests.service_kit import FeedWorld, RunningService, free_port

# What a database's procrastinate objects are, to compare two databases.
CATALOG = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
    "FROM information_schema.columns WHERE table_name LIKE 'procrastinate%' ORDER BY 1, 2",
    "functions": "SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' "
    "|| pg_get_function_result(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%' ORDER BY 1",
    "enums": "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
    "ORDER BY 1, e.enumsortorder",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'procrastinate%' ORDER BY 1",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
}


def _catalog(url: str) -> dict[str, list[Any]]:
    with psycopg.connect(url) as conn:
        return {k: conn.execute(q.encode()).fetchall() for k, q in CATALOG.items()}


def _position(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'procrastinate_schema'").fetchone()
    return row[0] if row else None


def _set_position(url: str, value: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('procrastinate_schema', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [value],
        )


def _tables_of_release(url: str, release: tuple[int, int, int]) -> None:
    """procrastinate's tables as that release made them: every shipped file named below it,
    from the first (00.00.00_01_initial.sql), in order; recorded as our position."""
    files = coordination.migration_files(queue_schema().migrations)
    with psycopg.connect(url, autocommit=True) as conn:
        for key, path in files:
            if key < (*release, 0):
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8").encode())
    _set_position(url, format_position((*release, 0)))


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert lines == errors and len(errors) == 1, result.stderr  # nothing said before the refusal
    assert "Traceback" not in result.stderr
    return errors[0]


def _worker(config: Path, data: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data),
         "worker", "--dispatch-every", "1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip


def _wait(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def _scheduler_holders(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s AND objsubid = 1",
            [coordination.SCHEDULER_LOCK >> 32, coordination.SCHEDULER_LOCK & 0xFFFFFFFF],
        ).fetchone()
    return int(row[0]) if row else 0


# -- run and workers: one kind of scheduler per store ------------------------------------------


@pytest.mark.slow
def test_run_and_workers_never_share_a_postgres_store(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGGREGATOR_STORE", pg_url)
    with FeedWorld(3) as world:
        config = world.config(tmp_path / "feeds.yaml")
        data = tmp_path / "data"
        with RunningService(config, data, tmp_path / "run.log") as service:
            assert service.serving(), service.output
            _wait(lambda: _scheduler_holders(pg_url) == 1, 20, "run's lock")
            line = _one_error_line(run_cli("worker", config=config, data=data, timeout=60))
            assert f"`aggregator run` (aggregator run pid {service.proc.pid} on " in line, line
            assert "workers on the same store would poll every feed twice" in line
            line = _one_error_line(
                run_cli("run", "--port", str(free_port()), config=config, data=data, timeout=60)
            )
            assert "a second would poll every feed twice" in line, line
            code, _ = service.stop(signal.SIGTERM)
            assert code == 0, service.output

        worker = _worker(config, data, tmp_path / "worker.log")
        try:
            _wait(lambda: _scheduler_holders(pg_url) == 1, 60, "the worker's lock")
            line = _one_error_line(
                run_cli("run", "--port", str(free_port()), config=config, data=data, timeout=60)
            )
            assert f"1 `aggregator worker` (aggregator worker pid {worker.pid} on " in line, line
            assert "`aggregator run` on the same store would poll every feed twice" in line
            worker.send_signal(signal.SIGKILL)  # its connection closes: PostgreSQL frees the lock
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
        with RunningService(config, data, tmp_path / "run2.log") as service:
            assert service.serving(), service.output
            assert service.wait_for(lambda: _scheduler_holders(pg_url) == 1, 20), service.output
            code, _ = service.stop(signal.SIGTERM)
            assert code == 0, service.output


def test_the_refusal_names_every_holder_in_one_line() -> None:
    url = "postgresql://agg:secret@db.example/agg"
    run = busy_message("worker", url, [Holder("aggregator run pid 7 on a", True)])
    two = busy_message("run", url, [Holder("aggregator worker pid 1 on a", False), Holder(None, False)])
    for line in (run, two, busy_message("run", url, [Holder(None, True)])):
        assert "\n" not in line and "secret" not in line and "***" in line
    assert two.startswith("2 `aggregator worker`s (aggregator worker pid 1 on a) are polling")


# -- procrastinate's tables on upgrade ---------------------------------------------------------


def test_older_procrastinate_tables_are_migrated_to_what_a_new_database_gets(
    tmp_path: Path, pg_server: PostgresServer, pg_template: str, pg_url: str
) -> None:
    fresh = pg_server.new_database(template=pg_template)
    start_worker(fresh, queue_schema(), alive_within=30).close()  # schema.sql of this release
    installed = format_position((*release_of(queue_schema().version), 0))
    assert _position(fresh) == installed

    _tables_of_release(pg_url, (3, 0, 0))  # as procrastinate 3.0.0 left them
    config = tmp_path / "feeds.yaml"
    config.write_text("site:\n  languages: [en]\nfeeds:\n")
    env_store = ("--store", pg_url)
    result = run_cli(*env_store, "worker", "--migrate", config=config, data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "applied procrastinate's 03.01.00_01_pre_add_heartbeat.sql" in result.stderr
    assert _position(pg_url) == installed
    assert _catalog(pg_url) == _catalog(fresh)
    again = run_cli(*env_store, "worker", "--migrate", config=config, data=tmp_path / "data")
    assert again.returncode == 0 and "applied" not in again.stderr  # nothing left to apply


def test_a_worker_demands_the_others_stop_before_it_migrates(tmp_path: Path, pg_url: str) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("site:\n  languages: [en]\nfeeds:\n")
    data = tmp_path / "data"
    env = {**os.environ, "AGGREGATOR_STORE": pg_url}
    running = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data), "worker"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "w.log").open("wb"),
    )  # fmt: skip
    try:
        _wait(lambda: _scheduler_holders(pg_url) == 1, 60, "the running worker")
        _set_position(pg_url, "03.00.00_00")  # as if it ran an older procrastinate
        line = _one_error_line(run_cli("--store", pg_url, "worker", config=config, data=data, timeout=60))
        assert "1 running worker (older code)" in line and "`aggregator worker --migrate`" in line, line
        assert _position(pg_url) == "03.00.00_00"  # nothing applied under it
    finally:
        running.send_signal(signal.SIGINT)
        running.wait(20)


def test_workers_of_an_older_release_count_by_their_heartbeats(pg_url: str) -> None:
    """A worker from before the scheduler lock holds none: procrastinate's registry shows it."""
    start_worker(pg_url, queue_schema(), alive_within=30).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES")  # beating now
    _set_position(pg_url, "03.00.00_00")
    with pytest.raises(QueueSchemaBehind, match="1 running worker"):
        start_worker(pg_url, queue_schema(), alive_within=30)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 minute'")
    _set_position(pg_url, format_position((*release_of(queue_schema().version), 0)))
    start_worker(pg_url, queue_schema(), alive_within=30).close()  # a dead one's row: not running


def test_tables_newer_than_the_code_are_refused_in_one_line(tmp_path: Path, pg_url: str) -> None:
    start_worker(pg_url, queue_schema(), alive_within=30).close()
    _set_position(pg_url, "99.00.00_00")
    config = tmp_path / "feeds.yaml"
    config.write_text("site:\n  languages: [en]\nfeeds:\n")
    line = _one_error_line(
        run_cli("--store", pg_url, "worker", "--migrate", config=config, data=tmp_path / "d")
    )
    assert "newer than this worker's procrastinate" in line, line


def test_a_position_that_is_not_one_is_refused_in_words(pg_url: str) -> None:
    start_worker(pg_url, queue_schema(), alive_within=30).close()
    _set_position(pg_url, "3.10")
    with pytest.raises(StoreSchemaError, match=r"meta.procrastinate_schema in .* is '3.10', not a position"):
        start_worker(pg_url, queue_schema(), alive_within=30)


_versions = st.tuples(st.integers(0, 5), st.integers(0, 12), st.integers(0, 3))


@given(
    files=st.lists(st.tuples(_versions, st.integers(1, 60)), unique=True, max_size=40),
    position=st.tuples(_versions, st.integers(0, 60)),
    installed=_versions,
)
def test_pending_files_are_those_after_the_position_and_below_the_release_in_order(
    files: list[tuple[tuple[int, int, int], int]],
    position: tuple[tuple[int, int, int], int],
    installed: tuple[int, int, int],
) -> None:
    keyed = sorted(((*v, n), Path(f"{format_position((*v, n))}_x.sql")) for v, n in files)
    pos = (*position[0], position[1])
    todo = pending(pos, ".".join(map(str, installed)), keyed)
    expected = [p for k, p in keyed if pos < k and k[:3] < installed]
    assert todo == expected  # in application order, none twice
    assert all(coordination._FILE.match(p.name) for p in todo)


def test_release_of_reads_what_packages_call_versions() -> None:
    assert release_of("3.10.0") == (3, 10, 0)
    assert release_of("3.11.0.dev2") == (3, 11, 0)
    assert release_of("4") == (4, 0, 0)
    with pytest.raises(ValueError):
        release_of("unknown")
