"""Bytes + HTTP headers -> ParsedFeed. Nothing else: no language, dedupe or storage here.

XML formats go through feedparser (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, with the HTTP charset
honoured by passing the response headers), or through feedparser-rs where `parse_fast`
proves it gives the same (issue 15). feedparser 6.0 does not read JSON Feed, so JSON Feed
1.0/1.1 is read here into the same typed result.
"""

from __future__ import annotations

import calendar
import email.utils
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import ftfy
from charset_normalizer import from_bytes
from feedparser.encodings import convert_to_utf8
from feedparser.urls import resolve_relative_uris
from ftfy.badness import BADNESS_RE, MOJIBAKE_CATEGORIES

from . import parse_fast
from .models import Enclosure, NotAFeed, ParsedEntry, ParsedFeed
from .text import fold, html_to_text, text_to_html, xml_safe
from .urls import strip_secrets

log = logging.getLogger("aggregator.parse")

MAX_TITLE_CHARS = 2000  # longer titles are truncated with a warning, never stored whole
# Inside a markup declaration: the tokens that decide where it ends.
_DECL_TOKEN = re.compile(rb"""["'\[\]>]|<!--""")
# Where feedparser's own DOCTYPE handling stops looking (its "head"): the first `<\w`.
_FEEDPARSER_HEAD_END = re.compile(rb"<\w")
_ENTITY_OR_DOCTYPE = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# feedparser's last resorts when the declared encoding fails; a detector does better.
_BLIND_FALLBACKS = {"windows-1252", "iso-8859-2"}


def parse_feed(
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    *,
    resolve_relative: bool | None = None,
    fast: bool = True,
) -> ParsedFeed:
    """Parse a fetched body. `headers` are the response headers (lower-case names).

    `resolve_relative`: whether feedparser makes relative URLs in the entries' HTML absolute
    (its second HTML pass over every field); None (default) decides per document: only when
    `has_relative_references` finds any. True is feedparser's own way, for comparison.
    `fast`: read the document with feedparser-rs where `parse_fast.read` finds it inside the
    conditions proven to give feedparser's result (decided per document, logged at debug);
    False: feedparser always, for comparison. Raises NotAFeed when the body is not a feed."""
    ctype = headers.get("content-type", "").lower()
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise NotAFeed("the server sent an empty body")
    if "json" in ctype or head.startswith(b"{"):
        return _parse_json_feed(body, url, headers.get("content-language"))
    return _parse_xml(body, headers, url, resolve_relative, fast)


# An HTML attribute that feedparser's relative-URI pass rewrites (feedparser.urls.
# RelativeURIResolver.relative_uris: a@href, img@src, blockquote@cite, ...), written raw, in
# CDATA or entity-escaped (`href=&quot;...`), up to the start of its value. Matched in the
# lower-cased document (a case-insensitive alternation is five times slower).
_URI_ATTRIBUTE = re.compile(
    rb"(?:href|src|cite|codebase|background|action|longdesc|profile|usemap|classid|data|poster)"
    rb"(?>[ \t\r\n]*=[ \t\r\n]*)"
)

# A value the pass leaves as it is: a quoted absolute http(s) URL with a host. Case
# matters: feedparser drops `HTTP://...` (its scheme list is lower-case). Spaces around the
# URL (stripped), a trailing `?`, `#` or `;` (dropped by urljoin), brackets and an unquoted
# value all take the pass, whose result would differ.
_QUOTE = rb"(?:[\"']|&(?i:quot|apos|#0*34|#0*39|#x0*22|#x0*27);)"
_ABSOLUTE_WEB_URL = re.compile(
    _QUOTE + rb"https?://[^/\s\"'<>\[\]][^\s\"'<>\[\]]*?[^\s\"'<>\[\]?#;]" + _QUOTE
)
# HTML that feedparser's re-serialiser (feedparser.html._BaseHTMLProcessor.feed and its
# handlers) rewrites into something an HTML parser reads differently, raw or escaped, in the
# lower-cased document: end tags of void elements (dropped; `</br>` is a line break to
# HTML5), declarations but comments and CDATA (a malformed one is escaped; the feed's own
# DOCTYPE is gone by now), bare self-closing tags of other elements (`<p/>` becomes
# `<p></p>`), and empty tags `<>` (dropped).
# `</link>` and `</source>` are RSS and Atom elements in the raw XML: only escaped ones count.
_VOID = rb"area|base|basefont|br|col|command|embed|frame|hr|img|input|isindex|keygen|meta|param|track|wbr"
_REWRITTEN_MARKUP = re.compile(
    rb"(?:<|&lt;)(?:/(?:" + _VOID + rb")\b|!(?!--|\[)|(?:>|&gt;)"
    rb"|(?!(?:" + _VOID + rb"|link|source)[\s/])[^<>\s&;/]+\s*/(?:>|&gt;))"
    rb"|&lt;/(?:link|source)\b"
)


