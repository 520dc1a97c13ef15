"""Syndication feeds: Atom 1.0 (RFC 4287), RSS 2.0 and JSON Feed 1.1. Pure and deterministic.

Three kinds of feed share the writers here:

- **entry feeds** (`feeds/{lang}.*`): the latest entries, one item each;
- **daily digests** (`daily/{lang}.*`): one item per day, its content that day's front page;
- **day archives** (`archive/YYYY/MM/DD/{lang}.atom`, `.feed.json`): every entry of one day,
  linked to the days before and after with RFC 5005 `prev-archive` / `next-archive` / `current`.

Every renderer is *total*: no stored entry can make it raise. Every string is made XML-safe
(`text.xml_safe`), links that are not http(s) are dropped, dates that cannot be written are
clamped, and an entry that would still leave nothing to show (no title, no text, no link, no
enclosure) is left out of the feed rather than failing it.

Atom and RSS are written by feedgen. feedgen 1.0.0 drops every attribute but `href` of an
entry's links (its bug #135: the loop variable is overwritten), so an enclosure would come out
as a second *alternate* link and readers open the picture instead of the article (case 13).
We therefore never hand feedgen an entry-level enclosure for Atom: `_AtomEntryFix`, a feedgen
entry extension (its public hook for adding elements), writes `<link rel="enclosure" type
length>`, a full `<source>` (id, title, link, updated: what the W3C validator asks for),
the title of a title-less note (case 17), and restores `rel="alternate" type="text/html"` on
the article link feedgen stripped; a feed of several languages gives each entry its
`xml:lang`.

An entry is in several documents (its language's day archive and the combined one, maybe the
entry feeds): `Elements` makes each item's feedgen entry once per publish and puts its bytes
(Atom), its element (RSS) or its encoding (JSON Feed) into every document that carries it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from html import escape
from typing import Any
from urllib.parse import urljoin, urlsplit

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.ext.dc import DcEntryExtension
from feedgen.feed import FeedGenerator
from lxml import etree  # type: ignore[import-untyped]

from ..models import Enclosure, Source, StoredEntry
from ..pages_plan import PageRef, day_path, page_stem
from ..settings import Site
from ..text import LINK_REL, shorten, xml_safe
from .common import (
    atom_id,
    cut_of,
    heading,
    language_name,
    public_url,
    publishable,
    section_name,
    section_order,
    tag_authority,
)
from .i18n import Phrase, say

log = logging.getLogger(__name__)

# Feed `updated` when a feed has no entry: fixed, so an empty feed's bytes do not change
# between builds, and plausible (1970 is what feedgen writes from an epoch, and validators
# flag it). The date is the one in our tag: URIs.
EMPTY_FEED_UPDATED = datetime(2023, 1, 1, tzinfo=UTC)
GENERATOR = "aggregator"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
TITLE_FROM_TEXT = 80  # characters of a derived Atom title

# RFC 4287 atomLanguageTag (RFC 3066) and atomMediaType: what the schema accepts.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*\Z")
_MEDIA_TYPE = re.compile(r"[!-~]+/[!-~]+\Z")
_SPACE = re.compile(r"\s")
# An (ASCII) http(s) URL that urlsplit takes apart without complaint into that scheme and a
# host: no white space, no brackets (an IPv6 host is checked the long way).
_PLAIN_HTTP = re.compile(r"https?://[^/?#\[\]\s]+(?:[/?#][^\[\]\s]*)?\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_RSS_PERSON = re.compile(r"\s*([^@\s()]+@[^@\s()]+)\s*\((.*\S.*)\)\s*\Z")
_MIN_DATE = datetime(1000, 1, 2, tzinfo=UTC)  # four-digit years: RFC 822 needs them
_MAX_DATE = datetime(9999, 12, 30, tzinfo=UTC)


# -- plain data the writers take --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FeedItem:
    """One item of any feed, already made safe: every string XML-safe, links http(s) or None.

    `title` is the source's title, "" for a title-less note (RSS and JSON Feed keep it
    title-less: case 17); `atom_title` is what Atom, which requires a title, shows.
    `content_html` is sanitised HTML and never empty; `summary` is the plain-text lede.
    Dates are aware UTC; for `date_only` items `published` is the date at 00:00 UTC."""

    id: str
    title: str
    atom_title: str
    link: str | None
    content_html: str
    summary: str
    published: datetime
    updated: datetime
    author: str | None = None
    categories: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    # BCP 47 tag valid for xml:lang, or None: written only in feeds of several languages
    # (`FeedMeta.language` None), so one item serves its language's feeds and the combined ones
    language: str | None = None
    sources: tuple[Source, ...] = ()
    date_only: bool = False
    # the lede is the whole text of the content, so a summary would only repeat it (RFC 4287
    # section 4.2.13 advises against that): Atom gets no summary, RSS no second description
    summary_repeats: bool = False
    group: str | None = None  # the entry's language (primary subtag): which per-language feeds carry it


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """Feed-level data. URLs are absolute. `prev_archive`/`next_archive`/`current` are RFC 5005
    links (section 4); `archive` marks an archive document (`fh:archive`, never changes).
    `language` None: the feed carries several languages, and each item says its own (Atom
    `xml:lang`, JSON Feed `language`)."""

    id: str
    title: str
    subtitle: str
    self_url: str  # without extension: the writers append .atom / .rss / .json
    home: str
    language: str | None
    author: str
    prev_archive: str | None = None
    next_archive: str | None = None
    current: str | None = None
    archive: bool = False
    json_ext: str = "json"  # day archives use "feed.json": "json" is that day's JSON page
    icon: str | None = None
    logo: str | None = None
    hub: str | None = None  # a WebSub hub (W3C WebSub section 4): advertised as rel="hub"


# -- making entries safe ----------------------------------------------------------------------
def utc(value: datetime | None, fallback: datetime = EMPTY_FEED_UPDATED) -> datetime:
    """An aware UTC datetime that every format can write: naive is read as UTC, and instants
    outside years 1000 to 9999 in UTC (9999-12-31T23:30-05:00 overflows) are clamped."""
    if value is None:
        return fallback
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        result = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return _MAX_DATE if value.year > 5000 else _MIN_DATE
    return min(max(result, _MIN_DATE), _MAX_DATE)


def http_link(url: str | None) -> str | None:
    """`url` if it is an absolute http(s) URL (XML-safe, stripped), else None.

    A publish checks each entry's link for its feed item, its archive and both digests: the
    answers for ordinary-length URLs are remembered (a few thousand, a few MB at most)."""
    if not url:
        return None
    return _checked_link(url) if len(url) <= CACHED_URL_LENGTH else _check_link(url)


CACHED_URL_LENGTH = 2_048


@lru_cache(maxsize=16_384)
def _checked_link(url: str) -> str | None:
    return _check_link(url)


def _check_link(url: str) -> str | None:
    url = xml_safe(url).strip()
    if url.isascii() and _PLAIN_HTTP.match(url):  # what `_split_link` accepts: most links
        return url
    return _split_link(url)


def _split_link(url: str) -> str | None:
    """`url` (XML-safe, stripped) if urlsplit finds an http(s) scheme and a host in it and it
    has no white space, else None."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[" and friends
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or _SPACE.search(url):
        return None
    return url


