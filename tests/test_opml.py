"""OPML 2.0 export and import: round trips, other readers' files, hostile files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator.config import FeedConfig, load_config, make_site
from aggregator.feeds_file import NewFeed, plan_append
from aggregator.opml import OpmlError, read_opml, sources_opml
from tests.conftest import ROOT, run_cli

from .test_add import only_insertions

SITE = make_site(title="News & views", languages=["en", "es", "ru"])


def feeds(*items: dict[str, object]) -> list[FeedConfig]:
    return [FeedConfig.model_validate(i) for i in items]


def test_outlines_are_grouped_by_language_in_site_order() -> None:
    data = sources_opml(
        SITE,
        feeds(
            {"url": "https://a.org/mixed", "language": "auto"},
            {"url": "https://a.org/de", "name": "Deutsch", "language": "de"},
            {"url": "https://a.org/ru", "name": "Русский", "language": "ru"},
            {"url": "https://a.org/en-gb", "name": "UK", "language": "en-GB"},
            {"url": "https://a.org/en", "name": "World", "language": "en"},
        ),
        titles={"https://a.org/mixed": "Stored title"},
        html_urls={"https://a.org/en": "https://a.org/"},
    )
    root = etree.fromstring(data)
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "News & views: sources"
    assert root.find("head/dateCreated") is None  # stable bytes unless asked for
    groups = root.findall("body/outline")
    assert [g.get("text") for g in groups] == [
        "English (en)", "русский (ru)", "Deutsch (de)", "Mixed languages (auto)",
    ]  # fmt: skip
    en = groups[0].findall("outline")
    assert [(o.get("xmlUrl"), o.get("language"), o.get("text")) for o in en] == [
        ("https://a.org/en-gb", "en-GB", "UK"),
        ("https://a.org/en", "en", "World"),
    ]
    assert en[1].get("htmlUrl") == "https://a.org/" and en[0].get("htmlUrl") is None
    assert all(o.get("type") == "rss" for g in groups for o in g)
    [mixed] = groups[3].findall("outline")
    assert mixed.get("text") == mixed.get("title") == "Stored title" and mixed.get("language") is None
    assert sources_opml(SITE, feeds({"url": "https://a.org/en"})) == sources_opml(
        SITE, feeds({"url": "https://a.org/en"})
    )


# Names as an operator might write them: any printable text, markup and quotes included.
names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp", "Zs")) | st.just(" "),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s)
languages = st.sampled_from(["auto", "en", "en-GB", "es", "pt-BR", "ru", "zh-Hant", "de"])


@st.composite
def feed_lists(draw: st.DrawFn) -> list[FeedConfig]:
    count = draw(st.integers(0, 8))
    chosen = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    items: list[dict[str, object]] = []
    for i, name in enumerate(chosen):
        item: dict[str, object] = {"url": f"https://example.org/{i}/feed?x=1&y=<{i}>"}
        if draw(st.booleans()):
            item["name"] = name
        item["language"] = draw(languages)
        items.append(item)
    return feeds(*items)


@settings(max_examples=120, deadline=None)
@given(feed_lists())
def test_export_then_import_into_an_empty_file_gives_the_same_feeds(configured: list[FeedConfig]) -> None:
    found = read_opml(sources_opml(SITE, configured))
    plan = plan_append("", Path("feeds.yaml"), [NewFeed(f.url, f.title, f.language) for f in found])
    assert plan.skipped == ()

    def key(f: FeedConfig) -> tuple[str, str | None, str]:
        return (f.key, f.name, f.language)

    # Grouping reorders feeds by language; the set of (url, name, language) is the same.
    assert sorted(map(key, plan.config.feeds)) == sorted(map(key, configured))


def test_cli_round_trip_of_the_bundled_feeds(tmp_path: Path) -> None:
    exported = tmp_path / "sources.opml"
    result = run_cli("export-opml", "-o", str(exported), config=ROOT / "feeds.yaml", data=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert etree.fromstring(exported.read_bytes()).find("head/dateCreated") is not None
    fresh = tmp_path / "feeds.yaml"
    result = run_cli("import-opml", str(exported), config=fresh, data=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert "added 6 of 6 feeds" in result.stdout

    def key(f: FeedConfig) -> tuple[str, str | None, str]:
        return (f.key, f.name, f.language)

    original = load_config(ROOT / "feeds.yaml").feeds
    assert sorted(map(key, load_config(fresh).feeds)) == sorted(map(key, original))
    stdout = run_cli("export-opml", config=ROOT / "feeds.yaml", data=tmp_path / "d")
    assert stdout.returncode == 0 and stdout.stdout.startswith("<?xml")


OTHER_READER = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Politics">
      <outline text="Marxist (EN)" type="rss" xmlUrl="https://www.marxist.com/rss.xml"/>
      <outline text="Nested">
        <outline title="Lucha" text="ignored" type="rss" xmlUrl="https://example.es/feed"
                 htmlUrl="https://example.es/" language="ES_es"/>
        <outline text="Same title" type="rss" xmlUrl="https://two.example/feed" language="xq"/>
      </outline>
    </outline>
    <outline text="Same title" type="rss" xmlUrl="https://one.example/feed"/>
    <outline text="https://bare.example/feed" xmlUrl="https://bare.example/feed"/>
    <outline text="not a feed" htmlUrl="https://example.org/"/>
    <outline text="bad" type="rss" xmlUrl="ftp://example.org/feed"/>
  </body>
</opml>
"""


