"""Entry feeds: Atom 1.0 and RSS 2.0 (feedgen) and JSON Feed 1.1. Pure and deterministic."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import urljoin

from feedgen.feed import FeedGenerator

from ..config import Site
from ..models import StoredEntry
from ..text import sanitize_html
from .common import EPOCH, atom_id, entry_title, language_name, lede, safe_link


# -- feeds --------------------------------------------------------------------
def _feed_meta(site: Site, language: str) -> tuple[str, str, str]:
    base = str(site.base_url)
    self_base = urljoin(base, f"feeds/{language}")
    page = urljoin(base, "" if language == "all" else f"{language}/")
    title = site.title if language == "all" else f"{site.title} ({language_name(language, language)})"
    return self_base, page, title


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
        fe.title(entry_title(e))
        if safe_link(e.link):
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
            if safe_link(enc.url):
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
        if safe_link(e.link):
            item["url"] = e.link
        item["title"] = entry_title(e)
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
            if safe_link(x.url)
        ]
        if attachments:
            item["attachments"] = attachments
        item["_aggregator"] = {
            "sources": [{"feed_url": s.feed_url, "name": s.feed_name, "link": s.link} for s in e.sources]
        }
        items.append(item)
    doc["items"] = items
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