# A publish meets each source feed's address once per entry it brought: checked once.
@lru_cache(maxsize=4096)
def public_feed_url(url: str) -> str:
    """A source feed's address as published: secrets stripped (`urls.strip_secrets`), XML-safe."""
    return xml_safe(public_url(url))


@lru_cache(maxsize=4096)
def is_http(url: str) -> bool:
    """Whether `http_link` keeps `url`."""
    return http_link(url) is not None


def language_tag(tag: str | None) -> str | None:
    """A tag the Atom schema accepts for xml:lang (RFC 3066 syntax), or None."""
    if not tag:
        return None
    tag = tag.replace("_", "-")
    return tag if _LANGUAGE_TAG.match(tag) else None


def media_type(value: str | None) -> str:
    value = xml_safe(value or "").strip()
    return value if _MEDIA_TYPE.match(value) else "application/octet-stream"


def _published(entry: StoredEntry) -> datetime:
    if entry.date_only:
        # A date without a time: all three formats need a date-time, so the date at 00:00 UTC
        # (documented in README); we invent no hour.
        try:
            return utc(datetime.combine(entry.day, time(0), UTC))
        except (TypeError, ValueError):
            pass
    return utc(entry.published)


def entry_item(entry: StoredEntry, site: Site) -> FeedItem | None:
    """A stored entry as a feed item, or None when nothing is left to show of it.

    The same item serves every feed that carries the entry (its language's and the combined
    one: a feed of several languages writes the item's `language`). The content and lede come
    from the entry's `Publishable` (made at ingest; made here only for an entry that has none
    or a stale one), which is XML-safe even for an entry that did not come through the store."""
    safe = publishable(entry)
    title = xml_safe(entry.title or "").strip()
    summary = cut_of(safe, site.lede_length)
    link = http_link(entry.link)
    enclosures = tuple(
        Enclosure(url, media_type(x.type), x.length if isinstance(x.length, int) and x.length >= 0 else None)
        for x in entry.enclosures
        for url in [http_link(x.url)]
        if url
    )
    content = safe.content_html
    if not content.strip():
        content = escape(summary) or escape(title)
    if not content.strip() and link:
        content = f'<a href="{escape(link)}">{escape(link)}</a>'
    if not content.strip() and enclosures:
        content = " ".join(f'<a href="{escape(x.url)}">{escape(x.url)}</a>' for x in enclosures)
    if not content.strip():
        return None
    published = _published(entry)
    updated = max(utc(entry.updated, published), published)
    author = xml_safe(entry.author or "").strip() or None
    return FeedItem(
        id=xml_safe(atom_id(entry, site)),
        title=title,
        atom_title=title or shorten(summary, TITLE_FROM_TEXT),
        link=link,
        content_html=content,
        summary=summary,
        published=published,
        updated=updated,
        author=author,
        categories=tuple(dict.fromkeys(t for c in entry.categories for t in [xml_safe(c).strip()] if t)),
        enclosures=enclosures,
        language=language_tag(entry.language_tag or entry.language),
        sources=tuple(
            Source(
                public_feed_url(s.feed_url),  # a private feed address is never published
                xml_safe(s.feed_name),
                xml_safe(s.source_key),
                http_link(s.link),
                utc(s.first_seen, published),
            )
            for s in entry.sources
        ),
        date_only=entry.date_only,
        # one of summary/content was empty, so the content shown is the very text the lede
        # was taken from; unless the lede was cut, a summary would repeat it
        summary_repeats=not (_has_text(entry.summary) and _has_text(entry.content))
        and not summary.endswith("…"),
        group=entry.language,
    )


