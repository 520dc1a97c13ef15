"""`settings`: the site's settings as plain data and their snapshot in the data directory
(issue 15: `frontpage` reads them without YAML or pydantic while feeds.yaml is unchanged).
Whatever `site:` holds, its snapshot reads back as the same `Site`, and only for the same
bytes of feeds.yaml validated by the same code. The command's side (an edit is read at once,
an invalid one reported) is in tests/test_imports.py, on the real command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import settings as site_settings
from aggregator.config import Config, SiteModel, make_site
from aggregator.settings import SNAPSHOT, Site, read_snapshot, write_snapshot

URLS = ["https://example.org/", "http://127.0.0.1:8080/news/", "https://例え.jp/", "https://a.example/x?y=1"]
site_fields = st.fixed_dictionaries(
    {},
    optional={
        "title": st.text(max_size=40),
        "link": st.sampled_from(URLS),
        "base_url": st.sampled_from(URLS),
        "timezone": st.sampled_from(["UTC", "Europe/London", "Asia/Karachi", "America/Sao_Paulo"]),
        "languages": st.lists(
            st.sampled_from(["en", "es", "it", "fr", "ru", "de", "pt-BR", "ur"]),
            min_size=1,
            max_size=5,
            unique_by=lambda t: t.split("-")[0],
        ),
        "entries_per_feed": st.integers(1, 1000),
        "lede_length": st.integers(40, 10000),
        "frontpage_per_language": st.integers(1, 1000),
        "entries_per_page": st.integers(1, 10000),
        "locales": st.dictionaries(st.sampled_from(["en", "es"]), st.sampled_from(["en_US", "es_MX"])),
        "translation_patterns": st.lists(
            st.sampled_from([r"/(?P<key>\d+)/", r"id=(?P<key>\w+)"]), max_size=2
        ),
        "websub_hub": st.none() | st.sampled_from(URLS),
        "icon": st.none() | st.sampled_from(URLS),
        "logo": st.none() | st.sampled_from(URLS),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site_fields, st.binary(max_size=200))
def test_every_site_reads_back_from_its_snapshot_for_the_same_bytes_only(
    tmp_path: Path, fields: dict[str, Any], source: bytes
) -> None:
    site = make_site(**fields)
    # What feeds.yaml's `site:` makes in a Config is the same Site, field by field.
    assert Config.model_validate({"site": fields}).site == site
    assert dataclasses.asdict(site) == SiteModel.model_validate(fields).model_dump(mode="json")
    write_snapshot(tmp_path, source, site)
    assert read_snapshot(tmp_path, source) == site
    assert read_snapshot(tmp_path, source + b"\n") is None  # an edit, even a blank line
    changed = bytes([source[0] ^ 1]) + source[1:] if source else b"x"  # one bit
    assert read_snapshot(tmp_path, changed) is None


def test_a_snapshot_made_by_other_rules_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(languages=["en", "ru"])
    write_snapshot(tmp_path, b"site: ...", site)
    assert read_snapshot(tmp_path, b"site: ...") == site
    # Another version of the validating code (an upgrade, an edited rule) makes another key.
    monkeypatch.setattr(site_settings, "_RULES", ("settings.py",))
    assert read_snapshot(tmp_path, b"site: ...") is None


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"key": 1}', b"\xff\xfe", None],
    ids=["empty", "text", "list", "other key", "not utf-8", "a directory"],
)
def test_a_damaged_snapshot_is_no_snapshot(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / SNAPSHOT
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert read_snapshot(tmp_path, b"source") is None


def test_a_snapshot_with_the_right_key_but_other_fields_is_no_snapshot(tmp_path: Path) -> None:
    write_snapshot(tmp_path, b"source", make_site())
    data = json.loads((tmp_path / SNAPSHOT).read_text(encoding="utf-8"))
    data["site"]["colour"] = "red"
    (tmp_path / SNAPSHOT).write_text(json.dumps(data), encoding="utf-8")
    assert read_snapshot(tmp_path, b"source") is None


def test_no_data_directory_keeps_nothing_and_raises_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    write_snapshot(missing, b"source", make_site())
    assert not missing.exists()
    assert read_snapshot(missing, b"source") is None


def test_a_write_replaces_the_whole_snapshot_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_snapshot(tmp_path, b"one", make_site(title="One"))
    write_snapshot(tmp_path, b"two", make_site(title="Two"))
    assert read_snapshot(tmp_path, b"one") is None
    assert read_snapshot(tmp_path, b"two") == make_site(title="Two")
    assert [p.name for p in tmp_path.iterdir()] == [SNAPSHOT]


def test_site_has_the_models_fields() -> None:
    """Site is what SiteModel makes: one field for each of the model's, no more."""
    assert [f.name for f in dataclasses.fields(Site)] == list(SiteModel.model_fields)
