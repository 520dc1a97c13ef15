from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.store import Store, default_store_url, open_store
from tests.feedserver import FeedServer
from tests.pg_server import PostgresServer, pg_bin, running_server

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    try:
        yield server
    finally:
        server.stop()


def run_cli(*args: str, config: Path, data: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `aggregator` command in a subprocess, as an operator would."""
    env = {**os.environ, "AGGREGATOR_CONFIG": str(config), "AGGREGATOR_DATA": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


# -- PostgreSQL (issue 16) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session. Required in CI (CI=true: no PostgreSQL is
    a failure); elsewhere skipped, loudly, only when the binaries are missing."""
    if pg_bin() is None:
        reason = "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(f"SKIPPED POSTGRESQL TESTS: {reason}")
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer) -> str:
    """The name of a database with our schema, cloned by each test's database."""
    from aggregator.store.postgres import PostgresStore

    url = pg_server.new_database()
    PostgresStore(url).close()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def pg_url(pg_server: PostgresServer, pg_template: str) -> str:
    """A fresh database with our schema, for one test."""
    return pg_server.new_database(template=pg_template)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The store an end-to-end test runs the real program on, once per kind: None for the
    embedded default (SQLite in DATA), else a fresh PostgreSQL database with our schema.
    Exported as AGGREGATOR_STORE (what `--store` defaults to), so every `aggregator` the test
    starts, by `run_cli` or `RunningService`, uses it."""
    if request.param == "sqlite":
        monkeypatch.delenv("AGGREGATOR_STORE", raising=False)
        return None
    url: str = request.getfixturevalue("pg_url")
    monkeypatch.setenv("AGGREGATOR_STORE", url)
    return url


def read_store(data: Path) -> contextlib.closing[Store]:
    """The store the test's `aggregator` commands used (AGGREGATOR_STORE, else SQLite in
    `data`), opened for reading through the Store interface, so one assertion holds on both."""
    url = os.environ.get("AGGREGATOR_STORE") or default_store_url(data)
    return contextlib.closing(open_store(url, create=False))