def _has_text(html: str | None) -> bool:
    """Whether `html` is more than white space once made XML-safe (`xml_safe(html).strip()`,
    without copying the text)."""
    safe = xml_safe(html or "")
    return bool(safe) and not safe.isspace()


def entry_items(entries: Sequence[StoredEntry], site: Site, language: str) -> list[FeedItem]:
    """Stored entries -> items, leaving out (and logging) any that cannot be shown at all."""
    return [it for e in entries if (it := entry_item_or_none(e, site, language)) is not None]


def entry_item_or_none(entry: StoredEntry, site: Site, language: str) -> FeedItem | None:
    """`entry_item`, or None (logged, naming the entry and the `language`'s feeds) for an entry
    that raises or that has nothing to show: one entry costs only itself."""
    try:
        item = entry_item(entry, site)
    except Exception:
        log.exception("entry %s left out of the %s feeds", getattr(entry, "id", "?"), language)
        return None
    if item is None:
        log.warning("entry %s has no title, text, link or enclosure: left out of feeds", entry.id)
    return item


# -- feed metadata ------------------------------------------------------------------------------
def _feed_title(site: Site, language: str) -> str:
    return site.title if language == "all" else f"{site.title} ({language_name(language, language)})"


def entry_feed_meta(site: Site, language: str, prev_archive: str | None = None) -> FeedMeta:
    """`feeds/{language}.*`: the latest entries; `prev_archive` is the newest day archive."""
    base = str(site.base_url)
    self_url = urljoin(base, f"feeds/{language}")
    return FeedMeta(
        id=f"{self_url}.atom",
        title=_feed_title(site, language),
        subtitle=f"Latest entries from {site.title}"
        + ("" if language == "all" else f" in {language_name(language)}"),
        self_url=self_url,
        home=urljoin(base, "" if language == "all" else f"{language}/"),
        language=None if language == "all" else language,
        author=site.title,
        icon=str(site.icon) if site.icon else None,
        logo=str(site.logo) if site.logo else None,
        hub=str(site.websub_hub) if site.websub_hub else None,
        prev_archive=prev_archive,
    )


def archive_feed_meta(
    site: Site,
    language: str,
    day: date,
    prev_archive: PageRef | None,
    next_archive: PageRef | None,
    complete: bool,
    page: int = 1,
    pages: int = 1,
) -> FeedMeta:
    """Page `page` of `pages` of a day archive (RFC 5005 section 4): `current` is the entry
    feed, `prev-archive` and `next-archive` the neighbouring archive documents as (day, page)
    (`pages_plan.archive_neighbours`: the day's other pages, then the neighbouring days with
    entries). `complete`: the day is over, so the document is marked `fh:archive` (it will not
    change)."""
    base = str(site.base_url)

    def at(ref: PageRef | None) -> str | None:
        return urljoin(base, page_stem(ref[0], language, ref[1]) + ".atom") if ref else None

    self_url = urljoin(base, page_stem(day, language, page))
    title = f"{_feed_title(site, language)}: {heading(day, language, site)}"
    subtitle = f"Every entry of {day.isoformat()}"
    if pages > 1:
        title = f"{title} ({page}/{pages})"
        subtitle = f"Entries of {day.isoformat()}, page {page} of {pages}, newest first"
    return FeedMeta(
        id=f"{self_url}.atom",
        title=title,
        subtitle=subtitle,
        self_url=self_url,
        home=urljoin(base, day_path(day, language, "html", page)),
        language=None if language == "all" else language,
        author=site.title,
        icon=str(site.icon) if site.icon else None,
        logo=str(site.logo) if site.logo else None,
        hub=str(site.websub_hub) if site.websub_hub else None,
        prev_archive=at(prev_archive),
        next_archive=at(next_archive),
        current=urljoin(base, f"feeds/{language}.atom"),
        archive=complete,
        json_ext="feed.json",
    )