def has_relative_references(data: bytes) -> bool:
    """Whether feedparser's relative-URI pass may change any HTML in the document beyond the
    order of attributes: an attribute it resolves whose value is not a plain absolute
    `http(s)://host...` URL (`_ABSOLUTE_WEB_URL`), markup its re-serialiser rewrites
    (`_REWRITTEN_MARKUP`), or base64 content it cannot see into. Errs towards True (such text
    anywhere, escaped or not, in any element). `data` is UTF-8 (ASCII-compatible).

    Measured (issue 15): the pass was half of feedparser's time per entry (487 of 969 us),
    and most feeds give absolute URLs only (57 of 72 in the shared corpus);
    tests/test_relative_urls.py proves the outcome equal on every feed of the corpus."""
    lowered = data.lower()  # bytes.lower keeps every offset
    if _REWRITTEN_MARKUP.search(lowered) or b"base64" in lowered:  # Atom 0.3 mode="base64"
        return True
    return any(not _is_absolute(data, m.end()) for m in _URI_ATTRIBUTE.finditer(lowered))


def _is_absolute(data: bytes, at: int) -> bool:
    return _ABSOLUTE_WEB_URL.match(data, at) is not None


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
    matches = from_bytes(body)
    match = matches.best()
    if match is None:
        return data, f"character encoding unclear: {error}"
    declared = _declared_encoding(body, headers)
    label = f"is declared as {declared} but is not" if declared else "declares no encoding"
    western = _western_tie(matches, match, body)
    if western is not None:
        # feedparser's own windows-1252 reading is as good as any: keep it (cp1250 would
        # make French "très" into "trčs", cp1257 Portuguese "simulações" into "simulaēões").
        return data, f"the feed {label}; read as windows-1252"
    text = str(match)
    declaration = re.match(r"\s*<\?xml[^>]*\?>", text)
    if declaration:
        text = text[declaration.end() :]
    fixed = ("<?xml version='1.0' encoding='utf-8'?>" + text).encode("utf-8")
    return fixed, f"the feed {label}; read as {match.encoding} (detected)"


_XML_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)


def _declared_encoding(body: bytes, headers: Mapping[str, str]) -> str | None:
    """What the document itself declared: the HTTP charset, else the XML declaration's
    encoding, else None (feedparser's messages name its default, utf-8, even then)."""
    http = _HTTP_CHARSET.search(headers.get("content-type", ""))
    if http:
        return http.group(1).lower()
    xml = _XML_DECLARED.match(body[:512].lstrip(b"\xef\xbb\xbf"))
    return xml.group(1).decode("ascii").lower() if xml else None


# Single-byte encodings that decode Western-European text without error but into the wrong
# letters; when the detector ranks them level with windows-1252, the text is Latin-script
# and its declared language is not one of theirs, windows-1252 is the likelier.
_CENTRAL_LANGUAGES = {"pl", "cs", "sk", "hu", "sl", "hr", "bs", "sr", "ro", "sq", "lt", "lv", "et", "tr"}
_DECLARED_LANGUAGE = re.compile(
    rb"<(?:language|dc:language)>\s*([A-Za-z]{2,3})|xml:lang=[\"']([A-Za-z]{2,3})"
)
TIE_CHAOS = 0.01  # detector "chaos" scores this close are a tie


def _western_tie(matches: Any, best: Any, body: bytes) -> str | None:
    """'cp1252' when windows-1252 ties with the detector's best reading of a Latin-script,
    non-Central-European document (see _CENTRAL_LANGUAGES); else None."""
    if best.encoding in ("cp1252", "latin_1", "ascii", "utf_8"):
        return None
    tied = [m for m in matches if m.chaos <= best.chaos + TIE_CHAOS]
    if not any(m.encoding in ("cp1252", "latin_1", "iso8859_15") for m in tied):
        return None
    found = _DECLARED_LANGUAGE.search(body[:65536])
    declared = (found.group(1) or found.group(2)).decode("ascii").lower() if found else None
    if declared in _CENTRAL_LANGUAGES:
        return None
    try:
        text = body.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = [ch for ch in text if ch.isalpha() and not ch.isascii()]
    latin = sum(1 for ch in letters if ch <= "\u024f")
    return "cp1252" if latin * 2 >= len(letters) else None


