"""Every field case of `shared/cases/` (copied to tests/fixtures/cases/), replayed end to end
through the real `aggregator` command, its right value asserted on what a reader gets: the
published Atom, RSS and JSON Feed, the front pages and the stored rows (issue 12, "every case
gives its right value, as a test"; issue 11 for case 04).

tests/test_cases.py asserts the same cases at the parse, normalise and dedupe level; this file
is the product as an operator runs it: a loopback server answers as the case's `case.json`
says (the n-th request gets the n-th answer), `aggregator fetch` / `publish` run in a
subprocess, and the outputs are read back from `DATA/public/` and `aggregator frontpage`.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import FIXTURES, run_cli
from tests.service_kit import check_outputs

pytestmark = pytest.mark.slow  # a loopback server and the real program in subprocesses

CASES = FIXTURES / "cases"
ATOM = "{http://www.w3.org/2005/Atom}"


class CaseServer:
    """Serves a case's routes on 127.0.0.1: a list of answers gives the n-th request the n-th
    answer (the last one repeats), as shared/cases/README.md describes `case.json`."""

    def __init__(self, case: Path, routes: dict[str, Any]) -> None:
        answers = {path: spec if isinstance(spec, list) else [spec] for path, spec in routes.items()}
        counts: dict[str, int] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path not in answers:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with lock:
                    n = counts.get(path, 0)
                    counts[path] = n + 1
                spec = answers[path][min(n, len(answers[path]) - 1)]
                if "file" in spec:
                    body = (case / spec["file"]).read_bytes()
                elif "body_b64" in spec:
                    body = base64.b64decode(spec["body_b64"])
                else:
                    body = spec.get("body", "").encode()
                self.send_response(spec.get("status", 200))
                for name, value in spec.get("headers", {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> CaseServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class Replay:
    """A case's data directory after its steps, and readers for what the program produced."""

    data: Path
    config: Path
    transcripts: list[str] = field(default_factory=list)

    def step(self, command: str) -> str:
        result = run_cli(command, config=self.config, data=self.data)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "Traceback" not in out, out
        self.transcripts.append(out)
        return out

    def feed(self, fmt: str) -> bytes:
        return (self.data / "public" / "feeds" / f"all.{fmt}").read_bytes()

    def atom_entries(self) -> list[Any]:
        return list(etree.fromstring(self.feed("atom")).findall(f"{ATOM}entry"))

    def rss_items(self) -> list[Any]:
        return list(etree.fromstring(self.feed("rss")).findall("channel/item"))

    def json_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.feed("json"))["items"]
        return items

    def frontpage(self, day: str, fmt: str) -> str:
        result = run_cli("frontpage", "--date", day, "--lang", "all", "--format", fmt, config=self.config,
                         data=self.data)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    def frontpage_entries(self, day: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(self.frontpage(day, "json"))["entries"]
        return entries

    def stored(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(f"file:{self.data / 'aggregator.db'}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT * FROM entries ORDER BY published")]
        finally:
            db.close()

    def status(self) -> dict[str, Any]:
        result = run_cli("status", "--json", config=self.config, data=self.data)
        assert result.returncode == 0, result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[Any]:
    """`replay(case, spec)`: serve the case, write its feeds.yaml, run its steps; returns the
    Replay. A case with several polls (16) passes `steps=False` and steps itself."""
    servers: list[CaseServer] = []

    def start(case: str, spec_name: str = "case.json", steps: bool = True) -> Replay:
        folder = CASES / case
        spec = json.loads((folder / spec_name).read_text(encoding="utf-8"))
        server = CaseServer(folder, spec["routes"]).__enter__()
        servers.append(server)
        run = tmp_path / f"{case}-{Path(spec_name).stem}"
        run.mkdir()
        config = run / "feeds.yaml"
        yaml_text = (folder / spec.get("feeds_yaml", "feeds.yaml")).read_text(encoding="utf-8")
        config.write_text(yaml_text.replace("{BASE}", server.base_url), encoding="utf-8")
        result = Replay(run / "data", config)
        if steps:
            for command in spec["steps"]:
                result.step(command)
        return result

    yield start
    for server in servers:
        server.__exit__()


# -- text and markup -----------------------------------------------------------------------------


def test_case_01_plain_text_titles_keep_their_angle_brackets_everywhere(replay: Any) -> None:
    r = replay("01-title-angle-brackets")
    titles = {
        "How do I delay a <video autoplay> element until the user scrolls to it?",
        "Why does <script> placed inside <svg> run twice?",
    }
    assert {e["title"] for e in r.stored()} == titles
    assert {e.findtext(f"{ATOM}title") for e in r.atom_entries()} == titles
    assert {i.findtext("title") for i in r.rss_items()} == titles
    assert {i["title"] for i in r.json_items()} == titles
    assert {e["title"] for e in r.frontpage_entries("2024-03-05")} == titles
    text = r.frontpage("2024-03-05", "text")
    html = r.frontpage("2024-03-05", "html")
    for title in titles:
        assert title in text
        assert title.replace("<", "&lt;").replace(">", "&gt;") in html  # escaped, shown as written


def test_case_02_atom_text_content_stays_text_with_its_lines(replay: Any) -> None:
    r = replay("02-atom-text-content")
    html = (
        "Release notes for version 2.4<br><br>- fixed a crash when a file name contains &lt;angle&gt; "
        "brackets<br>- the &lt;br&gt; tag in imported notes is now kept as text<br>- faster start-up"
        "<br><br>Thanks to everyone who reported issues."
    )
    [entry] = r.atom_entries()
    content = entry.find(f"{ATOM}content")
    assert content.get("type") == "html" and content.text == html
    [item] = r.rss_items()
    assert item.findtext("description") == html
    [j] = r.json_items()
    assert j["content_html"] == html
    words = "a file name contains <angle> brackets - the <br> tag in imported notes is now kept as text"
    [front] = r.frontpage_entries("2024-03-05")
    assert words in front["summary"]
    assert words in r.frontpage("2024-03-05", "text")


@pytest.mark.parametrize(
    ("spec", "bad_feed_title"),
    [("case.json", "Bus stop inventory 2024 edition"), ("case-xml.json", "Terminal colours explained")],
)
def test_case_04_a_control_character_costs_nothing_and_every_output_is_written(
    replay: Any, spec: str, bad_feed_title: str
) -> None:
    r = replay("04-control-chars-break-output", spec)
    clean = "Council approves the new library budget"  # the other feed's entry
    public = r.data / "public"
    assert check_outputs(public) == []  # every output parses as its format
    for name in ("index.html", "feeds/all.atom", "feeds/all.rss", "feeds/all.json", "feeds/en.atom"):
        assert (public / name).is_file(), name
    assert {e.findtext(f"{ATOM}title") for e in r.atom_entries()} == {bad_feed_title, clean}
    assert {i.findtext("title") for i in r.rss_items()} == {bad_feed_title, clean}
    assert {i["title"] for i in r.json_items()} == {bad_feed_title, clean}
    for fmt in ("atom", "rss", "json"):
        body = r.feed(fmt).decode("utf-8")
        assert not any(ord(c) < 0x20 and c not in "\t\n\r" for c in body), fmt
    if spec == "case.json":
        [bus] = [i for i in r.json_items() if i["title"] == bad_feed_title]
        assert bus["content_html"].startswith(
            "<p>Locations of every bus stop in the district. Updated monthly"
        )


# -- dates ---------------------------------------------------------------------------------------


def test_case_05_zone_abbreviations_give_the_instant_the_day_and_the_offset(replay: Any) -> None:
    r = replay("05-cest-timezone")
    stored = {e["title"].split(":")[0]: e for e in r.stored()}
    assert {k: (e["published"], e["published_zone"], e["day"]) for k, e in stored.items()} == {
        "Episode 41": ("2024-07-09T22:30:00+00:00", "+02:00", "2024-07-09"),
        "Episode 40": ("2024-07-09T06:40:00+00:00", "+02:00", "2024-07-09"),
    }
    assert {e["title"].split(":")[0] for e in r.frontpage_entries("2024-07-09")} == set(stored)
    assert r.frontpage_entries("2024-07-10") == []
    published = {
        e.findtext(f"{ATOM}title").split(":")[0]: e.findtext(f"{ATOM}published") for e in r.atom_entries()
    }
    assert published["Episode 41"] == "2024-07-09T22:30:00+00:00"
    dates = {i.findtext("title").split(":")[0]: i.findtext("pubDate") for i in r.rss_items()}
    assert dates["Episode 41"] == "Tue, 09 Jul 2024 22:30:00 +0000"
    json_dates = {i["title"].split(":")[0]: i["date_published"] for i in r.json_items()}
    assert json_dates["Episode 41"] == "2024-07-09T22:30:00+00:00"
    assert "23:30 BST" in r.frontpage("2024-07-09", "html")


# -- links ---------------------------------------------------------------------------------------


def test_case_07_json_feed_relative_urls_are_absolute_in_every_output(replay: Any) -> None:
    r = replay("07-jsonfeed-relative-urls")
    image = 'src="https://linkblog.example.org/media/2024/lighthouse.jpg"'
    link = 'href="https://linkblog.example.org/24/02/foghorns"'
    [entry] = r.atom_entries()
    [item] = r.rss_items()
    [j] = r.json_items()
    for html in (entry.findtext(f"{ATOM}content"), item.findtext("description"), j["content_html"]):
        assert image in html and link in html
        assert 'src="/' not in html and 'href="/' not in html
    assert j["url"] == "https://linkblog.example.org/24/03/lighthouse-keepers"


# -- fetching ------------------------------------------------------------------------------------


def test_case_09_a_content_encoding_that_is_no_coding_is_read_with_a_warning(replay: Any) -> None:
    r = replay("09-content-encoding-misuse")
    assert "2 ok, 0 failed; 2 new" in r.transcripts[0]
    stored = {e["title"]: e["language"] for e in r.stored()}
    assert stored == {
        "Object storage adds lifecycle rules for versioned buckets": "en",
        "La flota de exploración regresa tras dos años en el borde de la galaxia": "es",
    }
    warnings = {f["name"]: f["warning"] or "" for f in r.status()["feeds"]}
    assert all("read as sent" in w for w in warnings.values()), warnings
    assert {i["title"] for i in r.json_items()} == set(stored)


# -- text ----------------------------------------------------------------------------------------


def test_case_10_escaped_cdata_gives_its_text_everywhere(replay: Any) -> None:
    r = replay("10-escaped-cdata-description")
    text = "Crews finished resurfacing the deck two weeks ahead of the schedule agreed with the county."
    [stored] = r.stored()
    assert stored["summary"] == text
    [front] = r.frontpage_entries("2024-03-05")
    assert front["summary"] == text
    assert text in r.frontpage("2024-03-05", "text")
    [entry] = r.atom_entries()
    assert text in (entry.findtext(f"{ATOM}content") or "") + (entry.findtext(f"{ATOM}summary") or "")
    [item] = r.rss_items()
    assert item.findtext("description") == text
    [j] = r.json_items()
    assert j["summary"] == text and text in j["content_html"]


# -- enclosures ----------------------------------------------------------------------------------


def test_case_13_enclosures_are_enclosure_links_in_atom_and_kept_elsewhere(replay: Any) -> None:
    r = replay("13-atom-enclosure-link")
    by_title = {e.findtext(f"{ATOM}title"): e for e in r.atom_entries()}
    podcast = by_title["Episode 88: caching and the thundering herd"]
    photos = by_title["Harbour at low tide, in three pictures"]
    for entry, alternate in (
        (podcast, "https://podcast.example.fm/88"),
        (photos, "https://photos.example.org/harbour"),
    ):
        links = entry.findall(f"{ATOM}link")
        # RFC 4287 4.1.1: a link without rel is an alternate; one alternate per type here.
        alternates = [x for x in links if x.get("rel", "alternate") == "alternate"]
        assert [(x.get("href"), x.get("type")) for x in alternates] == [(alternate, "text/html")]
    enclosures = [
        (x.get("href"), x.get("type"), x.get("length"))
        for x in podcast.findall(f"{ATOM}link[@rel='enclosure']")
    ]
    assert enclosures == [("https://cdn.example.fm/audio/88.mp3", "audio/mpeg", "48211763")]
    pictures = [(x.get("type"), x.get("length")) for x in photos.findall(f"{ATOM}link[@rel='enclosure']")]
    assert pictures == [("image/jpeg", "512000"), ("image/jpeg", "498000")]
    rss = {i.findtext("title"): i.find("enclosure") for i in r.rss_items()}
    mp3 = rss["Episode 88: caching and the thundering herd"]
    assert (mp3.get("url"), mp3.get("type"), mp3.get("length")) == (
        "https://cdn.example.fm/audio/88.mp3", "audio/mpeg", "48211763"
    )  # fmt: skip
    assert rss["Harbour at low tide, in three pictures"].get("url").endswith("harbour-1.jpg")  # the first
    attachments = {i["title"]: i["attachments"] for i in r.json_items()}
    assert [a["size_in_bytes"] for a in attachments["Harbour at low tide, in three pictures"]] == [
        512000,
        498000,
    ]


# -- duplicates ----------------------------------------------------------------------------------

CORRECTED = "https://www.hosting.example.com/blog/2024/03/05/set-up-a-static-shop/"


def test_case_16_a_corrected_guid_and_link_then_an_edit_is_one_entry_updated_in_place(replay: Any) -> None:
    r = replay("16-guid-and-link-changed", steps=False)
    r.step("fetch")
    first = {e["title"]: e for e in r.stored()}
    assert len(first) == 2
    [shop_id] = [e["id"] for t, e in first.items() if "static shop" in t]

    r.step("fetch")  # guid and link corrected, nothing else changed
    second = r.stored()
    assert len(second) == 2
    [shop] = [e for e in second if e["id"] == shop_id]
    assert shop["link"] == CORRECTED

    out = r.step("fetch")  # the post edited
    assert "0 new" in out, out
    third = r.stored()
    assert len(third) == 2
    [shop] = [e for e in third if e["id"] == shop_id]
    assert shop["title"] == "Set up a static shop with a hosted checkout"
    assert shop["link"] == CORRECTED and shop["updated"] and shop["day"] == "2024-03-05"
    front = r.frontpage_entries("2024-03-05")
    assert len(front) == 2
    assert {e["link"] for e in front if "static shop" in e["title"]} == {CORRECTED}
    assert [i.findtext("link") for i in r.rss_items() if "static shop" in i.findtext("title")] == [CORRECTED]
    assert len(r.atom_entries()) == len(r.json_items()) == 2
    assert "sett-up" not in r.feed("atom").decode() + r.feed("rss").decode()


def test_case_16_no_output_keeps_the_typo_link(replay: Any) -> None:
    """The corrected link replaces the typo on the entry's source record too, so JSON Feed's
    `_aggregator.sources` and the front page JSON carry only the corrected one."""
    r = replay("16-guid-and-link-changed")
    assert "sett-up" not in r.feed("json").decode()
    assert "sett-up" not in r.frontpage("2024-03-05", "json")


# -- items without a title -----------------------------------------------------------------------


def test_case_17_titleless_items_stay_titleless_in_rss_and_json_feed(replay: Any) -> None:
    r = replay("17-titleless-items")
    items = r.rss_items()
    assert len(items) == 2 and all(i.find("title") is None for i in items)
    assert all(i.findtext("description") for i in items)  # the note is the description
    notes = r.json_items()
    assert len(notes) == 2 and all("title" not in n for n in notes)
    assert any("heron.jpg" in n["content_html"] for n in notes)
    entries = r.atom_entries()
    assert len(entries) == 2 and all(e.find(f"{ATOM}title") is not None for e in entries)  # required
    assert all(e["title"] == "" for e in r.stored())
    assert "Finished re-reading the first chapter of the field guide" in r.frontpage("2024-03-05", "text")


def test_every_case_is_replayed_here() -> None:
    tested = {name.split("_")[2] for name in globals() if name.startswith("test_case_")}
    assert tested == {p.name[:2] for p in CASES.iterdir() if p.is_dir()}
