"""Issue 12's kinds that were proven only below the program (unit level), here end to end through
the real `aggregator` on a loopback feed server: language codes canonicalised into the pages'
`lang`/`dir`, no non-web URL in any published file, a `site.timezone` change moving stored
entries to their days, date-only entries on their day in every zone, an entry dated a little
ahead on the front page, and the duplicates kinds (republished under a new guid; different
articles sharing a link)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.feedserver import FeedServer

pytestmark = pytest.mark.slow  # a loopback server and the real program in subprocesses


def rss(
    items: list[dict[str, str]], language: str | None = None, channel_link: str = "https://e.org/"
) -> bytes:
    def item(fields: dict[str, str]) -> str:
        # "_raw" is markup put in as written (an element with attributes).
        inner = "".join(v if k == "_raw" else f"<{k}>{v}</{k}>" for k, v in fields.items())
        return f"<item>{inner}</item>"

    lang = f"<language>{language}</language>" if language else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Feed</title>'
        f"<link>{channel_link}</link><description>d</description>{lang}"
        + "".join(map(item, items))
        + "</channel></rss>"
    ).encode()


def configure(
    path: Path, feeds: dict[str, tuple[str, str]], languages: str, zone: str = "Europe/London"
) -> Path:
    """feeds.yaml with `feeds` (name -> (url, language)) and the given site languages and zone."""
    lines = ["site:", "  title: Audit", f"  timezone: {zone}", f"  languages: [{languages}]", "feeds:"]
    for name, (url, language) in feeds.items():
        lines += [f"  - url: {url}", f"    name: {name}", f"    language: {language}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(*args: str, config: Path, data: Path) -> str:
    result = run_cli(*args, config=config, data=data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def page(day: str, config: Path, data: Path) -> list[dict[str, Any]]:
    out = cli("frontpage", "--date", day, "--lang", "all", "--format", "json", config=config, data=data)
    entries: list[dict[str, Any]] = json.loads(out)["entries"]
    return entries


# -- languages -----------------------------------------------------------------------------------

HEBREW = "שביתה כללית בפרו נגד ההפיכה מתפשטת בדרום המדינה, והאיגודים קוראים להצטרף אליה"
ENGLISH = "The general strike against the coup in Peru spreads across the south of the country"


def test_deprecated_and_three_letter_codes_reach_the_pages_canonical(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """`iw` is Hebrew (`he`, right to left), `eng` is English: in the store and in the pages'
    `lang` and `dir` attributes (langcodes; issue 12)."""
    he = feed_server.add("/he.xml", rss([{"title": HEBREW, "link": "https://he.example/1",
                                          "pubDate": "Tue, 17 Jan 2023 10:00:00 GMT"}], "iw"))  # fmt: skip
    en = feed_server.add("/en.xml", rss([{"title": ENGLISH, "link": "https://en.example/1",
                                          "pubDate": "Tue, 17 Jan 2023 11:00:00 GMT"}], "eng"))  # fmt: skip
    config = configure(tmp_path / "feeds.yaml", {"Hebrew": (he, "auto"), "English": (en, "auto")}, "en, he")
    data = tmp_path / "data"
    cli("fetch", config=config, data=data)
    assert {e["title"]: e["language"] for e in page("2023-01-17", config, data)} == {
        HEBREW: "he",
        ENGLISH: "en",
    }
    html = cli(
        "frontpage", "--date", "2023-01-17", "--lang", "all", "--format", "html", config=config, data=data
    )
    assert '<article lang="he" dir="rtl">' in html and '<article lang="en" dir="ltr">' in html
    he_page = (data / "public" / "he" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="he" dir="rtl">' in he_page
    assert 'lang="iw"' not in html + he_page and 'lang="eng"' not in html + he_page


# -- links ---------------------------------------------------------------------------------------

NON_WEB = ("javascript:", "data:text", "vbscript:", "file:/")


def test_no_non_web_url_reaches_any_published_file(tmp_path: Path, feed_server: FeedServer) -> None:
    """`javascript:`, `data:` and other non-http(s) URLs as item links, guids, enclosures, a
    channel link and JSON Feed URLs: in no output at all (page JSON, index.json and JSON Feed's
    `_aggregator.sources` included)."""
    xml = rss(
        [
            {"title": "Link is a script", "link": "javascript:alert(1)", "description": "One."},
            {"title": "Link is data", "link": "data:text/html,&lt;b&gt;x&lt;/b&gt;", "description": "Two."},
            {"title": "Guid is a script", "guid": "javascript:alert(2)", "description": "Three."},
            {"title": "Enclosure is a file", "link": "https://e.org/4", "description": "Four.",
             "_raw": "<enclosure url='file:///etc/passwd' type='audio/mpeg' length='1'/>"},
        ],
        channel_link="vbscript:msgbox(1)",
    )  # fmt: skip
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON",
        "home_page_url": "javascript:alert(3)",
        "items": [
            {"id": "j1", "title": "JSON script url", "url": "javascript:alert(4)", "content_text": "Five.",
             "external_url": "data:text/html,x", "image": "javascript:alert(5)",
             "attachments": [{"url": "javascript:alert(6)", "mime_type": "audio/mpeg"}]},
        ],
    }  # fmt: skip
    urls = {
        "RSS": (feed_server.add("/bad.xml", xml), "en"),
        "JSON": (feed_server.add("/bad.json", json.dumps(doc).encode()), "en"),
    }  # fmt: skip
    config = configure(tmp_path / "feeds.yaml", urls, "en")
    data = tmp_path / "data"
    cli("fetch", config=config, data=data)
    titles = {e["title"] for e in page(datetime.now(UTC).astimezone().date().isoformat(), config, data)}
    titles |= {i["title"] for i in json.loads((data / "public" / "feeds" / "all.json").read_bytes())["items"]}
    assert {"Link is a script", "Link is data", "Guid is a script", "JSON script url"} <= titles  # kept
    published = [p for p in (data / "public").rglob("*") if p.is_file()]
    assert len(published) > 10
    for path in published:
        text = path.read_text(encoding="utf-8", errors="replace").lower()
        for scheme in NON_WEB:
            assert scheme not in text, (path.relative_to(data), scheme)


# -- dates ---------------------------------------------------------------------------------------


def test_a_site_timezone_change_moves_stored_entries_and_date_only_ones_stay(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """23:30 UTC on 17 January is the 17th in London and the 18th in Tokyo; a date-only entry
    of the 17th is on the 17th in every zone, shown without a time (issue 12)."""
    url = feed_server.add("/f.xml", rss([
        {"title": "Late in the evening in London", "link": "https://e.org/late",
         "pubDate": "Tue, 17 Jan 2023 23:30:00 GMT"},
        {"title": "A dated-only notice of the day", "link": "https://e.org/dated", "dc:date": "2023-01-17"},
    ]))  # fmt: skip
    data = tmp_path / "data"
    config = configure(tmp_path / "feeds.yaml", {"F": (url, "en")}, "en")
    cli("fetch", config=config, data=data)
    london = {e["title"]: e for e in page("2023-01-17", config, data)}
    assert set(london) == {"Late in the evening in London", "A dated-only notice of the day"}
    assert london["A dated-only notice of the day"]["date_only"] is True

    for zone, late_day in (("Asia/Tokyo", "2023-01-18"), ("America/Los_Angeles", "2023-01-17")):
        configure(tmp_path / "feeds.yaml", {"F": (url, "en")}, "en", zone=zone)
        cli("publish", config=config, data=data)  # no poll: the stored entries move
        days = {day: {e["title"] for e in page(day, config, data)} for day in ("2023-01-17", "2023-01-18")}
        assert "Late in the evening in London" in days[late_day], (zone, days)
        assert "A dated-only notice of the day" in days["2023-01-17"] and (
            "A dated-only notice of the day" not in days["2023-01-18"]
        ), (zone, days)
        html = cli("frontpage", "--date", "2023-01-17", "--lang", "all", "--format", "html", config=config,
                   data=data)  # fmt: skip
        article = html.split("A dated-only notice of the day", 1)[1].split("</article>", 1)[0]
        assert not re.search(r"\d\d:\d\d|T00", article), article  # no invented time of day


def test_frontpage_alone_applies_a_site_timezone_change(tmp_path: Path, feed_server: FeedServer) -> None:
    """`frontpage` right after an edit of site.timezone (no fetch or publish between) shows the
    stored entries on their days in the new zone, as fetch and publish would."""
    url = feed_server.add("/f.xml", rss([{"title": "Late in the evening in London", "link": "https://e.org/late",
                                          "pubDate": "Tue, 17 Jan 2023 23:30:00 GMT"}]))  # fmt: skip
    data = tmp_path / "data"
    config = configure(tmp_path / "feeds.yaml", {"F": (url, "en")}, "en")
    cli("fetch", config=config, data=data)
    assert {e["title"] for e in page("2023-01-17", config, data)} == {"Late in the evening in London"}
    configure(tmp_path / "feeds.yaml", {"F": (url, "en")}, "en", zone="Asia/Tokyo")
    assert {e["title"] for e in page("2023-01-18", config, data)} == {"Late in the evening in London"}
    assert page("2023-01-17", config, data) == []


def test_an_entry_dated_a_little_ahead_is_on_the_front_page(tmp_path: Path, feed_server: FeedServer) -> None:
    """Never "No entries yet" while the feeds list an entry dated up to a day ahead."""
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=20)
    url = feed_server.add("/f.xml", rss([{"title": "Scheduled for tomorrow morning", "link": "https://e.org/a",
                                          "pubDate": format_datetime(ahead, usegmt=True)}]))  # fmt: skip
    config = configure(tmp_path / "feeds.yaml", {"F": (url, "en")}, "en", zone="Pacific/Kiritimati")
    data = tmp_path / "data"
    cli("fetch", config=config, data=data)
    for name in ("index.html", "en/index.html"):
        front = (data / "public" / name).read_text(encoding="utf-8")
        assert "No entries yet" not in front and "Scheduled for tomorrow morning" in front, name


# -- duplicates ----------------------------------------------------------------------------------


def test_republished_under_a_new_guid_is_one_entry_on_its_first_day(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    first = {
        "title": "Council approves the harbour budget for next year",
        "link": "https://e.org/budget",
        "guid": "post-100",
        "pubDate": "Tue, 17 Jan 2023 09:00:00 GMT",
        "description": "The vote.",
    }
    url = feed_server.add("/f.xml", rss([first]))
    config = configure(tmp_path / "feeds.yaml", {"F": (url, "en")}, "en")
    data = tmp_path / "data"
    cli("fetch", config=config, data=data)
    feed_server.add(
        "/f.xml", rss([{**first, "guid": "post-100-republished", "pubDate": "Fri, 20 Jan 2023 09:00:00 GMT"}])
    )
    out = cli("fetch", config=config, data=data)
    assert "0 new" in out, out
    assert [e["title"] for e in page("2023-01-17", config, data)] == [first["title"]]
    assert page("2023-01-20", config, data) == []


def test_different_articles_sharing_a_link_are_not_merged(tmp_path: Path, feed_server: FeedServer) -> None:
    """Two feeds whose items all link to a site's home page, and id-less, undated items of one
    feed sharing one link: every article is its own entry."""
    home_a = rss([{"title": t, "link": "https://site.example/", "pubDate": "Tue, 17 Jan 2023 10:00:00 GMT"}
                  for t in ("Water rates rise in March", "New library opens downtown")])  # fmt: skip
    home_b = rss([{"title": t, "link": "https://site.example/", "pubDate": "Tue, 17 Jan 2023 11:00:00 GMT"}
                  for t in ("Bridge repairs finish early", "School term dates announced")])  # fmt: skip
    titles = ("Ferry timetable changes", "Market moves to the square", "Museum extends hours")
    undated = rss([{"title": t, "link": "https://other.example/news"} for t in titles])
    urls = {
        "A": (feed_server.add("/a.xml", home_a), "en"),
        "B": (feed_server.add("/b.xml", home_b), "en"),
        "C": (feed_server.add("/c.xml", undated), "en"),
    }
    config = configure(tmp_path / "feeds.yaml", urls, "en")
    data = tmp_path / "data"
    out = cli("fetch", config=config, data=data)
    assert "7 new" in out and "0 merged" in out, out
    status = json.loads(cli("status", "--json", config=config, data=data))
    assert status["entries_total"] == 7


def test_an_empty_item_is_skipped_with_a_warning_in_status(tmp_path: Path, feed_server: FeedServer) -> None:
    """Items with no title, no link and no text are skipped, and `status` says so (issue 12)."""
    body = rss([{"title": "", "link": ""}, {"title": "A real entry", "link": "https://e.org/real"}])
    config = configure(tmp_path / "feeds.yaml", {"F": (feed_server.add("/f.xml", body), "en")}, "en")
    data = tmp_path / "data"
    assert "1 new" in cli("fetch", config=config, data=data)
    [feed] = json.loads(cli("status", "--json", config=config, data=data))["feeds"]
    assert feed["outcome"] == "ok" and "1 entry skipped" in (feed["warning"] or ""), feed
    assert "1 entry skipped" in cli("status", config=config, data=data)
