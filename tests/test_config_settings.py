"""`config.load_settings`: feeds.yaml without its feed list (issue 15: commands that need no
feed list do not parse it). Whatever the file, it gives what `load_config` gives with `feeds`
empty, or `load_config`'s own result or error when it cannot read the file alone; a mistake
inside the feed list does not stop it; its cost does not grow with the feeds."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aggregator import config as config_module
from aggregator.config import Config, ConfigError, load_config, load_settings
from tests.test_config import ROOT, TRICKY_SCALARS, yaml_values


def without_list(text: str) -> object:
    """What the settings reader builds from `text`: the document without `feeds`."""
    events = config_module._without_feed_list(yaml.parse(text, Loader=config_module._FastLoader))
    assert events is not None
    return config_module._Replay(events).get_single_data()


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["site", "defaults", "fetch", "feeds", "feedsx", "Feeds"]), yaml_values, min_size=1
    ),
    st.booleans(),
)
def test_any_document_reads_as_the_whole_file_without_feeds(data: dict[str, object], flow: bool) -> None:
    """Block or flow, quoted, nested: every other key reads back as the whole-file reader
    reads it (same resolvers: `no` stays a string, `010` is ten), and `feeds` is gone."""
    buf = io.StringIO()
    writer = YAML(typ="rt")
    writer.default_flow_style = flow
    writer.dump(data, buf)
    text = buf.getvalue()
    try:
        whole = config_module._fast_load(text)
    except yaml.YAMLError:
        return  # ruamel wrote what libyaml cannot read (odd flow keys): read whole, and fail, there
    expected = {k: v for k, v in whole.items() if k != "feeds"}
    assert without_list(text) == expected


languages = st.lists(st.sampled_from(["en", "es", "it", "fr", "ru", "de", "pt-BR", "no"]), min_size=1,
                     max_size=5, unique_by=lambda t: t.split("-")[0])  # fmt: skip
feed_items = st.lists(
    st.fixed_dictionaries(
        {"url": st.integers(0, 10**6).map(lambda n: f"https://example.org/{n}.xml")},
        optional={
            "name": st.sampled_from(TRICKY_SCALARS) | st.text(min_size=1, max_size=10),
            "language": st.sampled_from(["en", "auto", "es", "no"]),
            "interval": st.sampled_from(["15m", "auto", "1h", 90]),
            "enabled": st.booleans(),
        },
    ),
    max_size=12,
    unique_by=(lambda f: f["url"], lambda f: str(f.get("name", f["url"]))),
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, object]:
    site: dict[str, object] = {"languages": draw(languages)}
    if draw(st.booleans()):
        site["title"] = draw(st.sampled_from(TRICKY_SCALARS) | st.text(min_size=1, max_size=20))
    if draw(st.booleans()):
        site["timezone"] = draw(st.sampled_from(["UTC", "Europe/London", "America/Sao_Paulo"]))
    if draw(st.booleans()):
        site["frontpage_per_language"] = draw(st.integers(1, 1000))
    if draw(st.booleans()):
        site["entries_per_page"] = draw(st.integers(1, 10000))
    parts: dict[str, object] = {"site": site}
    if draw(st.booleans()):
        parts["defaults"] = {"interval": draw(st.sampled_from(["15m", "auto", "2h"]))}
    if draw(st.booleans()):
        parts["feeds"] = draw(feed_items | st.none())
    keys = draw(st.permutations(list(parts)))  # `feeds` may come first
    return {k: parts[k] for k in keys}


def dump(data: dict[str, object], flow: bool) -> str:
    buf = io.StringIO()
    writer = YAML(typ="rt")
    writer.default_flow_style = flow
    writer.dump(data, buf)
    return buf.getvalue()


# The file is rewritten for every example, so sharing tmp_path between them is harmless.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents(), st.booleans())
def test_valid_files_give_load_configs_settings(tmp_path: Path, data: dict[str, object], flow: bool) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(dump(data, flow), encoding="utf-8")
    whole = load_config(path)
    assert load_settings(path) == whole.model_copy(update={"feeds": []})


BASE = """\
site:
  title: Test
  languages: [en, es]
  timezone: Europe/London
