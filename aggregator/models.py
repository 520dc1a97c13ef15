"""Plain typed data shared by every stage of the pipeline.

Each stage takes and returns these; none of them knows about HTTP, SQL or files.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo


class Outcome(StrEnum):
    """How one poll of one feed ended."""

    OK = "ok"  # 2xx with a body that parsed
    NOT_MODIFIED = "not-modified"  # 304: nothing to do
    HTTP_ERROR = "http-error"  # 4xx/5xx
    NETWORK_ERROR = "network-error"  # refused, reset, DNS, TLS, timeout
    TOO_LARGE = "too-large"
    NOT_A_FEED = "not-a-feed"
    GONE = "gone"
    STORE_ERROR = "store-error"  # the answer arrived but could not be stored (disk full, locked, ...)
    INTERNAL_ERROR = "internal-error"  # a bug in this program, caught around the poll


class NotAFeed(Exception):
    """The body is not a feed; the message says what it is instead, for an operator.
    `alternates`: the feeds a web page links to (its `<link rel="alternate">`s), if any.

    Raised by the parser (`parse.parse_feed`) and carried back from parse workers; defined
    here, with the data, so that a process whose workers parse (`run`'s parent, `fetch`)
    catches it without importing the parsing stack (issue 15, memory)."""

    def __init__(self, message: str, alternates: tuple[str, ...] = ()) -> None:
        self.alternates = alternates
        super().__init__(message)


def entry_day(published: datetime, date_only: bool, zone: ZoneInfo) -> date:
    """The front-page day an entry belongs to: its publication date in `zone` (site.timezone).
    An entry its source dated with a calendar date only ("2024-05-01", stored as 00:00 UTC
    of that date) belongs to that date itself, in every zone: read in a zone west of UTC it
    would land on the day before. One rule for the normaliser, dedupe and the stores'
    re-dating of entries after a time zone change."""
    return published.astimezone(UTC).date() if date_only else published.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What the retriever learnt from one HTTP exchange; no parsing has happened yet."""

    feed_url: str  # the URL as written in feeds.yaml: the feed's identity
    url: str  # the URL finally answered (after redirects)
    status: int | None  # None when no HTTP answer arrived at all
    outcome: Outcome
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None  # words for an operator, set whenever outcome is not OK/NOT_MODIFIED
    fetched_at: datetime | None = None
    duration_ms: float = 0.0
    permanent_redirect: str | None = None  # where a 301/308 chain ended, if it did
    retry_after: datetime | None = None
    warning: str | None = None  # the answer was usable but odd (a bogus Content-Encoding, ...)


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry as the source document states it, before language and dedupe decisions."""

    source_id: str | None  # guid / atom:id / JSON id, if the source gave one
    link: str | None  # the entry's own page: an http(s) URL, secrets stripped
    title: str  # plain text, as written ("List<String>"); "" when the item has none
    summary: str  # HTML as the source gave it (sanitised only when rendered)
    content: str  # HTML
    author: str | None = None
    categories: tuple[str, ...] = ()
    published: datetime | None = None  # aware, UTC
    updated: datetime | None = None  # aware, UTC
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None  # declared on the entry itself (xml:lang, dc:language)
    translations: tuple[tuple[str, str], ...] = ()  # (hreflang, href) alternates
    published_zone: str | None = None  # the source's UTC offset, e.g. "+01:00"; times are UTC
    # The source gave a calendar date with no time ("2024-05-01"): the entry belongs to that
    # day in every zone, and outputs show no invented time.
    date_only: bool = False


@dataclass(frozen=True, slots=True)
class Publishable:
    """An entry's text made safe to publish, computed once at ingest (`text.publishable`) and
    stored beside the entry, so that publishing runs no HTML pass per entry (issues 13, 15).

    It holds for exactly the `summary` and `content` it was made from (kept here by reference,
    compared before use: `text.publishable_for`) and for the rules named by `render_version`
    (`text.RENDER_VERSION`); anything else is recomputed, never served stale."""

    summary: str  # the inputs, as given (the same str objects as the entry's: not a copy)
    content: str
    content_html: str  # sanitised, XML-safe HTML of the content, else of the summary; "" if none
    lede_text: str  # plain text of the summary, else the content; at most text.LEDE_TEXT_KEEP chars
    render_version: str  # text.RENDER_VERSION when it was made
    # The lede cut to each length asked (`render.common.cut_of`), remembered for as long as the
    # entry is held: a publish cuts each entry's lede up to nine times. Derived: not compared.
    ledes: dict[int, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    link: str | None
    language: str | None  # declared by the document (channel language, feed xml:lang)
    format: str  # "rss20", "atom10", "json11", ...
    entries: tuple[ParsedEntry, ...]
    warning: str | None = None  # set when the document was broken but usable


@dataclass(frozen=True, slots=True)
class Source:
    """One place an entry was seen: a feed and the link that feed used for it."""

    feed_url: str
    feed_name: str
    source_key: str
    link: str | None
    first_seen: datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    """A parsed entry made ready to store: language resolved, keys computed, dates clamped."""

    feed_url: str
    source_key: str  # the source's id, else its link, else a content fingerprint
    canonical_url: str | None
    fingerprint: str  # normalised title + day + feed: survives unstable ids
    link: str | None
    title: str
    summary: str
    content: str
    author: str | None
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    published: datetime  # never None: falls back to first-seen time
    updated: datetime | None
    language: str | None  # primary subtag ("en"), None when unknown
    language_tag: str | None  # full BCP 47 tag as declared ("en-GB")
    language_evidence: str  # entry | document | config | identified | none
    content_hash: str  # what "changed" means for an update
    translations: tuple[tuple[str, str], ...] = ()
    title_key: str = ""  # normalised title: near-duplicates across feeds share it
    translation_key: str | None = None  # from site.translation_patterns: translations share it
    published_zone: str | None = None
    date_only: bool = False  # see ParsedEntry.date_only
    # summary and content made safe to publish (normalise); derived data: not part of equality
    publishable: Publishable | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StoredEntry:
    id: str
    feed_url: str
    source_key: str
    canonical_url: str | None
    fingerprint: str
    link: str | None
    title: str
    summary: str
    content: str
    author: str | None
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    published: datetime
    updated: datetime | None
    first_seen: datetime
    language: str | None
    language_tag: str | None
    language_evidence: str
    day: date
    content_hash: str
    sources: tuple[Source, ...] = ()
    translations: tuple[tuple[str, str], ...] = ()
    title_key: str = ""
    translation_key: str | None = None
    published_zone: str | None = None
    date_only: bool = False  # see ParsedEntry.date_only
    seq: int | None = None  # insertion order, increasing across the store (cursors, archives)
    # Summary and content made safe to publish: carried from the Candidate, read back from the
    # store; None (or made from other text, or by other rules) means "compute when needed".
    # Derived data: left out of equality and repr.
    publishable: Publishable | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers about a feed between polls."""

    url: str
    name: str
    etag: str | None = None
    last_modified: str | None = None
    last_polled: datetime | None = None
    last_status: int | None = None
    last_outcome: str | None = None
    last_error: str | None = None
    error_count: int = 0
    next_poll: datetime | None = None
    title: str | None = None
    permanent_url: str | None = None
    gone: bool = False
    warning: str | None = None
    body_hash: str | None = None  # digest of the last successfully parsed body (pipeline.body_hash)


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What one poll learnt about its feed, written by `Store.record_poll` / `PollWork.record`
    together with a `fetch_log` row, in one transaction.

    `outcome` is an `Outcome` value; `error_count` the feed's consecutive failures after this
    poll; `next_poll` when it is due again (None: never, a gone feed). `validators`: store
    the answer's ETag and Last-Modified and `body_hash` (a digest of its body, read back as
    `FeedState.body_hash` so an unchanged 200 is not parsed again) only when its entries were
    parsed and stored; otherwise the earlier ones are kept, so a failed answer is asked for in
    full next time (issue 11: validators only with a successful parse)."""

    result: FetchResult
    outcome: str
    error_count: int
    next_poll: datetime | None
    error: str | None = None
    title: str | None = None
    warning: str | None = None
    gone: bool = False
    validators: bool = False
    body_hash: str | None = None


@dataclass(frozen=True, slots=True)
class DayRows:
    """One day's entries without their text, in the day's order (newest published first, then
    id): each entry's `StoredEntry.seq` in `seqs`, and its language in `codes`, as a position in
    `languages` (None: unknown). Ten bytes an entry, where (id, language) tuples took about 185:
    a 200,000-entry day is 2 MB instead of 37 (issue 15, `run`'s memory at 10,000 feeds).
    Made by `Store.day_index`; a publish reads the entries a page at a time with
    `Store.entries_by_seq`."""

    seqs: array[int] = field(default_factory=lambda: array("q"))  # signed 64-bit, as both stores
    codes: array[int] = field(default_factory=lambda: array("H"))  # 65,536 languages at most
    languages: list[str | None] = field(default_factory=list)

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str | None]]) -> DayRows:
        """From (seq, language) pairs in the day's order, read one at a time (a store's cursor):
        no list of the day's rows is ever held."""
        out = cls()
        position: dict[str | None, int] = {}
        for seq, language in rows:
            code = position.get(language)
            if code is None:
                code = position[language] = len(out.languages)
                out.languages.append(language)
            out.seqs.append(seq)
            out.codes.append(code)
        return out

    def __len__(self) -> int:
        return len(self.seqs)


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """The dedupe decision for one feed's poll, applied by the store in one transaction."""

    inserts: tuple[StoredEntry, ...] = ()
    updates: tuple[StoredEntry, ...] = ()  # content changed: rewrite, keep first-seen and day
    new_sources: tuple[tuple[str, Source], ...] = ()  # (entry id, where else it was seen)
    language_fixes: tuple[tuple[str, str, str | None, str], ...] = ()  # (id, lang, tag, evidence)
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll of one feed did, for logs, the CLI and `status`."""

    feed_url: str
    feed_name: str
    outcome: Outcome
    status: int | None
    error: str | None
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    unchanged: int = 0
    warning: str | None = None
    duration_ms: float = 0.0
    skipped: bool = False  # not polled at all (the feed is gone); `error` says why
    next_poll: datetime | None = None  # when the poll policy wants it polled again (None: never)
    # Days (site.timezone) whose entries this poll inserted, rewrote, merged or relabelled:
    # what an incremental publish must rebuild (`dedupe.days_touched`).
    days: frozenset[date] = frozenset()

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.merged)
