"""Who may schedule polls on a PostgreSQL store, and procrastinate's tables in it (issue 16).

**One scheduler kind per store.** `aggregator run` schedules every feed in its own memory;
`aggregator worker`s share the schedule kept in the store. Both on one database would poll
every feed twice, so each holds a session-level advisory lock on one key for as long as it
runs, on a connection of its own: `run` exclusively (so also never two `run`s), each worker
shared (any number of workers). A process that cannot take it stops at once with one line
naming who holds it (`SchedulerBusy`). PostgreSQL drops a session's advisory locks when its
connection ends, so a killed process frees the store as soon as its connection is gone
(PostgreSQL manual, "Advisory Locks"; TCP keepalives bound how long a vanished host holds it).

**procrastinate's tables** come from procrastinate: `schema.sql` for a new database, and for a
database made by an older procrastinate, the SQL files it ships in `sql/migrations`, which it
leaves to its users to apply and track ("Migrate the Procrastinate schema" in its docs). A
file `XX.YY.ZZ_NN_…sql` was written when XX.YY.ZZ was the latest release, so it ships in
later ones: the tables of release V hold every file named below V. We keep where the tables
are in our `meta` table, key `procrastinate_schema`, as the last file applied
(`03.04.00_50`) or a release's own schema (`03.10.00_00`). A worker brings the tables to its
procrastinate's release before it starts, but only when no other worker is running (they
run the older code, which the newer tables may no longer serve: procrastinate's "post"
migrations drop what old releases use); otherwise it stops with `QueueSchemaBehind`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from .common import BUSY_TIMEOUT, StoreLocked, StoreSchemaError
from .postgres import _DRIVER_ERRORS, redacted, store_error

log = logging.getLogger("aggregator.store")

Role = Literal["run", "worker"]
Position = tuple[int, int, int, int]  # (major, minor, patch, file serial): a point in the files

SCHEDULER_LOCK = 0x61676772_73636864  # "aggrschd": held by `run` (exclusive) or workers (shared)
QUEUE_SCHEMA_LOCK = 0x61676772_71736368  # "aggrqsch": one worker at a time checks the queue's tables
META_KEY = "procrastinate_schema"
_FILE = re.compile(r"^(\d+)\.(\d+)\.(\d+)_(\d+)_.*\.sql$")


class SchedulerBusy(StoreLocked):
    """Another kind of scheduler (or another `run`) is polling this store."""


class QueueSchemaBehind(StoreSchemaError):
    """procrastinate's tables are older than the installed procrastinate, and other workers
    (running the older release) still use them: they must stop before the tables move on."""


def release_of(version: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a version string: `3.10.0` -> (3, 10, 0); a pre-release or
    local part (`3.11.0.dev2`, `3.10.0+x`) counts as its release. ValueError if none."""
    m = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if not m:
        raise ValueError(f"not a version: {version!r}")
    return int(m[1]), int(m[2] or 0), int(m[3] or 0)


def parse_position(text: str) -> Position:
    """`03.04.00_50` (a file applied) or `03.10.00_00` (a release's schema) as a Position."""
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)_(\d+)$", text.strip())
    if not m:
        raise ValueError(f"not a procrastinate schema position: {text!r}")
    return int(m[1]), int(m[2]), int(m[3]), int(m[4])


def format_position(p: Position) -> str:
    return f"{p[0]:02d}.{p[1]:02d}.{p[2]:02d}_{p[3]:02d}"


def migration_files(directory: Path) -> list[tuple[Position, Path]]:
    """procrastinate's migration files in `directory`, in the order they apply (release, then
    serial): pre-migrations (01…) before post-migrations (50…) of a release."""
    files = []
    for path in directory.iterdir():
        m = _FILE.match(path.name)
        if m:
            files.append(((int(m[1]), int(m[2]), int(m[3]), int(m[4])), path))
    return sorted(files)


def pending(position: Position, installed: str, files: list[tuple[Position, Path]]) -> list[Path]:
    """The files that take tables at `position` to the release `installed`: after the
    position, named below that release. Pure."""
    target = (*release_of(installed), 0)
    return [path for key, path in files if position < key < target]


@dataclass(frozen=True)
class Holder:
    """A process holding the scheduler lock: its `application_name` and lock mode."""

    name: str | None
    exclusive: bool


