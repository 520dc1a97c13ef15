"""ParsedEntry -> Candidate: plain titles, trusted dates, resolved language and dedupe keys.

Pure: the clock ("now") and the site's settings come in as arguments.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from . import language
from .models import Candidate, ParsedEntry, ParsedFeed, entry_day
from .text import fold, html_to_text, normalise_title, publishable, shorten, xml_safe

# Dates outside this window are not believed: they fall back to the first-seen time.
EARLIEST_BELIEVABLE = datetime.fromisoformat("1990-01-01T00:00:00+00:00")
FUTURE_TOLERANCE = timedelta(days=1)

# Query parameters that say where a click came from, not which article it is: the common
# campaign tags plus publishers' own feed markers (Le Monde's xtor, heise's wt_mc, ...).
TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga", "_gl",
    "xtor", "wt_mc", "wt_zmc", "at_medium", "at_campaign", "at_custom1", "ocid", "cmpid", "ncid",
    "ns_mchannel", "ns_source", "ns_campaign", "ito", "sr_share", "_hsenc", "_hsmi", "mkt_tok",
    "oly_enc_id", "oly_anon_id", "vero_id", "rb_clickid", "s_cid", "spm", "feature", "smid",
}  # fmt: skip
# Any parameter whose value says "this came from a feed" (ref=rss, src=rss, from=atom-feed).
_FEED_VALUE = re.compile(r"^(rss|atom|rdf|feed|xml)([._\-].*)?$", re.I)
_FEED_NAMES = {"rss", "atom", "feed"}  # a bare ?rss or ?feed marker


def _tracking(name: str, value: str) -> bool:
    key = name.lower()
    return (
        key.startswith("utm_")
        or key in TRACKING_PARAMS
        or key in _FEED_NAMES
        or bool(_FEED_VALUE.match(value))
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(link: str | None) -> str | None:
    """A link reduced to what identifies the article.

    http/https and www. are treated as one site, the host is lower-cased, default ports,
    fragments, tracking parameters and trailing slashes dropped, the query sorted.
    """
    if not link:
        return None
    try:
        parts = urlsplit(link.strip())
        port = parts.port
    except ValueError:
        return link.strip() or None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return link.strip() or None
    host = parts.hostname.lower().removeprefix("www.")
    if port and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _tracking(k, v))
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("https", host, path, urlencode(query), ""))


@lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def translation_key(link: str | None, patterns: tuple[str, ...]) -> str | None:
    """The part of a link that translations share, per the operator's site.translation_patterns."""
    if not link or not patterns:
        return None
    for i, pattern in enumerate(_compiled(patterns)):
        m = pattern.search(link)
        if m and m.group("key"):
            return f"{i}:{m.group('key')}"
    return None


def fingerprint(feed_url: str, title_key: str, day: str) -> str:
    """Same feed, same normalised title, same day: the same article even if its ids change."""
    return _hash(feed_url, title_key, day)


def _hash(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]


def trusted_date(value: datetime | None, now: datetime) -> datetime:
    """A publication date to believe: missing, ancient or future dates become `now`."""
    if value is None or value < EARLIEST_BELIEVABLE or value > now + FUTURE_TOLERANCE:
        return now
    return value


def prepare(
    feed: ParsedFeed,
    feed_url: str,
    configured_language: str,
    site_languages: tuple[str, ...],
    zone: ZoneInfo,
    now: datetime,
    translation_patterns: tuple[str, ...] = (),
) -> list[Candidate]:
    """Turn one parsed document into candidates ready for the dedupe decision (entries that
    cannot be prepared are left out: see prepare_feed, which also says why)."""
    candidates, _ = prepare_feed(
        feed, feed_url, configured_language, site_languages, zone, now, translation_patterns
    )
    return candidates


def prepare_feed(
    feed: ParsedFeed,
    feed_url: str,
    configured_language: str,
    site_languages: tuple[str, ...],
    zone: ZoneInfo,
    now: datetime,
    translation_patterns: tuple[str, ...] = (),
) -> tuple[list[Candidate], str | None]:
    """Candidates for every entry of `feed`, and the feed's warning: `feed.warning` plus, when
    some entry could not be prepared (any exception), how many were skipped and why. One bad
    entry costs that entry, never its feed (issue 11). Never raises for an entry."""
    candidates = []
    skipped: list[str] = []
    for e in feed.entries:
        try:
            candidates.append(
                _candidate(
                    e, feed, feed_url, configured_language, site_languages, zone, now, translation_patterns
                )
            )
        except Exception as exc:
            skipped.append(f"{type(exc).__name__}: {exc}"[:200])
    candidates = _split_shared_links(candidates)
    warning = feed.warning
    if skipped:
        n = len(skipped)
        more = f" (and {n - 1} more)" if n > 1 else ""
        note = f"{n} entr{'y' if n == 1 else 'ies'} skipped (could not be read): {skipped[0]}{more}"
        warning = f"{warning}; {note}" if warning else note
    return candidates, warning


def _split_shared_links(candidates: list[Candidate]) -> list[Candidate]:
    """Items without an id are keyed by their link; when one document gives a link to items
    of different titles (undated notes all linking to the blog's front page), the link
    identifies none of them, so each is keyed by link and title instead."""
    titles: dict[str, set[str]] = {}
    for c in candidates:
        if c.link and c.source_key == c.link:
            titles.setdefault(c.link, set()).add(c.title_key)
    shared = {link for link, keys in titles.items() if len(keys) > 1}
    if not shared:
        return candidates
    return [
        replace(c, source_key=f"{c.link}#{_hash(c.title_key)[:12]}")
        if c.link in shared and c.source_key == c.link
        else c
        for c in candidates
    ]


def _candidate(
    entry: ParsedEntry,
    feed: ParsedFeed,
    feed_url: str,
    configured_language: str,
    site_languages: tuple[str, ...],
    zone: ZoneInfo,
    now: datetime,
    translation_patterns: tuple[str, ...],
) -> Candidate:
    title = fold(xml_safe(entry.title))  # plain text already (parse decides what is markup)
    published = trusted_date(entry.published or entry.updated, now)
    trusted = published is not now
    date_only = entry.date_only and trusted
    updated = entry.updated if entry.updated and entry.updated <= now + FUTURE_TOLERANCE else None
    day = entry_day(published, date_only, zone).isoformat()
    summary_text = html_to_text(entry.summary or entry.content)
    lang = language.resolve(
        entry.language,
        feed.language,
        configured_language,
        xml_safe(f"{title}. {shorten(summary_text, 400)}"),
        site_languages,
    )
    link = entry.link
    title_key = normalise_title(title)
    fp = fingerprint(feed_url, title_key, day)
    source_key = entry.source_id or link or f"fingerprint:{fp}"
    return Candidate(
        feed_url=feed_url,
        source_key=source_key,
        canonical_url=canonical_url(link),
        fingerprint=fp,
        link=link,
        title=title,
        summary=entry.summary,
        content=entry.content,
        author=entry.author,
        categories=entry.categories,
        enclosures=entry.enclosures,
        published=published,
        updated=updated,
        language=lang.language,
        language_tag=lang.tag,
        language_evidence=lang.evidence,
        content_hash=_hash(title, entry.summary, entry.content),  # not the link: it may churn
        translations=entry.translations,
        title_key=title_key,
        translation_key=translation_key(link, translation_patterns),
        published_zone=entry.published_zone if trusted else None,
        date_only=date_only,
        # made here, in the parse workers, once: publishing then runs no HTML pass per entry
        publishable=publishable(entry.summary, entry.content, summary_text),
    )
