"""scripts/run and the deployment recipes in deploy/: checked with the real tools where present."""

from __future__ import annotations

import contextlib
import os
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
    assert run_cli("fetch", config=config, data=data).returncode == 0  # creates and migrates the store
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
    config = tmp_path / "feeds.yaml"
    config.write_text("site:\n  title: Deploy test\nfeeds: []\n", encoding="utf-8")
    data = tmp_path / "data"
    result = run_cli("fetch", config=config, data=data)  # publish never creates the store
    assert result.returncode == 0, result.stderr
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
    from bench.load_bench import free_port, running

    nginx = _tool("nginx", "nginx-light")
    config, data = published
    port, upstream = free_port(), free_port()
    main = _nginx_files(tmp_path, data / "public", port, upstream)
    serve = [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data),
             "serve", "--port", str(upstream)]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with (
        running(serve, f"http://127.0.0.1:{upstream}/healthz", tmp_path / "serve.log"),
        running([nginx, "-c", str(main)], base + "/index.html", tmp_path / "nginx.log"),
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        expected = {
            "/feeds/all.atom": "application/atom+xml; charset=utf-8",
            "/feeds/en.rss": "application/rss+xml; charset=utf-8",
            "/feeds/all.json": "application/feed+json; charset=utf-8",
            "/": "text/html; charset=utf-8",
            "/en/": "text/html; charset=utf-8",
            "/index.txt": "text/plain; charset=utf-8",
            "/index.json": "application/json; charset=utf-8",
        }
        for path, ctype in expected.items():
            first = client.get(path, headers={"Accept-Encoding": "identity"})
            assert first.status_code == 200, path
            assert first.headers["content-type"] == ctype, path
            file = data / "public" / path.lstrip("/")
            assert first.content == (file / "index.html" if path.endswith("/") else file).read_bytes()
            assert first.headers["cache-control"] == "public, max-age=300"
            etag, modified = first.headers["etag"], first.headers["last-modified"]
            again = client.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b"", path
            since = client.get(path, headers={"If-Modified-Since": modified})
            assert since.status_code == 304, path
        page = data / "public" / "index.html"
        assert page.stat().st_size > 512  # gzip_min_length
        big = client.get("/", headers={"Accept-Encoding": "gzip"})
        assert big.headers.get("content-encoding") == "gzip" and "Accept-Encoding" in big.headers["vary"]
        assert big.content == page.read_bytes()  # httpx decoded it
        health = client.get("/healthz")  # not a file: nginx passes it to `aggregator serve`
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert client.get("/feeds/nope.atom").status_code == 404
