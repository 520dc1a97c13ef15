"""Pure: candidates from one poll + the stored entries they may match -> an UpdatePlan.

Rules, in order (the first that matches wins):
  1. same feed, same source key (id, else link)      -> the same entry: update if changed
  2. same feed, same fingerprint (title + day)        -> the same entry (ids that change per poll)
  3. same canonical URL, compatible language          -> the same article seen in another feed
  otherwise a new entry. Entries whose languages are both known and differ are never merged.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from .models import Candidate, Source, StoredEntry, UpdatePlan

# How strong each kind of language evidence is; identification beats nothing, declarations beat both.
EVIDENCE_RANK = {"entry": 4, "document": 3, "config": 2, "identified": 1, "none": 0}


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

    def index(e: StoredEntry) -> None:
        for s in e.sources:
            by_source[(s.feed_url, s.source_key)] = e
        by_source[(e.feed_url, e.source_key)] = e
        by_fingerprint[e.fingerprint] = e
        if e.canonical_url:
            by_url.setdefault(e.canonical_url, []).append(e)

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

    for c in candidates:
        match = by_source.get((c.feed_url, c.source_key)) or by_fingerprint.get(c.fingerprint)
        if match is not None:
            match = current(match)
            if match.feed_url == c.feed_url and match.content_hash != c.content_hash:
                changed = _updated(match, c, now)
                (inserts if match.id in inserts else updates)[match.id] = changed
                index(changed)
            else:
                unchanged += 1
            continue
        same_url = [current(e) for e in by_url.get(c.canonical_url or "", [])]
        match = next((e for e in same_url if compatible(e.language, c.language)), None)
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
        day=c.published.astimezone(zone).date(),
        content_hash=c.content_hash,
        sources=(Source(c.feed_url, feed_name, c.source_key, c.link, now),),
        translations=c.translations,
    )


def _updated(old: StoredEntry, c: Candidate, now: datetime) -> StoredEntry:
    """A correction: new text, same identity, first-seen time and day (no jumping pages)."""
    better_language = EVIDENCE_RANK[c.language_evidence] >= EVIDENCE_RANK[old.language_evidence]
    return replace(
        old,
        link=c.link or old.link,
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
    )
