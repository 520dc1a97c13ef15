"""Languages end to end: scripts, directions, translations and out-of-site languages, on both
stores (the `store_url` fixture: SQLite, then PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser

from tests.conftest import FIXTURES, read_store, run_cli
from tests.feedserver import FeedServer

CORPUS = FIXTURES / "corpus"

HEBREW = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>חדשות</title><link>https://he.example/</link>
<description>d</description><language>he</language>
<item><title>שביתה כללית בפרו נגד ההפיכה</title><link>https://he.example/1</link>
<pubDate>Tue, 17 Jan 2023 10:00:00 +0200</pubDate>
<description>העובדים והאיכרים ממשיכים במאבק נגד הממשלה הבלתי לגיטימית.</description></item>
</channel></rss>""".encode()


def translated_trio() -> bytes:
    """One article in three languages, each entry naming the others (Atom hreflang)."""
    links = {
        "en": "https://site.example/en/peru-general-strike",
        "es": "https://site.example/es/peru-huelga-general",
        "fr": "https://site.example/fr/perou-greve-generale",
    }
    titles = {
        "en": "Peru: general strike against the coup spreads across the south",
        "es": "Perú: la huelga general contra el golpe se extiende por el sur",
        "fr": "Pérou : la grève générale contre le coup d'État s'étend dans le sud",
    }
    entries = ""
    for lang, link in links.items():
        alternates = "".join(
            f'<link rel="alternate" hreflang="{other}" href="{href}"/>'
            for other, href in links.items()
            if other != lang
        )
        entries += (
            f'<entry xml:lang="{lang}"><id>{link}</id><title>{titles[lang]}</title>'
            f'<link rel="alternate" href="{link}"/>{alternates}'
            f"<updated>2023-01-17T12:00:00Z</updated><summary>{titles[lang]}.</summary></entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Site</title><id>https://site.example/</id><updated>2023-01-17T12:00:00Z</updated>{entries}</feed>"
    ).encode()


def setup(tmp_path: Path, server: FeedServer) -> tuple[Path, Path]:
    feeds = [
        (server.add_file("/el.xml", CORPUS / "liberal-gr-1item.xml"), "Greek", "el"),
        (server.add_file("/ur.xml", CORPUS / "bbcurdu-pakistan.xml"), "Urdu", "auto"),
        (server.add_file("/zh.xml", CORPUS / "kc0011-forum.xml"), "Chinese", "auto"),
        (server.add_file("/ru.xml", CORPUS / "ibash-windows1251.xml"), "Russian", "ru"),
        (server.add("/he.xml", HEBREW, "application/rss+xml"), "Hebrew", "auto"),
        (server.add("/trio.atom", translated_trio(), "application/atom+xml"), "Trio", "auto"),
        (server.add_file("/de.atom", CORPUS / "heise-developer.atom"), "German", "auto"),
    ]
    lines = ["site:", f"  base_url: {server.base_url}/", "  languages: [en, es, fr, ru, el, ur, zh, he]",
             "  entries_per_feed: 500", "feeds:"]  # fmt: skip
    for url, name, lang in feeds:
        lines += [f"  - url: {url}", f"    name: {name}", f"    language: {lang}"]
    config = tmp_path / "feeds.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    result = run_cli("fetch", config=config, data=data)
    assert result.returncode == 0 and "7 ok, 0 failed" in result.stdout, result.stdout + result.stderr
    return config, data


def test_scripts_directions_translations_and_other_languages(
    tmp_path: Path, feed_server: FeedServer, store_url: str | None
) -> None:
    config, data = setup(tmp_path, feed_server)
    with read_store(data) as store:
        entries = store.latest(None, store.count_entries())
    by_feed: dict[str, set[str | None]] = {}
    for e in entries:
        for s in e.sources:
            by_feed.setdefault(s.feed_name, set()).add(e.language)
    assert by_feed["Greek"] == {"el"} and by_feed["Russian"] == {"ru"} and by_feed["Hebrew"] == {"he"}
    assert by_feed["Urdu"] == {"ur"}  # declared in the document
    assert by_feed["Chinese"] == {"zh"}
    assert by_feed["German"] == {"de"}  # identified, and outside site.languages
    assert by_feed["Trio"] == {"en", "es", "fr"}

    # Text survives every encoding (ISO-8859-7, GB18030, Windows-1251) intact.
    titles = {e.title for e in entries}
    assert any(t.startswith("«Πορτραίτα καραντίνας»") for t in titles)
    assert any(t.startswith("建国35周年纪念") for t in titles)

    # Out-of-site languages: in the combined outputs only, and counted by status.
    status = json.loads(run_cli("status", "--json", config=config, data=data).stdout)
    assert status["entries_outside_site_languages"] == status["entries_by_language"]["de"] == 15
    public = data / "public"
    assert not (public / "feeds" / "de.atom").exists()
    all_titles = {e.title for e in feedparser.parse((public / "feeds" / "all.atom").read_bytes()).entries}
    assert any(t.startswith("Java-Anwendungsserver") for t in all_titles)

    # Each entry marks its language, right-to-left ones their direction.
    page = json.loads(
        run_cli("frontpage", "--date", "2023-01-17", "--format", "json", config=config, data=data).stdout
    )
    html = run_cli("frontpage", "--date", "2023-01-17", "--format", "html", config=config, data=data).stdout
    assert '<article lang="he" dir="rtl">' in html
    assert '<article lang="en" dir="ltr">' in html
    ur_page = (public / "ur" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="ur" dir="rtl">' in ur_page and 'lang="ur" dir="rtl"' in ur_page

    # Translations link to each other, in site.languages order.
    trio = {e["language"]: e for e in page["entries"] if e["link"] and "site.example" in e["link"]}
    assert [t["lang"] for t in trio["en"]["also_in"]] == ["es", "fr"]
    assert [t["lang"] for t in trio["fr"]["also_in"]] == ["en", "es"]
    assert 'also in: <a href="https://site.example/es/peru-huelga-general" hreflang="es"' in html