def daily_feed_meta(site: Site, language: str) -> FeedMeta:
    base = str(site.base_url)
    self_url = urljoin(base, f"daily/{language}")
    return FeedMeta(
        id=f"{self_url}.atom",
        title=f"{_feed_title(site, language)}: daily",
        subtitle=f"One item a day: the front page of {site.title}",
        self_url=self_url,
        home=urljoin(base, "" if language == "all" else f"{language}/"),
        language=None if language == "all" else language,
        author=site.title,
        icon=str(site.icon) if site.icon else None,
        logo=str(site.logo) if site.logo else None,
        hub=str(site.websub_hub) if site.websub_hub else None,
    )


Hidden = tuple[tuple[str | None, int], ...]  # (language code or None, entries left out)


def digest_entries(
    entries: Sequence[StoredEntry],
    language: str,
    site: Site,
    counts: Mapping[str | None, int] | None = None,
) -> tuple[list[StoredEntry], Hidden]:
    """What a digest item of one day lists: `entries` (the day's, newest first, any language)
    capped at `site.frontpage_per_language` per language, as the combined front page caps its
    sections, in their order; and per language left out, how many (site languages first in
    their order, others by code, unknown last). `language` "all" keeps every language, another
    code only its own entries. Bounds a digest whatever a day holds: items of 40,000 entries a
    day were 30 MB each and a publish held 14 days of them (issue 15, publish memory).
    `counts` (language -> the day's entries in it): `entries` holds only the first of each
    language, and the left-out counts come from here."""
    limit = site.frontpage_per_language
    seen: dict[str | None, int] = {}
    shown = []
    for e in entries:
        if language != "all" and e.language != language:
            continue
        n = seen[e.language] = seen.get(e.language, 0) + 1
        if n <= limit:
            shown.append(e)
    if counts is not None:
        seen = {code: n for code, n in counts.items() if n and (language == "all" or code == language)}
    order = section_order(seen, site.languages)
    return shown, tuple((code, seen[code] - limit) for code in order if seen[code] > limit)


def digest_item(
    day: date, entries: Sequence[StoredEntry], site: Site, language: str, hidden: Hidden = ()
) -> FeedItem | None:
    """One day's front page as one item: a stable id per (language, day), the day's heading as
    title, the archive page as link, and each entry's title (linked), lede and source as HTML,
    then for each language in `hidden` (`digest_entries`) "N more in Language" linking that
    language's page of the day. Cheaper than `entry_item` per entry: ledes come from the
    stored text, and the HTML is written already in the form the sanitiser gives
    (`digest_html`), so no HTML pass runs."""
    parts = []
    updated = []
    for e in entries:
        try:
            text = cut_of(publishable(e), site.lede_length)
            title = xml_safe(e.title or "").strip() or shorten(text, TITLE_FROM_TEXT)
            link = http_link(e.link)
            tag = language_tag(e.language_tag or e.language) if language == "all" else None
            via = xml_safe(e.sources[0].feed_name).strip() if e.sources else ""
            updated.append(max(utc(e.updated, _published(e)), _published(e)))
        except Exception:  # one entry costs only its line
            log.exception("entry %s left out of the %s digest of %s", getattr(e, "id", "?"), language, day)
            continue
        if not (title or text or link):
            continue
        parts.append(digest_html(title, text, link, tag, via))
    ui = site.languages[0] if language == "all" else language
    for code, count in hidden:
        target = urljoin(str(site.base_url), day_path(day, code, "html")) if code else None
        parts.append(more_html(say("more", ui, count=count, language=section_name(code, ui)), target))
    if not parts:
        return None
    published = utc(datetime.combine(day, time(0), UTC))
    return FeedItem(
        id=f"tag:{tag_authority(str(site.link))},2023:daily:{language}:{day.isoformat()}",
        title=xml_safe(heading(day, language, site)),
        atom_title=xml_safe(heading(day, language, site)),
        link=urljoin(str(site.base_url), day_path(day, language, "html")),
        content_html="".join(parts),
        summary=f"{len(parts)} entries",
        published=published,
        updated=max([published, *updated]),
        date_only=True,
    )


def digest_html(title: str, text: str, link: str | None, tag: str | None, via: str) -> str:
    """One entry's lines in a digest: its title (linked when it has a link), its lede unless it
    repeats the title, and its source. Written exactly as `text.sanitize_html` would give it
    back (html5ever's serialisation: `&`, `<`, `>` and U+00A0 escaped, and `"` too in
    attributes; line breaks as LF; links with our `rel`), so publishing needs no
    sanitiser pass over it; tests/test_publishable.py holds that to be so for any text.
    `link` is an http(s) URL (`http_link`) or None; `tag` a language tag or None."""
    lang = f' lang="{_attribute(tag)}"' if tag else ""
    name = _text(title or link or "")
    head = f'<a href="{_attribute(link)}" rel="{LINK_REL}">{name}</a>' if link else name
    return (
        f"<h3{lang}>{head}</h3>"
        + (f"<p{lang}>{_text(text)}</p>" if text and text != title else "")
        + (f"<p><small>via {_text(via)}</small></p>" if via else "")
    )


