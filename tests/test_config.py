"""feeds.yaml validation: every problem names the file, the line and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aggregator import config as config_module
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


# --- the fast loader (libyaml) must read every file as the round-trip loader does ---------

# Plain scalars where YAML 1.1 and 1.2 disagree, or that look like numbers, dates, nulls.
TRICKY_SCALARS = [
    "no", "yes", "on", "off", "y", "n", "true", "True", "FALSE", "tRue", "null", "~", "Null",
    "010", "08", "0o17", "0x1F", "0b101", "1_000", "-1_0", "1:30", "2024-01-01", "1e3", "1.5",
    "-.inf", ".5", "5.", "+1", "-0", "0", "15m", "1h", "en", "pt-BR", "auto", "1.2.3", "_1",
    "https://example.org/a.xml", "'no'", '"010"', "2024-01-01 10:00:00", "12e03",
]  # fmt: skip


def _rt_plain(text: str) -> object:
    return config_module._plain(YAML(typ="rt").load(text))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(TRICKY_SCALARS) | st.from_regex(r"[a-z0-9._:+-]{1,8}", fullmatch=True),
             min_size=1, max_size=4)
)  # fmt: skip
def test_fast_loader_reads_scalars_as_the_round_trip_loader(values: list[str]) -> None:
    text = "feeds:\n" + "".join(f"  - name: {v}\n    language: {v}\n" for v in values)
    try:
        expected = _rt_plain(text)
    except Exception:
        return  # not YAML at all; the fast path defers those to the round-trip loader
    assert config_module._fast_load(text) == expected


def test_norwegian_is_a_language_not_false(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID.replace("language: en", "language: no")))
    assert config.feeds[0].language == "no"


def test_valid_file_never_touches_the_round_trip_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(*args: object) -> None:
        raise AssertionError("the round-trip loader ran for a valid file")

    monkeypatch.setattr(config_module, "_parse_config_rt", slow)
    config = load_config(write(tmp_path, VALID))
    assert [f.key for f in config.feeds] == ["https://example.org/a.xml", "https://example.org/b.xml"]
    load_config(ROOT / "feeds.yaml")


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (VALID + "  - url: https://example.org/a.xml\n", 11, "feeds[2].url"),  # duplicate, fast-valid
        (VALID.replace("    name: A\n", "    name: A\n    name: B\n"), None, ""),  # repeated key
        (VALID.replace("interval: 10m", "interval: 2024-01-01"), 10, "feeds[1].interval"),
    ],
)
def test_errors_found_after_the_fast_path_keep_their_line(
    tmp_path: Path, text: str, line: int | None, field: str
) -> None:
    found = problems(tmp_path, text)
    assert found, "expected a problem"
    first_line, first_field, _ = found[0]
    if line is None:
        assert first_line is not None  # ruamel's duplicate-key error carries its line
    else:
        assert (first_line, first_field) == (line, field)


def test_site_websub_hub_icon_logo(tmp_path: Path) -> None:
    extra = (
        "  websub_hub: https://hub.example.org/\n"
        "  icon: https://example.org/icon.png\n"
        "  logo: https://example.org/logo.svg\n"
    )
    config = load_config(write(tmp_path, VALID.replace("  title: Test\n", "  title: Test\n" + extra)))
    assert str(config.site.websub_hub) == "https://hub.example.org/"
    assert str(config.site.icon) == "https://example.org/icon.png"
    assert str(config.site.logo) == "https://example.org/logo.svg"
    assert load_config(write(tmp_path, VALID)).site.websub_hub is None
    [(line, fld, _)] = problems(tmp_path, VALID.replace("  title: Test\n", "  title: Test\n  icon: nope\n"))
    assert (line, fld) == (3, "site.icon")


yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(TRICKY_SCALARS),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["site", "defaults", "fetch", "feeds"]), yaml_values, min_size=1))
def test_fast_loader_reads_any_document_as_the_round_trip_loader(data: dict[str, object]) -> None:
    """Any data ruamel writes (block, flow, quoted, multi-line) reads back the same both ways."""
    import io

    buf = io.StringIO()
    YAML(typ="rt").dump(data, buf)
    text = buf.getvalue()
    assert config_module._fast_load(text) == _rt_plain(text)
