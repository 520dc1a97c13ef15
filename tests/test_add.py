"""`aggregator add`: discover a feed on a loopback server, append it to feeds.yaml as written."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import FetchSettings, load_config
from aggregator.discover import DiscoveryError, discover
from aggregator.feeds_file import FeedsFileError, NewFeed, plan_append
from aggregator.fetch import Fetcher
from tests.conftest import FIXTURES, ROOT, run_cli
from tests.feedserver import FeedServer

SEED = FIXTURES / "seed"


def page(*links: str) -> bytes:
    heads = "".join(f'<link rel="alternate" type="{t}" href="{h}">' for h, t in links)
    return f"<!doctype html><html><head><title>A site</title>{heads}</head><body>hi</body></html>".encode()


def only_insertions(before: str, after: str) -> list[str]:
    """The lines `after` adds to `before`; fails if any line of `before` changed or moved."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    assert all(op in ("equal", "insert") for op, *_ in ops), "".join(difflib.unified_diff(a, b))
    return [line for op, _, _, j1, j2 in ops if op == "insert" for line in b[j1:j2]]


@pytest.fixture
def bundled(tmp_path: Path) -> Path:
    config = tmp_path / "feeds.yaml"
    config.write_bytes((ROOT / "feeds.yaml").read_bytes())
    return config


def test_add_a_feed_keeps_the_file_byte_for_byte(bundled: Path, feed_server: FeedServer) -> None:
    url = feed_server.add_file("/en.atom", SEED / "en.atom")
    before = bundled.read_text(encoding="utf-8")
    result = run_cli("add", url, "--name", "Loopback (English)", config=bundled, data=bundled.parent)
    assert result.returncode == 0, result.stderr
    after = bundled.read_text(encoding="utf-8")
    added = only_insertions(before, after)
    # The bundled file puts a blank line between feeds; the new one follows suit.
    assert "".join(added) == f"\n  - url: {url}\n    name: Loopback (English)\n    language: en-GB\n"
    assert after.startswith(before)
    feed = load_config(bundled).feed("Loopback (English)")
    assert feed is not None and feed.language == "en-GB" and feed.key == url
    assert "atom10, 3 entries" in result.stdout


def test_add_a_web_page_takes_the_first_feed_that_parses(tmp_path: Path, feed_server: FeedServer) -> None:
    feed = feed_server.add_file("/es.rss", SEED / "es.rss")
    site = feed_server.add(
        "/",
        page(("/missing.xml", "application/rss+xml"), ("/es.rss", "application/rss+xml")),
        "text/html; charset=utf-8",
    )
    config = tmp_path / "feeds.yaml"
    result = run_cli("add", site, "--interval", "1h", config=config, data=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"found on {site}" in result.stdout
    [added] = load_config(config).feeds
    assert (added.key, added.name, added.language) == (feed, "Lucha de Clases", "es")
    assert added.interval is not None and added.interval != "auto"
    assert added.interval.total_seconds() == 3600
    assert "the page also advertises: " + feed_server.url("/missing.xml") in result.stdout


def test_duplicate_url_or_name_is_refused_and_nothing_changes(bundled: Path, feed_server: FeedServer) -> None:
    url = feed_server.add_file("/en.atom", SEED / "en.atom")
    assert run_cli("add", url, config=bundled, data=bundled.parent).returncode == 0
    before = bundled.read_bytes()

    again = run_cli("add", url, "--name", "Other", config=bundled, data=bundled.parent)
    assert again.returncode == 1
    assert f"no feed added: already in feeds.yaml: url {url}" in again.stderr

    # The same title as the feed added above, from another address.
    other = feed_server.add_file("/copy.atom", SEED / "en.atom")
    same_name = run_cli("add", other, config=bundled, data=bundled.parent)
    assert same_name.returncode == 1
    assert "name 'In Defence of Marxism'" in same_name.stderr and "--name" in same_name.stderr
    assert bundled.read_bytes() == before


def test_dry_run_prints_and_changes_nothing(bundled: Path, feed_server: FeedServer) -> None:
    url = feed_server.add_file("/es.rss", SEED / "es.rss")
    before = bundled.read_bytes()
    result = run_cli("add", url, "--dry-run", config=bundled, data=bundled.parent)
    assert result.returncode == 0, result.stderr
    assert f"  - url: {url}\n    name: Lucha de Clases\n    language: es\n" in result.stdout
    assert "dry run" in result.stdout
    assert bundled.read_bytes() == before


@pytest.mark.parametrize(
    ("body", "ctype", "words"),
    [
        (page(), "text/html", "no RSS, Atom or JSON Feed"),
        (page(("/gone.xml", "application/atom+xml")), "text/html", "none of the feeds it advertises"),
        (b"", "application/xml", "empty body"),
    ],
)
def test_no_feed_found_adds_nothing(
    bundled: Path, feed_server: FeedServer, body: bytes, ctype: str, words: str
) -> None:
    url = feed_server.add("/page", body, ctype)
    before = bundled.read_bytes()
    result = run_cli("add", url, config=bundled, data=bundled.parent)
    assert result.returncode == 1
    assert "no feed added" in result.stderr and words in result.stderr
    assert bundled.read_bytes() == before


def test_invalid_options_are_refused_before_fetching(bundled: Path, feed_server: FeedServer) -> None:
    url = feed_server.add_file("/en.atom", SEED / "en.atom")
    result = run_cli("add", url, "--language", "xq", config=bundled, data=bundled.parent)
    assert result.returncode == 2 and "unknown language code 'xq'" in result.stderr
    assert feed_server.hits == {}


async def test_a_page_cannot_point_discovery_at_another_network_zone(feed_server: FeedServer) -> None:
    # The page is on loopback; 10.0.0.0/8 is another zone: refused without connecting to it.
    site = feed_server.add("/", page(("http://10.0.0.1/feed.xml", "application/rss+xml")), "text/html")
    async with Fetcher(FetchSettings(), clients=1) as fetcher:
        with pytest.raises(DiscoveryError, match=r"10\.0\.0\.1 is a private address"):
            await discover(site, fetcher)


async def test_discovery_names_the_page_and_the_feed(feed_server: FeedServer) -> None:
    feed_server.add_file("/en.atom", SEED / "en.atom")
    site = feed_server.add("/", page(("/en.atom", "application/atom+xml")), "text/html")
    async with Fetcher(FetchSettings(), clients=1) as fetcher:
        found = await discover(site, fetcher)
    assert found.url == feed_server.url("/en.atom") and found.page_url == site
    assert found.title == "In Defence of Marxism" and found.entries == 3


# -- the layout of any feeds.yaml survives: only the new feed's lines are inserted ---------

names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30
).filter(lambda s: s.strip() == s)
comments = st.sampled_from(["", "  # a comment", "   # confirmed: yes", "  #: odd # comment"])


