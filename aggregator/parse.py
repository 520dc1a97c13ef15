"""Bytes + HTTP headers -> ParsedFeed. Nothing else: no language, dedupe or storage here.

XML formats go through feedparser (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, with the HTTP charset
honoured by passing the response headers). feedparser 6.0 does not read JSON Feed, so
JSON Feed 1.0/1.1 is read here into the same typed result.
"""

from __future__ import annotations

import calendar
import email.utils
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser

from .models import Enclosure, ParsedEntry, ParsedFeed

MAX_TITLE_CHARS = 2000  # longer titles are truncated with a warning, never stored whole
_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*>", re.IGNORECASE)


class NotAFeed(Exception):
    """The body is not a feed; the message says what it is instead, for an operator."""

    def __init__(self, message: str, alternates: tuple[str, ...] = ()) -> None:
        self.alternates = alternates
        super().__init__(message)


def parse_feed(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse a fetched body. `headers` are the response headers (lower-case names)."""
    ctype = headers.get("content-type", "").lower()
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise NotAFeed("the server sent an empty body")
    if "json" in ctype or head.startswith(b"{"):
        return _parse_json_feed(body, url)
    return _parse_xml(body, headers, url)


def _strip_doctype(body: bytes) -> bytes:
    """Drop DOCTYPE declarations before parsing.

    Feeds have no business declaring entities; an internal subset is how entity-expansion
    (billion laughs) and external-entity attacks arrive, so it never reaches a parser.
    """
    window = body[:65536]
    if b"<!DOCTYPE" not in window.upper() and b"<!doctype" not in window:
        return body
    cleaned = _DOCTYPE_SUBSET.sub(b"", window, count=1)
    cleaned = _DOCTYPE.sub(b"", cleaned, count=1)
    return cleaned + body[65536:]


def _parse_xml(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    response_headers = dict(headers)
    response_headers["content-location"] = url  # base for relative links
    d = feedparser.parse(
        _strip_doctype(body),
        response_headers=response_headers,
        resolve_relative_uris=True,
        sanitize_html=False,  # sanitised once, with nh3, when rendered
    )
    version = d.get("version") or ""
    if not version and not d.entries:
        alternates = _html_alternates(body, url)
        if alternates:
            raise NotAFeed(
                "this is a web page, not a feed; it advertises these feeds: " + ", ".join(alternates),
                alternates,
            )
        problem = d.get("bozo_exception")
        detail = f" ({problem})" if problem else ""
        raise NotAFeed(f"not a feed: no RSS, Atom or JSON Feed document found{detail}")
    warning = None
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        warning = f"feed is not well-formed, entries recovered: {type(exc).__name__}: {exc}"
    feed = d.feed
    entries = []
    for e in d.entries:
        entry, truncated = _xml_entry(e)
        entries.append(entry)
        if truncated:
            warning = _join(warning, "a title longer than 2000 characters was truncated")
    return ParsedFeed(
        title=_text(feed.get("title")) or None,
        link=feed.get("link"),
        language=feed.get("language") or None,
        format=version or "unknown",
        entries=tuple(entries),
        warning=warning,
    )


def _xml_entry(e: Any) -> tuple[ParsedEntry, bool]:
    title = _text(e.get("title"))
    truncated = len(title) > MAX_TITLE_CHARS
    if truncated:
        title = title[:MAX_TITLE_CHARS].rstrip() + "…"
    content_parts = [c.get("value", "") for c in e.get("content", []) if c.get("value")]
    summary = e.get("summary", "") or ""
    content = "\n".join(content_parts)
    # RSS puts the body in <description>; feedparser then offers it as both.
    if content and summary == content:
        summary = ""
    language = e.get("language") or None
    if not language:
        for key in ("title_detail", "summary_detail"):
            detail = e.get(key)
            if detail and detail.get("language"):
                language = detail["language"]
                break
    enclosures = tuple(
        Enclosure(url=link["href"], type=link.get("type"), length=_int(link.get("length")))
        for link in e.get("links", [])
        if link.get("rel") == "enclosure" and link.get("href")
    )
    translations = tuple(
        (link["hreflang"], link["href"])
        for link in e.get("links", [])
        if link.get("rel") == "alternate" and link.get("hreflang") and link.get("href")
    )
    source_id = e.get("id") or None
    author = e.get("author") or None
    return (
        ParsedEntry(
            source_id=source_id.strip() if source_id else None,
            link=(e.get("link") or "").strip() or None,
            title=title,
            summary=summary,
            content=content,
            author=author,
            categories=tuple(t["term"] for t in e.get("tags", []) if t.get("term")),
            published=_time(e.get("published_parsed")),
            published_zone=_zone(e.get("published") or dict.get(e, "updated")),
            updated=_time(dict.get(e, "updated_parsed")),  # plain get: no published fallback
            enclosures=enclosures,
            language=language,
            translations=translations,
        ),
        truncated,
    )


def _parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise NotAFeed(f"not a feed: body looks like JSON but does not parse ({e})") from None
    version = doc.get("version", "") if isinstance(doc, dict) else ""
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/"):
        raise NotAFeed("not a feed: JSON without a JSON Feed 'version' (https://jsonfeed.org/...)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise NotAFeed("not a feed: JSON Feed without an 'items' list")
    feed_lang = _str(doc.get("language"))
    entries = []
    warning = None
    for item in items:
        if not isinstance(item, dict):
            warning = "some JSON Feed items were not objects and were skipped"
            continue
        entry, truncated = _json_entry(item, url)
        entries.append(entry)
        if truncated:
            warning = _join(warning, "a title longer than 2000 characters was truncated")
    return ParsedFeed(
        title=_str(doc.get("title")),
        link=_str(doc.get("home_page_url")),
        language=feed_lang,
        format="json" + version.rsplit("/", 1)[-1].replace(".", ""),
        entries=tuple(entries),
        warning=warning,
    )


def _json_entry(item: dict[str, Any], base: str) -> tuple[ParsedEntry, bool]:
    title = _str(item.get("title")) or ""
    truncated = len(title) > MAX_TITLE_CHARS
    if truncated:
        title = title[:MAX_TITLE_CHARS].rstrip() + "…"
    link = _str(item.get("url"))
    authors = _list(item.get("authors")) or _list([item.get("author")])
    author = next((a.get("name") for a in authors if isinstance(a, dict) and a.get("name")), None)
    attachments = _list(item.get("attachments"))
    content = _str(item.get("content_html"))
    if content is None and item.get("content_text"):
        content = _escape_text(str(item["content_text"]))
    return (
        ParsedEntry(
            source_id=_str(item.get("id")),
            link=urljoin(base, link) if link else None,
            title=title,
            summary=_escape_text(_str(item.get("summary")) or ""),
            content=content or "",
            author=author,
            categories=tuple(t for t in _list(item.get("tags")) if isinstance(t, str)),
            published=_iso(item.get("date_published")),
            published_zone=_zone(item.get("date_published")),
            updated=_iso(item.get("date_modified")),
            enclosures=tuple(
                Enclosure(url=a["url"], type=_str(a.get("mime_type")), length=_int(a.get("size_in_bytes")))
                for a in attachments
                if isinstance(a, dict) and isinstance(a.get("url"), str)
            ),
            language=_str(item.get("language")),
        ),
        truncated,
    )


class _AlternateFinder(HTMLParser):
    FEED_TYPES = (
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
    )

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link" or len(self.found) >= 10:
            return
        a = {k: (v or "") for k, v in attrs}
        rels = a.get("rel", "").lower().split()
        if "alternate" in rels and a.get("type", "").lower() in self.FEED_TYPES and a.get("href"):
            self.found.append(urljoin(self.base, a["href"]))


def _html_alternates(body: bytes, url: str) -> tuple[str, ...]:
    head = body[:262144].decode("utf-8", errors="replace")
    if "<html" not in head.lower() and "<link" not in head.lower():
        return ()
    finder = _AlternateFinder(url)
    try:
        finder.feed(head)
    except Exception:
        return tuple(finder.found)
    return tuple(dict.fromkeys(finder.found))


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _zone(raw: Any) -> str | None:
    """The UTC offset a source wrote its date in ("+01:00"), kept beside the UTC time."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    raw = raw.strip()
    offset: float | None = None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        off = dt.utcoffset()
        offset = off.total_seconds() if off is not None else None
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is not None and parsed[9] is not None:
            offset = float(parsed[9])
    if offset is None:
        return None
    sign = "-" if offset < 0 else "+"
    minutes = int(abs(offset)) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _text(value: Any) -> str:
    return str(value or "").strip()


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _list(value: Any) -> list[Any]:
    """A JSON value that should be a list; anything else (hostile or sloppy feeds) is empty."""
    return [v for v in value if v is not None] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _escape_text(text: str) -> str:
    return escape(text)


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b
