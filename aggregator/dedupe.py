"""Pure: candidates from one poll + the stored entries they may match -> an UpdatePlan.

Rules, in order (the first that matches wins):
  1. Same feed, same source key (id, else link): the same entry, updated if its text changed.
     But when title AND publication time both differ, it is another post that the feed gave
     the same id or link (it happens), stored under a key of its own.
  2. Same feed, same fingerprint (title + day), the title not a lone word ("Presseschau"),
     and the stored entry's own id gone from this poll's document: the same entry under an id
     that changes per poll. Two items of one document are two entries, however alike. A
     corrected link (another page, not only other query parameters) replaces the stored one.
  2b. Same feed, same canonical URL, the stored entry's own ids gone from the document, and
     the same specific title (republished under a new guid, any later day: it keeps its
     day) or the same publication time (edited after its guid and link were corrected).
  3. Another feed, same canonical URL, compatible language: the same article, syndicated.
     A link that names no single article merges nothing: one that this document gives to
     items of different titles, or a site's home page (unless the titles are the same).
  4. Same language, same normalised title (long enough to mean something), published within
     48 h: the same article under another link, unless both links are distinct pages of one
     site (two articles that share a title).
  Otherwise a new entry. Entries whose languages are both known and differ are never merged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from .models import Candidate, Source, StoredEntry, UpdatePlan, entry_day

# How strong each kind of language evidence is; identification beats nothing, declarations beat both.
EVIDENCE_RANK = {"entry": 4, "document": 3, "config": 2, "identified": 1, "none": 0}
NEAR_DUPLICATE_WINDOW = timedelta(hours=48)
# Titles shorter than this ("News", "Weekly roundup") are too generic to prove two entries the
# same; "Créature des marais" (3 words, 19 characters) is not. Long unspaced titles (CJK) count.
MIN_TITLE_WORDS = 3
MIN_TITLE_CHARS = 15
MIN_UNSPACED_CHARS = 20


def meaningful_title(title_key: str) -> bool:
    words = title_key.count(" ") + 1
    return (words >= MIN_TITLE_WORDS and len(title_key) >= MIN_TITLE_CHARS) or (
        len(title_key) >= MIN_UNSPACED_CHARS
    )


_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")


def specific_title(title_key: str) -> bool:
    """Enough to tell one feed's items apart on one day: not a lone word like "Presseschau"
    or "Editorial" (a recurring column). In scripts written without spaces, 4 characters do."""
    if " " in title_key:
        return True
    return bool(_UNSPACED.search(title_key)) and len(title_key) >= 4


def distinct_pages_of_one_site(a: str | None, b: str | None) -> bool:
    """Both links known, on the same host, and different: two articles, whatever their titles."""
    if not a or not b or a == b:
        return False
    return urlsplit(a).netloc == urlsplit(b).netloc


def own_keys(e: StoredEntry, feed_url: str) -> set[str]:
    """The source keys under which `feed_url` carried entry `e` (empty: another feed's entry)."""
    keys = {s.source_key for s in e.sources if s.feed_url == feed_url}
    if e.feed_url == feed_url:
        keys.add(e.source_key)
    return keys


def two_posts(e: StoredEntry, c: Candidate, now: datetime) -> bool:
    """One id or link, two posts: both dated (not first-seen fallbacks), at different times,
    with different titles. A correction keeps its date; a re-stamped date keeps its title."""
    different_text = e.title_key != c.title_key or (not c.title_key and e.content_hash != c.content_hash)
    return (
        different_text and e.published != c.published and e.published != e.first_seen and c.published != now
    )


def corrected_link(e: StoredEntry, c: Candidate) -> bool:
    """The feed now gives its own entry another page (a corrected slug, cases/16), not merely
    other query parameters (session ids that change per poll)."""
    if e.feed_url != c.feed_url or not c.link or not c.canonical_url or not e.canonical_url:
        return False
    return urlsplit(c.canonical_url)[:3] != urlsplit(e.canonical_url)[:3]


def links_shared_by_titles(candidates: list[Candidate]) -> set[str]:
    """Canonical links that one document gives to items of different titles: such a link (a
    site's home page, a section page) names no single article, so it merges nothing."""
    titles: dict[str, set[str]] = {}
    for c in candidates:
        if c.canonical_url:
            titles.setdefault(c.canonical_url, set()).add(c.title_key)
    return {url for url, keys in titles.items() if len(keys) > 1}


def url_identifies(url: str | None, e: StoredEntry, c: Candidate) -> bool:
    """Whether a link shared by a stored entry and a candidate from another feed proves them
    one article. A site's home page (a path of "" or "/": feeds that link every item to their
    front page) proves it only with the same title."""
    if not url:
        return False
    path = urlsplit(url).path
    if path in ("", "/") and not urlsplit(url).query:
        return e.title_key == c.title_key and bool(c.title_key)
    return True


def near_duplicate(e: StoredEntry, c: Candidate) -> bool:
    return (
        e.language is not None
        and e.language == c.language
        and e.title_key == c.title_key
        and meaningful_title(c.title_key)
        and abs(e.published - c.published) <= NEAR_DUPLICATE_WINDOW
        and not distinct_pages_of_one_site(e.canonical_url, c.canonical_url)
    )


def entry_id(feed_url: str, source_key: str) -> str:
    """Stable across rebuilds: derived from where the entry was first seen."""
    return hashlib.sha1(f"{feed_url}\n{source_key}".encode()).hexdigest()[:20]


def compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def decide(
    candidates: list[Candidate],
    existing: list[StoredEntry],
    feed_name: str,
    now: datetime,
    zone: ZoneInfo,
) -> UpdatePlan:
    by_source: dict[tuple[str, str], StoredEntry] = {}
    by_fingerprint: dict[str, StoredEntry] = {}
    by_url: dict[str, list[StoredEntry]] = {}
    by_title: dict[tuple[str, str], list[StoredEntry]] = {}

    def index(e: StoredEntry) -> None:
        for s in e.sources:
            by_source[(s.feed_url, s.source_key)] = e
        by_source[(e.feed_url, e.source_key)] = e
        by_fingerprint[e.fingerprint] = e
        if e.canonical_url:
            by_url.setdefault(e.canonical_url, []).append(e)
        if e.language and e.title_key:
            by_title.setdefault((e.language, e.title_key), []).append(e)

    for e in existing:
        index(e)

    inserts: dict[str, StoredEntry] = {}
    updates: dict[str, StoredEntry] = {}
    new_sources: list[tuple[str, Source]] = []
    language_fixes: list[tuple[str, str, str | None, str]] = []
    unchanged = 0

    updates_view: dict[str, StoredEntry] = {}  # language fixed, nothing else to write

    def current(e: StoredEntry) -> StoredEntry:
        return inserts.get(e.id) or updates.get(e.id) or updates_view.get(e.id) or e

    present = {c.source_key for c in candidates}
    shared_links = links_shared_by_titles(candidates)
    for c in candidates:
        match = by_source.get((c.feed_url, c.source_key))
        if match is not None and two_posts(current(match), c, now):
            c = replace(c, source_key=f"{c.source_key}#{c.fingerprint}")
            match = by_source.get((c.feed_url, c.source_key))
        rekeyed = False
        if match is None and specific_title(c.title_key):
            same_print = by_fingerprint.get(c.fingerprint)
            if same_print is not None and not (own_keys(same_print, c.feed_url) & present):
                match, rekeyed = same_print, True  # rule 2: an id that changed
        if match is None and c.canonical_url and c.canonical_url not in shared_links:
            # Same feed, same article link, the stored entry's own ids gone from the document:
            # republished under a new id (same title, any later day: it keeps its first day),
            # or edited after its id and link were corrected (same publication time, cases/16).
            match = next(
                (
                    e
                    for e in map(current, by_url.get(c.canonical_url, []))
                    if own_keys(e, c.feed_url)
                    and not (own_keys(e, c.feed_url) & present)
                    and url_identifies(c.canonical_url, e, c)
                    and (
                        (e.title_key == c.title_key and specific_title(c.title_key))
                        or (e.published == c.published and e.published != e.first_seen and c.published != now)
                    )
                ),
                None,
            )
            rekeyed = match is not None
        if match is not None:
            match = current(match)
            if rekeyed and corrected_link(match, c):
                # The publisher changed the id and gave the entry another page (a corrected
                # slug): take it, so the entry's link is the right one and a later edit, found
                # by this link, updates it in place (cases/16). No source row is added: ids
                # that change on every poll would add one per poll.
                moved = with_own_link(replace(match, canonical_url=c.canonical_url), c.feed_url, c.link)
                (inserts if match.id in inserts else updates)[match.id] = moved
                index(moved)
                match = moved
            if match.feed_url == c.feed_url and match.content_hash != c.content_hash:
                changed = _updated(match, c, now)
                (inserts if match.id in inserts else updates)[match.id] = changed
                index(changed)
            elif not rekeyed or match.id not in updates:
                unchanged += 1
            continue
        same_url = (
            []
            if c.canonical_url in shared_links
            else [current(e) for e in by_url.get(c.canonical_url or "", [])]
        )
        match = next(
            (
                e
                for e in same_url
                if compatible(e.language, c.language)
                and not own_keys(e, c.feed_url)
                and url_identifies(c.canonical_url, e, c)
            ),
            None,
        )
        if match is None and c.language:
            same_title = [current(e) for e in by_title.get((c.language, c.title_key), [])]
            match = next((e for e in same_title if near_duplicate(e, c)), None)
        if match is not None:
            source = Source(c.feed_url, feed_name, c.source_key, c.link, now)
            if match.id in inserts:
                inserts[match.id] = replace(match, sources=(*match.sources, source))
            else:
                new_sources.append((match.id, source))
            by_source[(c.feed_url, c.source_key)] = match
            if EVIDENCE_RANK[c.language_evidence] > EVIDENCE_RANK[match.language_evidence]:
                # A declared language beats an unknown or guessed one.
                lang = dict(
                    language=c.language,
                    language_tag=c.language_tag,
                    language_evidence=c.language_evidence,
                )
                if match.id in inserts:
                    inserts[match.id] = replace(inserts[match.id], **lang)  # type: ignore[arg-type]
                elif match.id in updates:
                    updates[match.id] = replace(updates[match.id], **lang)  # type: ignore[arg-type]
                else:
                    language_fixes.append((match.id, c.language or "", c.language_tag, c.language_evidence))
                    updates_view[match.id] = replace(match, **lang)  # type: ignore[arg-type]
                index(current(match))
            continue
        new = _new_entry(c, feed_name, now, zone)
        inserts[new.id] = new
        index(new)

    return UpdatePlan(
        inserts=tuple(inserts.values()),
        updates=tuple(updates.values()),
        new_sources=tuple(new_sources),
        language_fixes=tuple(language_fixes),
        unchanged=unchanged,
    )


def days_touched(plan: UpdatePlan, existing: Sequence[StoredEntry]) -> frozenset[date]:
    """The days (`StoredEntry.day`, in site.timezone) whose published entries `plan` changes:
    inserted and rewritten entries' days, the stored day of an entry that is rewritten (an
    update keeps its day, but a stored row from before that rule may differ), gains a source
    or has its language fixed. An incremental publish rebuilds these days' pages and
    archives (and their neighbours': `publish.publish(changed_days=...)`)."""
    stored = {e.id: e.day for e in existing}
    days = {e.day for e in (*plan.inserts, *plan.updates)}
    days.update(stored[e.id] for e in plan.updates if e.id in stored)
    days.update(stored[i] for i, _ in plan.new_sources if i in stored)
    days.update(stored[fix[0]] for fix in plan.language_fixes if fix[0] in stored)
    return frozenset(days)


def _new_entry(c: Candidate, feed_name: str, now: datetime, zone: ZoneInfo) -> StoredEntry:
    eid = entry_id(c.feed_url, c.source_key)
    return StoredEntry(
        id=eid,
        feed_url=c.feed_url,
        source_key=c.source_key,
        canonical_url=c.canonical_url,
        fingerprint=c.fingerprint,
        link=c.link,
        title=c.title,
        summary=c.summary,
        content=c.content,
        author=c.author,
        categories=c.categories,
        enclosures=c.enclosures,
        published=c.published,
        updated=c.updated,
        first_seen=now,
        language=c.language,
        language_tag=c.language_tag,
        language_evidence=c.language_evidence,
        day=entry_day(c.published, c.date_only, zone),
        content_hash=c.content_hash,
        sources=(Source(c.feed_url, feed_name, c.source_key, c.link, now),),
        translations=c.translations,
        title_key=c.title_key,
        translation_key=c.translation_key,
        published_zone=c.published_zone,
        date_only=c.date_only,
        publishable=c.publishable,
    )


def with_own_link(e: StoredEntry, feed_url: str, link: str | None) -> StoredEntry:
    """`e` with the link its own feed `feed_url` now gives it, on the entry and on every source
    record of that feed, so that no output (JSON Feed `_aggregator.sources`, the front pages'
    JSON) keeps publishing the link the feed corrected (cases/16; the store writes source links
    of updated entries). Other feeds' records keep their own links. No link: `e` unchanged."""
    if not link:
        return e
    sources = tuple(replace(s, link=link) if s.feed_url == feed_url else s for s in e.sources)
    return replace(e, link=link, sources=sources)


def _updated(old: StoredEntry, c: Candidate, now: datetime) -> StoredEntry:
    """A correction: new text, same identity, first-seen time and day (no jumping pages)."""
    better_language = EVIDENCE_RANK[c.language_evidence] >= EVIDENCE_RANK[old.language_evidence]
    return replace(
        with_own_link(old, c.feed_url, c.link),
        canonical_url=old.canonical_url or c.canonical_url,
        title=c.title,
        summary=c.summary,
        content=c.content,
        author=c.author,
        categories=c.categories,
        enclosures=c.enclosures,
        updated=c.updated or now,
        language=c.language if better_language else old.language,
        language_tag=c.language_tag if better_language else old.language_tag,
        language_evidence=c.language_evidence if better_language else old.language_evidence,
        content_hash=c.content_hash,
        translations=c.translations or old.translations,
        title_key=c.title_key,
        translation_key=old.translation_key or c.translation_key,
        publishable=c.publishable,
    )
