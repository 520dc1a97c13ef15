"""Hostile and broken feeds, end to end: `aggregator fetch` against the hostile server.

Every case has the same shape. A feed ("Victim") first serves two good entries and is
fetched together with a good feed; then its URL turns into one hostile case and both are
fetched again. Whatever the case, the run must finish in time with exit 0, the victim's
problem must be recorded in words an operator understands (the fetch summary and
`status`), the good feed's new entry must be stored and published, and the victim's earlier
entries must all still be there. Size and bomb cases also measure memory (tracemalloc peak).

The CLI runs in-process (click's runner), so each case costs milliseconds, not a new
interpreter; test_crash.py runs it as a real subprocess.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner, Result

from aggregator.cli import main
from tests.hostile_server import (
    HostileServer,
    _http_date,
    _item,
    _rss,
    prepare_bombs,
)

pytestmark = pytest.mark.slow  # a real server and the whole pipeline

TIMEOUT_S = 2  # the victim's per-feed deadline; the slow cases take this long
MB = 1024 * 1024
# Peak traced allocations of a whole fetch run: for the size cases, the 10 MB body limit plus
# one decompression step and the rest of the run; a 5 MB title goes through feedparser whole.
BODY_LIMIT_PEAK = 24 * MB
HUGE_TITLE_PEAK = 64 * MB


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps tables to 80 columns off a terminal; wide rows keep phrases on one line."""
    import aggregator.cli

    monkeypatch.setattr(aggregator.cli.out, "_width", 400)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    prepare_bombs()  # the server's one-off compression, not under any poll's deadline
    with HostileServer() as srv:
        yield srv


@dataclass
class Run:
    """One case's world: config, data directory and helpers to look at the results."""

    server: HostileServer
    tmp: Path
    name: str
    config: Path = field(init=False)
    data: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data = self.tmp / "data"
        self.config = self.tmp / "feeds.yaml"
        self.victim_path = f"/victim-{self.name}.xml"
        self.good_path = f"/good-{self.name}.xml"
        self.config.write_text(
            "site:\n"
            "  title: Hostile test\n"
            f"  base_url: {self.server.base_url}/\n"
            "  languages: [en]\n"
            "feeds:\n"
            f"  - url: {self.good_url}\n    name: Good\n    language: en\n"
            f"  - url: {self.victim_url}\n    name: Victim\n    timeout: {TIMEOUT_S}s\n",
            encoding="utf-8",
        )

    @property
    def victim_url(self) -> str:
        return self.server.url(self.victim_path)

    @property
    def good_url(self) -> str:
        return self.server.url(self.good_path)

    def cli(self, *args: str) -> Result:
        result = CliRunner().invoke(main, ["--config", str(self.config), "--data", str(self.data), *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert result.exit_code == 0, result.output
        return result

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.cli("status", "--json").stdout)
        return doc

    def feed_status(self, name: str) -> dict[str, Any]:
        return next(f for f in self.status()["feeds"] if f["name"] == name)

    def entries(self, feed_url: str | None = None) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.data / "aggregator.db")
        db.row_factory = sqlite3.Row
        try:
            if feed_url is None:
                rows = db.execute("SELECT * FROM entries").fetchall()
            else:
                rows = db.execute(
                    "SELECT e.* FROM entries e JOIN entry_sources s ON s.entry_id = e.id "
                    "WHERE s.feed_url = ?",
                    [feed_url],
                ).fetchall()
            return [dict(r) for r in rows]
        finally:
            db.close()

    def titles(self, feed_url: str) -> set[str]:
        return {e["title"] for e in self.entries(feed_url)}

    def public(self, rel: str) -> str:
        return (self.data / "public" / rel).read_text(encoding="utf-8")


def _good_feed(*titles: str) -> bytes:
    now = datetime.now(UTC)
    items = [
        _item(
            t,
            "https://good.example/" + re.sub(r"\W+", "-", t),
            _http_date(now - timedelta(minutes=i)),
            f"About {t}.",
        )
        for i, t in enumerate(titles)
    ]
    return _rss("The Good Feed", "https://good.example/", items).encode()


