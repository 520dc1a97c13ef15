"""The fast path of `parse` (issue 15): feedparser-rs, read into the shape feedparser gives,
for the documents where the two are proven to agree; NotProven (feedparser reads it) for the
rest.

feedparser-rs (Rust) parses a document 16-40x faster than feedparser, but it differs from it in
ways that change what we store (measured on the shared corpus, issue 15): it keeps attribute
values as written (`href="?a=1&amp;b=2"`, line breaks), calls every RSS title and every untyped
Atom summary HTML, copies an entry's publication date into `updated` (and either date into the
other when it cannot read one), gives entries the feed's author, does not resolve URLs as
feedparser does (nor repair its text: UTF-8 read as ISO-8859-1, C1 controls), counts a category
twice, ignores an entry's `dc:language`, reads `<fullitem>`, `media:content` and the like
differently or not at all, and accepts documents expat rejects. `read` puts right what can be
put right with feedparser's own functions (its URL join, relative-URI pass, date parser, HTML
guess and character table) and refuses the rest, per document:

- the document: well-formed to feedparser-rs and to expat (whose verdict decides whether
  feedparser reads leniently), its format's marker present (RSS 2.0 `version="2.0"`, the Atom
  1.0 or RSS 1.0 namespace), every prefix declared, no `xml:base` or `base` attribute, no
  HTTP Content-Language, no base64 content, no character reference to CR, no isPermaLink
  but "true" or "false"; as many entries as `<item>`/`<entry>` elements, none at a resource
  limit of feedparser-rs;
- each entry: only elements of RSS_ELEMENTS or ATOM_ELEMENTS, text constructs of text types;
  dates that are the text of the entry's own date elements; at most one author element (an
  Atom one with a name); no id that feedparser's URL join would change; no empty link; Atom
  links all with an href.

tests/test_parse_fast.py proves the parsed feeds equal to feedparser's on every document of
the shared corpus, a generated world and generated documents wherever this path is taken.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import xml.parsers.expat
from typing import Any

try:  # feedparser's own functions (6.0), and feedparser-rs (no type stubs: typed as Any)
    from feedparser.api import StrictFeedParser
    from feedparser.datetimes import _parse_date
    from feedparser.html import _cp1252
    from feedparser.mixin import _FeedParserMixin
    from feedparser.urls import _urljoin, resolve_relative_uris
    from feedparser.util import FeedParserDict

    _rs: Any = importlib.import_module("feedparser_rs")
    _LIMITS: Any = _rs.ParserLimits()
    _KNOWN_NAMESPACES = frozenset(uri.lower() for uri in _FeedParserMixin.namespaces)
    # Why every document goes to feedparser, if one of them is missing or has moved
    UNAVAILABLE: str | None = None
except (ImportError, AttributeError) as missing:  # pragma: no cover - feedparser reads all
    UNAVAILABLE = f"{type(missing).__name__}: {missing}"

_HTML_TYPES = ("text/html", "application/xhtml+xml")  # feedparser's html_types
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
UTF8_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'
# Matched in the lower-cased document with its CDATA sections removed:
_CDATA = re.compile(rb"<!\[cdata\[.*?\]\]>", re.S)
_START_TAG = re.compile(rb"<([a-z][^\s/>]*)")
_ENTRY_SPAN = re.compile(
    rb"<(?:[a-z0-9_.-]+:)?(?:entry|item)[\s>].*?</(?:[a-z0-9_.-]+:)?(?:entry|item)\s*>", re.S
)
_BASE_ATTRIBUTE = re.compile(rb"<[^>]*\s(?:xml:)?base\s*=")  # feedparser honours both
_FORMAT_MARKERS = {
    "rss20": re.compile(rb"<rss[^>]*\bversion\s*=\s*[\"']2\.0[\"']"),
    "atom10": re.compile(rb"xmlns(?::[a-z0-9_.-]+)?\s*=\s*[\"']http://www\.w3\.org/2005/atom[\"']"),
    "rss10": re.compile(rb"xmlns(?::[a-z0-9_.-]+)?\s*=\s*[\"']http://purl\.org/rss/1\.0/[\"']"),
}


def _text_element(names: bytes) -> re.Pattern[bytes]:
    """An element named one of `names` (any prefix) holding text only: groups name, text."""
    return re.compile(rb"<(?:[a-z0-9_.-]+:)?(" + names + rb")(?:\s[^>]*)?>([^<]*)</(?:[a-z0-9_.-]+:)?\1\s*>")


# Elements feedparser reads as `updated` (feedparser.namespaces: _start_updated and its
# aliases modified, lastbuilddate, dc:date, dcterms:modified) and as `published`.
_UPDATED_ELEMENT = _text_element(rb"updated|modified|lastbuilddate|date")
_PUBLISHED_ELEMENT = _text_element(rb"pubdate|published|issued|created")
_LINK_WITH_HREF = re.compile(rb"<link[\s/>][^>]*\bhref\s*=")
_ANY_LINK = re.compile(rb"<link[\s/>]")
_RSS_LINK_ELEMENT = re.compile(rb"<link[\s>]")
_AUTHOR_ELEMENT = re.compile(rb"<(?:[a-z0-9_.-]+:)?(?:author|creator)[\s>]")
_TEXT_TYPE = re.compile(
    rb"<(?:[a-z0-9_.-]+:)?(?:title|summary|content|description)\s[^>]*\btype\s*=\s*[\"']([^\"']*)"
)
_TEXT_TYPES = {b"text", b"html", b"xhtml", b"application/xhtml+xml"}
_TYPED = re.compile(rb"\btype\s*=")
# The elements an entry may hold for this path: those both parsers are proven (on the corpus
# and generated documents) to read alike, and none that feedparser maps onto a field we read
# while feedparser-rs does not or differently (`fullitem`, `xhtml:body`, `itunes:summary`,
# `itunes:author`, `dc:subject`, `dc:language`, `media:content`, an item's `atom:link`, an
# Atom author's `email` ...). Names as written, lower-cased, prefix included.
# IGNORED_ELEMENTS: what neither reads into a field we use.
IGNORED_ELEMENTS = frozenset(
    {"media:thumbnail", "slash:comments", "wfw:commentrss", "feedburner:origlink", "georss:point"}
)
RSS_ELEMENTS = IGNORED_ELEMENTS | {
    "item", "title", "link", "description", "guid", "pubdate", "category", "author",
    "comments", "enclosure", "dc:creator", "dc:date", "content:encoded", "dc:subject", "source",
}  # fmt: skip
ATOM_ELEMENTS = IGNORED_ELEMENTS | {
    "entry", "title", "link", "id", "published", "updated", "summary", "content", "author",
    "name", "uri", "category", "dc:subject",
}  # fmt: skip
_XML_REFERENCE = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));")
_PREDEFINED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_ATTRIBUTE_SPACE = str.maketrans("\t\n\r", "   ")
_ODD_PERMALINK = re.compile(rb"(?i:ispermalink)\s*=\s*[\"'](?!(?:true|false)[\"'])")
_RSS_CONTAINERS = frozenset({"item"})
_ATOM_CONTAINERS = frozenset({"entry", "author"})
# An Atom author as this path reads it: a name and a URI, each text only.
_AUTHOR_ONLY = re.compile(
    rb"<author(?:\s[^>]*)?>(?:\s*<(name|uri)(?:\s[^>]*)?>[^<]*</\1\s*>)*\s*</author\s*>"
)
_RSS_ROOT = re.compile(rb"<(?:rss|rdf:rdf)[\s>]")
_XMLNS = re.compile(rb"xmlns:([a-z0-9_.-]+)\s*=\s*[\"']([^\"']*)")
_NAME = re.compile(r"(?:[a-z_][a-z0-9_.-]*:)?[a-z_][a-z0-9_.-]*")
_CR_REFERENCE = re.compile(rb"&#(?:0*13|x0*d);")
_C1_CONTROL = re.compile("[\x80-\x9f]")
# feedparser's repair of a <link>'s query (mixin.pop: "?a=1&b;=2" read as references)
_LINK_REFERENCE = re.compile(r"&([A-Za-z0-9_]+);")


class NotProven(Exception):
    """The document is outside the conditions under which feedparser-rs agrees with
    feedparser; str() says which (logged at debug by `parse`)."""


def read(
    data: bytes, lowered: bytes, url: str, *, resolve_html: bool, content_language: str | None = None
) -> dict[str, Any]:
    """`data` (UTF-8, its DOCTYPE removed, as `parse` prepares it for feedparser) -> a dict in
    the shape of feedparser's result as far as `parse` reads it: `version`, `bozo`, `feed`
    (title, title_detail, link, language) and `entries` (plain dicts of feedparser's keys).

    `lowered` is `data.lower()`; `url` the document's address (feedparser's base URI);
    `resolve_html`: make relative URLs in the entries' HTML absolute, as feedparser's
    relative-URI pass does (`parse.has_relative_references`); `content_language` the HTTP
    Content-Language. Raises NotProven when the conditions in the module's doc do not hold."""
    if UNAVAILABLE:
        raise NotProven(f"the fast path is unavailable: {UNAVAILABLE}")
    if content_language:
        raise NotProven("an HTTP Content-Language (feedparser's default xml:lang)")
    # First what needs no parser (most refusals are here, before paying for a parse) ...
    if b"base64" in lowered:  # Atom 0.3 mode="base64": feedparser decodes it
        raise NotProven("base64")
    if b"ispermalink" in lowered and _ODD_PERMALINK.search(data):
        # feedparser: a permalink only when the value is "true" exactly (_start_guid)
        raise NotProven("an isPermaLink other than true or false")
    if _CR_REFERENCE.search(lowered):
        raise NotProven("a character reference to CR")
    markup = _CDATA.sub(b"", lowered)
    if _BASE_ATTRIBUTE.search(markup):
        raise NotProven("xml:base")
    for prefix in {name.partition(b":")[0] for name in _START_TAG.findall(markup) if b":" in name}:
        if b"xmlns:" + prefix not in markup:
            raise NotProven(f"the prefix {prefix.decode('ascii', 'replace')} used undeclared")
    atom = bool(_FORMAT_MARKERS["atom10"].search(lowered)) and not _RSS_ROOT.search(markup)
    namespaces = {
        m[0].decode("ascii", "replace"): m[1].decode("utf-8", "replace") for m in _XMLNS.findall(markup)
    }
    found = list(_ENTRY_SPAN.finditer(markup))
    for m in found:
        _check_elements(m.group(), atom, namespaces)
    # ... then the parse, and what needs it
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
        # feedparser reads with expat (namespaces on), and leniently only what expat
        # rejects: the same verdict, reached here in C
        xml.parsers.expat.ParserCreate(namespace_separator=" ").Parse(body, True)
    except xml.parsers.expat.ExpatError as e:
        raise NotProven(f"not well-formed to expat: {e}") from None
    version = str(d.version or "")
    marker = _FORMAT_MARKERS.get(version)
    if marker is None or not marker.search(lowered) or (version == "atom10") != atom:
        raise NotProven(f"format {version or 'unknown'} without its marker")
    if len(found) != len(d.entries) or len(found) >= _LIMITS.max_entries:
        raise NotProven(f"{len(d.entries)} entries read, {len(found)} in the document")
    doc = _Document(url, atom, resolve_html)
    entries = [doc.entry(e, m.group()) for e, m in zip(d.entries, found, strict=True)]
    f = d.feed
    if b"xml:lang" in lowered and f.language is None:
        raise NotProven("xml:lang that feedparser-rs does not give as the feed's language")
    head = markup[: found[0].start()] if found else markup
    title_kind = _title_kind(f.title, head, doc.atom) or (f.title_detail and f.title_detail.type)
    feed = {
        "title": doc.text(f.title, title_kind),
        "title_detail": f.title_detail and {"type": title_kind, "language": f.title_detail.language},
        "link": doc.feed_link(f.link),
        "language": f.language,
    }
    return {"version": version, "bozo": False, "feed": feed, "entries": entries}


