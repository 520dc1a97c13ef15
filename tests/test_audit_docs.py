"""docs/fidelity.md stays the output of its script (issue 12: "the corpus-wide report is in
docs/"): the script runs on the current code, the report measures ledes at the length an
operator gets by default, and README quotes the report's figures. The audit found the script
broken by a rename (parse.is_bad -> parse.looks_bad) and the report at a stale lede length."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from aggregator.config import SiteModel
from tests.conftest import FIXTURES, ROOT

REPORT = ROOT / "docs" / "fidelity.md"


def test_the_fidelity_report_script_runs_on_the_current_code(tmp_path: Path) -> None:
    out = tmp_path / "fidelity.md"
    done = subprocess.run(
        [sys.executable, "scripts/build_fidelity_eval.py", str(FIXTURES / "corpus"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ", 0 clean changed" in done.stdout, done.stdout  # ftfy changed nothing it did not judge bad
    text = out.read_text(encoding="utf-8")
    for heading in ("## Encodings", "## Mojibake repaired", "## Ledes at the default length", "## Dates"):
        assert heading in text, heading
    assert "`yandexnews-moscow-mojibake.xml`" in text  # the repaired fixture is listed


def test_the_report_measures_ledes_at_the_default_length() -> None:
    default = SiteModel.model_fields["lede_length"].default
    assert f"## Ledes at the default length ({default} characters)" in REPORT.read_text(encoding="utf-8")


def test_readme_quotes_the_reports_repair_figures() -> None:
    report = REPORT.read_text(encoding="utf-8")
    repaired = re.search(r"^(\d[\d,]*) fields repaired", report, re.MULTILINE)
    entries = re.search(r"\): \d+ documents, ([\d,]+) entries", report)
    assert repaired and entries
    assert f"({repaired.group(1)} fields in {entries.group(1)} entries)" in (ROOT / "README.md").read_text(
        encoding="utf-8"
    )
    assert "**0 changed text that ftfy did not judge bad** (must be 0)" in report