def _parse_xml(
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    resolve_relative: bool | None = None,
    fast: bool = True,
) -> ParsedFeed:
    data, encoding_warning = to_utf8(body, headers)
    data, had_entities = strip_doctype(data)
    data = unescape_cdata(data)
    if resolve_relative is None:
        resolve_relative = has_relative_references(data)
    # Already UTF-8 now; the original media type's only other effect would be a spurious
    # "not an XML media type" warning for feeds served as text/html.
    response_headers = {"content-type": "application/xml; charset=utf-8", "content-location": url}
    if headers.get("content-language"):
        response_headers["content-language"] = headers["content-language"]
    d: Any = None
    if fast:
        try:
            d = parse_fast.read(
                data,
                data.lower(),
                url,
                resolve_html=resolve_relative,
                content_language=headers.get("content-language"),
            )
        except parse_fast.NotProven as why:
            log.debug("%s: parsed by feedparser, not feedparser-rs: %s", url, why)
        except Exception as bug:  # a fault of the fast path costs the fast path, not the feed
            log.warning(
                "%s: feedparser-rs path failed, parsed by feedparser: %s: %s", url, type(bug).__name__, bug
            )
        else:
            log.debug("%s: parsed by feedparser-rs", url)
            feed, raw_entries = d["feed"], d["entries"]
    if d is None:
        d = feedparser.parse(
            data,
            response_headers=response_headers,
            resolve_relative_uris=resolve_relative,
            sanitize_html=False,  # sanitised once, with nh3, when rendered
        )
        feed, raw_entries = d.feed, d.entries
    version = d.get("version") or ""
    if not version and not raw_entries:
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
    # The document's language: the channel's <language> or the root's xml:lang (feedparser
    # gives either as feed.language), else the HTTP Content-Language.
    document_language = _str(feed.get("language")) or _str(headers.get("content-language"))
    notes = _Notes()
    guids = relative_guids(data, url)
    entries = []
    for e in raw_entries:
        try:
            entry = _xml_entry(e, document_language, notes, guids)
        except Exception as exc:  # one unreadable item costs that item, never its feed
            notes.skip(f"{type(exc).__name__}: {exc}")
            continue
        if entry is not None:
            entries.append(entry)
    notes.repairs_warning()
    title_type = str((feed.get("title_detail") or {}).get("type") or "text/plain")
    return ParsedFeed(
        # Plain text, as entry titles: an HTML title is reduced to its text.
        title=repair_mojibake(_plain_title(_text(feed.get("title")), title_type)) or None,
        link=_web_link(feed.get("link")),
        language=document_language,
        format=version or "unknown",
        entries=tuple(entries),
        warning=notes.warning(warning),
    )


class _Notes:
    """What went wrong with single entries of one document, folded into one feed warning."""

    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.other: dict[str, None] = {}  # insertion-ordered set
        self.repaired = 0  # entries whose mojibake was repaired
        self.zoneless: list[str] = []  # dates without a zone, read as UTC

    def skip(self, why: str) -> None:
        self.skipped.append(why)

    def note(self, what: str) -> None:
        self.other[what] = None

    def repairs_warning(self) -> None:
        if self.repaired:
            n = self.repaired
            self.note(
                f"mojibake in the source (UTF-8 read as a single-byte encoding upstream) repaired "
                f"in {n} entr{'y' if n == 1 else 'ies'}"
            )

    def warning(self, warning: str | None) -> str | None:
        if self.zoneless:
            n = len(self.zoneless)
            self.note(
                f"{n} date{'s' if n > 1 else ''} without a time zone read as UTC "
                f"(e.g. {self.zoneless[0][:40]!r})"
            )
        for what in self.other:
            warning = _join(warning, what)
        if self.skipped:
            n = len(self.skipped)
            warning = _join(
                warning,
                f"{n} entr{'y' if n == 1 else 'ies'} skipped: {self.skipped[0][:200]}"
                + (f" (and {n - 1} more)" if n > 1 else ""),
            )
        return warning


