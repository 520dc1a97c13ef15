"""Front pages: plain text (the seed's shape), HTML and JSON. Pure and deterministic."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from ..config import Site
from ..models import StoredEntry
from .common import (
    FrontPage,
    capitalise,
    direction,
    entry_title,
    heading,
    language_name,
    lede,
    safe_link,
)


# -- front pages --------------------------------------------------------------
def frontpage_text(page: FrontPage, site: Site) -> str:
    if page.day is None:
        return _empty_text(page)
    out = [heading(page.day, page.language, site), ""]
    for section in page.sections:
        for e in section.entries:
            out += ["", entry_title(e), ""]
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
                "title": entry_title(e),
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
        f'<a href="{root}{code}/" lang="{code}">{escape(capitalise(language_name(code, code)))}</a>'
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
                    f"<h2>{escape(capitalise(language_name(code, code or 'en')))}</h2>"
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


def _article_html(e: StoredEntry, also_in: tuple[tuple[str, str], ...], site: Site) -> str:
    code = e.language_tag or e.language or "und"
    title = escape(entry_title(e))
    link = safe_link(e.link)
    head = f'<a href="{escape(link)}">{title}</a>' if link else title
    sources = " · ".join(escape(s.feed_name) for s in e.sources)
    also = ""
    if also_in:
        links = " · ".join(
            f'<a href="{escape(href)}" hreflang="{escape(hl)}" lang="{escape(hl)}">{escape(hl.upper())}</a>'
            for hl, href in also_in
            if safe_link(href)
        )
        also = f'<p class="src">also in: {links}</p>' if links else ""
    return (
        f'<article lang="{escape(code)}" dir="{direction(e.language)}"><h3>{head}</h3>'
        f"<p>{escape(lede(e))}</p>"
        f'<p class="src"><time datetime="{e.published.isoformat()}">'
        f"{escape(e.published.astimezone(site.zone).strftime('%H:%M %Z'))}</time>"
        f" · via {sources}</p>{also}</article>"
    )