def test_import_another_readers_file_keeps_comments_and_reports_skips(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_bytes((ROOT / "feeds.yaml").read_bytes())
    before = config.read_text(encoding="utf-8")
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OTHER_READER)
    result = run_cli("import-opml", str(opml), config=config, data=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert "SKIPPED https://www.marxist.com/rss.xml: already in feeds.yaml: url" in result.stdout
    assert "SKIPPED ftp://example.org/feed: url: URL scheme should be 'http' or 'https'" in result.stdout
    assert "added 4 of 6 feeds" in result.stdout and "2 skipped" in result.stdout
    assert "NOTE https://two.example/feed: unknown language code 'xq'; imported as auto" in result.stderr
    only_insertions(before, config.read_text(encoding="utf-8"))
    loaded = load_config(config)
    lucha = loaded.feed("Lucha")
    assert lucha is not None and lucha.key == "https://example.es/feed" and lucha.language == "es-ES"
    two, one = loaded.feed("https://two.example/feed"), loaded.feed("https://one.example/feed")
    assert two is not None and one is not None
    assert (two.name, two.language, one.name) == ("Same title", "auto", "Same title (2)")
    bare = loaded.feed("https://bare.example/feed")
    assert bare is not None and bare.name is None

    again = run_cli("import-opml", str(opml), config=config, data=tmp_path / "d")
    assert again.returncode == 0 and "added 0 of 6 feeds" in again.stdout


def test_dry_run_import_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("# mine\nfeeds: []\n", encoding="utf-8")
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OTHER_READER)
    result = run_cli("import-opml", "--dry-run", str(opml), config=config, data=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert "would add 5 of 6 feeds" in result.stdout and "- url: https://one.example/feed" in result.stdout
    assert config.read_text(encoding="utf-8") == "# mine\nfeeds: []\n"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<opml version="2.0"><body><outline text="&b;" xmlUrl="https://x.org/f"/></body></opml>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&x;" xmlUrl="https://x.org/f"/></body></opml>"""
DOCTYPE_ONLY = b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "http://127.0.0.1:9/opml.dtd"><opml/>'


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (BOMB, "DOCTYPE or entities; refused"),
        (EXTERNAL, "DOCTYPE or entities; refused"),
        (DOCTYPE_ONLY, "DOCTYPE or entities; refused"),
        (b"<opml><body><outline", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (b"<rss version='2.0'><channel/></rss>", "root element is <rss>"),
        (b"<opml version='2.0'><head/></opml>", "no <body>"),
    ],
)
def test_unusable_files_are_refused_in_words(data: bytes, words: str) -> None:
    with pytest.raises(OpmlError, match=words.replace("(", r"\(")):
        read_opml(data)


def test_cli_refuses_a_bomb_and_leaves_feeds_yaml_alone(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds: []\n", encoding="utf-8")
    opml = tmp_path / "bomb.opml"
    opml.write_bytes(BOMB)
    result = run_cli("import-opml", str(opml), config=config, data=tmp_path / "d")
    assert result.returncode == 1 and "refused" in result.stderr
    assert config.read_text(encoding="utf-8") == "feeds: []\n"


def test_deeply_nested_outlines_do_not_exhaust_the_stack() -> None:
    depth = 5000
    data = (
        b"<opml version='2.0'><body>"
        + b"<outline text='x'>" * depth
        + b"<outline text='deep' xmlUrl='https://deep.example/feed'/>"
        + b"</outline>" * depth
        + b"</body></opml>"
    )
    [found] = read_opml(data)
    assert found.url == "https://deep.example/feed" and found.title == "deep"