@st.composite
def feeds_files(draw: st.DrawFn) -> str:
    """feeds.yaml files as people write them: comments anywhere, aligned values, trailing
    spaces, quoting, blank lines between feeds or not, any dash indentation, `feeds: []`,
    `feeds:` alone, no `feeds:` at all, sections after the feeds, flow-style items."""
    dash = draw(st.sampled_from([0, 2, 4]))
    gap = draw(st.sampled_from(["", "\n"]))
    colon = draw(st.sampled_from([": ", ":   "]))  # aligned values (a tab: ruamel cannot read it)
    trail = draw(st.sampled_from(["", "   "]))  # trailing spaces
    lines = [draw(st.sampled_from(["", "# feeds.yaml\n# by hand\n\n"]))]
    lines.append(
        "site:" + draw(comments) + "\n  title" + colon + draw(st.sampled_from(["T", "'T: x'", '"T"']))
    )
    lines.append(trail + "\n  languages: [en, es]" + draw(comments) + "\n")
    count = draw(st.integers(0, 4))
    shape = draw(st.sampled_from(["block", "empty-flow", "missing"])) if count == 0 else "block"
    if shape == "empty-flow":
        lines.append(gap + "feeds: []" + draw(comments) + "\n")
    elif shape == "block":
        lines.append(gap + "feeds:" + draw(comments) + "\n")
    for i in range(count):
        pad = " " * dash
        if draw(st.integers(0, 5)) == 0:
            lines.append(f"{pad}- {{url: 'https://example.org/{i}.xml',   name: F{i}}}\n{gap}")
            continue
        lines.append(f"{pad}- url{colon}https://example.org/{i}.xml{draw(comments)}{trail}\n")
        q = '"' if draw(st.booleans()) else ""
        lines.append(f"{pad}  name{colon}{q}Feed {i}{q}\n")
        if draw(st.booleans()):
            lines.append(f"{pad}  # interval: 1h{trail}\n")
        lines.append(gap)
    if draw(st.booleans()):
        lines.append("# commented-out feed:\n#  - url: https://example.org/old.xml\n")
    if draw(st.booleans()):
        lines.append("fetch:\n  timeout" + colon + "20s" + draw(comments) + "\n")
    return "".join(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feeds_files(), names, st.sampled_from([None, "en", "auto", "pt-BR"]))
def test_appending_inserts_lines_and_changes_none(text: str, name: str, language: str | None) -> None:
    path = Path("feeds.yaml")
    before = plan_append(text, path, [])  # the generated file is itself valid
    assert before.added == ()
    try:
        plan = plan_append(text, path, [NewFeed("https://new.example.net/feed", name, language)])
    except FeedsFileError:
        pytest.fail("a plain block-style feeds.yaml was refused")
    # `feeds: []` must lose its `[]`; every other byte stays.
    base = re.sub(r"^feeds: \[\]\n", "feeds:\n", text, flags=re.M)
    base = re.sub(r"^feeds: \[\]", "feeds: ", base, flags=re.M)
    only_insertions(base, plan.text)
    feed = plan.config.feed("https://new.example.net/feed")
    assert feed is not None and feed.name == name
    assert feed.language == (language or "auto")
    assert len(plan.config.feeds) == len(before.config.feeds) + 1


def test_a_layout_the_editor_cannot_keep_is_refused_with_the_lines_to_add(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.add_file("/en.atom", SEED / "en.atom")
    config = tmp_path / "feeds.yaml"
    odd = "---\nfeeds:\n  - url: https://example.org/a.xml\n...\n"  # an explicit document end
    config.write_text(odd, encoding="utf-8")
    result = run_cli("add", url, "--name", "New", config=config, data=tmp_path)
    assert result.returncode == 1
    assert "add these lines" in result.stderr and f"- url: {url}" in result.stderr
    assert config.read_text(encoding="utf-8") == odd
    with pytest.raises(FeedsFileError):
        plan_append(odd, config, [NewFeed(url, "New")])
