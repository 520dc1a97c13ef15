"""The whole pipeline on PostgreSQL (`--store postgresql://…`), against the same loopback
seed as tests/test_end_to_end.py: the same entries, front pages and status as on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.feedserver import FeedServer
from tests.test_end_to_end import serve_seed, write_config


def _cli(store: str | None, *args: str, config: Path, data: Path) -> str:
    result = run_cli(*(("--store", store) if store else ()), *args, config=config, data=data)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_seed_fetch_publish_and_read_back_agree_on_both_stores(
    tmp_path: Path, feed_server: FeedServer, pg_url: str
) -> None:
    serve_seed(feed_server)
    config = write_config(tmp_path / "feeds.yaml", feed_server)
    outputs = {}
    for name, store in (("sqlite", None), ("postgres", pg_url)):
        data = tmp_path / name
        first = _cli(store, "fetch", config=config, data=data)
        assert "6 ok, 0 failed" in first
        again = _cli(store, "fetch", "--no-publish", config=config, data=data)
        assert "0 new" in again  # conditional GET and dedupe hold across runs
        status = json.loads(_cli(store, "status", "--json", config=config, data=data))
        page = json.loads(
            _cli(store, "frontpage", "--date", "2023-01-17", "--lang", "all", "--format", "json",
                 config=config, data=data)
        )  # fmt: skip
        atom = (data / "public" / "feeds" / "all.atom").read_bytes()
        outputs[name] = (
            first,
            status["entries_total"],
            status["entries_by_language"],
            page,
            atom.count(b"<entry>"),
        )
    assert outputs["sqlite"][0].split(" in ")[1:] != [] and outputs["postgres"][1:] == outputs["sqlite"][1:]
    assert outputs["postgres"][1] > 0


def test_read_only_commands_on_an_empty_postgres_say_nothing_was_polled(
    tmp_path: Path, pg_server: object
) -> None:
    from tests.pg_server import PostgresServer

    assert isinstance(pg_server, PostgresServer)
    url = pg_server.new_database()
    config = tmp_path / "feeds.yaml"
    config.write_text("site:\n  languages: [en]\nfeeds:\n")
    result = run_cli("--store", url, "status", config=config, data=tmp_path / "data")
    assert result.returncode == 1 and "nothing has been polled" in result.stderr
    assert "Traceback" not in result.stderr