def unescape_cdata(data: bytes) -> bytes:
    """`&lt;![CDATA[text]]&gt;` -> `text`: a description whose CDATA markers were escaped
    (the publisher escaped the section twice). feedparser 6.0 reads such an element as empty
    (kurtmckee/feedparser#440, fix proposed in #572, unreleased); its text is what was meant.
    `data` is UTF-8 (or another ASCII-compatible encoding)."""
    opener, closer = b"&lt;![CDATA[", b"]]&gt;"
    start = data.find(opener)
    if start < 0:
        return data
    parts: list[bytes] = []
    keep = 0
    while start >= 0:  # linear: each marker is looked at once, however many there are
        end = data.find(closer, start + len(opener))
        if end < 0:
            break  # no later opener can be closed either
        parts += [data[keep:start], data[start + len(opener) : end]]
        keep = end + len(closer)
        start = data.find(opener, keep)
    parts.append(data[keep:])
    return b"".join(parts)


def _detail_html(detail: Any, value: str) -> str:
    """A feedparser text construct as HTML: plain text (RFC 4287 section 3.1.1.1 type="text",
    and RSS text feedparser judged plain) is escaped with its line breaks kept."""
    if not value:
        return ""
    kind = str((detail or {}).get("type") or "text/html")
    return text_to_html(value) if kind == "text/plain" else value


def _xml_entry(
    e: Any, document_language: str | None, notes: _Notes, guids: Mapping[str, str]
) -> ParsedEntry | None:
    detail = e.get("title_detail") or {}
    raw_title = _text(e.get("title"))
    if len(raw_title) > 4 * MAX_TITLE_CHARS:  # cut before any copy is made: titles of megabytes
        notes.note("a title longer than 2000 characters was truncated")
        raw_title = raw_title[: 4 * MAX_TITLE_CHARS]
    title = _cap_title(_plain_title(raw_title, str(detail.get("type") or "text/plain")), notes)
    contents = [c for c in e.get("content", []) if isinstance(c, Mapping) and c.get("value")]
    raw_summary = str(e.get("summary") or "")
    # RSS puts the body in <description>, and an Atom entry without <summary> has its content
    # offered as the summary too: the same text once is enough.
    if any(str(c["value"]) == raw_summary for c in contents):
        raw_summary = ""
    summary = _detail_html(e.get("summary_detail"), _clean(raw_summary))
    content = "\n".join(_detail_html(c, _clean(str(c["value"]))) for c in contents)
    language = _str(e.get("language"))  # dc:language on the entry itself
    if not language:
        # xml:lang is inherited from the root: only one differing from the document's is the
        # entry's own declaration (the document's is checked against the text, an entry's not).
        for key in ("title_detail", "summary_detail"):
            d = e.get(key)
            lang = _str(d.get("language")) if d else None
            if lang and (document_language is None or lang.lower() != document_language.lower()):
                language = lang
                break
    links = [link for link in e.get("links", []) if isinstance(link, Mapping)]
    enclosures = tuple(
        Enclosure(url=url, type=_str(link.get("type")), length=_int(link.get("length")))
        for link in links
        if link.get("rel") == "enclosure" and (url := _web_link(link.get("href")))
    )
    translations = tuple(
        (str(link["hreflang"]), url)
        for link in links
        if link.get("rel") == "alternate" and link.get("hreflang") and (url := _web_link(link.get("href")))
    )
    source_id = _clean(_text(e.get("id"))) or None
    if source_id is not None and source_id in guids:
        source_id = guids[source_id]  # as written: "12345", not a made-up URL
    link = _entry_link(e, links, language or document_language, guids)
    if not (title or link or _has_text(summary) or _has_text(content) or enclosures):
        notes.skip("an item with no title, no link and no text")
        return None
    published, zone, date_only = _entry_date(e.get("published"), e.get("published_parsed"), notes)
    if published is None:
        raw_updated = dict.get(e, "updated")  # plain get: no published fallback
        published, zone, date_only = _entry_date(raw_updated, dict.get(e, "updated_parsed"), notes)
    updated, _, _ = _entry_date(dict.get(e, "updated"), dict.get(e, "updated_parsed"), notes)
    author = _clean(_text(e.get("author"))) or None
    title, summary, content = _repaired((title, summary, content), notes)
    return ParsedEntry(
        source_id=source_id,
        link=link,
        title=title,
        summary=summary,
        content=content,
        author=author,
        categories=tuple(_clean(str(t["term"])) for t in e.get("tags", []) if t.get("term")),
        published=published,
        published_zone=zone,
        updated=updated,
        enclosures=enclosures,
        language=language,
        translations=translations,
        date_only=date_only,
    )


