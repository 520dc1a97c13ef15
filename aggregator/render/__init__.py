"""Pure rendering: stored entries -> front pages (text, HTML, JSON) and feeds (Atom, RSS, JSON Feed).

Every function here is deterministic in its arguments, so unchanged inputs give
byte-identical outputs (their ETags do not change). `common` holds what pages and feeds
share; `pages` renders front pages; `feeds` renders syndication feeds.

The names below are loaded from their submodule on first use (PEP 562 module `__getattr__`):
a front page as text or HTML needs babel but not feedgen and lxml, which only `feeds`
imports (issue 15: `aggregator frontpage` pays for what it renders, nothing more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

if TYPE_CHECKING:
    from .common import (
        EPOCH,
        RTL_LANGUAGES,
        FrontPage,
        Section,
        atom_id,
        direction,
        heading,
        language_name,
        lede,
        locale_for,
    )
    from .feeds import atom_feed, json_feed, rss_feed
    from .pages import frontpage_html, frontpage_json, frontpage_text

# Public name -> the submodule that defines it.
_PUBLIC = {
    **dict.fromkeys(
        (
            "EPOCH",
            "RTL_LANGUAGES",
            "FrontPage",
            "Section",
            "atom_id",
            "direction",
            "heading",
            "language_name",
            "lede",
            "locale_for",
        ),
        "common",
    ),
    **dict.fromkeys(("atom_feed", "json_feed", "rss_feed"), "feeds"),
    **dict.fromkeys(("frontpage_html", "frontpage_json", "frontpage_text"), "pages"),
}

__all__ = [
    "EPOCH",
    "RTL_LANGUAGES",
    "FrontPage",
    "Section",
    "atom_feed",
    "atom_id",
    "direction",
    "frontpage_html",
    "frontpage_json",
    "frontpage_text",
    "heading",
    "json_feed",
    "language_name",
    "lede",
    "locale_for",
    "rss_feed",
]


__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, globals(), __all__)
