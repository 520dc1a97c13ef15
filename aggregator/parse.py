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
from charset_normalizer import from_bytes
from feedparser.encodings import convert_to_utf8

from .models import Enclosure, ParsedEntry, ParsedFeed

MAX_TITLE_CHARS = 2000  # longer titles are truncated with a warning, never stored whole
# Inside a markup declaration: the tokens that decide where it ends.
_DECL_TOKEN = re.compile(rb"""["'\[\]>]|<!--""")
# Where feedparser's own DOCTYPE handling stops looking (its "head"): the first `<\w`.
_FEEDPARSER_HEAD_END = re.compile(rb"<\w")
_ENTITY_OR_DOCTYPE = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# feedparser's last resorts when the declared encoding fails; a detector does better.
_BLIND_FALLBACKS = {"windows-1252", "iso-8859-2"}


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


def strip_doctype(data: bytes) -> tuple[bytes, bool]:
    """Remove every markup declaration (DOCTYPE, ENTITY, ...) in front of the root element.

    Feeds have no business declaring entities, and a DOCTYPE is how entity expansion
    (billion laughs, quadratic blow-up) and external entities (local files, remote DTDs)
    arrive, so none reaches a parser. Left alone, expat (2.4+) stops expansion only at its
    amplification limit, and feedparser re-declares "safe" entities from a DOCTYPE for its
    fallback parser, which then expands them without limit (1 GB from a 100 KB entity).

    The prolog is scanned as XML sees it (comments and processing instructions skipped, a
    declaration ends at the `>` outside quotes and brackets, wherever it is and however it
    is spelt); then, for broken documents, any DOCTYPE/ENTITY left before feedparser's idea
    of the first element is removed too. `data` must be in an ASCII-compatible encoding.
    Returns the cleaned bytes and whether entity declarations were removed.
    """
    parts: list[bytes] = []
    keep = pos = 0
    entities = False
    n = len(data)
    while pos < n:  # every pass moves pos forward
        lt = data.find(b"<", pos)
        if lt < 0:
            break
        if data.startswith(b"<!--", lt) or data.startswith(b"<?", lt):
            close = data.find(b"-->" if data[lt + 1] == 0x21 else b"?>", lt + 2)
            if close < 0:
                break  # unterminated: the document is broken; the second pass below covers it
            pos = close + 2 if data[lt + 1] == 0x3F else close + 3
            continue
        if not data.startswith(b"<!", lt):
            break  # the root element: the prolog is over
        end = _declaration_end(data, lt)
        entities = entities or b"<!ENTITY" in data[lt:end].upper()
        parts.append(data[keep:lt])
        keep = pos = end
    parts.append(data[keep:])
    cleaned = b"".join(parts)
    for _ in range(n):  # bounded: each pass removes at least two bytes
        head_end = _FEEDPARSER_HEAD_END.search(cleaned)
        found = _ENTITY_OR_DOCTYPE.search(cleaned, 0, head_end.start() if head_end else len(cleaned))
        if found is None:
            break
        end = _declaration_end(cleaned, found.start())
        entities = entities or found.group().upper() == b"<!ENTITY"
        cleaned = cleaned[: found.start()] + cleaned[end:]
    return cleaned, entities


def _declaration_end(data: bytes, start: int) -> int:
    """Index just past the declaration opened at `start` (`<!`): its `>` outside quoted
    literals, comments and an internal subset's brackets; the end of data if it never ends."""
    depth = 0
    pos = start + 2
    while True:  # every pass moves pos forward
        m = _DECL_TOKEN.search(data, pos)
        if m is None:
            return len(data)
        token = m.group()
        if token in (b'"', b"'"):
            close = data.find(token, m.end())
            if close < 0:
                return len(data)
            pos = close + 1
        elif token == b"<!--":
            close = data.find(b"-->", m.end())
            if close < 0:
                return len(data)
            pos = close + 3
        elif token == b"[":
            depth += 1
            pos = m.end()
        elif token == b"]":
            depth = max(0, depth - 1)
            pos = m.end()
        elif depth == 0:
            return m.end()
        else:
            pos = m.end()


def to_utf8(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, str | None]:
    """The document as UTF-8 (XML declaration rewritten), and a warning if its label lied.

    feedparser's rules pick the encoding (HTTP charset, BOM, XML declaration, RFC 3023).
    When the declared encoding does not decode and feedparser would fall back blindly to
    windows-1252, the bytes are given to a detector instead: a windows-1251 feed labelled
    UTF-8 then reads as Cyrillic, not as Latin mojibake.
    """
    result: dict[str, Any] = {}
    try:
        data: bytes = convert_to_utf8(dict(headers), body, result)
    except Exception:  # feedparser's internals moved: let feedparser.parse decide alone
        return body, None
    error = result.get("bozo_exception")
    used = str(result.get("encoding") or "")
    kind = type(error).__name__
    if kind not in ("CharacterEncodingOverride", "CharacterEncodingUnknown"):
        return data, None
    if kind == "CharacterEncodingOverride" and used not in _BLIND_FALLBACKS:
        return data, None  # e.g. text/xml without charset (us-ascii) that is really UTF-8
    match = from_bytes(body).best()
    if match is None:
        return data, f"character encoding unclear: {error}"
    declared = re.match(r"document declared as (\S+),", str(error))
    label = f"is declared as {declared.group(1)} but is not" if declared else "declares no usable encoding"
    text = str(match)
    declaration = re.match(r"\s*<\?xml[^>]*\?>", text)
    if declaration:
        text = text[declaration.end() :]
    fixed = ("<?xml version='1.0' encoding='utf-8'?>" + text).encode("utf-8")
    return fixed, f"the feed {label}; read as {match.encoding} (detected)"


def _parse_xml(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    data, encoding_warning = to_utf8(body, headers)
    data, had_entities = strip_doctype(data)
    # Already UTF-8 now; the original media type's only other effect would be a spurious
    # "not an XML media type" warning for feeds served as text/html.
    response_headers = {"content-type": "application/xml; charset=utf-8", "content-location": url}
    if headers.get("content-language"):
        response_headers["content-language"] = headers["content-language"]
    d = feedparser.parse(
        data,
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
    warning = encoding_warning
    if had_entities:
        warning = _join(warning, "the feed declares XML entities; they were removed, not expanded")
    if d.get("bozo"):
        exc = d.get("bozo_exception")
        warning = _join(warning, f"feed is not well-formed, entries recovered: {type(exc).__name__}: {exc}")
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
