"""OPML 2.0 subscription lists (http://opml.org/spec2.opml): feeds.yaml's feeds out, and in.

Written: one parent outline per language (the site's languages first, in their order; then
others; then mixed-language feeds), each feed an `<outline type="rss">` with `text`, `title`,
`xmlUrl`, `language` (unless `auto`) and `htmlUrl` when known. Pure: the same feeds give
the same bytes, so a published `/sources.opml` keeps its validators.

Read: any OPML's outlines with an `xmlUrl`, at any depth. The file is untrusted: it is
parsed with defusedxml, and a DOCTYPE or entity declaration is refused outright (no entity
is ever expanded, no external resource fetched).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

import defusedxml.ElementTree as DET
from babel import Locale, UnknownLocaleError
from defusedxml import DefusedXmlException

from .config import FeedConfig, normalise_language_tag
from .settings import Site
from .text import xml_safe
from .urls import strip_secrets

SPEC = "http://opml.org/spec2.opml"
AUTO = "auto"


class OpmlError(Exception):
    """The file is not a usable OPML document; the message says why, in words."""


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One subscription read from an OPML outline."""

    url: str  # xmlUrl
    title: str | None  # title, else text, unless that is the URL itself
    language: str | None  # normalised BCP 47 tag, None when absent or unknown
    html_url: str | None = None
    note: str | None = None  # what was dropped while reading it (an unknown language code)


def _language_label(code: str) -> str:
    if code == AUTO:
        return "Mixed languages (auto)"
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        name = None
    return f"{name} ({code})" if name else code


def _group_order(site: Site, languages: set[str]) -> list[str]:
    first = [lang for lang in site.languages if lang in languages]
    rest = sorted(lang for lang in languages if lang not in first and lang != AUTO)
    return first + rest + ([AUTO] if AUTO in languages else [])


def _primary(language: str) -> str:
    return AUTO if language == AUTO else language.split("-")[0]


def sources_opml(
    site: Site,
    feeds: Sequence[FeedConfig],
    titles: Mapping[str, str] | None = None,
    html_urls: Mapping[str, str] | None = None,
    created: datetime | None = None,
    public: bool = False,
) -> bytes:
    """The configured feeds as an OPML 2.0 document (UTF-8 bytes), grouped by language.

    `titles` and `html_urls` map a feed's URL (FeedConfig.key) to the title and site address
    its document gave (from the store); a feed's `name` wins over its title. `created`
    (aware) adds `dateCreated` (RFC 822, as OPML 2.0 asks); leave it out for stable bytes.
    Disabled feeds are listed too: they are still configured. `public` (the published
    `/sources.opml`) strips credentials and tokens from the feeds' addresses (`export-opml`,
    for the operator, keeps them).
    """
    titles = titles or {}
    html_urls = html_urls or {}
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = xml_safe(f"{site.title}: sources")
    if created is not None:
        ET.SubElement(head, "dateCreated").text = format_datetime(created)
    ET.SubElement(head, "docs").text = SPEC
    body = ET.SubElement(root, "body")
    by_group: dict[str, list[FeedConfig]] = {}
    for feed in feeds:
        by_group.setdefault(_primary(feed.language), []).append(feed)
    for group in _group_order(site, set(by_group)):
        label = _language_label(group)
        parent = ET.SubElement(body, "outline", text=label, title=label)
        for feed in by_group[group]:
            title = xml_safe(feed.name or titles.get(feed.key) or (feed.title if public else feed.key))
            url = strip_secrets(feed.key) if public else feed.key
            attrs = {"type": "rss", "text": title, "title": title, "xmlUrl": url}
            if feed.key in html_urls:
                attrs["htmlUrl"] = html_urls[feed.key]
            if feed.language != AUTO:
                attrs["language"] = feed.language
            ET.SubElement(parent, "outline", attrs)
    ET.indent(root, space="  ")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def read_opml(data: bytes) -> list[OpmlFeed]:
    """Every outline with an `xmlUrl` in an OPML document, in document order.

    Raises OpmlError: not well-formed XML, a DOCTYPE or entity declaration (refused, never
    expanded), a root that is not <opml>, or no <body>.
    """
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise OpmlError(
            "the file declares a DOCTYPE or entities; refused (OPML needs neither, and "
            "expanding them is how XML bombs work)"
        ) from None
    except ET.ParseError as e:
        raise OpmlError(f"not well-formed XML: {e}") from None
    if _local(root.tag) != "opml":
        raise OpmlError(f"not an OPML document: the root element is <{_local(root.tag)}>")
    body = next((child for child in root if _local(child.tag) == "body"), None)
    if body is None:
        raise OpmlError("not an OPML document: it has no <body>")
    return [_feed(o) for o in _outlines(body) if (o.get("xmlUrl") or "").strip()]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _outlines(node: ET.Element) -> Iterator[ET.Element]:
    # Iterative, so a deeply nested hostile file cannot exhaust the stack.
    stack = list(reversed(node))
    while stack:
        element = stack.pop()
        if _local(element.tag) == "outline":
            yield element
            stack.extend(reversed(element))


def _feed(outline: ET.Element) -> OpmlFeed:
    url = (outline.get("xmlUrl") or "").strip()
    title = (outline.get("title") or outline.get("text") or "").strip() or None
    if title == url:
        title = None
    raw = (outline.get("language") or "").strip()
    language: str | None = None
    note = None
    if raw and raw.lower() != AUTO:
        try:
            language = normalise_language_tag(raw)
        except ValueError as e:
            note = f"{e}; imported as auto"
    return OpmlFeed(
        url=url,
        title=title,
        language=language,
        html_url=(outline.get("htmlUrl") or "").strip() or None,
        note=note,
    )
