"""feeds.yaml validation: every problem names the file, the line and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import ConfigError, load_config, parse_duration
from tests.conftest import ROOT, run_cli

VALID = """\
site:
  title: Test
  languages: [en, es]
feeds:
  - url: https://example.org/a.xml
    name: A
    language: en
  - url: https://example.org/b.xml
    language: auto
    interval: 10m
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "feeds.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def problems(tmp_path: Path, text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def test_bundled_feeds_yaml_is_valid() -> None:
    config = load_config(ROOT / "feeds.yaml")
    assert config.site.languages == ["en", "es", "it", "fr", "ru"]
    assert config.site.timezone == "Europe/London"
    assert len(config.feeds) >= 5
    assert {f.language for f in config.feeds} >= {"en", "es", "it", "fr", "ru"}


def test_valid_config_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    a, b = config.feeds
    assert config.interval_for(a) == timedelta(minutes=15)
    assert config.interval_for(b) == timedelta(minutes=10)
    assert b.language == "auto" and b.title == "https://example.org/b.xml"
    assert config.fetch.concurrency == 32 and config.fetch.per_host == 2
    assert config.feed("A") is a


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    text = VALID.replace("interval: 10m", "interval: [1, 2]")
    [(line, fld, msg)] = problems(tmp_path, text)
    assert (line, fld) == (10, "feeds[1].interval")
    assert "duration" in msg


def test_unknown_language_code(tmp_path: Path) -> None:
    [(line, fld, msg)] = problems(tmp_path, VALID.replace("language: en", "language: xq"))
    assert (line, fld) == (7, "feeds[0].language")
    assert "unknown language code 'xq'" in msg


def test_missing_url(tmp_path: Path) -> None:
    text = VALID.replace("  - url: https://example.org/a.xml\n    name: A", "  - name: A")
    [(line, fld, msg)] = problems(tmp_path, text)
    assert (line, fld, msg) == (5, "feeds[0].url", "required field is missing")


def test_duplicate_url(tmp_path: Path) -> None:
    text = VALID.replace("https://example.org/b.xml", "https://example.org/a.xml")
    [(line, fld, msg)] = problems(tmp_path, text)
    assert (line, fld) == (8, "feeds[1].url")
    assert "duplicate url" in msg and "feeds[0]" in msg


def test_unknown_field_and_bad_timezone_reported_together(tmp_path: Path) -> None:
    text = VALID.replace("  title: Test", "  title: Test\n  timezone: Mars/Olympus\n  colour: red")
    found = problems(tmp_path, text)
    fields = {fld: (line, msg) for line, fld, msg in found}
    assert fields["site.timezone"][0] == 3 and "unknown time zone" in fields["site.timezone"][1]
    assert fields["site.colour"][0] == 4 and "unknown field" in fields["site.colour"][1]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    [(line, _, msg)] = problems(tmp_path, VALID + "  - url: [unclosed\n")
    assert line is not None and line >= 11 and "not valid YAML" in msg


def test_language_tags_are_normalised(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID.replace("language: en", "language: en_gb")))
    assert config.feeds[0].language == "en-GB"


@pytest.mark.parametrize(
    ("value", "seconds"), [("15m", 900), ("1h", 3600), ("90s", 90), ("1d", 86400), (45, 45)]
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["soon", "-5m", "0", True])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_cli_check_exits_1_with_file_line_field(tmp_path: Path) -> None:
    config = write(tmp_path, VALID.replace("language: en", "language: 12"))
    result = run_cli("check", config=config, data=tmp_path / "data")
    assert result.returncode == 1
    assert f"{config}:7: feeds[0].language:" in result.stderr


def test_cli_fetch_refuses_invalid_config(tmp_path: Path) -> None:
    config = write(tmp_path, VALID.replace("url: https://example.org/b.xml", "url: not a url"))
    result = run_cli("fetch", config=config, data=tmp_path / "data")
    assert result.returncode == 1
    assert f"{config}:8: feeds[1].url:" in result.stderr
    assert not (tmp_path / "data" / "aggregator.db").exists()


def test_missing_file(tmp_path: Path) -> None:
    result = run_cli("check", config=tmp_path / "nope.yaml", data=tmp_path / "data")
    assert result.returncode == 1 and "nope.yaml: file not found" in result.stderr
