"""Pure rendering: stored entries -> front pages (text, HTML, JSON) and feeds (Atom, RSS, JSON Feed).

Every function here is deterministic in its arguments, so unchanged inputs give
byte-identical outputs (their ETags do not change). `common` holds what pages and feeds
share; `pages` renders front pages; `feeds` renders syndication feeds.
"""

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