def more_html(phrase: Phrase, link: str | None) -> str:
    """A digest's "N more in Language" line, linked to `link` when there is one, in the form
    `text.sanitize_html` gives back (as `digest_html`; tests/test_publishable.py)."""
    text = _text(phrase.text + (" →" if link else ""))
    body = f'<a href="{_attribute(link)}" rel="{LINK_REL}">{text}</a>' if link else text
    return f'<p lang="{_attribute(phrase.language)}">{body}</p>'


def _line_feeds(value: str) -> str:
    # HTML parsing turns CR LF and lone CR into LF (WHATWG HTML, "preprocessing the input stream")
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def _text(value: str) -> str:
    """Text content as html5ever serialises it (HTML's "escaping a string", text mode)."""
    value = _line_feeds(value).replace("&", "&amp;").replace("\xa0", "&nbsp;")
    return value.replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    """An attribute value as html5ever serialises it (attribute mode: also `<` and `>`, as
    the HTML standard asks since 2025)."""
    return _text(value).replace('"', "&quot;")


# -- Atom and RSS through feedgen -----------------------------------------------------------------
class _FeedFix(BaseExtension):  # type: ignore[misc]
    """Feed-level additions feedgen lacks: the RFC 5005 `fh:archive` marker, and RSS's
    `<atom:link rel="hub">` (W3C WebSub section 4: feedgen writes only the self link there)."""

    def __init__(self) -> None:
        self.archive = False
        self.hub: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FH_NS} if self.archive else {}

    def extend_atom(self, feed: Any) -> Any:
        if self.archive:
            _sub(feed, f"{{{FH_NS}}}archive")
        return feed

    def extend_rss(self, feed: Any) -> Any:
        if self.hub:
            channel = feed[0]
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", {"rel": "hub", "href": self.hub})
        return feed


class _Entries(BaseExtension):  # type: ignore[misc]
    """The document's entries, appended where feedgen appends its own (after the feed-level
    elements and extensions, registered last): copies of the elements feedgen made once per
    publish for each item (`Elements`), with `xml:lang` in an Atom feed of several languages.
    Publishing gives it RSS items; Atom entries are spliced in as bytes (`_spliced`), which
    tests hold to be what this gives."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, str | None]] = []  # (element, xml:lang or None)

    def extend_atom(self, feed: Any) -> Any:
        for element, lang in self.entries:
            entry = copy(element)  # lxml: a deep copy, in C
            if lang:
                entry.set(XML_LANG, lang)  # the entry element has no other attribute
            feed.append(entry)
        return feed

    def extend_rss(self, feed: Any) -> Any:
        channel = feed[0]
        for element, _lang in self.entries:
            channel.append(copy(element))
        return feed


class _AtomEntryFix(BaseEntryExtension):  # type: ignore[misc]
    """Per entry, what feedgen 1.0.0 writes wrong or not at all (see the module docstring);
    `xml:lang`, which depends on the feed, is the document's (`_Entries`)."""

    def __init__(self) -> None:
        self.item: FeedItem | None = None

    def extend_atom(self, entry: Any) -> Any:
        item = self.item
        if item is None:
            return entry
        entry.find("title").text = item.atom_title  # may be "" (a note), which feedgen refuses
        link = entry.find("link")  # feedgen's only link: the article's (enclosures come below)
        if link is not None:
            link.set("rel", "alternate")  # feedgen dropped it (its bug #135): say so
            link.set("type", "text/html")
        for enc in item.enclosures:
            link = _sub(
                entry, "link", rel="enclosure", href=enc.url, type=enc.type or "application/octet-stream"
            )
            if enc.length is not None:
                link.set("length", str(enc.length))
        if item.sources and item.sources[0].feed_url.strip():  # its id is required (W3C validator)
            src = item.sources[0]
            source = _sub(entry, "source")
            _sub(source, "id").text = src.feed_url
            if src.feed_name:
                _sub(source, "title").text = src.feed_name
            if is_http(src.feed_url):
                _sub(source, "link", rel="self", href=src.feed_url)
            _sub(source, "updated").text = _iso(max(utc(src.first_seen, item.updated), item.updated))
        return entry

    def extend_rss(self, item: Any) -> Any:
        return item


def _sub(parent: Any, tag: str, **attrs: str) -> Any:
    """A child element the way feedgen makes them (feedgen's tree is namespace-less; its root
    declares the Atom namespace when serialised)."""
    return etree.SubElement(parent, tag, attrs)


def _iso(d: datetime) -> str:
    return utc(d).isoformat()