def repair_mojibake(text: str) -> str:
    """`text` with mojibake already in the source repaired by ftfy (`fix_encoding` only: no
    other change, such as quotes or entities): UTF-8 that was read as windows-1252 or latin-1
    upstream, "rÃ©cord" -> "récord", "Ð¯Ð½Ð´ÐµÐºÑ" -> "Яндекс". Text ftfy does not judge bad
    (`ftfy.badness.is_bad`, a quick test, here as `looks_bad`) is returned unchanged;
    docs/fidelity.md measures this on the whole corpus (every repair listed, no clean entry
    changed)."""
    if not text or not looks_bad(text):
        return text
    return str(ftfy.fix_encoding(text))


# Longest match of ftfy's badness expression (7 characters in ftfy 6.3: "ГўВЂВ.x"); checked
# against the installed ftfy by tests/test_parse_speed.py.
BADNESS_WIDTH = 8
# Every alternative of ftfy 6.3's BADNESS_RE needs one of these characters somewhere in its
# match (read alternative by alternative: each has a position that only admits characters of
# these categories or these literals; plain Cyrillic and Greek letters, the "common" marks such
# as the dash and the ellipsis, and ASCII never suffice alone). tests/test_parse_speed.py
# checks that no string without one matches the installed ftfy's expression.
_TRIGGER_CATEGORIES = (
    "c1", "bad", "upper_accented", "lower_accented", "currency", "numeric", "law",
    "start_punctuation", "end_punctuation", "box",
)  # fmt: skip
MOJIBAKE_TRIGGERS = "".join(MOJIBAKE_CATEGORIES[name] for name in _TRIGGER_CATEGORIES) + "ŒœÂÃÎÐØÙà√≈‚Ђўµ€°²"
_TRIGGER = re.compile(f"[{MOJIBAKE_TRIGGERS}]+")


def looks_bad(text: str) -> bool:
    """Exactly `ftfy.badness.is_bad(text)`, searching only around the characters a match
    needs (MOJIBAKE_TRIGGERS).

    Every match of ftfy's BADNESS_RE holds one of those characters, none looks beyond its own
    match (no lookaround, `^` only at the real start) and none is longer than BADNESS_WIDTH,
    so a match lies within BADNESS_WIDTH of a run of them. Fields without any (ASCII, markup,
    most Russian and Greek text) cost one scan; others are searched in a few short windows
    instead of whole (is_bad was the largest single cost of parsing, 14% of a cold poll; with
    windows around every non-ASCII character, still 10%, most of it Cyrillic text searched
    whole: issue 15)."""
    if text.isascii():
        return False
    start = end = -1
    for m in _TRIGGER.finditer(text):
        lo, hi = max(0, m.start() - BADNESS_WIDTH), m.end() + BADNESS_WIDTH
        if lo <= end:  # overlaps the window so far: one search for both
            end = hi
            continue
        if end >= 0 and BADNESS_RE.search(text, start, end):
            return True
        start, end = lo, hi
    return end >= 0 and bool(BADNESS_RE.search(text, start, end))


def _repaired(texts: tuple[str, str, str], notes: _Notes) -> tuple[str, str, str]:
    fixed = (repair_mojibake(texts[0]), repair_mojibake(texts[1]), repair_mojibake(texts[2]))
    if fixed != texts:
        notes.repaired += 1
    return fixed


def _plain_title(value: str, kind: str) -> str:
    """A title as plain text. feedparser says which kind it is (RFC 4287 section 3.1.1; for
    RSS it judges by the value): a text/plain title keeps every character as written
    ("List<String> in Java"); an HTML or XHTML one is reduced to its text."""
    value = _clean(value)
    if kind in ("text/html", "application/xhtml+xml") and ("<" in value or "&" in value):
        return html_to_text(value)
    return fold(value)


def _cap_title(title: str, notes: _Notes) -> str:
    if len(title) > MAX_TITLE_CHARS:
        notes.note("a title longer than 2000 characters was truncated")
        return title[:MAX_TITLE_CHARS].rstrip() + "…"
    return title


def _has_text(fragment: str) -> bool:
    return bool(fragment.strip())


_GUID = re.compile(rb"<guid\b[^<>]{0,200}>\s{0,50}([^<\s]{1,500})\s{0,50}</guid>")


