from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.feedserver import FeedServer

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
