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

import importlib
import re
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin

_rs: Any = importlib.import_module("feedparser_rs")  # no type stubs: typed as Any

_LOOKS_LIKE_HTML = _FeedParserMixin.looks_like_html
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
UTF8_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'
# An entry: Atom <entry> or RSS <item>, with any prefix. Matched in the lower-cased document.
_ENTRY_SPAN = re.compile(rb"<(?:[a-z0-9_.-]+:)?(?:entry|item)[\s>].*?</(?:[a-z0-9_.-]+:)?(?:entry|item)\s*>", re.S)
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
_PREDEFINED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_LIMITS = _rs.ParserLimits()
# The elements an entry may hold for this path: those both parsers are proven (on the corpus)
# to read alike, and none that feedparser maps onto a field we read while feedparser-rs does
# not (`fullitem`, `xhtml:body`, `itunes:summary`, `dc:subject`, `media:title` ...). Entry
# names as written, lower-cased, prefix included.
RSS_ELEMENTS = frozenset(
    {
        "item", "title", "link", "description", "guid", "pubdate", "category", "author",
        "comments", "enclosure", "dc:creator", "dc:date", "content:encoded", "atom:link",
    }
)  # fmt: skip
ATOM_ELEMENTS = frozenset(
    {
        "entry", "title", "link", "id", "published", "updated", "summary", "content", "author",
        "name", "email", "uri", "category",
    }
)  # fmt: skip
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
    if not isinstance(value, str):
        return value
    try:
        value = value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.translate(_cp1252)


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
    feed = {
        "title": _element_text(f.title),
        "title_detail": _construct(f.title_detail),
        "link": f.link,
        "language": f.language,
    }
    return {"version": version, "bozo": False, "feed": feed, "entries": entries}


def _construct(tc: Any, kind: str | None = None) -> dict[str, Any] | None:
    if tc is None:
        return None
    return {"type": kind or tc.type, "value": _element_text(tc.value), "language": tc.language}


def _attribute(value: Any, atom: bool) -> Any:
    """A value feedparser-rs took from an attribute, where it leaves references as written."""
    if not isinstance(value, str) or "&" not in value:
        return value
    if not atom:
        raise NotProven("an entity reference in an attribute")
    return _XML_REFERENCE.sub(_reference, value)


def _reference(m: re.Match[str]) -> str:
    name, dec, hexa = m.groups()
    if name:
        return _PREDEFINED[name]
    return chr(int(dec) if dec else int(hexa, 16))


def _link(link: Any, atom: bool, text_link: Any) -> dict[str, Any]:
    href = link.href
    # In RSS the <link> element's text is read as XML text (references decoded), an
    # atom:link's or enclosure's href as a raw attribute.
    if not atom and href is not None and href == text_link:
        href = _rss_link(href)
    else:
        href = _attribute(href, atom)
    if href is None or not _absolute(href):
        raise NotProven("a link without an absolute href")
    out = {
        "href": href,
        "rel": _lower(_attribute(link.rel, atom)),
        "type": _lower(_attribute(link.type, atom)),
        "hreflang": _attribute(link.hreflang, atom),
        "length": _attribute(link.length, atom),
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
    title_kind = summary_kind = None
    if atom:
        # RFC 4287 section 3.1.1: an untyped text construct is text; feedparser-rs calls an
        # untyped title or summary HTML.
        title_kind = _untyped_kind(span, b"title")
        summary_kind = _untyped_kind(span, b"summary")
    elif e.title is not None:
        # feedparser guesses for RSS (mixin.pop: text/plain unless it looks like HTML).
        title_kind = "text/html" if _LOOKS_LIKE_HTML(e.title) else "text/plain"
    updated, published = _element_text(e.updated), _element_text(e.published)
    # feedparser-rs fills a missing or unreadable date from the other one; feedparser keeps
    # each element's text as written: both are checked against the entry's own elements
    published = _date_text(published, updated, _PUBLISHED_ELEMENT, span)
    updated = _date_text(updated, e.published, _UPDATED_ELEMENT, span)
    link = _attribute(e.link, atom) if atom else (_rss_link(e.link) if e.link else None)
    if not _absolute(link):
        raise NotProven("a relative link")
    if e.id is not None and (":" not in e.id or not _absolute(e.id) and "://" in e.id):
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
        "author": _element_text(e.author) if authors else None,
        "tags": _tags(e.tags or (), atom),
    }
    return {k: v for k, v in out.items() if v is not None}


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
            key = (_attribute(t.term, atom), _attribute(t.scheme, atom), _attribute(t.label, atom))
        else:
            key = (_element_text(t.term), t.scheme, t.label)
        if any(key):
            seen.setdefault(key, None)
    return [{"term": term, "scheme": scheme, "label": label} for term, scheme, label in seen]


def _untyped_kind(span: bytes, name: bytes) -> str | None:
    """'text/plain' when the entry's first `name` element has no type attribute; None to
    keep feedparser-rs's reading."""
    m = re.search(rb"<(?:[a-z0-9_.-]+:)?" + name + rb"([\s>/][^>]*)", span)
    if m is None or _TYPED.search(m.group(1)):
        return None
    return "text/plain"
