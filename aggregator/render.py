"""Pure rendering: stored entries -> front pages (text, HTML, JSON) and feeds (Atom, RSS, JSON Feed).

Every function here is deterministic in its arguments, so unchanged inputs give
byte-identical outputs (their ETags do not change).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html import escape
from typing import Any
from urllib.parse import urljoin, urlsplit

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date
from feedgen.feed import FeedGenerator

from .config import Site
from .models import FeedState, StoredEntry
from .text import make_lede, sanitize_html, shorten

RTL_LANGUAGES = {"ar", "he", "fa", "ur", "yi", "ps", "sd", "ug", "dv", "ckb"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Section:
    language: str | None  # None: language unknown
    entries: tuple[StoredEntry, ...]


@dataclass(frozen=True, slots=True)
class FrontPage:
    day: date | None  # None: nothing stored yet
    language: str  # a language code or "all"
    sections: tuple[Section, ...]
    failing: tuple[FeedState, ...] = ()  # shown while the page is empty
    also_in: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # id -> (lang, link)


def locale_for(language: str, site: Site) -> str:
    """Babel locale for dates: an explicit site.locales entry, else the language in the
    site's country (en + Europe/London -> en_GB), else the language alone."""
    if language in site.locales:
        return site.locales[language]
    territory = get_global("zone_territories").get(site.timezone)
    if territory:
        try:
            Locale.parse(f"{language}_{territory}")
            return f"{language}_{territory}"
        except (UnknownLocaleError, ValueError):
            pass
    return language


def heading(day: date, language: str, site: Site) -> str:
    lang = site.languages[0] if language == "all" else language
    try:
        return str(format_date(day, "full", locale=locale_for(lang, site)))
    except (UnknownLocaleError, ValueError):
        return day.isoformat()


def language_name(code: str | None, in_language: str = "en") -> str:
    if code is None:
        return "Other"
    try:
        name = Locale.parse(code).get_display_name(in_language)
    except (UnknownLocaleError, ValueError):
        return code
    return str(name) if name else code


def direction(language: str | None) -> str:
    return "rtl" if language in RTL_LANGUAGES else "ltr"


def lede(entry: StoredEntry, limit: int = 600) -> str:
    """The entry's lede as plain text (`text.make_lede`); `limit` is site.lede_length."""
    return make_lede(entry.summary, entry.content, limit)


def _title(entry: StoredEntry) -> str:
    return entry.title or shorten(lede(entry), 80) or "(untitled)"


# -- front pages --------------------------------------------------------------
def frontpage_text(page: FrontPage, site: Site) -> str:
    if page.day is None:
        return _empty_text(page)
    out = [heading(page.day, page.language, site), ""]
    for section in page.sections:
        for e in section.entries:
            out += ["", _title(e), ""]
            text = lede(e)
            if text:
                out.append(text)
    return "\n".join(out).rstrip() + "\n"


def _empty_text(page: FrontPage) -> str:
    lines = ["No entries yet."]
    if page.failing:
        lines += ["", "Feeds that are failing:"]
        lines += [f"- {f.name} <{f.url}>: {f.last_error}" for f in page.failing]
    return "\n".join(lines) + "\n"