class _Document:
    """What feedparser does to one document's values beyond parsing it (feedparser.mixin
    `pop` and the namespaces' handlers), done to feedparser-rs's values."""

    def __init__(self, url: str, atom: bool, resolve_html: bool) -> None:
        self.url = url  # feedparser's base URI: the Content-Location we give it (api.parse)
        self.atom = atom
        self.resolve_html = resolve_html

    def text(self, value: Any, kind: str | None) -> Any:
        """An element's text: feedparser's relative-URI pass over HTML, when asked for, then
        its repairs (`_element_text`)."""
        if self.resolve_html and isinstance(value, str) and kind in _HTML_TYPES:
            value = resolve_relative_uris(_line_ends(value), self.url, "utf-8", kind)
        return _element_text(value)

    def construct(self, tc: Any, kind: str | None = None) -> dict[str, Any] | None:
        if tc is None:
            return None
        kind = kind or tc.type
        return {"type": kind, "value": self.text(tc.value, kind), "language": tc.language}

    def feed_link(self, link: Any) -> Any:
        if not isinstance(link, str):
            return link
        if self.atom:
            return _urljoin(self.url, _attribute(link))
        return _LINK_REFERENCE.sub(r"&\g<1>", _element_text(_urljoin(self.url, link)))

    def link(self, link: Any, span: bytes) -> dict[str, Any]:
        """A link as feedparser lists it: Atom hrefs joined to the base (_start_link), an RSS
        enclosure's url as given (_start_enclosure), an RSS <link> (or a permalink guid)
        read as element text."""
        href = link.href
        if href is None:
            raise NotProven("a link without an href")
        if self.atom:
            href = _urljoin(self.url, _attribute(href))
        elif link.rel == "enclosure":
            href = _attribute(href)
        else:
            if "&" in href and not _RSS_LINK_ELEMENT.search(span):
                raise NotProven("a guid as the link, with a reference in it")
            href = self.rss_link(href)
        out = {
            "href": href,
            "rel": _lower(_attribute(link.rel)),
            "type": _lower(_attribute(link.type)),
            "hreflang": _attribute(link.hreflang),
            "length": _attribute(link.length),
        }
        return {k: v for k, v in out.items() if v is not None}

    def rss_link(self, text: str) -> str:
        """An RSS <link>'s text as feedparser stores it (mixin.pop): joined to the base,
        repaired, then its query's references undone."""
        if not text.strip():
            raise NotProven("an empty link")
        text = _element_text(_urljoin(self.url, text)).replace("&amp;", "&")
        return _LINK_REFERENCE.sub(r"&\g<1>", text)

    def entry(self, e: Any, span: bytes) -> dict[str, Any]:
        atom = self.atom
        links = e.links or ()
        if (
            len(links) >= _LIMITS.max_links_per_entry
            or len(e.tags or ()) >= _LIMITS.max_tags
            or len(e.content or ()) >= _LIMITS.max_content_blocks
            or len(e.enclosures or ()) >= _LIMITS.max_enclosures
        ):
            raise NotProven("an entry at a resource limit of feedparser-rs")
        if atom and not len(_LINK_WITH_HREF.findall(span)) == len(_ANY_LINK.findall(span)) == len(links):
            raise NotProven("an Atom link without an href")
        # feedparser resolves an id that is a permalink (_start_guid, pop): one the join
        # would change is left to it
        if e.id is not None and _urljoin(self.url, e.id) != e.id:
            raise NotProven("an id feedparser's URL join would change")
        authors = len(_AUTHOR_ELEMENT.findall(span))
        if authors > 1:
            raise NotProven("an entry with more than one author element")
        title_kind = _title_kind(e.title, span, atom) or (e.title_detail and e.title_detail.type)
        # RFC 4287 section 3.1.1: an untyped text construct is text; feedparser-rs calls an
        # untyped Atom summary HTML
        summary_kind = _untyped_kind(span, b"summary") if atom else None
        raw_published, raw_updated = e.published, e.updated
        # feedparser-rs fills a missing or unreadable date from the other one; feedparser keeps
        # each element's text: both are checked against the entry's own elements
        published = _date_text(_element_text(raw_published), raw_updated, _PUBLISHED_ELEMENT, span)
        updated = _date_text(_element_text(raw_updated), raw_published, _UPDATED_ELEMENT, span)
        if atom:
            link = _urljoin(self.url, _attribute(e.link)) if e.link else None
        elif e.link and "&" in e.link and not _RSS_LINK_ELEMENT.search(span):
            raise NotProven("a guid as the link, with a reference in it")
        else:
            link = self.rss_link(e.link) if e.link else None
        out: dict[str, Any] = {
            "title": self.text(e.title, title_kind),
            "title_detail": self.construct(e.title_detail, title_kind),
            "summary": self.text(e.summary, summary_kind or (e.summary_detail and e.summary_detail.type)),
            "summary_detail": self.construct(e.summary_detail, summary_kind),
            "content": [self.construct(c) for c in e.content or ()],
            "language": e.language,
            "links": [self.link(x, span) for x in links],
            "id": _element_text(e.id),
            "guidislink": e.guidislink,
            "link": link,
            # dates read by feedparser's own date parser, as feedparser.parse reads them
            "published": published,
            "published_parsed": _parse_date(published) if published else None,
            "updated": updated,
            "updated_parsed": _parse_date(updated) if updated else None,
            "author": _author(e.author, authors, atom, span),
            "tags": _tags(e.tags or (), atom),
        }
        return {k: v for k, v in out.items() if v is not None}


