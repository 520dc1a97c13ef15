"""scripts/run and the deployment recipes in deploy/: checked with the real tools where present."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, run_cli

BAD = "site:\n  title: T\nfeeds:\n  - url: https://example.org/a.xml\n    language: xq\n"


def scripts_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "run"), *args],
        capture_output=True, text=True, env=env, timeout=300, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize(
    "form",
    [
        ["--config", "{cfg}", "--data", "{data}"],
        ["--config={cfg}", "--data={data}", "--port", "1"],
        ["-v", "--port", "1", "--config", "{cfg}", "--data", "{data}"],
    ],
)
def test_scripts_run_passes_global_options_through(tmp_path: Path, form: list[str]) -> None:
    """Global options reach `aggregator`, not `run`: the invalid config is read and reported."""
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(BAD, encoding="utf-8")
    args = [a.format(cfg=cfg, data=tmp_path / "d") for a in form]
    result = scripts_run(*args, cwd=tmp_path)
    assert "No such option" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert f"{cfg}:5: feeds[0].language: unknown language code 'xq'" in result.stderr
    assert not (tmp_path / "d" / "aggregator.db").exists()


def test_scripts_run_gives_run_its_own_options(tmp_path: Path) -> None:
    result = scripts_run("--config", str(tmp_path / "x.yaml"), "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout and "The main job" in result.stdout


def test_bootstrap_installs_test_tools_only_for_dev() -> None:
    text = (ROOT / "scripts" / "bootstrap").read_text(encoding="utf-8")
    assert 'dev) spec=".[dev]"' in text and 'run) spec="."' in text
    assert "AGGREGATOR_INSTALL=run source scripts/bootstrap" in (ROOT / "scripts" / "run").read_text()


# -- deploy/: the recipes, checked with the real tools ----------------------------------------

DEPLOY = ROOT / "deploy"


def _tool(command: str, package: str) -> str:
    """The tool's path; installed from Debian when missing and we are root, else a loud skip."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
                subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
                subprocess.run(install, env=env, capture_output=True, timeout=300)
        found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if not found:
        pytest.skip(
            f"SKIPPED LOUDLY: {command} is not installed and could not be (apt-get install {package})"
        )
    return found