def frontpage_json(page: FrontPage) -> str:
    doc: dict[str, Any] = {
        "date": page.day.isoformat() if page.day else None,
        "lang": page.language,
        "entries": [
            {
                "id": e.id,
                "title": _title(e),
                "link": e.link,
                "summary": lede(e),
                "language": e.language,
                "published": e.published.isoformat(),
                "sources": [{"feed": s.feed_url, "name": s.feed_name, "link": s.link} for s in e.sources],
                "also_in": [{"lang": lang, "link": link} for lang, link in page.also_in.get(e.id, ())],
            }
            for section in page.sections
            for e in section.entries
        ],
    }
    if page.day is None:
        doc["failing"] = [{"feed": f.url, "name": f.name, "error": f.last_error} for f in page.failing]
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def frontpage_html(page: FrontPage, site: Site, root: str = "/") -> str:
    """A standalone HTML page. `root` is the path prefix of the published tree."""
    lang = site.languages[0] if page.language == "all" else page.language
    title = site.title if page.language == "all" else f"{site.title} — {language_name(lang, lang)}"
    nav = [f'<a href="{root}">All</a>']
    nav += [
        f'<a href="{root}{code}/" lang="{code}">{escape(_capital(language_name(code, code)))}</a>'
        for code in site.languages
    ]
    feed_name = page.language
    alt = "".join(
        f'<link rel="alternate" type="{mime}" href="{root}feeds/{feed_name}.{ext}" '
        f'title="{escape(title)} ({label})">'
        for ext, mime, label in (
            ("atom", "application/atom+xml", "Atom"),
            ("rss", "application/rss+xml", "RSS"),
            ("json", "application/feed+json", "JSON Feed"),
        )
    )
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(lang)}" dir="{direction(lang)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        alt,
        "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
        "line-height:1.5}nav a{margin-right:.8rem}article{margin:1.6rem 0}h3{margin:.2rem 0}"
        ".src{color:#666;font-size:.85rem}.failing{color:#a00}</style>",
        "</head>",
        "<body>",
        f'<header><h1><a href="{escape(str(site.link))}">{escape(site.title)}</a></h1>',
        f"<nav>{' '.join(nav)}</nav></header>",
        "<main>",
    ]
    if page.day is None:
        parts.append("<p>No entries yet: the feeds have not delivered anything so far.</p>")
        if page.failing:
            parts.append('<h2>Feeds that are failing</h2><ul class="failing">')
            for f in page.failing:
                parts.append(
                    f"<li>{escape(f.name)} &lt;{escape(f.url)}&gt;: {escape(f.last_error or '')}</li>"
                )
            parts.append("</ul>")
    else:
        parts.append(
            f'<h2><time datetime="{page.day.isoformat()}">'
            f"{escape(heading(page.day, page.language, site))}</time></h2>"
        )
        for section in page.sections:
            code = section.language
            if page.language == "all":
                parts.append(
                    f'<section lang="{escape(code or "und")}" dir="{direction(code)}">'
                    f"<h2>{escape(_capital(language_name(code, code or 'en')))}</h2>"
                )
            else:
                parts.append("<section>")
            for e in section.entries:
                parts.append(_article_html(e, page.also_in.get(e.id, ()), site))
            parts.append("</section>")
    parts += [
        "</main>",
        f'<footer><p>Feeds: <a href="{root}feeds/{feed_name}.atom">Atom</a> · '
        f'<a href="{root}feeds/{feed_name}.rss">RSS</a> · '
        f'<a href="{root}feeds/{feed_name}.json">JSON Feed</a></p></footer>',
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _capital(name: str) -> str:
    """'español' -> 'Español': CLDR names are lower-case mid-sentence, these start a heading."""
    return name[:1].upper() + name[1:]


def _article_html(e: StoredEntry, also_in: tuple[tuple[str, str], ...], site: Site) -> str:
    code = e.language_tag or e.language or "und"
    title = escape(_title(e))
    link = _safe_link(e.link)
    head = f'<a href="{escape(link)}">{title}</a>' if link else title
    sources = " · ".join(escape(s.feed_name) for s in e.sources)
    also = ""
    if also_in:
        links = " · ".join(
            f'<a href="{escape(href)}" hreflang="{escape(hl)}" lang="{escape(hl)}">{escape(hl.upper())}</a>'
            for hl, href in also_in
            if _safe_link(href)
        )
        also = f'<p class="src">also in: {links}</p>' if links else ""
    return (
        f'<article lang="{escape(code)}" dir="{direction(e.language)}"><h3>{head}</h3>'
        f"<p>{escape(lede(e))}</p>"
        f'<p class="src"><time datetime="{e.published.isoformat()}">'
        f"{escape(e.published.astimezone(site.zone).strftime('%H:%M %Z'))}</time>"
        f" · via {sources}</p>{also}</article>"
    )


def _safe_link(url: str | None) -> str | None:
    if not url:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


# -- feeds --------------------------------------------------------------------
def _feed_meta(site: Site, language: str) -> tuple[str, str, str]:
    base = str(site.base_url)
    self_base = urljoin(base, f"feeds/{language}")
    page = urljoin(base, "" if language == "all" else f"{language}/")
    title = site.title if language == "all" else f"{site.title} ({language_name(language, language)})"
    return self_base, page, title


def atom_id(entry: StoredEntry, site: Site) -> str:
    """A tag: URI that stays the same however often outputs are rebuilt."""
    host = urlsplit(str(site.link)).hostname or "localhost"
    return f"tag:{host},2023:entry:{entry.id}"


def _generator(entries: list[StoredEntry], site: Site, language: str, ext: str) -> FeedGenerator:
    self_base, page, title = _feed_meta(site, language)
    fg = FeedGenerator()
    fg.id(f"{self_base}.atom")
    fg.title(title)
    fg.link(href=f"{self_base}.{ext}", rel="self")
    fg.link(href=page, rel="alternate")
    fg.description(
        f"Latest entries from {site.title}" + ("" if language == "all" else f" in {language_name(language)}")
    )
    if language != "all":
        fg.language(language)
    fg.generator("aggregator")
    newest = max((e.updated or e.published for e in entries), default=EPOCH)
    fg.updated(newest)  # from the entries, not the clock: unchanged input, unchanged bytes
    fg.lastBuildDate(newest)
    for e in entries:
        fe = fg.add_entry(order="append")
        fe.id(atom_id(e, site))
        fe.guid(atom_id(e, site), permalink=False)
        fe.title(_title(e))
        if _safe_link(e.link):
            fe.link(href=e.link, rel="alternate")
        fe.published(e.published)
        fe.updated(e.updated or e.published)
        summary = sanitize_html(e.summary)
        content = sanitize_html(e.content)
        if summary:
            fe.summary(summary, type="html")
        if content:
            fe.content(content, type="html")
        elif not summary:
            fe.description(escape(lede(e)))
        if e.author:
            fe.author(name=e.author)
        for term in e.categories:
            fe.category(term=term)
        for enc in e.enclosures:
            if _safe_link(enc.url):
                fe.enclosure(enc.url, str(enc.length or 0), enc.type or "application/octet-stream")
        if e.sources:
            fe.source(url=e.sources[0].feed_url, title=e.sources[0].feed_name)
    return fg


def atom_feed(entries: list[StoredEntry], site: Site, language: str) -> bytes:
    return bytes(_generator(entries, site, language, "atom").atom_str(pretty=True))


def rss_feed(entries: list[StoredEntry], site: Site, language: str) -> bytes:
    return bytes(_generator(entries, site, language, "rss").rss_str(pretty=True))


def json_feed(entries: list[StoredEntry], site: Site, language: str) -> str:
    self_base, page, title = _feed_meta(site, language)
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": page,
        "feed_url": f"{self_base}.json",
    }
    if language != "all":
        doc["language"] = language
    items = []
    for e in entries:
        item: dict[str, Any] = {"id": atom_id(e, site)}
        if _safe_link(e.link):
            item["url"] = e.link
        item["title"] = _title(e)
        content = sanitize_html(e.content) or sanitize_html(e.summary)
        summary = lede(e)
        item["content_html"] = content or escape(summary)
        if summary:
            item["summary"] = summary
        item["date_published"] = e.published.isoformat()
        if e.updated:
            item["date_modified"] = e.updated.isoformat()
        if e.author:
            item["authors"] = [{"name": e.author}]
        if e.categories:
            item["tags"] = list(e.categories)
        if e.language_tag or e.language:
            item["language"] = e.language_tag or e.language
        attachments = [
            {
                "url": x.url,
                "mime_type": x.type or "application/octet-stream",
                **({"size_in_bytes": x.length} if x.length else {}),
            }
            for x in e.enclosures
            if _safe_link(x.url)
        ]
        if attachments:
            item["attachments"] = attachments
        item["_aggregator"] = {
            "sources": [{"feed_url": s.feed_url, "name": s.feed_name, "link": s.link} for s in e.sources]
        }
        items.append(item)
    doc["items"] = items
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