def _check_elements(span: bytes, atom: bool, namespaces: dict[str, str]) -> None:
    """Raises NotProven unless every element of the entry `span` (lower-cased, CDATA removed)
    is one this path reads (RSS_ELEMENTS, ATOM_ELEMENTS) or one neither parser reads
    (`_unread`), each holds text only (markup in a description must be escaped or in CDATA:
    feedparser keeps naked markup as the text) but the entry and an Atom author (a name and
    a URI), and every text construct is of a text type."""
    names = {m.decode("ascii", "replace") for m in _START_TAG.findall(span)}
    for name in names - (ATOM_ELEMENTS if atom else RSS_ELEMENTS):
        if not _unread(name, namespaces):
            raise NotProven(f"an entry element this path does not read: <{name}>")
    for name in names - (_ATOM_CONTAINERS if atom else _RSS_CONTAINERS):
        if not _leaf(name, span):
            raise NotProven(f"an element inside <{name}>")
    if atom and b"<author" in span and b"<author" in _AUTHOR_ONLY.sub(b"", span):
        raise NotProven("an Atom author holding more than a name and a URI")
    for kind in _TEXT_TYPE.findall(span):
        # feedparser decodes base64 content of any other type (mixin._is_base64)
        if kind not in _TEXT_TYPES and not kind.startswith(b"text/"):
            raise NotProven(f"a text construct of type {kind.decode('ascii', 'replace')}")