feeds:
  - url: https://example.org/a.xml
    name: A
    language: en
  - url: https://example.org/b.xml
    name: B
"""


@pytest.mark.parametrize(
    "broken_list",
    [
        BASE + "  - url: not a url\n",
        BASE + "  - url: https://example.org/c.xml\n    colour: red\n",  # unknown key
        BASE + "  - url: https://example.org/c.xml\n    name: A\n",  # a name taken
        BASE + "  - url: https://example.org/c.xml\n    language: xq\n",
        BASE.replace("    name: B\n", "    name: B\n    name: C\n"),  # a repeated key
    ],
)
def test_a_mistake_in_the_feed_list_does_not_stop_the_settings(tmp_path: Path, broken_list: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(broken_list, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)
    good = tmp_path / "good.yaml"
    good.write_text(BASE, encoding="utf-8")
    assert load_settings(path) == load_config(good).model_copy(update={"feeds": [], "path": path})


@pytest.mark.parametrize(
    "text",
    [
        BASE.replace("languages: [en, es]", "languages: [en, xq]"),  # a bad setting
        BASE.replace("  title: Test\n", "  title: Test\n  colour: red\n"),
        BASE + "defaults:\n  interval: soon\n",
        "site: [1, 2]\n",
        "- just\n- a list\n",
        "site:\n  title: [unclosed\n",  # not YAML
        BASE + "  - url: https://example.org/c.xml\n    name: [unclosed\n",  # not YAML, in the list
        BASE + "site:\n  title: Again\n",  # a repeated top-level key
        BASE + "feeds: []\n",  # the list twice
        BASE + "---\nsite: {}\n",  # two documents
    ],
)
def test_what_it_cannot_read_alone_fails_as_load_config_does(tmp_path: Path, text: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as whole:
        load_config(path)
    with pytest.raises(ConfigError) as settings_only:
        load_settings(path)
    assert str(settings_only.value) == str(whole.value)


def test_anchors_and_aliases_are_read_whole(tmp_path: Path) -> None:
    # The site's title is an alias of a name inside the list: skipping the list would lose it.
    text = (
        "feeds:\n  - url: https://example.org/a.xml\n    name: &a Alpha\n"
        "site:\n  title: *a\n  languages: [en]\n"
    )
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    whole = load_config(path)
    assert whole.site.title == "Alpha" and len(whole.feeds) == 1
    assert load_settings(path) == whole


def test_a_merge_key_at_the_top_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    # The merge brings a list the explicit `feeds: []` overrides: leaving out only the explicit
    # one would let the merged list through.
    text = "<<: {feeds: [{url: 'https://example.org/m.xml'}]}\nfeeds: []\nsite:\n  languages: [en]\n"
    path.write_text(text, encoding="utf-8")
    whole = load_config(path)
    assert whole.feeds == []
    assert load_settings(path) == whole


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_settings(empty) == load_config(empty) == Config(path=empty)
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "missing.yaml")


def test_the_bundled_feeds_yaml() -> None:
    whole = load_config(ROOT / "feeds.yaml")
    assert whole.feeds
    assert load_settings(ROOT / "feeds.yaml") == whole.model_copy(update={"feeds": []})


def test_the_cost_does_not_grow_with_the_feeds(tmp_path: Path) -> None:
    """2,000 feeds: the settings alone cost well under half of the whole file (measured: about
    a sixth), in CPU time, best of three (a shared machine slows both alike)."""
    lines = ["site:", "  languages: [en, es]", "feeds:"]
    for i in range(2000):
        lines += [f"  - url: https://example.org/{i}.xml", f"    name: Feed {i}", "    language: en"]
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def cpu(read: Callable[[Path], Config]) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            read(path)
            best = min(best, time.process_time() - started)
        return best

    assert len(load_config(path).feeds) == 2000
    assert cpu(load_settings) < 0.5 * cpu(load_config)