def relative_guids(data: bytes, base: str) -> dict[str, str]:
    """RSS guids that are not absolute URLs, as feedparser resolves them against the feed's
    address ("12345" -> "https://example.org/12345") -> as written. Such a guid is an id,
    never a link (RSS 2.0 "guid": a permalink only when it is a URL)."""
    found: dict[str, str] = {}
    if b"<guid" not in data:
        return found
    for m in _GUID.finditer(data):
        raw = m.group(1).decode("utf-8", "replace")
        if "://" not in raw and not raw.startswith(("/", "urn:", "tag:")):
            found[urljoin(base, raw)] = raw
    return found


def _entry_link(
    e: Any, links: list[Mapping[str, Any]], language: str | None, relative_guids: Mapping[str, str]
) -> str | None:
    """The entry's own web page: its alternate link (RFC 4287 section 4.2.7.2) of no other
    language, an HTML one first, else any (a PDF is still the entry's page); when every
    alternate names another language, the first in document order (feedparser would take the
    last: the last translation); else the RSS <link> or a permalink guid that is an http(s)
    URL. Never a `tag:` id, a guid that is no URL or another non-web URL; credentials and
    tokens are stripped (strip_secrets)."""
    alternates = [link for link in links if link.get("rel", "alternate") == "alternate"]
    own = [
        link
        for link in alternates
        if not link.get("hreflang")
        or (language and str(link["hreflang"]).lower().split("-")[0] == language.lower().split("-")[0])
    ]
    html_first = sorted(own, key=lambda link: str(link.get("type") or "text/html") not in _HTML_TYPES)
    for link in [*html_first, *alternates]:
        url = _web_link(link.get("href"))
        if url:
            return url
    if alternates:
        return None  # alternates, none of them a web page
    if e.get("guidislink") and e.get("link") == e.get("id") and e.get("id") in relative_guids:
        return None  # feedparser made the link from a guid that is no URL ("12345")
    return _web_link(e.get("link"))


_HTML_TYPES = {"text/html", "application/xhtml+xml"}


def _web_link(value: Any) -> str | None:
    """An absolute http(s) URL with secrets stripped, or None for anything else."""
    if not isinstance(value, str):
        return None
    url = _clean(value.strip())
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https") or "://" not in url:
        return None
    return strip_secrets(url)