EARLIER = ("Earlier story one from the victim", "Earlier story two from the victim")


def _before_and_after(
    run: Run, hostile_path: str, polls: int = 1, memory: bool = False
) -> tuple[str, float, int]:
    """Round 1: both feeds good. Round 2: the victim turns hostile. Returns round 2's fetch
    output (the last, if several polls), its wall time and its traced peak (0 unless asked)."""
    server = run.server
    server.files[run.good_path] = _good_feed(f"Good story before {run.name}")
    server.files[run.victim_path] = _good_feed(*EARLIER)
    first = run.cli("fetch")
    assert "2 ok, 0 failed" in first.stdout, first.stdout

    del server.files[run.victim_path]
    server.aliases[run.victim_path] = hostile_path
    server.files[run.good_path] = _good_feed(f"Fresh story for {run.name}", f"Good story before {run.name}")
    output, elapsed, peak = "", 0.0, 0
    for _ in range(polls):
        if memory:
            tracemalloc.start()
        started = time.monotonic()
        try:
            output = run.cli("fetch").stdout
            if memory:
                peak = max(peak, tracemalloc.get_traced_memory()[1])
        finally:
            if memory:
                tracemalloc.stop()
        elapsed = max(elapsed, time.monotonic() - started)
    return output, elapsed, peak


# -- case-specific checks ---------------------------------------------------------------------


def _no_expansion(run: Run) -> None:
    for e in run.entries(run.victim_url):
        assert "lollol" not in e["title"] and "AAAAAAAAAA" not in e["title"]
        assert len(e["title"]) <= 2001


def _no_file_read(run: Run) -> None:
    assert run.titles(run.victim_url) >= {"&xxe;", "Harmless item"}  # the reference stays inert
    for e in run.entries():
        assert "root:" not in e["title"] + e["summary"] + e["content"]


def _no_remote_dtd(run: Run) -> None:
    assert run.server.hits["/evil.dtd"] == 0 and run.server.hits["/collect"] == 0
    for e in run.entries():
        assert "REMOTE-DTD-WAS-LOADED" not in e["title"] + e["summary"] + e["content"]


