"""Pure text helpers shared by language identification, dedupe and rendering."""

from __future__ import annotations

import hashlib
import html
import re
import sys
import unicodedata
from functools import cache

import nh3

from .models import Publishable

_BLOCK = re.compile(r"<(/?)(p|div|br|li|ul|ol|h[1-6]|tr|td|th|blockquote|section|article|pre)\b", re.I)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)

# What survives into republished HTML: ordinary structure, links, images, emphasis.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "cite", "code", "dd", "del", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
    "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang", "lang"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "*": {"lang", "dir"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"  # the `rel` every sanitised link is given


def sanitize_html(fragment: str) -> str:
    """Untrusted HTML -> HTML safe to republish (no script, handlers, javascript:/data: URLs)."""
    if not fragment:
        return ""
    return nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


# Code points XML 1.0 forbids (section 2.2, "Char"): C0 controls but tab, LF and CR; lone
# surrogates; U+FFFE and U+FFFF. lxml refuses to serialise any of them (cases/04).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


_SPACING_CONTROLS = {"\x0b": " ", "\x0c": " "}  # vertical tab, form feed: word separators


def xml_safe(text: str) -> str:
    """`text` with every code point XML 1.0 cannot carry removed (XML 1.0 section 2.2); the
    vertical tab and form feed, which separate words (pasted from word processors), become
    spaces ("inventory\\v2024" -> "inventory 2024", cases/04).

    Applied where text enters the store, so no stored entry can make a renderer raise."""
    if not text or not _NOT_XML.search(text):
        return text
    return _NOT_XML.sub(lambda m: _SPACING_CONTROLS.get(m.group(), ""), text)


# Where a sentence ends: terminal punctuation (Latin, CJK, Devanagari, Arabic), optionally a
# closing quote or bracket, then a space. `(?s:.*)` runs to the end of the text and backs off,
# so the match is the last such end, found from the right (a lede's last sentence end is near
# the limit) rather than by listing every sentence of the text: 5x faster on a 2 KB summary.
_LAST_SENTENCE_END = re.compile(r"(?s:.*)[.!?…。！？।؟](?:[\"'»”’)\]]*)(?=\s)")
# A sentence cut shorter than this share of the limit loses too much: cut at a word instead.
LEDE_MIN_SHARE = 0.4


def make_lede(summary_html: str, content_html: str, limit: int) -> str:
    """An entry's lede as plain text: the opening of its summary (else of its content), at
    most `limit` characters (`site.lede_length`, default 700).

    Text that fits is returned whole. Longer text is cut after the last sentence that ends within the
    limit, or, when that would keep less than 40% of it, at the last word boundary, marked
    with "…" (the mark counts towards the limit). Raises nothing."""
    text = html_to_text(summary_html) or html_to_text(content_html)
    return cut_lede(text, limit)


def cut_lede(text: str, limit: int) -> str:
    """`text` (plain, one line) cut to at most `limit` characters: at a sentence end when one
    falls in the last 60% of the limit, else at a word boundary with "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]  # a sentence ending exactly at the limit still counts
    last = _LAST_SENTENCE_END.match(head)
    if last and last.end() >= limit * LEDE_MIN_SHARE:
        return text[: last.end()].rstrip()
    return shorten(text, limit - 1)


def html_to_text(fragment: str) -> str:
    """HTML -> one line of plain text: tags stripped, entities decoded, whitespace folded."""
    if not fragment:
        return ""
    if "<" in fragment:
        spaced = _BLOCK.sub(r" <\1\2", fragment)
        fragment = nh3.clean(spaced, tags=set(), strip_comments=True)
    return fold(html.unescape(fragment))


def fold(text: str) -> str:
    """Each run of whitespace one space, none at the ends: `_SPACE` (re's `\\s`, Unicode
    whitespace) as str.split() finds it, which splits on exactly the same code points (tested
    on every one) and is 3.5x faster (issue 15: 5% of a parse worker's time went here)."""
    return " ".join(text.split())


def shorten(text: str, limit: int) -> str:
    """Cut at a word boundary, marking the cut with "…" (the result has at most limit + 1
    characters). Text without a space in the limit (CJK) is cut at the limit."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut and not text[limit].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def text_to_html(text: str) -> str:
    """Plain text (RFC 4287 type="text", JSON Feed content_text) -> HTML that shows it as
    written: `<`, `>` and `&` escaped, each line break a `<br>` (so lines survive)."""
    lines = text.strip().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(html.escape(line, quote=False) for line in lines)


# -- an entry made safe to publish, once --------------------------------------------------------

# Characters of lede text kept at ingest. `cut_lede(text, limit)` reads at most `limit + 1`
# characters and whether there are more, so any cut up to `site.lede_length`'s maximum (10,000,
# config.Site) is the same from this prefix as from the whole text.
LEDE_TEXT_KEEP = 10_001

# Bump when `publishable` (or what it calls) changes in a way the digest below cannot see; the
# allow-lists, patterns, nh3's version and LEDE_TEXT_KEEP are in the digest already.
_RENDER_EPOCH = 1


def _render_version() -> str:
    """'1.<digest>' of every rule `publishable` applies: stored text made under other rules is
    stale and recomputed (store: on open; renderers: whenever they meet it)."""
    rules = repr(
        (
            sorted(ALLOWED_TAGS),
            sorted((tag, sorted(attrs)) for tag, attrs in ALLOWED_ATTRIBUTES.items()),
            sorted(URL_SCHEMES),
            LINK_REL,
            _BLOCK.pattern,
            _SPACE.pattern,
            _NOT_XML.pattern,
            sorted(_SPACING_CONTROLS.items()),
            LEDE_TEXT_KEEP,
            getattr(nh3, "__version__", "?"),
            sys.version_info[:2],  # html.unescape's entity table
        )
    )
    return f"{_RENDER_EPOCH}.{hashlib.sha256(rules.encode()).hexdigest()[:16]}"


RENDER_VERSION = _render_version()


def publishable(summary: str, content: str, text_of_first: str | None = None) -> Publishable:
    """`summary` and `content` (HTML as stored) made safe to publish, computed once per entry at
    ingest instead of on every publish:

    - `content_html`: the content, else the summary, made XML-safe and sanitised
      (`sanitize_html`); "" when neither has markup or text left. Relative URLs were made
      absolute before (parse). What the Atom, RSS and JSON Feed items carry.
    - `lede_text`: the summary's plain text (`html_to_text`), else the content's, cut to
      `LEDE_TEXT_KEEP` characters; a lede is `cut_lede(lede_text, site.lede_length)`, which
      equals `make_lede(summary, content, site.lede_length)` for XML-safe text (all stored
      text is), so a changed lede_length changes ledes without re-ingesting.

    `text_of_first`: `html_to_text(summary or content)` when the caller has it already
    (normalise does, for language identification); used only where it is the very text this
    would extract (nothing was removed to make that field XML-safe), which saves one HTML
    pass per entry at ingest. Raises nothing for any strings (nh3 and the patterns are total)."""
    safe_summary, safe_content = xml_safe(summary or ""), xml_safe(content or "")
    content_html = xml_safe(sanitize_html(safe_content) or sanitize_html(safe_summary))
    unchanged = safe_summary is summary if summary else safe_content is content
    known = text_of_first if unchanged else None
    if summary:
        text = (html_to_text(safe_summary) if known is None else known) or html_to_text(safe_content)
    else:
        text = html_to_text(safe_content) if known is None else known
    return Publishable(summary, content, content_html, text[:LEDE_TEXT_KEEP], RENDER_VERSION)


def publishable_for(summary: str, content: str, known: Publishable | None) -> Publishable:
    """`known` when it was made from exactly this `summary` and `content` under the current
    rules (`RENDER_VERSION`), else a fresh `publishable(summary, content)`: text carried or
    stored beside an entry is used only while it still describes it."""
    if (
        known is not None
        and known.render_version == RENDER_VERSION
        and known.summary == summary  # the same object, usually: no character is compared
        and known.content == content
    ):
        return known
    return publishable(summary, content)


@cache
def _combining() -> dict[int, None]:
    """Combining marks of the Basic Multilingual Plane, for str.translate to delete (C speed).
    Made on first use, not at import: 17 ms that commands which only read (`frontpage`)
    would pay for nothing (issue 15)."""
    return {cp: None for cp in range(0x10000) if unicodedata.combining(chr(cp))}


def normalise_title(title: str) -> str:
    """Case, accents, punctuation and spacing removed: 'Perù – Il…' -> 'peru il'."""
    stripped = unicodedata.normalize("NFKD", title.casefold()).translate(_combining())
    return " ".join(_WORD.findall(stripped))