@functools.lru_cache(maxsize=1024)
def _unread_name(name: str, uri: str | None) -> bool:
    """Whether feedparser has no handler for the element (its text then goes to a key of its
    own name: feedparser.mixin.unknown_starttag) and the name is none of FeedParserDict's
    aliases; and, when prefixed, its namespace is none feedparser knows either (feedparser-rs
    reads media, iTunes, Dublin Core ... by namespace)."""
    prefix, _, local = name.rpartition(":")
    if prefix:
        if uri is None or uri.lower() in _KNOWN_NAMESPACES:
            return False
        key = f"{prefix}_{local}"
    else:
        key = local
    return not hasattr(StrictFeedParser, f"_start_{key}") and key not in FeedParserDict.keymap


def _unread(name: str, namespaces: dict[str, str]) -> bool:
    prefix = name.rpartition(":")[0]
    return bool(_NAME.fullmatch(name)) and _unread_name(name, namespaces.get(prefix) if prefix else None)


def _leaf(name: str, span: bytes) -> bool:
    """Every `name` element of the entry holds text only: no element feedparser or
    feedparser-rs could read as the entry's own (`<image><title>`)."""
    raw = re.escape(name.encode())
    starts = len(re.findall(rb"<" + raw + rb"[\s/>]", span))
    leaves = len(re.findall(rb"<" + raw + rb"(?:\s[^>]*)?(?:/>|>[^<]*</" + raw + rb"\s*>)", span))
    return starts == leaves


