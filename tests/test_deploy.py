"""scripts/run and the deployment recipes in deploy/: checked with the real tools where present."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

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