class Elements:
    """Each item's Atom `<entry>` and RSS `<item>`, made by feedgen once, and its JSON Feed
    item, encoded once, put into every document that carries the item.

    An entry is in its language's day archive and the combined one, and a recent one in the
    entry feeds too: making its feedgen entry and element anew for each was most of an Atom
    document's cost (docs/benchmarks.md, issue 13). An Atom entry is kept as the bytes lxml
    writes for it in a feed (`atom_entry`), an RSS item as its element (copied into each
    channel), a JSON Feed item as its encoding. Items are keyed by value (`FeedItem` is
    frozen), so an item equal to one seen before gets the same, whichever document asked
    first. Holds everything until dropped or forgotten: publish keeps one per day, forgetting
    each item once its day archives are written, and one for the entry feeds and digests."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, FeedItem], Any] = {}
        self._atom: dict[FeedItem, bytes] = {}
        self._json: dict[FeedItem, tuple[str, str]] = {}

    def atom_entry(self, item: FeedItem) -> bytes:
        """`item`'s `<entry>` as lxml serialises it in an Atom feed of feedgen's (UTF-8, pretty:
        indented two spaces, ending in a line feed), without `xml:lang`. Raises what feedgen or
        lxml raise for it."""
        made = self._atom.get(item)
        if made is None:
            made = self._atom[item] = _entry_bytes(_entry_element(item, "atom"))
        return made

    def element(self, item: FeedItem, fmt: str) -> Any:
        """The lxml element of `item` in `fmt` ("atom" or "rss"), without `xml:lang`: shared,
        so copy it before putting it in a tree. Raises what feedgen or lxml raise for it."""
        key = (fmt, item)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = _entry_element(item, fmt)
        return made

    def json_item(self, item: FeedItem) -> tuple[str, str]:
        """`item` as JSON Feed, encoded (`_json_item`): shared like the elements."""
        made = self._json.get(item)
        if made is None:
            made = self._json[item] = _json_item(item)
        return made

    def forget(self, item: FeedItem) -> None:
        """Drop what was made for `item` (publish pages through a day, and drops an item once
        every document carrying it is written: memory stays a few pages of entries)."""
        self._atom.pop(item, None)
        self._json.pop(item, None)
        self._made.pop(("atom", item), None)
        self._made.pop(("rss", item), None)

    def __len__(self) -> int:
        """Atom entries and RSS items made."""
        return len(self._made) + len(self._atom)


_FEED_END = b"</feed>\n"
_ENTRY_START = b"  <entry>"


def _entry_bytes(element: Any) -> bytes:
    """An Atom entry element's bytes within a feed: lxml serialises it alone in a root made as
    feedgen makes its `<feed>` (pretty-printing indents each entry alike, whatever its
    siblings, and the entry holds no namespace of its own to declare)."""
    root = etree.Element("feed", xmlns=ATOM_NS)
    root.append(element)
    data: bytes = etree.tostring(root, pretty_print=True, encoding="UTF-8", xml_declaration=False)
    start = data.index(b"\n" + _ENTRY_START) + 1
    if not data.endswith(_FEED_END):
        raise ValueError("unexpected serialisation of an Atom entry")
    return data[start : -len(_FEED_END)]


def _spliced(document: bytes, entries: Sequence[tuple[bytes, str | None]]) -> bytes:
    """A feed document feedgen wrote without entries, with `entries` ((bytes of `_entry_bytes`,
    xml:lang or None)) put where lxml would have written them: before `</feed>`, in order.
    Byte for byte what lxml writes for the whole tree (tests/test_feeds_valid.py)."""
    if not document.endswith(_FEED_END):
        raise ValueError("unexpected serialisation of an Atom feed")
    parts = [document[: -len(_FEED_END)]]
    for data, lang in entries:
        if lang:  # the entry element has no other attribute; a language tag needs no escaping
            parts.append(b'  <entry xml:lang="' + lang.encode() + b'">' + data[len(_ENTRY_START) :])
        else:
            parts.append(data)
    parts.append(_FEED_END)
    return b"".join(parts)


def _entry_element(item: FeedItem, fmt: str) -> Any:
    """feedgen's element for one item: a `FeedEntry` with our extensions, as
    `FeedGenerator.add_entry` would make it, filled by `_fill_entry`."""
    fe = FeedEntry()
    if fmt == "atom":
        fe.register_extension("aggregator", _AtomEntryFix, atom=True, rss=False)
        fe.aggregator.item = item
    else:
        fe.register_extension("dc", DcEntryExtension, atom=False, rss=True)  # dc:creator
    _fill_entry(fe, item, fmt)
    return fe.atom_entry() if fmt == "atom" else fe.rss_entry()


def _generator(meta: FeedMeta, elements: Sequence[tuple[Any, str | None]], fmt: str) -> FeedGenerator:
    """A feedgen feed for `meta` whose entries are `elements`, (element, xml:lang) pairs."""
    fg = FeedGenerator()
    fg.register_extension("aggregator", _FeedFix, atom=fmt == "atom", rss=fmt == "rss")
    if fmt == "rss":
        fg.load_extension("dc", atom=False, rss=True)  # dc:creator for name-only authors
    fg.register_extension("entries", _Entries, atom=fmt == "atom", rss=fmt == "rss")  # last
    fg.aggregator.archive = meta.archive
    fg.aggregator.hub = meta.hub if fmt == "rss" else None
    fg.entries.entries = list(elements)
    fg.id(xml_safe(meta.id))
    fg.title(xml_safe(meta.title) or GENERATOR)
    fg.subtitle(xml_safe(meta.subtitle) or GENERATOR)  # RSS needs a description
    fg.author(name=xml_safe(meta.author) or GENERATOR)
    fg.link(href=f"{meta.self_url}.{'atom' if fmt == 'atom' else 'rss'}", rel="self")
    if fmt == "atom":
        for rel, href in (
            ("current", meta.current),
            ("prev-archive", meta.prev_archive),
            ("next-archive", meta.next_archive),
        ):
            if href:
                fg.link(href=href, rel=rel)
    if meta.hub and fmt == "atom":
        fg.link(href=meta.hub, rel="hub")
    fg.link(href=meta.home, rel="alternate")  # last: feedgen makes the last link RSS's <link>
    if meta.language:
        fg.language(meta.language)
    if meta.icon:
        fg.icon(xml_safe(meta.icon))
    if meta.logo and fmt == "atom":
        fg.logo(xml_safe(meta.logo))
    elif meta.logo:  # RSS 2.0 <image> requires its title and link (those of the channel)
        fg.image(url=xml_safe(meta.logo), title=xml_safe(meta.title) or GENERATOR, link=meta.home)
    fg.generator(GENERATOR)
    return fg


def _fill_entry(fe: FeedEntry, it: FeedItem, fmt: str) -> None:
    fe.id(it.id)
    fe.guid(it.id, permalink=False)
    if fmt == "atom":
        fe.title(it.atom_title or "-")  # feedgen requires one; _AtomEntryFix writes the real one
        if it.link:
            fe.link(href=it.link, rel="alternate")  # exactly one alternate: the article
        fe.content(it.content_html, type="html")
        if it.summary and not it.summary_repeats:
            fe.summary(it.summary, type="text")
        if it.author:
            name, email = person(it.author)
            fe.author({"name": name, "email": email} if email else {"name": name})
    else:
        if it.title:
            fe.title(it.title)
        if it.link:
            fe.link(href=it.link)
        if it.summary and not it.summary_repeats:
            fe.description(escape(it.summary))
            fe.content(it.content_html)  # content:encoded
        else:
            fe.description(it.content_html)
        if it.author and _EMAIL.search(it.author):
            fe.author(email=it.author)  # RSS <author> is an email address (RSS 2.0 spec)
        elif it.author:
            fe.dc.dc_creator(it.author)
        if it.enclosures:  # RSS allows one enclosure per item: the first
            enc = it.enclosures[0]
            fe.enclosure(enc.url, str(enc.length or 0), enc.type or "application/octet-stream")
        if it.sources and it.sources[0].feed_url.strip():
            fe.source(url=it.sources[0].feed_url, title=it.sources[0].feed_name or it.sources[0].feed_url)
    fe.published(it.published)
    fe.updated(it.updated)
    for term in it.categories:
        fe.category(term=term)


def person(author: str) -> tuple[str, str | None]:
    """'jane@example.org (Jane Doe)' (RSS 2.0's form) -> ('Jane Doe', 'jane@example.org');
    anything else is a name."""
    m = _RSS_PERSON.match(author)
    return (m.group(2).strip(), m.group(1)) if m else (author, None)


def _serialise(meta: FeedMeta, items: Sequence[FeedItem], fmt: str, elements: Elements | None) -> bytes:
    """feedgen's bytes: the feed written by feedgen, each entry made by feedgen (once per
    publish with `elements`). An item whose entry feedgen or lxml cannot make is left out (and
    logged); should the document still fail, it is tried item by item and written with the
    items that go through."""
    made = Elements() if elements is None else elements
    mixed = meta.language is None
    entries: list[tuple[FeedItem, Any]] = []
    for it in items:
        try:
            entries.append((it, made.atom_entry(it) if fmt == "atom" else made.element(it, fmt)))
        except Exception:
            log.exception("item %s left out of %s", it.id, meta.self_url)

    def write(chosen: Sequence[tuple[FeedItem, Any]]) -> bytes:
        langs = [(entry, it.language if mixed and _LANGUAGE_TAG.match(it.language or "") else None)
                 for it, entry in chosen]  # fmt: skip
        fg = _generator(meta, [] if fmt == "atom" else langs, fmt)
        # from the entries, not the clock: unchanged input, unchanged bytes
        newest = max((it.updated for it, _entry in chosen), default=EMPTY_FEED_UPDATED)
        fg.updated(newest)
        fg.lastBuildDate(newest)
        if fmt == "atom":
            return _spliced(bytes(fg.atom_str(pretty=True)), langs)
        return bytes(fg.rss_str(pretty=True))

    try:
        return write(entries)
    except Exception:
        log.exception("%s feed %s failed whole; retrying item by item", fmt, meta.self_url)
    good = []
    for entry in entries:
        try:
            write([entry])
            good.append(entry)
        except Exception:
            log.exception("item %s left out of %s", entry[0].id, meta.self_url)
    return write(good)


def atom_document(meta: FeedMeta, items: Sequence[FeedItem], elements: Elements | None = None) -> bytes:
    """Atom 1.0 (RFC 4287) bytes for any feed kind. `elements`: the entries made for other
    documents of this publish, to copy rather than make again (`Elements`)."""
    return _serialise(meta, items, "atom", elements)


def rss_document(meta: FeedMeta, items: Sequence[FeedItem], elements: Elements | None = None) -> bytes:
    """RSS 2.0 bytes: RFC 822 dates, `dc:creator` for name-only authors, `<source url>`.
    `elements` as for `atom_document`."""
    return _serialise(meta, items, "rss", elements)


def json_document(meta: FeedMeta, items: Sequence[FeedItem], elements: Elements | None = None) -> str:
    """JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/). Title-less items have no `title`;
    dates are RFC 3339 (a date-only item: the date at 00:00 UTC); the `_aggregator` extension
    object carries each item's sources, and for archives the RFC 5005 links. Compact (json's C
    encoder runs only without `indent`: 5x faster on a day archive). `elements`: the items
    encoded for other documents of this publish (`Elements`), which are copied, not encoded
    again."""
    doc: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": xml_safe(meta.title),
        "home_page_url": meta.home,
        "feed_url": f"{meta.self_url}.{meta.json_ext}",
        "description": xml_safe(meta.subtitle),
        "authors": [{"name": xml_safe(meta.author)}],
    }
    if meta.language:
        doc["language"] = meta.language
    if meta.logo:
        doc["icon"] = meta.logo
    if meta.icon:
        doc["favicon"] = meta.icon
    if meta.hub:
        doc["hubs"] = [{"type": "WebSub", "url": meta.hub}]  # JSON Feed 1.1 "hubs"
    links = {
        k: v
        for k, v in (
            ("current", meta.current and meta.current.removesuffix(".atom") + ".json"),
            ("prev_archive", meta.prev_archive and meta.prev_archive.removesuffix(".atom") + ".feed.json"),
            ("next_archive", meta.next_archive and meta.next_archive.removesuffix(".atom") + ".feed.json"),
        )
        if v
    }
    if links or meta.archive:
        doc["_aggregator"] = {**links, **({"archive": True} if meta.archive else {})}
    made = Elements() if elements is None else elements
    mixed = meta.language is None  # each item says its language
    encoded = []
    for it in items:
        head, tail = made.json_item(it)
        lang = f',"language":{_compact(it.language)}' if mixed and it.language else ""
        encoded.append(f"{head}{lang}{tail}")
    # `items` last: the document is what json.dumps gives for `doc` with the items added
    return f'{_compact(doc)[:-1]},"items":[{",".join(encoded)}]}}\n'


# One encoder, compact: what `json.dumps(x, ensure_ascii=False, separators=(",", ":"))` gives,
# without making an encoder per call.
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_item(it: FeedItem) -> tuple[str, str]:
    """A JSON Feed item, compact, cut where a feed of several languages puts `"language"`:
    (`{` and the members before it, the members after it and `}`). A compact object is `{`,
    its members joined by `,`, and `}`, so the two halves joined are the object without the
    language, and with `,"language":…` between them the object with it."""
    before: dict[str, Any] = {"id": it.id}
    if it.link:
        before["url"] = it.link
    if it.title:
        before["title"] = it.title
    before["content_html"] = it.content_html
    if it.summary:
        before["summary"] = it.summary
    before["date_published"] = it.published.isoformat()
    before["date_modified"] = it.updated.isoformat()
    if it.author:
        before["authors"] = [{"name": person(it.author)[0]}]
    if it.categories:
        before["tags"] = list(it.categories)
    after: dict[str, Any] = {}
    if it.enclosures:
        after["attachments"] = [
            {"url": x.url, "mime_type": x.type or "application/octet-stream"}
            | ({"size_in_bytes": x.length} if x.length is not None else {})
            for x in it.enclosures
        ]
    if it.sources:
        after["_aggregator"] = {
            "sources": [{"feed_url": s.feed_url, "name": s.feed_name, "link": s.link} for s in it.sources]
        }
    return _compact(before)[:-1], ("," + _compact(after)[1:] if after else "}")


# -- the entry feeds (the names publish and tests have always used) ----------------------------
def atom_feed(
    entries: list[StoredEntry], site: Site, language: str, prev_archive: str | None = None
) -> bytes:
    """`feeds/{language}.atom` from the newest entries (newest first)."""
    return atom_document(entry_feed_meta(site, language, prev_archive), entry_items(entries, site, language))


def rss_feed(entries: list[StoredEntry], site: Site, language: str) -> bytes:
    """`feeds/{language}.rss`."""
    return rss_document(entry_feed_meta(site, language), entry_items(entries, site, language))


def json_feed(entries: list[StoredEntry], site: Site, language: str, prev_archive: str | None = None) -> str:
    """`feeds/{language}.json`."""
    return json_document(entry_feed_meta(site, language, prev_archive), entry_items(entries, site, language))
