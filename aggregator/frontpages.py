"""What a day's front page holds, read from the store: its sections of entries by language and
each entry's translations (`FrontPage`), for the renderers to write as HTML, text or JSON.

Apart from publishing so that `aggregator frontpage` loads no feed writer (feedgen, lxml:
issue 15, light commands); `publish` builds every page of every day from these.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, timedelta

from .models import StoredEntry
from .render import FrontPage, Section
from .render.common import section_order
from .settings import Site
from .store import Store


def frontpage(
    store: Store,
    site: Site,
    language: str,
    day: date | None = None,
    now: datetime | None = None,
    *,
    feeds: Collection[str] = (),
) -> FrontPage:
    """The front page of `day` (default: the latest day with entries, never a future one).
    `feeds`: the URLs of the feeds in feeds.yaml; a page without entries lists those of them
    whose last poll failed (none when empty)."""
    lang = None if language == "all" else language
    today = (now or datetime.now(UTC)).astimezone(site.zone).date()
    if day is None:
        day = store.latest_day(lang, not_after=today)
    if day is None:
        # Only entries dated a little ahead (normalise accepts up to a day): show them rather
        # than "No entries yet" while the feeds list entries (issue 12).
        day = store.latest_day(lang, not_after=today + timedelta(days=2))
    if day is None:
        configured = set(feeds)
        failing = tuple(s for s in store.feed_states().values() if s.last_error and s.url in configured)
        return FrontPage(day=None, language=language, sections=(), failing=failing)
    entries = store.day(day, lang)
    return day_page(site, language, day, entries, translations_of(store, entries, site.languages))


def day_page(
    site: Site,
    language: str,
    day: date,
    entries: list[StoredEntry],
    also_in: Mapping[str, tuple[tuple[str, str], ...]],
) -> FrontPage:
    """The front page of `day` in `language` ("all": combined) from the day's entries in any
    language, newest first as `Store.day` gives them (those of other languages are left out
    here), and `translations_of` those entries (it may hold other entries' ids too)."""
    chosen = entries if language == "all" else [e for e in entries if e.language == language]
    return FrontPage(
        day=day, language=language, sections=group_sections(chosen, site, language), also_in=also_in
    )


def translations_of(
    store: Store, entries: list[StoredEntry], order: list[str]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Entry id -> (language, link) of its translations: the source's own hreflang alternates,
    stored entries those alternates point to, and entries sharing an operator-declared key."""
    found: dict[str, dict[str, str]] = {}
    keyed = [e.translation_key for e in entries if e.translation_key]
    by_key: dict[str, list[StoredEntry]] = {}
    for other in store.by_translation_keys(keyed) if keyed else []:
        by_key.setdefault(other.translation_key or "", []).append(other)
    for e in entries:
        links = found.setdefault(e.id, {})
        for hreflang, href in e.translations:
            code = hreflang.split("-")[0].lower()
            if code != e.language:
                links.setdefault(code, href)
        for other in by_key.get(e.translation_key or "", []):
            if other.language and other.language != e.language and other.link:
                links.setdefault(other.language, other.link)
    rank = {code: i for i, code in enumerate(order)}
    return {
        eid: tuple(sorted(links.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        for eid, links in found.items()
        if links
    }


def group_sections(entries: list[StoredEntry], site: Site, language: str) -> tuple[Section, ...]:
    """Sections in site.languages order; other languages (combined page only) after them."""
    if language != "all":
        return (Section(language, tuple(entries)),) if entries else ()
    sections = []
    for code in section_order({e.language for e in entries}, site.languages):
        chosen = tuple(e for e in entries if e.language == code)
        if chosen:
            sections.append(Section(code, chosen))
    return tuple(sections)
