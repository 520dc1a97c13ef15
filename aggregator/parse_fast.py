"""The fast path of `parse` (issue 15): feedparser-rs, read into the shape feedparser gives,
for the documents where the two are proven to agree; None (feedparser decides) for the rest.

feedparser-rs (Rust, quick-xml) parses a document 16x faster than feedparser but differs
from it in ways that change what we store (measured on the shared corpus, issue 15): it
keeps entity references in attribute values (`href="?a=1&amp;b=2"`), calls every RSS title
and every untyped Atom summary HTML, copies an entry's publication date into `updated`, does
not resolve relative URLs as feedparser does, drops or merges entries of broken documents,
and reads a legacy encoding named in the XML declaration itself. `read` takes its answer only
where none of that can matter or it is put right here:

- before parsing (the document, already UTF-8 with its DOCTYPE removed by `parse`): no
  relative reference (`has_relative_references` was False) and no `xml:base`; the XML
  declaration is replaced by a UTF-8 one (the bytes are UTF-8 by now);
- after parsing: the document was well-formed to feedparser-rs (`bozo` false), of a format
  whose marker it carries (RSS 2.0 `version="2.0"`, Atom 1.0's or RSS 1.0's namespace), with
  as many entries as the document has `<item>`/`<entry>` elements, none at a resource limit,
  and every attribute-derived value without `&` (or, in Atom, unescaped here as XML does).

tests/test_parse_fast.py proves the parsed feeds equal to feedparser's on every document of
the shared corpus and of generated worlds where this path is taken.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import xml.parsers.expat
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin

_rs: Any = importlib.import_module("feedparser_rs")  # no type stubs: typed as Any

_LOOKS_LIKE_HTML = _FeedParserMixin.looks_like_html
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
UTF8_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'
# An entry: Atom <entry> or RSS <item>, with any prefix. Matched in the lower-cased document.
_ENTRY_SPAN = re.compile(
    rb"<(?:[a-z0-9_.-]+:)?(?:entry|item)[\s>].*?</(?:[a-z0-9_.-]+:)?(?:entry|item)\s*>", re.S
)
# Elements feedparser reads as an entry's `updated` (feedparser.namespaces: _start_updated and
# its aliases modified, lastbuilddate, dc:date, dcterms:modified).
_UPDATED_ELEMENT = re.compile(
    rb"<(?:[a-z0-9_.-]+:)?(updated|modified|lastbuilddate|date)(?:\s[^>]*)?>([^<]*)</(?:[a-z0-9_.-]+:)?\1\s*>"
)
_PUBLISHED_ELEMENT = re.compile(
    rb"<(?:[a-z0-9_.-]+:)?(pubdate|published|issued|created)(?:\s[^>]*)?>([^<]*)</(?:[a-z0-9_.-]+:)?\1\s*>"
)
_TYPED = re.compile(rb"\btype\s*=")
_FORMAT_MARKERS = {
    "rss20": re.compile(rb"<rss[^>]*\bversion\s*=\s*[\"']2\.0[\"']"),
    "atom10": re.compile(rb"xmlns(?::[a-z0-9_.-]+)?\s*=\s*[\"']http://www\.w3\.org/2005/atom[\"']"),
    "rss10": re.compile(rb"xmlns(?::[a-z0-9_.-]+)?\s*=\s*[\"']http://purl\.org/rss/1\.0/[\"']"),
}
_XML_REFERENCE = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));")
_C1_CONTROL = re.compile("[\x80-\x9f]")
_ATTRIBUTE_SPACE = str.maketrans("\t\n\r", "   ")
_PREDEFINED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_LIMITS = _rs.ParserLimits()
# The elements an entry may hold for this path: those both parsers are proven (on the corpus
# and generated documents) to read alike, and none that feedparser maps onto a field we read
# while feedparser-rs does not (`fullitem`, `xhtml:body`, `itunes:summary`, `dc:subject`,
# `media:content`'s title and description, ...). Names as written, lower-cased, prefix
# included. IGNORED_ELEMENTS: what neither reads into a field we use (shown to change nothing).
IGNORED_ELEMENTS = frozenset(
    {"media:thumbnail", "slash:comments", "wfw:commentrss", "feedburner:origlink", "georss:point"}
)
RSS_ELEMENTS = IGNORED_ELEMENTS | {
    "item", "title", "link", "description", "guid", "pubdate", "category", "author",
    "comments", "enclosure", "dc:creator", "dc:date", "content:encoded",
}  # fmt: skip
ATOM_ELEMENTS = IGNORED_ELEMENTS | {
    "entry", "title", "link", "id", "published", "updated", "summary", "content", "author",
    "name", "uri", "category",
}  # fmt: skip
_ATOM_LINK = re.compile(rb"<link[\s/>][^>]*\bhref\s*=")
_ANY_LINK = re.compile(rb"<link[\s/>]")
_START_TAG = re.compile(rb"<([a-z][^\s/>]*)")
_CDATA = re.compile(rb"<!\[cdata\[.*?\]\]>", re.S)
_LANGUAGE_ELEMENT = re.compile(rb"<(?:[a-z0-9_.-]+:)?language[\s>]")
_AUTHOR_ELEMENT = re.compile(rb"<(?:[a-z0-9_.-]+:)?(?:author|creator)[\s>]")
# feedparser's repair of an RSS <link>'s query (mixin.pop: "?a=1&b;=2" read as references).
_LINK_REFERENCE = re.compile(r"&([A-Za-z0-9_]+);")


def _element_text(value: Any) -> Any:
    """An element's text as feedparser's `pop` leaves it (feedparser.mixin): UTF-8 that was
    read as ISO-8859-1 decoded again when it can be, then C1 controls mapped to the
    windows-1252 characters they stand for."""
    if not isinstance(value, str) or value.isascii():
        return value
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    # (a dict translation costs a lookup per character: only text with C1 controls pays it)
    return value.translate(_cp1252) if _C1_CONTROL.search(value) else value


def _absolute(url: Any) -> bool:
    """Not a string, or an absolute URL with a lower-case scheme (feedparser lower-cases
    `HTTP://`, and resolves what is relative)."""
    if not isinstance(url, str):
        return True
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme == scheme.lower()


class NotProven(Exception):
    """The document is outside the conditions under which feedparser-rs agrees with
    feedparser; str() says which (logged at debug by `parse`)."""


def read(data: bytes, lowered: bytes) -> dict[str, Any]:
    """`data` (UTF-8, DOCTYPE removed, no relative references) -> a dict in the shape of
    feedparser's result, as far as `parse` reads it: `version`, `bozo`, `feed` (title,
    title_detail, link, language) and `entries` (plain dicts of feedparser's keys).
    `lowered` is `data.lower()`. Raises NotProven when the conditions above do not hold."""
    if b"xml:base" in lowered:
        raise NotProven("xml:base")
    declaration = _XML_DECLARATION.match(data)
    body = UTF8_DECLARATION + (data[declaration.end() :] if declaration else data)
    try:
        d = _rs.parse(body, sanitize_html=False, resolve_relative_uris=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # a Rust panic arrives as pyo3's PanicException (BaseException)
        raise NotProven(f"feedparser-rs failed: {type(e).__name__}: {e}") from None
    if d.bozo:
        raise NotProven(f"not well-formed to feedparser-rs: {d.bozo_exception}")
    try:
        # feedparser reads a document with expat (namespaces on) first, and only what
        # expat rejects with its lenient parser: the same judgement, made here in C
        expat = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        expat.Parse(body, True)
    except xml.parsers.expat.ExpatError as e:
        raise NotProven(f"not well-formed to expat: {e}") from None
    version = str(d.version or "")
    marker = _FORMAT_MARKERS.get(version)
    if marker is None or not marker.search(lowered):
        raise NotProven(f"format {version or 'unknown'} without its marker")
    markup = _CDATA.sub(b"", lowered)  # element names are looked for outside CDATA sections
    for prefix in {name.partition(b":")[0] for name in _START_TAG.findall(markup) if b":" in name}:
        if b"xmlns:" + prefix not in markup:
            raise NotProven(f"the prefix {prefix.decode('ascii', 'replace')} used undeclared")
    spans = [m.group() for m in _ENTRY_SPAN.finditer(markup)]
    if len(spans) != len(d.entries) or len(spans) >= _LIMITS.max_entries:
        raise NotProven(f"{len(d.entries)} entries read, {len(spans)} in the document")
    atom = version == "atom10"
    entries = [_entry(e, span, atom) for e, span in zip(d.entries, spans, strict=True)]
    f = d.feed
    if not _absolute(f.link):
        raise NotProven("a relative feed link")
    if b"xml:lang" in lowered and f.language is None:
        raise NotProven("xml:lang that feedparser-rs does not give as the feed's language")
    head = markup[: _ENTRY_SPAN.search(markup).start()] if spans else markup  # type: ignore[union-attr]
    feed = {
        "title": _element_text(f.title),
        "title_detail": _construct(f.title_detail, _title_kind(f.title, head, atom)),
        "link": f.link,
        "language": f.language,
    }
    return {"version": version, "bozo": False, "feed": feed, "entries": entries}


def _construct(tc: Any, kind: str | None = None) -> dict[str, Any] | None:
    if tc is None:
        return None
    return {"type": kind or tc.type, "value": _element_text(tc.value), "language": tc.language}


def _attribute(value: Any) -> Any:
    """A value feedparser-rs took from an attribute, where it leaves it as written: made what
    XML makes of it (XML 1.0 sections 2.11 and 3.3.3: line ends, then each tab and line
    break a space, then references decoded; the document is well-formed, so every reference
    is a predefined or a numeric one)."""
    if not isinstance(value, str):
        return value
    if "\r" in value or "\n" in value or "\t" in value:
        value = value.replace("\r\n", " ").translate(_ATTRIBUTE_SPACE)
    return _XML_REFERENCE.sub(_reference, value) if "&" in value else value


def _reference(m: re.Match[str]) -> str:
    name, dec, hexa = m.groups()
    if name:
        return _PREDEFINED[name]
    return chr(int(dec) if dec else int(hexa, 16))


def _link(link: Any, atom: bool, text_link: Any) -> dict[str, Any]:
    href = link.href
    # In RSS the <link> element's text is read as XML text (references decoded), an
    # enclosure's url as a raw attribute (an item's atom:link is outside RSS_ELEMENTS).
    from_text = not atom and href is not None and href == text_link and link.rel == "alternate"
    href = _rss_link(href) if from_text else _attribute(href)
    if href is None or not _absolute(href):
        raise NotProven("a link without an absolute href")
    out = {
        "href": href,
        "rel": _lower(_attribute(link.rel)),
        "type": _lower(_attribute(link.type)),
        "hreflang": _attribute(link.hreflang),
        "length": _attribute(link.length),
    }
    return {k: v for k, v in out.items() if v is not None}


def _lower(value: Any) -> Any:
    """feedparser lower-cases `rel` and `type` attributes (parsers: _normalize_attributes)."""
    return value.lower() if isinstance(value, str) else value


def _rss_link(text: str) -> str:
    text = _element_text(text).replace("&amp;", "&")
    return _LINK_REFERENCE.sub(r"&\g<1>", text)


def _entry(e: Any, span: bytes, atom: bool) -> dict[str, Any]:
    links = e.links or ()
    if (
        len(links) >= _LIMITS.max_links_per_entry
        or len(e.tags or ()) >= _LIMITS.max_tags
        or len(e.content or ()) >= _LIMITS.max_content_blocks
        or len(e.enclosures or ()) >= _LIMITS.max_enclosures
    ):
        raise NotProven("an entry at a resource limit of feedparser-rs")
    names = {m.decode("ascii", "replace") for m in _START_TAG.findall(span)}
    others = names - (ATOM_ELEMENTS if atom else RSS_ELEMENTS)
    if others:
        raise NotProven(f"an entry element this path does not read: <{min(others)}>")
    if atom and not len(_ATOM_LINK.findall(span)) == len(_ANY_LINK.findall(span)) == len(links):
        raise NotProven("an Atom link without an href")
    title_kind = _title_kind(e.title, span, atom)
    # RFC 4287 section 3.1.1: an untyped text construct is text; feedparser-rs calls an
    # untyped Atom summary HTML
    summary_kind = _untyped_kind(span, b"summary") if atom else None
    updated, published = _element_text(e.updated), _element_text(e.published)
    # feedparser-rs fills a missing or unreadable date from the other one; feedparser keeps
    # each element's text as written: both are checked against the entry's own elements
    published = _date_text(published, updated, _PUBLISHED_ELEMENT, span)
    updated = _date_text(updated, e.published, _UPDATED_ELEMENT, span)
    link = _attribute(e.link) if atom else (_rss_link(e.link) if e.link else None)
    if not _absolute(link):
        raise NotProven("a relative link")
    if e.id is not None and (":" not in e.id or (not _absolute(e.id) and "://" in e.id)):
        raise NotProven("an id that is no URI (feedparser resolves it)")
    if _LANGUAGE_ELEMENT.search(span):
        raise NotProven("an entry declaring its language (feedparser-rs does not read it)")
    authors = len(_AUTHOR_ELEMENT.findall(span))
    if authors > 1:
        raise NotProven("an entry with more than one author element")
    out: dict[str, Any] = {
        "title": _element_text(e.title),
        "title_detail": _construct(e.title_detail, title_kind),
        "summary": _element_text(e.summary),
        "summary_detail": _construct(e.summary_detail, summary_kind),
        "content": [_construct(c) for c in e.content or ()],
        "language": e.language,
        "links": [_link(x, atom, e.link) for x in links],
        "id": _element_text(e.id),
        "guidislink": e.guidislink,
        "link": link,
        # dates read by feedparser's own date parser, as feedparser.parse would
        "published": published,
        "published_parsed": _parse_date(published) if published else None,
        "updated": updated,
        "updated_parsed": _parse_date(updated) if updated else None,
        "author": _author(e.author, authors, atom, span),
        "tags": _tags(e.tags or (), atom),
    }
    return {k: v for k, v in out.items() if v is not None}


def _author(author: Any, elements: int, atom: bool, span: bytes) -> Any:
    """The entry's author as feedparser gives it: none without an author element (feedparser-rs
    gives the feed's); in Atom the name as written (feedparser composes "name (email)",
    which ATOM_ELEMENTS keeps out, and does not repair an Atom name's text)."""
    if not elements:
        return None
    if not atom:
        return _element_text(author)
    if b"<name" not in span:
        raise NotProven("an Atom author without a name")
    return author


def _date_text(value: str | None, other: str | None, element: re.Pattern[bytes], span: bytes) -> str | None:
    """The date text of the entry's one `element` as feedparser-rs gave it; None when the
    entry has none and feedparser-rs copied `other`. Raises NotProven otherwise."""
    found = element.findall(span)
    if not found:
        if value is None or value == other:
            return None
        raise NotProven("a date without its element")
    if len(found) > 1 or value is None:
        raise NotProven("an entry with several (or unread) dates of one kind")
    if found[0][1].strip() != value.strip().lower().encode():
        raise NotProven("a date feedparser-rs could not read")
    return value


def _tags(tags: Any, atom: bool) -> list[dict[str, Any]]:
    """Categories as feedparser keeps them (mixin._add_tag): each (term, scheme, label) once."""
    seen: dict[tuple[Any, Any, Any], None] = {}
    for t in tags:
        if atom:
            key = (_attribute(t.term), _attribute(t.scheme), _attribute(t.label))
        else:
            key = (_element_text(t.term), _attribute(t.scheme), t.label)
        if any(key):
            seen.setdefault(key, None)
    return [{"term": term, "scheme": scheme, "label": label} for term, scheme, label in seen]


def _title_kind(title: Any, markup: bytes, atom: bool) -> str | None:
    """A title's type as feedparser gives it, where feedparser-rs differs: in Atom text
    when untyped (RFC 4287 section 3.1.1); in RSS, HTML only when it looks like HTML
    (feedparser guesses: mixin.pop, `looks_like_html`); None: feedparser-rs's reading."""
    if atom:
        return _untyped_kind(markup, b"title")
    if title is None:
        return None
    return "text/html" if _LOOKS_LIKE_HTML(title) else "text/plain"


def _untyped_kind(span: bytes, name: bytes) -> str | None:
    """'text/plain' when the entry's first `name` element has no type attribute; None to
    keep feedparser-rs's reading."""
    m = re.search(rb"<(?:[a-z0-9_.-]+:)?" + name + rb"([\s>/][^>]*)", span)
    if m is None or _TYPED.search(m.group(1)):
        return None
    return "text/plain"