def _element_text(value: Any) -> Any:
    """An element's text as feedparser's `pop` leaves it (feedparser.mixin): line ends as XML
    makes them (`read` refuses a character reference to CR), UTF-8 that was read as
    ISO-8859-1 decoded again when it can be, then C1 controls mapped to the windows-1252
    characters they stand for."""
    if not isinstance(value, str):
        return value
    value = _line_ends(value)
    if value.isascii():
        return value
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    # (a dict translation costs a lookup per character: only text with C1 controls pays it)
    return value.translate(_cp1252) if _C1_CONTROL.search(value) else value


def _line_ends(value: str) -> str:
    """CR LF and CR as LF (XML 1.0 section 2.11): feedparser-rs keeps them in CDATA."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


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


def _lower(value: Any) -> Any:
    """feedparser lower-cases `rel` and `type` attributes (parsers: _normalize_attributes)."""
    return value.lower() if isinstance(value, str) else value


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
    return _line_ends(author) if isinstance(author, str) else author


def _date_text(value: str | None, other: str | None, element: re.Pattern[bytes], span: bytes) -> str | None:
    """The text of the entry's one date `element`, as feedparser-rs gave it; None when the
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
    return "text/html" if _FeedParserMixin.looks_like_html(title) else "text/plain"


def _untyped_kind(markup: bytes, name: bytes) -> str | None:
    """'text/plain' when the first `name` element in `markup` has no type attribute; None to
    keep feedparser-rs's reading."""
    m = re.search(rb"<(?:[a-z0-9_.-]+:)?" + name + rb"([\s>/][^>]*)", markup)
    if m is None or _TYPED.search(m.group(1)):
        return None
    return "text/plain"