def busy_message(role: Role, url: str, holders: list[Holder]) -> str:
    """The one line a scheduler that cannot start prints. Pure."""
    where = redacted(url)
    runs = [h for h in holders if h.exclusive]
    workers = [h for h in holders if not h.exclusive]

    def names(hs: list[Holder]) -> str:
        known = [h.name for h in hs if h.name]
        return f" ({', '.join(known)})" if known else ""

    if runs:
        who = f"`aggregator run`{names(runs)} is polling {where}"
        if role == "run":
            return f"{who}: a second would poll every feed twice; stop it first"
        return (
            f"{who}: workers on the same store would poll every feed twice; stop it first "
            "(then `aggregator worker`s and `aggregator serve` replace it), or give them another database"
        )
    n = len(workers)
    many = n != 1
    kind = "`aggregator worker`s" if many else "`aggregator worker`"
    who = f"{n} {kind}{names(workers)} {'are' if many else 'is'} polling {where}"
    return (
        f"{who}: `aggregator run` on the same store would poll every feed twice; stop "
        f"{'them' if many else 'it'} first, or serve their output with `aggregator serve`"
    )


class SchedulerHold:
    """The scheduler lock, held on a connection of its own until `close()` (or the process
    ends). `role` says which kind holds it."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]], url: str, role: Role) -> None:
        self._conn = conn
        self.url = url
        self.role = role

    def close(self) -> None:
        """Release the lock (closing the session releases it too)."""
        with contextlib.suppress(Exception):
            self._conn.close()

    def __enter__(self) -> SchedulerHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(url: str, role: Role, busy_timeout: float) -> psycopg.Connection[dict[str, Any]]:
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(1, int(busy_timeout)),
            # What another process's refusal names (pg_stat_activity.application_name).
            application_name=f"aggregator {role} pid {os.getpid()} on {socket.gethostname()}"[:63],
            # A host that vanishes (no FIN) still frees the lock within about a minute.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
            options="-c TimeZone=UTC",
        )
    except _DRIVER_ERRORS as e:
        raise store_error(e, url) from e


def _holders(conn: psycopg.Connection[dict[str, Any]]) -> list[Holder]:
    """Other sessions holding the scheduler lock. A bigint advisory key is (classid: high 32
    bits, objid: low 32 bits, objsubid 1) in pg_locks (PostgreSQL manual, "pg_locks")."""
    rows = conn.execute(
        """SELECT a.application_name AS name, l.mode = 'ExclusiveLock' AS exclusive
           FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
           ORDER BY l.pid""",
        [SCHEDULER_LOCK >> 32, SCHEDULER_LOCK & 0xFFFFFFFF],
    ).fetchall()
    return [Holder(r["name"] or None, bool(r["exclusive"])) for r in rows]


def _take(conn: psycopg.Connection[dict[str, Any]], url: str, role: Role) -> None:
    fn = "pg_try_advisory_lock" if role == "run" else "pg_try_advisory_lock_shared"
    row = conn.execute(f"SELECT {fn}(%s) AS ok", [SCHEDULER_LOCK]).fetchone()
    if not (row and row["ok"]):
        raise SchedulerBusy(busy_message(role, url, _holders(conn)))


def hold_scheduler(url: str, role: Role, *, busy_timeout: float = BUSY_TIMEOUT) -> SchedulerHold:
    """Take the scheduler lock of the PostgreSQL store at `url` as `role` (`run`: exclusive;
    workers take theirs through `start_worker`). Raises SchedulerBusy (who holds it, in one
    line) or the StoreError of a database that cannot be reached."""
    conn = _connect(url, role, busy_timeout)
    try:
        _take(conn, url, role)
    except BaseException as e:
        conn.close()
        if isinstance(e, _DRIVER_ERRORS):
            raise store_error(e, url) from e
        raise
    return SchedulerHold(conn, url, role)


@dataclass(frozen=True)
class QueueSchema:
    """The procrastinate release installed here, its whole schema, and its migration files."""

    version: str
    schema_sql: str
    migrations: Path


def start_worker(
    url: str,
    queue: QueueSchema,
    *,
    alive_within: float,
    busy_timeout: float = BUSY_TIMEOUT,
    on_apply: Callable[[str], None] | None = None,
) -> SchedulerHold:
    """What a worker does before it takes jobs, as one step under an advisory lock that only
    workers starting take (so two starting together never see each other as running): take
    the scheduler lock (shared; SchedulerBusy while `run` polls this store), then bring
    procrastinate's tables to `queue.version`: create them in a new database, or apply the
    pending migration files when no other worker is running (none holds the scheduler lock,
    none of procrastinate's workers beat within `alive_within` seconds); else raise
    QueueSchemaBehind. Tables newer than `queue.version` raise StoreSchemaError. Each file
    applies in one transaction with its position. `on_apply` hears each file's name.
    Returns the held scheduler lock."""
    conn = _connect(url, "worker", busy_timeout)
    try:
        # Another worker may be applying migrations: wait for it, within bounds.
        conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{max(1, int(busy_timeout * 6))}s"])
        conn.execute("SELECT pg_advisory_lock(%s)", [QUEUE_SCHEMA_LOCK])
        conn.execute("RESET lock_timeout")
        try:
            _take(conn, url, "worker")
            _bring_queue_schema(conn, url, queue, alive_within, on_apply)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [QUEUE_SCHEMA_LOCK])
    except BaseException as e:
        conn.close()
        if isinstance(e, _DRIVER_ERRORS):
            raise store_error(e, url) from e
        raise
    return SchedulerHold(conn, url, "worker")


def _record(conn: psycopg.Connection[dict[str, Any]], position: Position) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [META_KEY, format_position(position)],
    )


def _running_workers(conn: psycopg.Connection[dict[str, Any]], alive_within: float) -> int:
    """Workers that hold the scheduler lock, or (workers of a release before this check)
    that beat in procrastinate's own registry lately; the larger count."""
    locked = len(_holders(conn))
    row = conn.execute("SELECT to_regclass('procrastinate_workers') IS NOT NULL AS present").fetchone()
    beating = 0
    if row and row["present"]:
        beat = conn.execute(
            "SELECT count(*) AS n FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - make_interval(secs => %s)",
            [alive_within],
        ).fetchone()
        beating = int(beat["n"]) if beat else 0
    return max(locked, beating)


def _bring_queue_schema(
    conn: psycopg.Connection[dict[str, Any]],
    url: str,
    queue: QueueSchema,
    alive_within: float,
    on_apply: Callable[[str], None] | None,
) -> None:
    installed = (*release_of(queue.version), 0)
    present = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present").fetchone()
    row = conn.execute("SELECT value FROM meta WHERE key = %s", [META_KEY]).fetchone()
    if not (present and present["present"]):
        with conn.transaction():
            conn.execute(queue.schema_sql.encode())  # several statements: simple query
            _record(conn, installed)
        if on_apply:
            on_apply(f"schema.sql of procrastinate {queue.version}")
        return
    if row is None:
        # Made by a worker from before positions were kept: by the release installed then,
        # which we cannot know. Most likely this one; say so once.
        log.warning(
            "procrastinate's tables in %s carry no version: taken to be %s's",
            redacted(url), queue.version,
        )  # fmt: skip
        _record(conn, installed)
        return
    try:
        position = parse_position(row["value"])
    except ValueError:
        raise StoreSchemaError(
            f"meta.{META_KEY} in {redacted(url)} is {row['value']!r}, not a position such as "
            f"{format_position(installed)}: set it to the one procrastinate's tables are at"
        ) from None
    if position > installed:
        raise StoreSchemaError(
            f"procrastinate's tables in {redacted(url)} are at {format_position(position)}, newer than "
            f"this worker's procrastinate {queue.version}: upgrade aggregator's dependencies here "
            "(bash scripts/bootstrap)"
        )
    todo = pending(position, queue.version, migration_files(queue.migrations))
    if not todo:
        if position != installed:
            _record(conn, installed)
        return
    others = _running_workers(conn, alive_within)
    if others:
        raise QueueSchemaBehind(
            f"procrastinate's tables in {redacted(url)} are at {format_position(position)} and this "
            f"worker's procrastinate {queue.version} needs {len(todo)} migrations, which the "
            f"{others} running worker{'s' if others != 1 else ''} (older code) may not survive: stop "
            "every worker, then run `aggregator worker --migrate` "
            "(or start one worker: alone, it applies them)"
        )
    for path in todo:
        m = _FILE.match(path.name)
        assert m is not None
        with conn.transaction():
            conn.execute(path.read_text(encoding="utf-8").encode())
            _record(conn, (int(m[1]), int(m[2]), int(m[3]), int(m[4])))
        if on_apply:
            on_apply(path.name)
    _record(conn, installed)