@pytest.mark.parametrize(
    "unit", ["aggregator.service", "aggregator-backup.service", "aggregator-backup.timer"]
)
def test_systemd_units_verify_cleanly(tmp_path: Path, unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("SKIPPED LOUDLY: systemd-analyze is not installed")
    for name in ("aggregator.service", "aggregator-backup.service", "aggregator-backup.timer"):
        # The unit's programs must exist for verify: point /opt/aggregator at this checkout.
        text = (DEPLOY / name).read_text(encoding="utf-8").replace("/opt/aggregator", str(ROOT))
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    ours = [line for line in result.stderr.splitlines() if unit in line or "aggregator" in line]
    assert ours == [], "\n".join(ours)  # no ignored key, bad value or missing program


def test_service_unit_has_what_an_operator_relies_on() -> None:
    text = (DEPLOY / "aggregator.service").read_text(encoding="utf-8")
    for line in (
        "User=aggregator", "ReadWritePaths=/var/lib/aggregator", "Restart=on-failure", "KillSignal=SIGTERM",
        "TimeoutStopSec=20s", "ProtectSystem=strict", "Environment=AGGREGATOR_DATA=/var/lib/aggregator",
    ):  # fmt: skip
        assert f"\n{line}\n" in text, line


def test_backup_command_copies_a_live_store(tmp_path: Path) -> None:
    sqlite3_cli = _tool("sqlite3", "sqlite3")
    data, backups = tmp_path / "data", tmp_path / "backups"
    backups.mkdir()
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds: []\n", encoding="utf-8")
    assert run_cli("fetch", config=config, data=data).returncode == 0  # creates the store, publishes
    unit = (DEPLOY / "aggregator-backup.service").read_text(encoding="utf-8")
    [command] = [
        line.removeprefix("ExecStart=") for line in unit.splitlines() if line.startswith("ExecStart=")
    ]
    command = (
        command.replace("/var/lib/aggregator", str(data))
        .replace("/var/backups/aggregator", str(backups))
        .replace("/usr/bin/sqlite3", sqlite3_cli)
        .replace("%%", "%")  # systemd's escape for a literal %
    )
    argv = shlex.split(command)
    assert argv[:2] == ["/bin/sh", "-c"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [copy] = backups.iterdir()
    check = subprocess.run(
        [sqlite3_cli, str(copy), "PRAGMA integrity_check; SELECT count(*) FROM feeds;"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.stdout.split() == ["ok", "0"], check.stderr


def test_containerfile_runs_unprivileged_with_a_data_volume() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    instructions = [
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))
    ]
    keys = [k for k, *_ in instructions]
    assert keys[0] == "FROM" and "python:3.11-slim" in instructions[0][1]
    user = [v for k, v in instructions if k == "USER"]
    assert user and not user[-1].startswith(("root", "0"))
    assert 'VOLUME ["/var/lib/aggregator"]' in text and "AGGREGATOR_DATA=/var/lib/aggregator" in text
    for k, v in instructions:
        if k == "COPY":  # every source exists in the repository (the build context)
            for source in v.split()[:-1]:
                assert (ROOT / source).exists(), source
    assert "pip install ." in text and "[dev]" not in text  # only what running needs
    assert keys.index("USER") > max(i for i, k in enumerate(keys) if k == "RUN")


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """A store and published tree with entries (so day archives exist), from a loopback feed."""
    from tests.feedserver import FeedServer
    from tests.test_containment_poll import rss

    server = FeedServer().start()
    try:
        url = server.add("/news.rss", rss("Strike spreads", "Unions meet", "Talks resume"))
        config = tmp_path / "feeds.yaml"
        config.write_text(
            f"site:\n  title: Deploy test\nfeeds:\n  - url: {url}\n    language: en\n", encoding="utf-8"
        )
        data = tmp_path / "data"
        result = run_cli("fetch", config=config, data=data)  # the only command that creates the store
        assert result.returncode == 0, result.stderr
    finally:
        server.stop()
    return config, data


def _nginx_files(tmp_path: Path, public: Path, port: int, upstream: int) -> Path:
    from bench.load_bench import nginx_main, nginx_site

    site = tmp_path / "site.conf"
    site.write_text(nginx_site(public, port, upstream), encoding="utf-8")
    work = tmp_path / "nginx"
    work.mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(nginx_main(site, work), encoding="utf-8")
    return main


def test_nginx_config_is_valid(tmp_path: Path, published: tuple[Path, Path]) -> None:
    from bench.load_bench import free_port

    nginx = _tool("nginx", "nginx-light")
    main = _nginx_files(tmp_path, published[1] / "public", free_port(), free_port())
    result = subprocess.run([nginx, "-t", "-c", str(main)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr


def test_nginx_serves_the_published_tree_as_readers_expect(
    tmp_path: Path, published: tuple[Path, Path]
) -> None:
    """Every published file, through deploy/nginx.conf and through `aggregator serve`: the same
    bytes, media type and Cache-Control (past day archives: nginx's shorter one); validators
    and 304s, gzip with Vary, and the application's own answers passed through untouched."""
    from bench.load_bench import free_port, running

    nginx = _tool("nginx", "nginx-light")
    config, data = published
    public = data / "public"
    port, upstream = free_port(), free_port()
    main = _nginx_files(tmp_path, public, port, upstream)
    serve = [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data),
             "serve", "--port", str(upstream)]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    files = sorted(p.relative_to(public).as_posix() for p in public.rglob("*") if p.is_file())
    assert any(f.startswith("archive/2023/") and f.endswith(".feed.json") for f in files), files
    assert {"daily/en.atom", "daily/all.json", "sources.opml", "feeds/en.json", "index.json"} <= set(files)
    with (
        running(serve, f"http://127.0.0.1:{upstream}/healthz", tmp_path / "serve.log"),
        running([nginx, "-c", str(main)], base + "/index.html", tmp_path / "nginx.log"),
        httpx.Client(base_url=base, timeout=10) as client,
        httpx.Client(base_url=f"http://127.0.0.1:{upstream}", timeout=10) as ours,
    ):
        for rel in files:
            plain = {"Accept-Encoding": "identity"}
            theirs, mine = client.get("/" + rel, headers=plain), ours.get("/" + rel, headers=plain)
            assert theirs.status_code == mine.status_code == 200, rel
            assert theirs.content == mine.content == (public / rel).read_bytes(), rel
            assert theirs.headers["content-type"] == mine.headers["content-type"], rel
            assert theirs.headers.get_list("cache-control") == ["public, max-age=900"], rel
            if not rel.startswith("archive/2023/"):  # a past day: ours says a day
                assert mine.headers["cache-control"] == "public, max-age=900", rel
            assert theirs.headers["x-content-type-options"] == "nosniff"
            etag, modified = theirs.headers["etag"], theirs.headers["last-modified"]
            assert client.get("/" + rel, headers={"If-None-Match": etag}).status_code == 304, rel
            assert client.get("/" + rel, headers={"If-Modified-Since": modified}).status_code == 304, rel
        for path in ("/", "/en/"):
            assert client.get(path).content == ours.get(path).content
        page = public / "index.html"
        assert page.stat().st_size > 512  # gzip_min_length
        big = client.get("/", headers={"Accept-Encoding": "gzip"})
        assert big.headers.get("content-encoding") == "gzip" and "Accept-Encoding" in big.headers["vary"]
        assert big.content == page.read_bytes()  # httpx decoded it
        # Not files: nginx passes them to `aggregator serve`, whose headers stay as they are.
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert health.headers.get_list("cache-control") == ["no-store"]
        assert health.headers.get_list("x-content-type-options") == ["nosniff"]
        negotiated = client.get("/feeds/en", headers={"Accept": "application/rss+xml"})
        assert negotiated.headers["content-type"] == "application/rss+xml; charset=utf-8"
        assert negotiated.headers["content-location"] == "en.rss"
        assert negotiated.content == (public / "feeds" / "en.rss").read_bytes()
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
        assert client.get("/feeds/nope.atom").status_code == 404
        assert client.get("/metrics").status_code == 404  # allowed from loopback; `serve` has none


def test_nginx_max_age_is_the_one_aggregator_sends(tmp_path: Path, published: tuple[Path, Path]) -> None:
    """deploy/nginx.conf's max-age is what `run`/`serve` send for the shipped feeds.yaml, and
    `status` prints the value (and the line) an operator copies after changing intervals."""
    from aggregator.caching import cache_max_age
    from aggregator.config import load_config

    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    [value] = re.findall(r'add_header Cache-Control "public, max-age=(\d+)" always;', conf)
    assert int(value) == cache_max_age(load_config(ROOT / "feeds.yaml"))
    config, data = published
    status = run_cli("status", "--json", config=config, data=data)
    assert json.loads(status.stdout)["cache_max_age"] == int(value)
    shorter = tmp_path / "shorter.yaml"
    shorter.write_text(
        config.read_text(encoding="utf-8").replace("language: en", "language: en\n    interval: 5m")
    )
    doc = json.loads(run_cli("status", "--json", config=shorter, data=data).stdout)
    assert doc["cache_max_age"] == 300
    text = " ".join(run_cli("status", config=shorter, data=data).stdout.split())
    assert "served with Cache-Control: public, max-age=300" in text
