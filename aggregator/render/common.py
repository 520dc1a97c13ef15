"""What every renderer shares: the page model, locales and headings, ledes, titles, safe links
and stable entry ids. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date

from ..models import FeedState, Publishable, StoredEntry
from ..settings import Site
from ..text import cut_lede, publishable_for, shorten
from ..urls import strip_secrets
from .i18n import say

RTL_LANGUAGES = {"ar", "he", "fa", "ur", "yi", "ps", "sd", "ug", "dv", "ckb"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Section:
    language: str | None  # None: language unknown
    entries: tuple[StoredEntry, ...]
    # the section's entries that day when `entries` holds only the first of them (a combined
    # page made without reading the whole day); None: `entries` is all of them
    total: int | None = None


@dataclass(frozen=True, slots=True)
class FrontPage:
    day: date | None  # None: nothing stored yet
    language: str  # a language code or "all"
    sections: tuple[Section, ...]
    failing: tuple[FeedState, ...] = ()  # shown while the page is empty
    also_in: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # id -> (lang, link)
    # a day of a language with more than `site.entries_per_page` entries has several pages,
    # newest entries first: this is page `page` of `pages`
    page: int = 1
    pages: int = 1


def section_order(codes: Iterable[str | None], languages: Sequence[str]) -> list[str | None]:
    """The combined page's order of the languages among `codes`: those of `languages`
    (site.languages) in their order, then others by code, unknown (None) last. The combined
    page's sections, the combined day archive and the digests' "more" lines all follow it."""
    present = set(codes)
    others = sorted(c for c in present if c and c not in languages)
    return [*(c for c in languages if c in present), *others, *([None] if None in present else [])]


def locale_for(language: str, site: Site) -> str:
    """Babel locale for dates: an explicit site.locales entry, else the language in the
    site's country (en + Europe/London -> en_GB), else the language alone."""
    if language in site.locales:
        return site.locales[language]
    territory = get_global("zone_territories").get(site.timezone)
    if territory:
        try:
            Locale.parse(f"{language}_{territory}")
            return f"{language}_{territory}"
        except (UnknownLocaleError, ValueError):
            pass
    return language


def heading(day: date, language: str, site: Site) -> str:
    """The day as a heading in the page's language ("Tuesday, 17 January 2023"): CLDR's full
    date in `locale_for`, the ISO date where babel knows no such locale."""
    lang = site.languages[0] if language == "all" else language
    return _full_date(day, locale_for(lang, site))


@lru_cache(maxsize=8192)
def _full_date(day: date, locale: str) -> str:
    # A publish heads each day's two pages, its archives and its digest items in each language:
    # formatted once (babel takes 50 us a date).
    try:
        return str(format_date(day, "full", locale=locale))
    except (UnknownLocaleError, ValueError):
        return day.isoformat()


@lru_cache(maxsize=1024)  # each day archive's title names its language
def language_name(code: str | None, in_language: str = "en") -> str:
    if code is None:
        return "Other"
    try:
        name = Locale.parse(code).get_display_name(in_language)
    except (UnknownLocaleError, ValueError):
        return code
    return str(name) if name else code


def direction(language: str | None) -> str:
    return "rtl" if language in RTL_LANGUAGES else "ltr"


def publishable(entry: StoredEntry) -> Publishable:
    """The entry's text made safe to publish: as stored at ingest when it still describes the
    entry's summary and content under the current rules, else computed now
    (`text.publishable_for`)."""
    return publishable_for(entry.summary, entry.content, entry.publishable)


def lede(entry: StoredEntry, limit: int = 600) -> str:
    """The entry's lede as plain text, at most `limit` characters (`site.lede_length`): its
    stored lede text cut by `text.cut_lede`, the same as `text.make_lede(summary, content,
    limit)` on stored (XML-safe) text."""
    return cut_of(publishable(entry), limit)


def cut_of(safe: Publishable, limit: int) -> str:
    """`text.cut_lede(safe.lede_text, limit)`, remembered on `safe` (`Publishable.ledes`): a
    publish cuts each entry's lede up to nine times (its feed item, both digests, the
    language's and the combined page in three formats), all on the entry it read. Remembered
    on the entry, not in a cache of texts: 4,096 remembered texts of up to 10,001 characters
    were tens of MB of each publish (issue 15, `run`'s memory)."""
    found = safe.ledes.get(limit)
    if found is None:
        found = safe.ledes[limit] = cut_lede(safe.lede_text, limit)
    return found


def entry_title(entry: StoredEntry) -> str:
    return entry.title or shorten(lede(entry), 80) or "(untitled)"


def capitalise(name: str) -> str:
    """'español' -> 'Español': CLDR names are lower-case mid-sentence, these start a heading."""
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=1024)
def native_name(code: str) -> str:
    """'Español', 'Русский': a language's name in itself, capitalised to head a section."""
    return capitalise(language_name(code, code))


def section_name(code: str | None, ui: str) -> str:
    """A front page section's (or a digest's "more" line's) name: the language in itself, or
    "other" in the page's language `ui` for entries of unknown language."""
    return native_name(code) if code else say("other", ui).text


def safe_link(url: str | None) -> str | None:
    """`url` if it is http(s), else None; never raises (urlsplit refuses "http://[").
    Answers for URLs of ordinary length are remembered: each page links each entry twice
    (HTML, JSON) and a day's entries are on two pages (their language's and the combined)."""
    if not url:
        return None
    return _safe_link(url) if len(url) <= CACHED_URL_LENGTH else _check_safe_link(url)


CACHED_URL_LENGTH = 2_048


@lru_cache(maxsize=4096)
def _safe_link(url: str) -> str | None:
    return _check_safe_link(url)


def _check_safe_link(url: str) -> str | None:
    if url.startswith(("http://", "https://")) and url.isascii() and "[" not in url and "]" not in url:
        return url  # urlsplit would give this scheme, and only brackets could make it raise
    return _split_safe_link(url)


def _split_safe_link(url: str) -> str | None:
    """`url` if urlsplit finds an http(s) scheme in it, else None."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


@lru_cache(maxsize=1024)
def public_url(url: str) -> str:
    """`urls.strip_secrets(url)`, remembered: a source feed's address is published with every
    entry of that feed, and a site has a few hundred feeds."""
    return strip_secrets(url)


def atom_id(entry: StoredEntry, site: Site) -> str:
    """A tag: URI (RFC 4151) that stays the same however often outputs are rebuilt:
    `tag:{site.link's host},2023:entry:{entry id}`."""
    return f"tag:{tag_authority(str(site.link))},2023:entry:{entry.id}"


@lru_cache(maxsize=16)
def tag_authority(link: str) -> str:
    """The host of `site.link` (else "localhost"): parsed once, not once per entry."""
    return urlsplit(link).hostname or "localhost"
