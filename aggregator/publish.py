"""Stored entries -> files under data/public/, written atomically.

Works per output (language x format) so later work can rebuild only what changed;
a file whose bytes did not change is not rewritten, so its Last-Modified and ETag hold.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from . import render
from .config import Config
from .models import StoredEntry
from .render import FrontPage, Section
from .store import Store


@dataclass(frozen=True, slots=True)
class PublishReport:
    written: tuple[str, ...]
    unchanged: int


def output_languages(config: Config) -> list[str]:
    return [*config.site.languages, "all"]


def frontpage(
    store: Store,
    config: Config,
    language: str,
    day: date | None = None,
    now: datetime | None = None,
) -> FrontPage:
    """The front page of `day` (default: the latest day with entries, never a future one)."""
    site = config.site
    lang = None if language == "all" else language
    today = (now or datetime.now(UTC)).astimezone(site.zone).date()
    if day is None:
        day = store.latest_day(lang, not_after=today)
    if day is None:
        failing = tuple(
            s for s in store.feed_states().values() if s.last_error and s.url in {f.key for f in config.feeds}
        )
        return FrontPage(day=None, language=language, sections=(), failing=failing)
    entries = store.day(day, lang)
    return FrontPage(
        day=day,
        language=language,
        sections=group_sections(entries, config, language),
        also_in=translations_of(store, entries, site.languages),
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


def group_sections(entries: list[StoredEntry], config: Config, language: str) -> tuple[Section, ...]:
    """Sections in site.languages order; other languages (combined page only) after them."""
    if language != "all":
        return (Section(language, tuple(entries)),) if entries else ()
    order = list(config.site.languages)
    others = sorted({e.language for e in entries if e.language and e.language not in order})
    sections = []
    for code in [*order, *others, None]:
        chosen = tuple(e for e in entries if e.language == code)
        if chosen:
            sections.append(Section(code, chosen))
    return tuple(sections)


def publish(store: Store, config: Config, public_dir: Path, now: datetime | None = None) -> PublishReport:
    written: list[str] = []
    unchanged = 0
    site = config.site
    for language in output_languages(config):
        lang = None if language == "all" else language
        latest = store.latest(lang, site.entries_per_feed)
        page = frontpage(store, config, language, now=now)
        prefix = "" if language == "all" else f"{language}/"
        root = "../" if prefix else ""
        outputs: dict[str, bytes] = {
            f"feeds/{language}.atom": render.atom_feed(latest, site, language),
            f"feeds/{language}.rss": render.rss_feed(latest, site, language),
            f"feeds/{language}.json": render.json_feed(latest, site, language).encode(),
            f"{prefix}index.html": render.frontpage_html(page, site, root=root or "./").encode(),
            f"{prefix}index.txt": render.frontpage_text(page, site).encode(),
            f"{prefix}index.json": render.frontpage_json(page).encode(),
        }
        for rel, data in outputs.items():
            if write_atomic(public_dir / rel, data):
                written.append(rel)
            else:
                unchanged += 1
    return PublishReport(tuple(written), unchanged)


def write_atomic(path: Path, data: bytes) -> bool:
    """Write via a temporary file and rename, so readers never see half a file.
    Returns False (and touches nothing) when the file already holds these bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