def _titles_include(*titles: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert run.titles(run.victim_url) >= set(titles)

    return check


def _victim_has(count: int) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert len(run.entries(run.victim_url)) == len(EARLIER) + count

    return check


def _huge_title(run: Run) -> None:
    titles = run.titles(run.victim_url)
    assert "Weather: sunny spells" in titles
    long = [t for t in titles if t.startswith("Breaking: local council")]
    assert len(long) == 1 and len(long[0]) <= 2001 and long[0].endswith("…")


def _dates_are_believable(run: Run) -> None:
    now = datetime.now(UTC)
    by_title = {e["title"]: e for e in run.entries(run.victim_url)}
    assert by_title["A normal post"]["published"] == "2025-01-06T08:00:00+00:00"
    for title in ("Posted at the end of time", "Posted at the dawn of time", "Posted sometime",
                  "Posted from the future"):  # fmt: skip
        e = by_title[title]
        assert e["published"] == e["first_seen"], title  # first-seen time, not the claim
        assert abs(datetime.fromisoformat(e["published"]) - now) < timedelta(minutes=5)
    page = json.loads(run.public("index.json"))
    assert page["date"] == now.date().isoformat()  # not 9999-12-31


def _html_is_sanitised(run: Run) -> None:
    fragments: list[str] = []
    for ext in ("atom", "rss"):
        parsed = feedparser.parse(run.public(f"feeds/all.{ext}"), sanitize_html=False)
        for e in parsed.entries:
            fragments += [c["value"] for c in e.get("content", [])] + [e.get("summary", "")]
    fragments += [i.get("content_html", "") for i in json.loads(run.public("feeds/all.json"))["items"]]
    page = run.cli("frontpage", "--date", "2025-01-06", "--format", "html").stdout
    fragments.append(page)
    victim = [f for f in fragments if "Post 0 intro" in f or "Totally innocent" in f]
    assert len(victim) >= 3
    dangerous = ("<script", "onerror", "onload", "javascript:", "data:text/html", "<iframe",
                 "expression(", "<form", "<input", "<object", "<svg")  # fmt: skip
    for html in fragments:
        lowered = html.lower()
        for bad in dangerous:
            assert bad not in lowered, (bad, html[:300])
    content = "\n".join(fragments)
    for safe in ('href="https://example.org/"', 'src="https://example.org/a.png"',
                 "<ul><li>first</li><li>second</li></ul>", "<em>emphasis</em>",
                 "<strong>strong</strong>", "<blockquote>quoted wisdom</blockquote>"):  # fmt: skip
        assert safe in content, safe


# -- the cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    path: str
    failed: str | None = None  # words of the FAILED line; None: the feed is usable
    warning: str | None = None  # words of the warning of a usable feed
    check: Callable[[Run], None] | None = None
    memory: int = 0  # most bytes the run may allocate at its peak; 0: not measured
    polls: int = 1
    slow: bool = False  # takes the whole deadline


OVER = "is over the limit of 10,"  # 10,485,760 bytes, with or without "after decompression"
CASES = {
    # XML attacks: nothing expanded, nothing read, nothing fetched
    "billion-laughs": Case("/billion-laughs.xml", warning="entities; they were removed, not expanded",
                           check=_no_expansion, memory=BODY_LIMIT_PEAK),
    "quadratic": Case("/quadratic.xml", warning="entities; they were removed, not expanded",
                      check=_no_expansion, memory=BODY_LIMIT_PEAK),
    "xxe-file": Case("/xxe-file.xml", warning="removed, not expanded", check=_no_file_read),
    "xxe-remote": Case("/xxe-remote.xml", warning="removed, not expanded", check=_no_remote_dtd),
    # size
    "huge": Case("/huge.xml", failed="body of 52,428,800 bytes " + OVER, memory=BODY_LIMIT_PEAK),
    "huge-nolength": Case("/huge-nolength.xml", failed=OVER, memory=BODY_LIMIT_PEAK),
    "gzip-bomb": Case("/gzip-bomb.xml", failed="(counted after decompression)", memory=BODY_LIMIT_PEAK),
    "deflate-bomb": Case("/deflate-bomb.xml", failed="(counted after decompression)", memory=BODY_LIMIT_PEAK),
    "endless-chunked": Case("/endless-chunked.xml", failed=OVER, memory=BODY_LIMIT_PEAK),
    # time
    "slow-drip": Case("/slow-drip.xml", failed=f"no complete answer within {TIMEOUT_S} s", slow=True),
    "slow-headers": Case("/slow-headers.xml", failed=f"no complete answer within {TIMEOUT_S} s", slow=True),
    # broken transfers, statuses, redirects
    "lying-length": Case("/lying-length.xml", failed="server broke the HTTP protocol"),
    "reset": Case("/reset", failed="connection"),
    "not-found": Case("/not-found", failed="HTTP 404 Not Found"),
    "server-error": Case("/server-error", failed="HTTP 500 Internal Server Error"),
    "rate-limited": Case("/rate-limited", failed="HTTP 429 Too Many Requests; asked to wait until"),
    "redirect-loop": Case("/redirect-loop-a", failed="redirect loop: "),
    "redirect-chain": Case("/redirect-chain/6", failed="more than 5 redirects"),
    # (0.0.0.0 would reach this machine: harmless here, should the guard ever let it through)
    "redirect-ssrf": Case(
        "/redirect-to?url=http://0.0.0.0:{port}/ok.xml", failed="0.0.0.0 is an unspecified address"
    ),
    # not a feed
    "html-page": Case("/html-page", failed="this is a web page, not a feed; it advertises these feeds: "),
    "empty": Case("/empty", failed="the server sent an empty body"),
    "random-bytes": Case("/random-bytes", failed="not a feed: no RSS, Atom or JSON Feed document found"),
    "not-jsonfeed": Case("/not-jsonfeed.json", failed="JSON without a JSON Feed 'version'"),
    # broken but usable
    "bozo": Case("/bozo.xml", warning="not well-formed, entries recovered",
                 check=_titles_include("Fish & Chips, the proper way", "Sunday roast timings")),
    "utf16": Case("/utf16.xml", check=_titles_include(
        "Café crème et brioche", "Über die Brücke: Straßenbahn", "東京の桜 — 花見の季節")),
    "cp1251-as-utf8": Case("/cp1251-as-utf8.xml", warning="is declared as utf-8 but is not; read as cp1251",
                           check=_titles_include("Новости дня: погода в Москве", "Хоккей: итоги сезона")),
    "gb2312": Case("/gb2312.xml", check=_titles_include("科技新闻：北京发布新规", "经济观察")),
    # entries
    # two items share a guid but differ in title, link and date: both are kept, once each
    "dup-guids": Case("/dup-guids.xml", check=_victim_has(4), polls=2),
    "changing-guids": Case("/changing-guids.xml", check=_victim_has(3), polls=3),
    "huge-title": Case("/huge-title.xml", warning="a title longer than 2000 characters was truncated",
                       check=_huge_title, memory=HUGE_TITLE_PEAK),
    "weird-dates": Case("/weird-dates.xml", check=_dates_are_believable),
    "xss": Case("/xss.xml", check=_html_is_sanitised),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_feed_costs_only_itself(server: HostileServer, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    run = Run(server, tmp_path, name)
    path = case.path.replace("{port}", str(server.port))
    output, elapsed, peak = _before_and_after(run, path, case.polls, bool(case.memory))

    # In time: the victim's deadline (plus start-up and the good feed) bounds the run.
    assert elapsed < TIMEOUT_S + 3 if case.slow else elapsed < 5, elapsed
    if case.memory:
        assert peak < case.memory, f"peak {peak:,} bytes"

    # In words, in the summary and in `status`.
    victim = run.feed_status("Victim")
    if case.failed:
        line = next((x for x in output.splitlines() if x.strip().startswith("FAILED   Victim:")), "")
        assert case.failed in line, output
        assert "1 ok, 1 failed" in output
        assert victim["last_error"] and case.failed in victim["last_error"]
        assert victim["error_count"] == 1
    else:
        assert "2 ok, 0 failed" in output, output
        assert victim["last_error"] is None and victim["error_count"] == 0
        if case.warning:
            assert "warning  Victim: " in output and case.warning in output, output
            assert victim["warning"] and case.warning in victim["warning"]

    # The good feed's new entry is stored and published; the victim's earlier ones are kept.
    fresh = f"Fresh story for {name}"
    assert fresh in run.titles(run.good_url)
    assert fresh in run.public("feeds/all.atom") and fresh in run.public("index.html")
    assert run.titles(run.victim_url) >= set(EARLIER)
    if case.check:
        case.check(run)


# -- politeness, end to end ---------------------------------------------------------------------


def test_304_skips_parsing_and_writes_only_the_poll_record(
    server: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(server, tmp_path, "conditional")
    # Both answer 304 to their own validators.
    server.aliases[run.good_path] = "/gen/conditional.xml?items=2"
    server.aliases[run.victim_path] = "/ok.xml"
    run.cli("fetch")

    import aggregator.parse
    import aggregator.store

    parsed: list[str] = []
    real_parse = aggregator.parse.parse_feed

    def counting_parse(body: bytes, headers: Any, url: str) -> Any:
        parsed.append(url)
        return real_parse(body, headers, url)

    statements: list[str] = []
    real_init = aggregator.store.SQLiteStore.__init__

    def tracing_init(self: aggregator.store.SQLiteStore, path: Any, **kwargs: Any) -> None:
        real_init(self, path, **kwargs)
        self.db.conn.set_trace_callback(statements.append)

    monkeypatch.setattr(aggregator.parse, "parse_feed", counting_parse)
    monkeypatch.setattr(aggregator.store.SQLiteStore, "__init__", tracing_init)
    before = run.entries()
    output = run.cli("fetch", "--no-publish").stdout
    assert "2 ok, 0 failed; 0 new" in output
    assert parsed == []  # neither 304 reached the parser
    assert [s for s in statements if "entries" in s or "entry_sources" in s] == []  # not even read
    writes = [
        " ".join(s.split()[:3])
        for s in statements
        if re.match(r"\s*(INSERT|UPDATE|DELETE|REPLACE)", s)
        and not s.lstrip().startswith("INSERT INTO feeds")
    ]  # (INSERT INTO feeds ... ON CONFLICT is feeds.yaml's names being synced)
    assert sorted(writes) == [
        "DELETE FROM fetch_log",  # pruning, once per run
        "INSERT INTO fetch_log",
        "INSERT INTO fetch_log",
        "UPDATE feeds SET",
        "UPDATE feeds SET",
    ]
    assert run.entries() == before
    # Both polls sent their validators.
    for path in (run.good_path, run.victim_path):
        assert [h for p, h in server.requests if p == path][-1].get("if-none-match")


def test_gone_feed_is_skipped_and_keeps_its_entries(server: HostileServer, tmp_path: Path) -> None:
    run = Run(server, tmp_path, "gone")
    _before_and_after(run, "/gone")
    victim = run.feed_status("Victim")
    assert victim["gone"] is True and victim["next_poll"] is None
    table = run.cli("status").stdout
    assert "410 Gone: no longer polled (its entries are kept); remove it from feeds.yaml" in table
    assert re.search(r"Victim .* never ", table)  # next poll
    hits = server.hits[run.victim_path]
    output = run.cli("fetch").stdout
    assert server.hits[run.victim_path] == hits  # not polled again
    assert "polled 1 feeds" in output and "1 skipped (gone)" in output
    assert "SKIPPED  Victim: not polled: it answered 410 Gone earlier" in output
    assert run.titles(run.victim_url) >= set(EARLIER)
    assert all(t in run.public("feeds/all.atom") for t in EARLIER)
    # Naming the feed asks to try again; once it answers, it is polled as usual.
    server.aliases[run.victim_path] = "/ok.xml"
    output = run.cli("fetch", "--feed", "Victim").stdout
    assert server.hits[run.victim_path] == hits + 1 and "1 ok, 0 failed" in output
    assert run.feed_status("Victim")["gone"] is False


MOVES = [
    ("/moved-permanently", True),
    ("/moved-308", True),
    ("/moved-temporarily", False),
    ("/moved-307", False),
]


@pytest.mark.parametrize(("path", "permanent"), MOVES)
def test_permanent_moves_are_remembered_and_reported(
    server: HostileServer, tmp_path: Path, path: str, permanent: bool
) -> None:
    run = Run(server, tmp_path, "moved" + path.replace("/", "-"))
    server.files[run.good_path] = _good_feed("Only story")
    server.aliases[run.victim_path] = path  # redirects to /ok.xml
    run.cli("fetch")
    hits = server.hits[run.victim_path]
    run.cli("fetch")
    victim = run.feed_status("Victim")
    ok_url = server.url("/ok.xml")
    if permanent:
        assert server.hits[run.victim_path] == hits  # the remembered URL was used instead
        assert victim["moved_to"] == ok_url
        table = run.cli("status").stdout
        assert f"moved permanently to {ok_url}: update feeds.yaml" in table
        history = json.loads(run.cli("status", "--feed", "Victim", "--json").stdout)["polls"]
        assert [p["url"] for p in history] == [ok_url, ok_url]
        assert [p["status"] for p in history] == [304, 200]
    else:
        assert server.hits[run.victim_path] == hits + 1  # asked again every time
        assert victim["moved_to"] is None
    assert run.feed_status("Victim")["outcome"] == "not-modified"
    # feeds.yaml is never rewritten.
    assert run.victim_url in run.config.read_text()


def test_status_shows_history_errors_and_next_poll(server: HostileServer, tmp_path: Path) -> None:
    run = Run(server, tmp_path, "history")
    _before_and_after(run, "/server-error")
    run.cli("fetch")
    victim = run.feed_status("Victim")
    assert victim["error_count"] == 2 and victim["last_error"] == "HTTP 500 Internal Server Error"
    assert victim["interval"] == "15m" and victim["interval_seconds"] == 900
    next_poll = datetime.fromisoformat(victim["next_poll"])
    # 15m x 4 +-10% from the poll's start (not from now: a loaded machine took >1 s to get here)
    polled = datetime.fromisoformat(victim["last_polled"])
    assert timedelta(minutes=54) <= next_poll - polled <= timedelta(minutes=66)
    assert polled <= datetime.now(UTC)
    history = json.loads(run.cli("status", "--feed", "Victim", "--json").stdout)["polls"]
    assert [(p["status"], p["outcome"]) for p in history] == [
        (500, "http-error"), (500, "http-error"), (200, "ok")
    ]  # fmt: skip
    assert history[0]["error"] == "HTTP 500 Internal Server Error" and history[2]["bytes"] > 0
    assert all(p["duration_ms"] >= 0 and p["started"] for p in history)
    table = run.cli("status", "--feed", "Victim").stdout
    assert "HTTP 500 Internal Server Error" in table and "http-error" in table


def test_fetch_log_is_pruned_to_its_retention(server: HostileServer, tmp_path: Path) -> None:
    run = Run(server, tmp_path, "prune")
    server.files[run.good_path] = _good_feed("Only story")
    server.aliases[run.victim_path] = "/ok.xml"
    run.cli("fetch")
    db = sqlite3.connect(run.data / "aggregator.db")
    with db:
        db.execute("UPDATE fetch_log SET started = '2000-01-01T00:00:00+00:00'")
    db.close()
    run.config.write_text(run.config.read_text() + "fetch:\n  log_retention: 7d\n", encoding="utf-8")
    run.cli("fetch")
    db = sqlite3.connect(run.data / "aggregator.db")
    started = [r[0] for r in db.execute("SELECT started FROM fetch_log")]
    db.close()
    assert len(started) == 2 and all(s > "2020" for s in started)


# -- the DOCTYPE guard and encodings, at the parser ---------------------------------------------

# Every way found to slip a DOCTYPE past a naive guard (or past feedparser's own, which
# re-declares "safe" entities for its fallback parser). Each body declares entity `a` as 100 KB
# and uses it 10,000 times (1 GB if expanded), or points at the server's /evil.dtd.
_QUAD = '<!DOCTYPE rss [\n<!ENTITY a "' + "A" * 100_000 + '">\n]>\n'
_ITEMS = "<item><title>" + "&a;" * 10_000 + "</title><link>https://q.example/1</link></item>"
_RSS = '<rss version="2.0"><channel><title>T</title>' + _ITEMS + "</channel></rss>"
DOCTYPE_TRICKS = {
    "plain": '<?xml version="1.0"?>\n' + _QUAD + _RSS,
    "lowercase": '<?xml version="1.0"?>\n' + _QUAD.replace("DOCTYPE", "doctype") + _RSS,
    "one line": '<?xml version="1.0"?>' + _QUAD.replace("\n", "") + _RSS,
    "after comment and PI": '<?xml version="1.0"?><!-- c --><?pi x?>\n' + _QUAD + _RSS,
    "after 70 KB of comment": '<?xml version="1.0"?><!--' + "x" * 70_000 + "-->" + _QUAD + _RSS,
    "comment holding a tag": '<?xml version="1.0"?><!-- <b> -->' + _QUAD + _RSS,
    "unterminated comment": '<?xml version="1.0"?><!-- never closed\n' + _QUAD + _RSS,
    "text before": "junk\n" + _QUAD + _RSS,
    "non-ASCII root first": '<?xml version="1.0"?>\n<é>\n' + _QUAD + _RSS,
    "quoted ]> in a value": '<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY b "]>"><!ENTITY a "'
    + "A" * 100_000
    + '">]>\n'
    + _RSS,
    "ENTITY without DOCTYPE": '<?xml version="1.0"?>\n<!ENTITY a "' + "A" * 100_000 + '">\n' + _RSS,
    "two DOCTYPEs": '<?xml version="1.0"?>\n<!DOCTYPE x>\n' + _QUAD + _RSS,
}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize("trick", list(DOCTYPE_TRICKS))
def test_doctype_guard_leaves_nothing_to_expand(trick: str, encoding: str) -> None:
    from aggregator.models import NotAFeed
    from aggregator.parse import parse_feed

    text = DOCTYPE_TRICKS[trick]
    if encoding == "utf-16":
        text = text.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>')
    tracemalloc.start()
    started = time.monotonic()
    try:
        feed = parse_feed(text.encode(encoding), {"content-type": "application/rss+xml"}, "http://h/")
        titles = [e.title for e in feed.entries]
    except NotAFeed:
        titles = []  # also fine: nothing expanded, nothing parsed
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.monotonic() - started < 2
    assert peak < 16 * MB, f"peak {peak:,}"
    assert all("AAAAAAAAAA" not in t for t in titles)


def test_external_entities_are_never_fetched(server: HostileServer) -> None:
    from aggregator.parse import parse_feed

    dtd = server.url("/evil.dtd")
    bodies = [
        f'<!DOCTYPE rss SYSTEM "{dtd}"><rss version="2.0"><channel><title>&remote;</title></channel></rss>',
        f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{dtd}"> %p;]><rss version="2.0"><channel><title>t</title>'
        "<item><title>&remote;</title></item></channel></rss>",
        f'<!DOCTYPE rss [<!ENTITY e SYSTEM "{dtd}">]><rss version="2.0"><channel><title>t</title>'
        "<item><title>&e;</title></item></channel></rss>",
        '<!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel>'
        "<title>t</title><item><title>&e;</title></item></channel></rss>",
    ]
    for body in bodies:
        feed = parse_feed(body.encode(), {"content-type": "application/rss+xml"}, "http://h/")
        assert all("root:" not in e.title and "REMOTE" not in e.title for e in feed.entries)
    assert server.hits["/evil.dtd"] == 0


def test_a_harmless_doctype_costs_nothing() -> None:
    from aggregator.parse import parse_feed

    body = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"\n'
        ' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
        '<rss version="0.91"><channel><title>Old</title><link>https://old.example/</link>'
        "<item><title>Still here</title><link>https://old.example/1</link></item></channel></rss>"
    )
    feed = parse_feed(body.encode(), {"content-type": "text/xml"}, "http://h/")
    assert [e.title for e in feed.entries] == ["Still here"] and feed.warning is None


@pytest.mark.parametrize(
    ("charset", "encoding", "warning"),
    [
        ("utf-8", "cp1251", "is declared as utf-8 but is not; read as cp1251"),
        ("utf-8", "koi8-r", "read as koi8"),
        (None, "utf-8", None),  # text/xml without charset means us-ascii; UTF-8 is no surprise
        ("windows-1251", "cp1251", None),
    ],
)
def test_mislabelled_encodings_are_repaired(charset: str | None, encoding: str, warning: str | None) -> None:
    from aggregator.parse import parse_feed

    titles = ["Новости дня: погода в Москве", "Курс рубля и рынок акций", "Хоккей: итоги сезона"]
    items = "".join(
        f"<item><title>{t}</title><link>https://ru.example/{i}</link></item>" for i, t in enumerate(titles)
    )
    body = f'<rss version="2.0"><channel><title>Лента</title>{items}</channel></rss>'.encode(encoding)
    ctype = f"text/xml; charset={charset}" if charset else "text/xml"
    feed = parse_feed(body, {"content-type": ctype}, "http://h/")
    assert [e.title for e in feed.entries] == titles
    if warning:
        assert feed.warning and warning in feed.warning
    else:
        assert feed.warning is None