def _parse_json_feed(body: bytes, url: str, content_language: str | None = None) -> ParsedFeed:
    try:
        # Every string of the document made XML-safe as it is read, whatever field it is in
        # (a lone surrogate in content_text skipped its item: audit of issue 11).
        doc = json.loads(body, object_hook=_xml_safe_object)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise NotAFeed(f"not a feed: body looks like JSON but does not parse ({e})") from None
    version = doc.get("version", "") if isinstance(doc, dict) else ""
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/"):
        raise NotAFeed("not a feed: JSON without a JSON Feed 'version' (https://jsonfeed.org/...)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise NotAFeed("not a feed: JSON Feed without an 'items' list")
    feed_lang = _str(doc.get("language")) or _str(content_language)  # else HTTP Content-Language
    home = _web_link(doc.get("home_page_url"))
    notes = _Notes()
    entries = []
    for item in items:
        if not isinstance(item, dict):
            notes.skip("an item that is not a JSON object")
            continue
        try:
            entry = _json_entry(item, url, notes)
        except Exception as exc:  # one unreadable item costs that item, never its feed
            notes.skip(f"{type(exc).__name__}: {exc}")
            continue
        if entry is not None:
            entries.append(entry)
    notes.repairs_warning()
    return ParsedFeed(
        title=repair_mojibake(_str(doc.get("title")) or "") or None,
        link=home,
        language=feed_lang,
        format="json" + version.rsplit("/", 1)[-1].replace(".", ""),
        entries=tuple(entries),
        warning=notes.warning(None),
    )


def _json_entry(item: dict[str, Any], feed_url: str, notes: _Notes) -> ParsedEntry | None:
    # JSON Feed titles are plain text (JSON Feed 1.1, "title"): kept as written.
    raw_title = item.get("title")
    if isinstance(raw_title, str) and len(raw_title) > 4 * MAX_TITLE_CHARS:
        raw_title = raw_title[: 4 * MAX_TITLE_CHARS]
        notes.note("a title longer than 2000 characters was truncated")
    title = _cap_title(fold(_str(raw_title) or ""), notes)
    raw_link = _str(item.get("url"))
    link = _web_link(urljoin(feed_url, raw_link)) if raw_link else None
    base = link or feed_url  # relative URLs in an item resolve against its own URL (JSON Feed #116)
    authors = _list(item.get("authors")) or _list([item.get("author")])
    author = next((_str(a.get("name")) for a in authors if isinstance(a, dict) and _str(a.get("name"))), None)
    content = _str(item.get("content_html"))
    if content:
        content = resolve_relative_uris(content, base, "utf-8", "text/html")
    elif text := _str(item.get("content_text")):
        content = text_to_html(text)
    summary = text_to_html(_str(item.get("summary")) or "")  # plain text in JSON Feed
    enclosures = []
    for a in _list(item.get("attachments")):
        if not isinstance(a, dict) or not isinstance(a.get("url"), str):
            continue
        url = _web_link(urljoin(base, a["url"]))
        if url:
            length = _int(a.get("size_in_bytes"))
            enclosures.append(Enclosure(url=url, type=_str(a.get("mime_type")), length=length))
    if not (title or link or summary or content or enclosures):
        notes.skip("an item with no title, no link and no text")
        return None
    published, zone, date_only = _json_date(item.get("date_published"), notes)
    updated, _, _ = _json_date(item.get("date_modified"), notes)
    title, summary, content = _repaired((title, summary, content or ""), notes)
    return ParsedEntry(
        source_id=_str(item.get("id")) if not isinstance(item.get("id"), (int, float)) else str(item["id"]),
        link=link,
        title=title,
        summary=summary,
        content=content or "",
        author=author,
        categories=tuple(_clean(t) for t in _list(item.get("tags")) if isinstance(t, str)),
        published=published,
        published_zone=zone,
        updated=updated,
        enclosures=tuple(enclosures),
        language=_str(item.get("language")),
        date_only=date_only,
    )


# Zone abbreviations feedparser 6.0 does not know (it knows UT/GMT/Z, the US zones and
# MET/MEST), with their UTC offsets in minutes. Abbreviations are not unique; where one is
# ambiguous the commonest use in news feeds is taken and the alternative named. Sources: the
# IANA tz database's abbreviations (zoneinfo) and cases/05 (AntennaPod#2250, "CEST").
ZONE_ABBREVIATIONS = {
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 60,
    "BST": 60,  # British Summer Time (not Bangladesh)
    "IST": 330,  # India (not Irish Summer Time or Israel)
    "CET": 60, "CEST": 120, "MET": 60, "MEST": 120, "MEZ": 60, "MESZ": 120,
    "EET": 120, "EEST": 180, "MSK": 180, "MSD": 240, "TRT": 180, "SAMT": 240, "YEKT": 300,
    "SAST": 120, "CAT": 120, "EAT": 180, "WAT": 60, "IRST": 210, "GST": 240, "PKT": 300,
    "NPT": 345, "ICT": 420, "WIB": 420, "SGT": 480, "HKT": 480, "PHT": 480, "AWST": 480,
    "JST": 540, "KST": 540, "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660,
    "NZST": 720, "NZDT": 780, "HST": -600, "AKST": -540, "AKDT": -480,
    "PST": -480, "PDT": -420, "MST": -420, "MDT": -360,
    "CST": -360, "CDT": -300,  # US Central (not China Standard Time), as feedparser reads it
    "EST": -300, "EDT": -240, "AST": -240, "ADT": -180, "NST": -210, "NDT": -150,
    "BRT": -180, "ART": -180, "CLT": -240,
}  # fmt: skip
_DATE_ONLY = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_TRAILING_ZONE = re.compile(r"^(?P<rest>.*\d)\s*\(?(?P<abbr>[A-Za-z]{1,5})\)?\s*$")
_ENDS_WITH_TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*$")


def read_date(raw: str) -> tuple[datetime, str | None, bool, str | None] | None:
    """A date as feeds write it -> (UTC time, the source's offset "+02:00" or None,
    date-only?, warning or None); None when it is not a date this reads (feedparser's
    reading is used then).

    Read here: a calendar date alone ("2024-05-01": date-only, midnight UTC, no zone);
    RFC 822 dates with a zone abbreviation from ZONE_ABBREVIATIONS ("CEST": +02:00); RFC 822
    and ISO 8601 dates with no zone at all, read as UTC with a warning (a date, not "now")."""
    if len(raw) > 80:  # no date is this long; hostile text is not scanned
        return None
    m = _DATE_ONLY.match(raw)
    if m:
        day = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
        return day, None, True, None
    zone_m = _TRAILING_ZONE.match(raw)
    if zone_m and zone_m["abbr"].upper() in ZONE_ABBREVIATIONS:
        minutes = ZONE_ABBREVIATIONS[zone_m["abbr"].upper()]
        parsed = email.utils.parsedate_tz(zone_m["rest"])
        if parsed is None or not _year_as_written(zone_m["rest"], parsed[0]):
            return None
        local = datetime(*parsed[:6], tzinfo=UTC)
        return local - timedelta(minutes=minutes), _offset(minutes * 60), False, None
    if not _ENDS_WITH_TIME.search(raw):
        return None
    parsed = email.utils.parsedate_tz(raw)
    if parsed is not None and _year_as_written(raw, parsed[0]):  # no zone: the text ends with the time
        when = datetime(*parsed[:6], tzinfo=UTC)
    else:
        try:
            iso = datetime.fromisoformat(raw.strip())
        except ValueError:
            return None
        if iso.tzinfo is not None:
            return None
        when = iso.replace(tzinfo=UTC)
    return when, None, False, f"a date without a time zone ({raw.strip()!r}) was read as UTC"


def _year_as_written(raw: str, year: int) -> bool:
    """email.utils reads years below 100 as 19xx/20xx; a written "0001" must not become 2001."""
    written = re.search(r"\b(\d{3,4})\b(?!:)", raw)
    return written is None or int(written.group(1)) == year


def _entry_date(raw: Any, parsed: Any, notes: _Notes) -> tuple[datetime | None, str | None, bool]:
    """An XML entry's date from its raw text (read_date), else feedparser's reading."""
    if isinstance(raw, str) and raw.strip():
        try:
            reading = read_date(raw)
        except (ValueError, OverflowError):
            reading = None
        if reading is not None:
            when, zone, date_only, warning = reading
            if warning:
                notes.zoneless.append(raw.strip())
            return when, zone, date_only
    return _time(parsed), _zone(raw), False


def _json_date(value: Any, notes: _Notes) -> tuple[datetime | None, str | None, bool]:
    """A JSON Feed date (RFC 3339) -> (UTC time, source offset, date-only?); None for what is
    not one, or lies outside what datetime can hold (`9999-12-31T23:30-05:00`)."""
    if not isinstance(value, str) or not value.strip():
        return None, None, False
    try:
        reading = read_date(value)
        if reading is not None:
            when, zone, date_only, warning = reading
            if warning:
                notes.zoneless.append(value.strip())
            return when, zone, date_only
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if dt.tzinfo is None:  # pragma: no cover - read_date takes zone-less times
            dt = dt.replace(tzinfo=UTC)
        off = dt.utcoffset()
        return dt.astimezone(UTC), _offset(off.total_seconds() if off is not None else 0), False
    except (ValueError, OverflowError):
        return None, None, False


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def _zone(raw: Any) -> str | None:
    """The UTC offset a source wrote its date in ("+01:00"), kept beside the UTC time; None
    when the date names no zone this program knows (never a made-up "+00:00")."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    raw = raw.strip()
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None or parsed[9] is None:
            return None
        tail = raw.rsplit(None, 1)[-1].upper()
        if parsed[9] == 0 and tail not in ("GMT", "UT", "UTC", "Z", "+0000", "-0000", "+00:00"):
            return None  # an abbreviation the standard library does not know reads as 0
        return _offset(float(parsed[9]))
    off = dt.utcoffset()
    return _offset(off.total_seconds()) if off is not None else None


def _offset(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = int(abs(seconds)) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


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


def _text(value: Any) -> str:
    return str(value or "").strip()


def _str(value: Any) -> str | None:
    """A JSON/feedparser value that should be a string: cleaned and stripped, else None."""
    return _clean(value).strip() or None if isinstance(value, str) else None


def _clean(value: str) -> str:
    """Text without code points XML 1.0 cannot carry (controls, lone surrogates, U+FFFE):
    they break the language check and every XML output (cases/04)."""
    return xml_safe(value)


def _xml_safe_value(value: Any) -> Any:
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, list):
        return [_xml_safe_value(v) for v in value]
    return value


def _xml_safe_object(obj: dict[str, Any]) -> dict[str, Any]:
    """`json.loads`' object hook for JSON Feed: each string value (in lists too) without code
    points XML 1.0 cannot carry (`text.xml_safe`). Nested objects come through the hook
    themselves, innermost first."""
    return {key: _xml_safe_value(value) for key, value in obj.items()}


def _list(value: Any) -> list[Any]:
    """A JSON value that should be a list; anything else (hostile or sloppy feeds) is empty."""
    return [v for v in value if v is not None] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    """A byte count: a non-negative integer, else None (never raises: `1e999`, `"12 MB"`)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 <= number < 2**63 else None


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b
