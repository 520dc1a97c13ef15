"""Each command imports only what it uses (issue 15): `--help`, `check`, `frontpage`, `status`
and `export-opml` never load the poller (httpx, feedparser, ftfy, the language models), and
only the commands that draw tables or bars load rich. Measured on the real command: the
seed feeds are fetched from a loopback server into a real store, then each light command runs
in a fresh interpreter under `python -X importtime`, whose report names every module loaded.

Also here: the lazily loaded public names (PEP 562) of `aggregator`, `aggregator.render` and
`aggregator.store` are the objects their submodules define, and `frontpage` prints exactly
what the renderers make of `frontpages.frontpage` in every format, language and day.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

import aggregator
import aggregator.render
import aggregator.store
from aggregator import frontpages, render
from aggregator.config import load_config
from aggregator.settings import SNAPSHOT
from aggregator.store import default_store_url, open_store
from tests.conftest import ROOT, read_store, run_cli
from tests.feedserver import FeedServer, refused_url
from tests.test_end_to_end import serve_seed, write_config

pytestmark = pytest.mark.slow

# What polling needs and nothing else does (numpy: the language model's, and sqlite-utils').
POLLER = frozenset(
    {
        "httpx",
        "feedparser",
        "ftfy",
        "langcodes",
        "py3langid",
        "numpy",
        "asyncio",
        "aggregator.pipeline",
        "aggregator.fetch",
        "aggregator.parse",
        "aggregator.workers",
        "aggregator.dedupe",
        "aggregator.language",
        "aggregator.normalise",
    }
)
# Feed rendering (Atom, RSS, JSON Feed): publishing needs it, a front page does not.
FEED_RENDERING = frozenset({"feedgen", "lxml", "aggregator.render.feeds"})
# Never needed by a read: the round-trip YAML loader (errors in feeds.yaml, editing it), and
# sqlite-utils (not used by the store any more; it imports numpy and pandas when installed).
NEVER_ON_A_READ = frozenset({"ruamel.yaml", "sqlite_utils", "pandas"})
CONFIG_AND_STORE = frozenset(
    {"pydantic", "yaml", "babel", "sqlite3", "aggregator.config", "aggregator.store", "aggregator.models"}
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """feeds.yaml and DATA with the seed feeds fetched (not published) into a SQLite store."""
    tmp = tmp_path_factory.mktemp("imports")
    server = FeedServer().start()
    try:
        serve_seed(server)
        config = write_config(tmp / "feeds.yaml", server)
        data = tmp / "data"
        env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_STORE"}
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data), "fetch",
             "--no-publish"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield config, data
    finally:
        server.stop()


def imports_of(config: Path, data: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `aggregator --config CONFIG --data DATA ARGS…` under `-X importtime`: its result
    and the name of every module the interpreter loaded."""
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_STORE"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aggregator", "--config", str(config), "--data", str(data),
         *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    modules = {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    modules.discard("imported package")  # the report's header line
    return done, modules


def loaded(modules: set[str], names: frozenset[str]) -> set[str]:
    """Which of `names` (packages: also any of their submodules) are among `modules`."""
    return {m for m in modules for name in names if m == name or m.startswith(name + ".")}


def test_the_probe_sees_what_a_command_imports(seeded: tuple[Path, Path], tmp_path: Path) -> None:
    # The check below would pass vacuously if importtime's report were not read: polling
    # into a new store (every feed answers 200 and is parsed here) must show the poller.
    # (Polling the seeded store again parses nothing: every feed answers 304.)
    done, modules = imports_of(seeded[0], tmp_path / "data", "fetch", "--no-publish")
    assert done.returncode == 0, done.stderr
    assert {"httpx", "feedparser", "aggregator.pipeline", "click"} <= modules


@pytest.mark.parametrize("args", [("--help",), ("frontpage", "--help"), ("status", "--help")], ids=" ".join)
def test_help_loads_neither_the_configuration_nor_the_store(
    seeded: tuple[Path, Path], args: tuple[str, ...]
) -> None:
    done, modules = imports_of(*seeded, *args)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert not loaded(modules, POLLER | FEED_RENDERING | NEVER_ON_A_READ | CONFIG_AND_STORE | {"rich"})


def test_check_loads_the_configuration_only(seeded: tuple[Path, Path]) -> None:
    done, modules = imports_of(*seeded, "check")
    assert done.returncode == 0, done.stderr
    assert "aggregator.config" in modules
    assert not loaded(modules, POLLER | FEED_RENDERING | NEVER_ON_A_READ | {"sqlite3", "aggregator.store"})


FRONTPAGES = [
    ("frontpage",),
    ("frontpage", "--format", "html", "--lang", "en"),
    ("frontpage", "--format", "json", "--date", "2023-01-16"),
]


@pytest.mark.parametrize("args", FRONTPAGES, ids=" ".join)
def test_frontpage_loads_no_poller_no_tables_no_yaml_editor(
    seeded: tuple[Path, Path], args: tuple[str, ...]
) -> None:
    done, modules = imports_of(*seeded, *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert not loaded(modules, POLLER | NEVER_ON_A_READ | {"rich"})


def test_frontpage_loads_no_feed_rendering(seeded: tuple[Path, Path]) -> None:
    done, modules = imports_of(*seeded, "frontpage")
    assert done.returncode == 0, done.stderr
    assert not loaded(modules, FEED_RENDERING)


@pytest.mark.parametrize("args", [("status",), ("status", "--json"), ("export-opml",)], ids=" ".join)
def test_status_and_export_load_no_publishing(seeded: tuple[Path, Path], args: tuple[str, ...]) -> None:
    done, modules = imports_of(*seeded, *args)
    assert done.returncode == 0, done.stderr
    assert not loaded(modules, FEED_RENDERING | NEVER_ON_A_READ | {"aggregator.publish"})


def test_status_loads_no_poller(seeded: tuple[Path, Path]) -> None:
    done, modules = imports_of(*seeded, "status")
    assert done.returncode == 0, done.stderr
    assert not loaded(modules, POLLER)


def test_export_opml_loads_no_poller(seeded: tuple[Path, Path]) -> None:
    done, modules = imports_of(*seeded, "export-opml")
    assert done.returncode == 0, done.stderr
    assert not loaded(modules, POLLER)


# What a parse needs: with worker processes parsing, the polling parent must not load it.
PARSING = frozenset(
    {
        "feedparser",
        "feedparser_rs",
        "ftfy",
        "charset_normalizer",
        "pycld2",
        "langcodes",
        "py3langid",
        "aggregator.parse",
        "aggregator.parse_fast",
        "aggregator.normalise",
        "aggregator.language",
    }
)

# Runs the real command in this interpreter, then reports the modules this process (not the
# workers: they report nothing) loaded. `-X importtime` would not do: the forkserver and the
# workers inherit the flag and print their imports to the same stderr.
PARENT_PROBE = """
import json, sys
from aggregator.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="parse workers run only on a machine with 2+ cores")
def test_a_parent_whose_workers_parse_loads_no_parser(tmp_path: Path) -> None:
    server = FeedServer().start()
    try:
        serve_seed(server)
        config = write_config(tmp_path / "feeds.yaml", server)
        env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_STORE"}
        env["AGGREGATOR_PARSE_PROCESSES_FROM"] = "1"  # the seed's few feeds go to the workers
        argv = ["--config", str(config), "--data", str(tmp_path / "data"), "fetch", "--no-publish"]
        done = subprocess.run(
            [sys.executable, "-c", PARENT_PROBE, *argv], capture_output=True, text=True, env=env, cwd=ROOT,
            timeout=180,
        )  # fmt: skip
    finally:
        server.stop()
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    modules = set(report["modules"])
    assert {"aggregator.workers", "aggregator.pipeline", "httpx"} <= modules
    assert not loaded(modules, PARSING)
    # The entries were parsed all the same (by the workers) and stored, in the seed's five
    # languages (identified in the workers too).
    with contextlib.closing(open_store(default_store_url(tmp_path / "data"), create=False)) as store:
        assert {"en", "es", "it", "fr", "ru"} <= set(store.language_counts())


# -- the lazy public names ---------------------------------------------------------------------


PACKAGES = [aggregator, aggregator.render, aggregator.store]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_is_its_submodules_object(package: ModuleType) -> None:
    names: list[str] = package.__all__
    assert set(names) <= set(dir(package))
    for name in names:
        value = getattr(package, name)
        owner = getattr(value, "__module__", None)
        if owner and owner.startswith(package.__name__ + "."):
            assert getattr(importlib.import_module(owner), name) is value
    with pytest.raises(AttributeError):
        getattr(package, "no_such_name")  # noqa: B009


def test_the_cli_consoles_are_made_once() -> None:
    from aggregator import cli

    assert cli.out is cli.out and cli.console is cli.console and cli.out is not cli.console
    assert cli.console.stderr and not cli.out.stderr
    with pytest.raises(AttributeError):
        getattr(cli, "no_such_name")  # noqa: B009


# -- what frontpage prints ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "html", "json"])
def test_frontpage_prints_what_the_renderers_make(seeded: tuple[Path, Path], fmt: str) -> None:
    """Every language page and the combined one, for the default day, each day with entries and
    a day without: the command's bytes are the renderers' (whatever makes the command fast
    must not change what it prints)."""
    config_path, data = seeded
    config = load_config(config_path)
    days: list[date | None] = [None, date(2023, 1, 16), date(2023, 1, 17), date(2022, 1, 1)]
    for language in ["all", *config.site.languages]:
        for day in days:
            args = ["frontpage", "--format", fmt, "--lang", language]
            args += ["--date", day.isoformat()] if day else []
            done = run_cli(*args, config=config_path, data=data)
            assert done.returncode == 0, done.stderr
            with read_store(data) as store:
                page = frontpages.frontpage(store, config.site, language, day)
            if fmt == "text":
                expected = render.frontpage_text(page, config.site)
            elif fmt == "json":
                expected = render.frontpage_json(page)
            else:
                expected = render.frontpage_html(page, config.site)
            assert done.stdout == expected, (language, day)


def test_frontpage_reads_no_feed_list_but_for_a_page_without_entries(
    seeded: tuple[Path, Path], tmp_path: Path
) -> None:
    """A mistake in one feed's entry of feeds.yaml stops `check` (and polling), not the page of
    a day with entries, which needs only the site's settings (`config.load_settings`)."""
    config_path, data = seeded
    broken = tmp_path / "feeds.yaml"
    broken.write_text(config_path.read_text() + "  - url: not a url\n    colour: red\n", encoding="utf-8")
    assert run_cli("check", config=broken, data=data).returncode == 1
    done = run_cli("frontpage", config=broken, data=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == run_cli("frontpage", config=config_path, data=data).stdout


def test_frontpage_reads_the_sites_settings_from_their_snapshot(seeded: tuple[Path, Path]) -> None:
    """Once `frontpage` has validated feeds.yaml it keeps the site's settings in DATA, and
    while the file's bytes are the same it reads them there: no YAML reader, no pydantic
    (issue 15: they were over half of the command's time). The page is the same."""
    config_path, data = seeded
    first = run_cli("frontpage", "--format", "html", config=config_path, data=data)
    assert first.returncode == 0, first.stderr
    assert (data / SNAPSHOT).is_file()
    done, modules = imports_of(config_path, data, "frontpage", "--format", "html")
    assert done.returncode == 0, done.stderr
    assert done.stdout == first.stdout
    assert not loaded(modules, frozenset({"pydantic", "yaml", "ruamel.yaml", "aggregator.config"}))


def test_an_edit_of_feeds_yaml_is_read_at_once(seeded: tuple[Path, Path], tmp_path: Path) -> None:
    """The snapshot is never used for another feeds.yaml: an edit shows in the next page, a
    language taken out is refused, and an invalid edit is reported with its line."""
    config_path, data = seeded
    text = config_path.read_text(encoding="utf-8")
    assert run_cli("frontpage", config=config_path, data=data).returncode == 0  # a snapshot of it
    edited = tmp_path / "feeds.yaml"
    # Sections follow site.languages: Russian first.
    edited.write_text(text.replace("languages: [en, es, it, fr, ru]", "languages: [ru, en, es, it, fr]"))
    done = run_cli("frontpage", "--date", "2023-01-17", config=edited, data=data)
    assert done.returncode == 0, done.stderr
    site, before = load_config(edited).site, load_config(config_path).site
    with read_store(data) as store:
        page = frontpages.frontpage(store, site, "all", date(2023, 1, 17))
        old = frontpages.frontpage(store, before, "all", date(2023, 1, 17))
    assert done.stdout == render.frontpage_text(page, site) != render.frontpage_text(old, before)
    assert page.sections[0].language == "ru"
    # Russian taken out: `--lang ru` is refused.
    edited.write_text(text.replace("languages: [en, es, it, fr, ru]", "languages: [en, es, it, fr]"))
    done = run_cli("frontpage", "--lang", "ru", config=edited, data=data)
    assert done.returncode == 2 and "site.languages (en, es, it, fr)" in done.stderr
    # An invalid edit: FILE:LINE: FIELD, not the last good settings.
    edited.write_text(text.replace("timezone: Europe/London", "timezone: Mars/Olympus"))
    done = run_cli("frontpage", config=edited, data=data)
    assert done.returncode == 1
    assert f"{edited}:5: site.timezone: unknown time zone 'Mars/Olympus'" in done.stderr
    assert done.stdout == ""


def test_the_page_without_entries_lists_the_failing_feeds(tmp_path: Path) -> None:
    """Nothing stored: the page lists the configured feeds that fail, so it reads the feed
    list after all (and prints what the renderers make of the whole configuration)."""
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(
        "site:\n  languages: [en]\nfeeds:\n  - url: " + refused_url() + "\n    name: Down\n", encoding="utf-8"
    )
    data = tmp_path / "data"
    assert run_cli("fetch", "--no-publish", config=config_path, data=data).returncode == 0
    done = run_cli("frontpage", config=config_path, data=data)
    assert done.returncode == 0, done.stderr
    config = load_config(config_path)
    with read_store(data) as store:
        feeds = [f.key for f in config.feeds]
        page = frontpages.frontpage(store, config.site, "all", feeds=feeds)
        expected = render.frontpage_text(page, config.site)
    assert "Down" in expected and done.stdout == expected
    # A feed the store knows but feeds.yaml no longer lists is not named.
    with read_store(data) as store:
        assert "Down" not in render.frontpage_text(
            frontpages.frontpage(store, config.site, "all"), config.site
        )
