"""A throw-away PostgreSQL server for the tests: `initdb` and `pg_ctl` in a temporary
directory, listening on a free 127.0.0.1 port, stopped at the end of the session.

Each test gets a fresh database cloned from a template that already has our schema (as
procrastinate's tests do), so a test costs a `CREATE DATABASE … TEMPLATE`, not a migration.

Where the binaries are missing: with CI=true set the tests fail (PostgreSQL is required there;
.ci/run installs it), elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

PG_VERSIONS = ("17", "16", "15", "14", "13")


def pg_bin() -> Path | None:
    """The directory of initdb/pg_ctl: $PG_BIN, Debian's /usr/lib/postgresql/N/bin, or PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    for v in PG_VERSIONS:
        d = Path(f"/usr/lib/postgresql/{v}/bin")
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in `root`; `url(db)` gives a libpq URI for a database in it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
        self.port = _free_port()
        self.user = "aggregator"
        self._counter = itertools.count()
        # initdb refuses to run as root: then the cluster belongs to the `postgres` account.
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        data = self.root / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=64MB"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                  str(self.root / "log"), "-w", "-t", "60", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def admin(self, sql: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.encode())

    def new_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of `template`); returns its URI."""
        name = f"t{os.getpid()}_{next(self._counter)}"
        self.admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return self.url(name)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    bindir = pg_bin()
    if bindir is None:
        raise FileNotFoundError(
            "PostgreSQL's initdb was not found (apt-get install postgresql, or set PG_BIN)"
        )
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()
