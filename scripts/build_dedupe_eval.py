#!/usr/bin/env python3
"""Regenerate tests/data/dedupe-eval.jsonl, the labelled pairs used to measure dedupe.

Each line is one pair of feed entries, labelled "same article" or "different
articles", built from real entries of the shared feed corpus and the seed front
page.  Where an entry is transformed (tracking parameters added, date moved, typo
introduced, title translated ...) the pair's ``note`` says what was done.

Run it with a Python that has feedparser installed (not the project venv):

    python3 -m venv /tmp/dedupe-venv && /tmp/dedupe-venv/bin/pip install feedparser
    /tmp/dedupe-venv/bin/python scripts/build_dedupe_eval.py \\
        --corpus /work/shared/corpus \\
        --seed /work/shared/seed-frontpage-2023-01-17.txt \\
        --out tests/data/dedupe-eval.jsonl

The output is deterministic: inputs are read in sorted order, every random choice
comes from one generator with a fixed seed, and hand-picked pairs live in the
tables below.  Table rows name entries as "<file alias>#<index> <title prefix>";
the prefix is checked, so a changed corpus fails loudly instead of silently
pairing the wrong entries.  Before writing, every label is checked against the
rule its kind exercises (see `check`).
"""

from __future__ import annotations

import argparse
import base64
import calendar
import json
import random
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit, urlunsplit

import feedparser

SEED = 20230117
SUMMARY_MAX = 300
# Hosts for feeds and sites that are not in the corpus use the reserved
# ".example" top-level domain (RFC 2606), so they can never be mistaken for real ones.
SYNTHETIC_FEEDS = "https://feeds.example"

# --------------------------------------------------------------------------------------
# Data shared by every pair
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One entry as the dedupe stage would see it."""

    feed: str
    id: str | None
    link: str | None
    title: str
    summary: str
    language: str
    published: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "id": self.id,
            "link": self.link,
            "title": self.title,
            "summary": self.summary,
            "language": self.language,
            "published": self.published.isoformat() if self.published else None,
        }


@dataclass(frozen=True)
class Pair:
    kind: str
    same: bool
    a: Side
    b: Side
    note: str
    together: bool | None = None  # set for made-up documents; else read from the captures


# A corpus entry named in a table: "<file alias>#<index> <title prefix>", e.g.
# "golem#14 Sicherheitslücke".  The alias is any fragment of the file's path that
# names one file, the index counts entries in feedparser order, and the title
# prefix (may be empty) is checked against the entry.
Pick = str

# --------------------------------------------------------------------------------------
# Reading the corpus
# --------------------------------------------------------------------------------------

# Feeds whose own self link is unusable or missing; everything else uses its
# atom:link rel="self" when present, else its channel link.
FEED_URL_OVERRIDES = {
    # every item carries <source url="..."> naming this feed
    "es/europarl-agricultura-mixed-es-en.xml": "https://www.europarl.europa.eu/rss/topic/904/es.xml",
    # the self link embeds a personal account token; use the site address instead
    "en/talkingpointsmemo.atom": "http://talkingpointsmemo.com",
}

# Entries whose language differs from their directory (mixed-language feeds).
LANGUAGE_OVERRIDES = {
    ("fr/ploum-mixed-fr-en.xml", 0): "en",
    ("fr/ploum-mixed-fr-en.xml", 4): "en",
    ("fr/ploum-mixed-fr-en.xml", 9): "en",
    ("pl/osm-polska.xml", 1): "en",
    ("pl/osm-polska.xml", 2): "en",
}

# Feeds captured with double-encoded UTF-8 (see corpus SOURCES.md); we repair them.
MOJIBAKE_FEEDS = {"ru/yandexnews-moscow-mojibake.xml"}


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def plain_text(fragment: str) -> str:
    parser = _TextOnly()
    parser.feed(fragment)
    parser.close()
    return collapse(unescape("".join(parser.parts)))


def clip(text: str, limit: int = SUMMARY_MAX) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 bytes that were read as cp1252 and encoded again."""
    raw = bytearray()
    for char in text:
        try:
            raw += char.encode("cp1252")
        except UnicodeEncodeError:
            raw += char.encode("latin-1")
    return raw.decode("utf-8")


def looks_mojibake(text: str) -> bool:
    return bool(re.search(r"Ã.|â€|Â\s", text))


def struct_to_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


class Corpus:
    """Entries of /work/shared/corpus/real, addressed by a unique path fragment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = sorted(p.relative_to(root / "real").as_posix() for p in (root / "real").glob("*/*"))
        self._parsed: dict[str, Any] = {}

    def resolve(self, alias: str) -> str:
        matches = [f for f in self.files if alias in f]
        if len(matches) != 1:
            raise KeyError(f"alias {alias!r} matches {matches}")
        return matches[0]

    def parsed(self, rel: str) -> Any:
        if rel not in self._parsed:
            self._parsed[rel] = feedparser.parse(str(self.root / "real" / rel))
        return self._parsed[rel]

    def count(self, rel: str) -> int:
        return len(self.parsed(rel).entries)

    def feed_url(self, rel: str) -> str:
        if rel in FEED_URL_OVERRIDES:
            return FEED_URL_OVERRIDES[rel]
        feed = self.parsed(rel).feed
        for link in feed.get("links", []):
            if link.get("rel") == "self" and link.get("href"):
                return str(link["href"])
        return str(feed.get("link"))

    def language(self, rel: str, index: int) -> str:
        if (rel, index) in LANGUAGE_OVERRIDES:
            return LANGUAGE_OVERRIDES[(rel, index)]
        if rel.startswith("es/europarl"):
            guid = str(self.parsed(rel).entries[index].get("id", ""))
            return guid.rsplit("_", 1)[-1].lower()
        return rel.split("/", 1)[0]

    def side_at(self, rel: str, index: int) -> Side:
        entry = self.parsed(rel).entries[index]
        title, summary = entry.get("title", ""), entry.get("summary", "")
        if rel in MOJIBAKE_FEEDS:  # repair first: the damage includes no-break spaces
            title, summary = repair_mojibake(title), repair_mojibake(summary)
        title, summary = collapse(title), plain_text(summary)
        link = (entry.get("link") or "").strip() or None
        if link and link.startswith("/"):  # TPM's Atom links are relative and it sets no xml:base
            link = urljoin(self.parsed(rel).feed.get("link", ""), link)
        published = struct_to_datetime(entry.get("published_parsed") or entry.get("updated_parsed"))
        return Side(
            feed=self.feed_url(rel),
            id=entry.get("id"),
            link=link,
            title=title,
            summary=clip(summary),
            language=self.language(rel, index),
            published=published,
        )

    def side(self, pick: Pick) -> Side:
        alias, _, rest = pick.partition("#")
        index, _, prefix = rest.partition(" ")
        side = self.side_at(self.resolve(alias), int(index))
        if not side.title.startswith(prefix):
            raise ValueError(f"{pick}: title {side.title!r} does not start with {prefix!r}")
        return side


# --------------------------------------------------------------------------------------
# Small helpers: dates, sites, text variants
# --------------------------------------------------------------------------------------


def add_months(when: datetime, months: int) -> datetime:
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def same_day_shift(when: datetime, minutes: int) -> datetime:
    """Move by `minutes`, reflected back if that would leave the UTC day."""
    moved = when + timedelta(minutes=minutes)
    if moved.date() != when.date():
        moved = when - timedelta(minutes=minutes)
    if moved.date() != when.date():
        moved = when
    return moved


TWO_LEVEL_SUFFIXES = {"co.uk", "com.br", "com.au", "co.jp", "org.pl", "com.cn"}


def site_of(url: str) -> str:
    """Registrable domain, good enough for the hosts in this data set."""
    host = (urlsplit(url).hostname or "").lower()
    labels = host.split(".")
    if ".".join(labels[-2:]) in TWO_LEVEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def slugify(text: str) -> str:
    """URL slug: Latin letters lose their accents, other scripts are kept as they are."""
    chars = []
    for char in text.lower():
        base = unicodedata.normalize("NFKD", char)[0]
        chars.append(base if base.isascii() else char)
    return re.sub(r"\W+", "-", "".join(chars)).strip("-")[:60] or "item"


def token(rng: random.Random, length: int, alphabet: str = "0123456789abcdef") -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def uuid_urn(rng: random.Random) -> str:
    h = token(rng, 32)
    return f"urn:uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if not (unicodedata.combining(c) and c != "\u0306"))
    return unicodedata.normalize("NFC", kept)


def swap_quotes(text: str) -> str | None:
    """Straight quotes to typographic ones or back; None if the title has none."""
    if "’" in text or "“" in text or "«" in text or "„" in text:
        out = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
        out = out.replace("« ", '"').replace(" »", '"').replace("«", '"').replace("»", '"').replace("„", '"')
        return out
    if "'" in text or '"' in text:
        chars: list[str] = []
        opened = False
        for i, c in enumerate(text):
            at_word_start = i == 0 or text[i - 1] in " ([\u00a0"
            if c == "'":
                chars.append("‘" if at_word_start else "’")
            elif c == '"':
                chars.append("”" if opened else "“")
                opened = not opened
            else:
                chars.append(c)
        return "".join(chars)
    return None


def title_case(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))


# --------------------------------------------------------------------------------------
# URL editing that keeps every other byte of the link as it was
# --------------------------------------------------------------------------------------


@dataclass
class Url:
    scheme: str
    host: str
    port: int | None
    path: str
    params: list[str]
    fragment: str

    @classmethod
    def parse(cls, url: str) -> Url:
        parts = urlsplit(url)
        host, port = parts.netloc, None
        match = re.fullmatch(r"(.*):(\d+)", parts.netloc)
        if match:
            host, port = match.group(1), int(match.group(2))
        params = [p for p in parts.query.split("&") if p] if parts.query else []
        return cls(parts.scheme, host, port, parts.path, params, parts.fragment)

    def __str__(self) -> str:
        netloc = self.host + (f":{self.port}" if self.port is not None else "")
        query = "?" + "&".join(self.params) if self.params else ""
        fragment = "#" + self.fragment if self.fragment else ""
        return f"{self.scheme}://{netloc}{self.path}{query}{fragment}"


UrlOp = Callable[[Url, random.Random], str | None]


def op_utm(url: Url, rng: random.Random) -> str | None:
    source, medium, campaign = rng.choice(
        [
            ("newsletter", "email", "weekly-digest"),
            ("twitter", "social", "share"),
            ("feedburner", "feed", "Feed%3A+main"),
            ("facebook", "social", "morning-post"),
        ]
    )
    url.params += [f"utm_source={source}", f"utm_medium={medium}", f"utm_campaign={campaign}"]
    return "utm_source/utm_medium/utm_campaign added"


def op_fbclid(url: Url, rng: random.Random) -> str | None:
    url.params.append(
        "fbclid=IwAR" + token(rng, 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    )
    return "fbclid added"


def op_gclid(url: Url, rng: random.Random) -> str | None:
    url.params.append(
        "gclid=Cj0KCQiA" + token(rng, 32, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    )
    return "gclid added"


def op_mailchimp(url: Url, rng: random.Random) -> str | None:
    url.params += [f"mc_cid={token(rng, 10)}", f"mc_eid={token(rng, 10)}"]
    return "mc_cid/mc_eid added"


def op_scheme(url: Url, rng: random.Random) -> str | None:
    url.scheme = "https" if url.scheme == "http" else "http"
    return f"scheme changed to {url.scheme}"


def op_www(url: Url, rng: random.Random) -> str | None:
    if url.host.lower().startswith("www."):
        url.host = url.host[4:]
        return "www. removed"
    labels = url.host.split(".")
    if len(labels) == 2 or (len(labels) == 3 and ".".join(labels[-2:]) in TWO_LEVEL_SUFFIXES):
        url.host = "www." + url.host
        return "www. added"
    return None


def op_host_case(url: Url, rng: random.Random) -> str | None:
    labels = url.host.split(".")
    mixed = [lab if lab.lower() == "www" else lab[:1].upper() + lab[1:] for lab in labels[:-1]]
    url.host = ".".join([*mixed, labels[-1].upper()])
    return "host case changed"


def op_default_port(url: Url, rng: random.Random) -> str | None:
    if url.port is not None:
        url.port = None
        return "default port removed"
    url.port = 443 if url.scheme == "https" else 80
    return f"default port :{url.port} added"


def op_fragment(url: Url, rng: random.Random) -> str | None:
    if url.fragment:
        old, url.fragment = url.fragment, ""
        return f"fragment #{old} removed"
    url.fragment = rng.choice(["comments", "top", "main-content", "ref=rss", "section-2"])
    return f"fragment #{url.fragment} added"


def op_trailing_slash(url: Url, rng: random.Random) -> str | None:
    if url.path.endswith("/") and len(url.path) > 1:
        url.path = url.path.rstrip("/")
        return "trailing slash removed"
    if url.path == "":
        url.path = "/"
        return "trailing slash added"
    last = url.path.rsplit("/", 1)[-1]
    if "." not in last and ";" not in last:
        url.path += "/"
        return "trailing slash added"
    return None


def op_query_order(url: Url, rng: random.Random) -> str | None:
    if not url.params:
        return None
    if len(url.params) == 1:
        url.params.insert(0, f"utm_source={rng.choice(['rss', 'reader', 'mastodon'])}")
        url.params.insert(1, "utm_medium=referral")
        return "utm_source/utm_medium put before the existing query"
    before = list(url.params)
    url.params = url.params[1:] + url.params[:1]
    if url.params == before:
        return None
    return "query parameters reordered"


TRACKING_OPS: list[tuple[str, UrlOp]] = [
    ("utm", op_utm),
    ("fbclid", op_fbclid),
    ("gclid", op_gclid),
    ("mailchimp", op_mailchimp),
    ("scheme", op_scheme),
    ("www", op_www),
    ("host-case", op_host_case),
    ("default-port", op_default_port),
    ("fragment", op_fragment),
    ("trailing-slash", op_trailing_slash),
    ("query-order", op_query_order),
]
# Applied in this order whatever order they were chosen in, so a port follows the scheme.
OP_ORDER = [
    "scheme",
    "www",
    "host-case",
    "default-port",
    "trailing-slash",
    "utm",
    "fbclid",
    "gclid",
    "mailchimp",
    "query-order",
    "fragment",
]


def apply_ops(link: str, names: list[str], rng: random.Random) -> tuple[str, list[str]]:
    url = Url.parse(link)
    done = []
    ops = dict(TRACKING_OPS)
    for name in sorted(names, key=OP_ORDER.index):
        what = ops[name](url, rng)
        if what:
            done.append(what)
    return str(url), done


# --------------------------------------------------------------------------------------
# Reference canonicaliser: used only to check the labels against the rules
# --------------------------------------------------------------------------------------

TRACKING_PARAM = re.compile(r"^(utm_[^=]*|fbclid|gclid|mc_cid|mc_eid)(=|$)", re.IGNORECASE)


def canonical(url: str) -> str:
    u = Url.parse(url)
    host = u.host.lower()
    host = host[4:] if host.startswith("www.") else host
    port = "" if u.port in (None, 80, 443) else f":{u.port}"
    path = u.path.rstrip("/") or ""
    params = sorted(p for p in u.params if not TRACKING_PARAM.match(p))
    return f"{host}{port}{path}" + ("?" + "&".join(params) if params else "")


def norm_title(title: str) -> str:
    text = strip_accents(unicodedata.normalize("NFKC", title)).lower().replace("ё", "е")
    return " ".join(re.findall(r"\w+", text))


# --------------------------------------------------------------------------------------
# Picking entries for synthetic pairs
# --------------------------------------------------------------------------------------

# Never used as the base of a synthetic pair: aggregator wrappers (kept for near-dup),
# feeds with empty titles or shared links/guids, broken links and ads.
POOL_EXCLUDED_FILES = {
    "ru/yandexnews-moscow-mojibake.xml",
    "en/bingnews-madrid-1item.xml",
    "fr/googlenews-fr-be-1item.xml",
    "en/scriptingnews.xml",  # empty titles, guids reused for different posts
    "fr/rsr-capsule.xml",  # every item has the same link
}
# El País Brasil items whose <link> points to another article than their guid.
# Washington Post "Featured Advertiser" items are ads.
POOL_EXCLUDED_ENTRIES = {("pt/elpais-brasil.xml", i) for i in (12, 20, 21, 40, 70)} | {
    ("en/washingtonpost-wellness.xml", i) for i in (1, 21, 23)
}


class Pool:
    """Spreads synthetic pairs across feeds: one entry per feed per round."""

    def __init__(self, corpus: Corpus, rng: random.Random) -> None:
        self.corpus = corpus
        self.rng = rng
        self.used: set[tuple[str, int]] = set()

    def take(self, n: int, accept: Callable[[Side], bool]) -> list[tuple[str, int, Side]]:
        """n unused entries that have a title and an http(s) link and pass `accept`."""
        per_file: dict[str, list[int]] = {}
        for rel in self.corpus.files:
            if rel in POOL_EXCLUDED_FILES:
                continue
            indexes = list(range(self.corpus.count(rel)))
            self.rng.shuffle(indexes)
            per_file[rel] = indexes
        order = sorted(per_file)
        self.rng.shuffle(order)
        chosen: list[tuple[str, int, Side]] = []
        while len(chosen) < n:
            progressed = False
            for rel in order:
                while per_file[rel]:
                    index = per_file[rel].pop()
                    if (rel, index) in self.used or (rel, index) in POOL_EXCLUDED_ENTRIES:
                        continue
                    side = self.corpus.side_at(rel, index)
                    usable = side.title and (side.link or "").startswith(("http://", "https://"))
                    if usable and not looks_mojibake(side.title + side.summary) and accept(side):
                        chosen.append((rel, index, side))
                        self.used.add((rel, index))
                        progressed = True
                        break
                if len(chosen) == n:
                    break
            if not progressed:
                raise RuntimeError(f"pool exhausted after {len(chosen)} of {n}")
        return chosen


def where(rel: str, index: int) -> str:
    return f"{rel}#{index}"


# --------------------------------------------------------------------------------------
# repoll: same feed, same id, polled again
# --------------------------------------------------------------------------------------

# Real duplicates inside one capture: the feed itself listed the entry twice.
REAL_REPOLLS: list[tuple[Pick, Pick, str]] = [
    (
        "lenta-news#167 Российские аналитики",
        "lenta-news#168 Российские аналитики",
        "real: the Lenta.ru capture lists this item twice with the same guid, link and date",
    ),
    (
        "lenta-news#186 Госдеп заявил о",
        "lenta-news#187 Госдеп заявил о",
        "real: the Lenta.ru capture lists this item twice with the same guid, link and date",
    ),
    (
        "lefigaro-culture#26 Hubert de Givenchy",
        "lefigaro-culture#38 Hubert de Givenchy",
        "real: Le Figaro lists the item twice in one capture (same guid and date)",
    ),
    (
        'suspilne-news#18 "Оскар-2024"',
        'suspilne-news#13 "Оскар-2024"',
        "real: no guid; same link listed twice, 25 min apart, the later copy without a description",
    ),
]

REPOLL_VARIANTS = [
    "identical",
    "summary-trimmed",
    "summary-dropped",
    "quotes",
    "pubdate-bumped",
    "title-whitespace",
]


def build_repoll(corpus: Corpus, pool: Pool, rng: random.Random, total: int) -> list[Pair]:
    pairs = [Pair("repoll", True, corpus.side(a), corpus.side(b), note) for a, b, note in REAL_REPOLLS]
    picks = pool.take(total - len(pairs), lambda s: s.id is not None and s.published is not None)
    for k, (rel, index, a) in enumerate(picks):
        variant = REPOLL_VARIANTS[k % len(REPOLL_VARIANTS)]
        b, what = a, ""
        if variant == "summary-trimmed" and len(a.summary) > 80:
            cut = a.summary[:70].rsplit(" ", 1)[0]
            b, what = replace(a, summary=cut + " […]"), "summary cut to a short excerpt ending in ' […]'"
        elif variant == "summary-dropped" and a.summary:
            b, what = replace(a, summary=""), "description missing from the second poll"
        elif variant == "quotes" and swap_quotes(a.title):
            b, what = (
                replace(a, title=swap_quotes(a.title) or a.title),
                "title quotes changed between straight and typographic",
            )
        elif variant == "pubdate-bumped" and a.published:
            minutes = rng.randint(3, 180)
            b = replace(a, published=same_day_shift(a.published, minutes))
            what = f"pubDate re-stamped {minutes} min later (same UTC day)"
        elif variant == "title-whitespace":
            b, what = (
                replace(a, title=a.title.replace(" ", "  ", 1) + " "),
                "title whitespace changed (double space, trailing space)",
            )
        if not what:
            b, what = a, "verbatim"
        note = f"b is a later poll of {where(rel, index)}: {what}"
        pairs.append(Pair("repoll", True, a, b, note))
    return pairs


# --------------------------------------------------------------------------------------
# unstable-id: the feed mints a new guid and/or link on every poll
# --------------------------------------------------------------------------------------

UNSTABLE_VARIANTS = [
    "cache-buster",
    "session-param",
    "jsessionid",
    "uuid-guid",
    "uuid-guid-and-nocache",
    "timestamped-guid",
]


def _with_param(link: str, param: str) -> str:
    url = Url.parse(link)
    url.params.append(param)
    return str(url)


def build_unstable(corpus: Corpus, pool: Pool, rng: random.Random, total: int) -> list[Pair]:
    pairs = [
        Pair(
            "unstable-id",
            True,
            corpus.side("uol-noticias#8 Match Eleitoral"),
            corpus.side("uol-noticias#9 Match Eleitoral"),
            "real: UOL lists the same Folha article twice, once directly and once through the "
            "redir.folha.com.br redirector; no guid, no dates in the feed",
        )
    ]
    picks = pool.take(total - len(pairs), lambda s: s.published is not None)
    for k, (rel, index, base) in enumerate(picks):
        variant = UNSTABLE_VARIANTS[k % len(UNSTABLE_VARIANTS)]
        assert base.link and base.published
        poll_a = base.published
        poll_b = same_day_shift(poll_a, rng.randint(20, 300))
        a, b = base, base
        if variant == "cache-buster":
            la = _with_param(base.link, f"_={int(poll_a.timestamp() * 1000) + rng.randint(0, 999)}")
            lb = _with_param(base.link, f"_={int(poll_b.timestamp() * 1000) + rng.randint(0, 999)}")
            a, b = replace(base, link=la, id=la), replace(base, link=lb, id=lb, published=poll_b)
            what = "link carries a per-poll cache-buster _=<ms>, guid = link; pubDate = poll time"
        elif variant == "session-param":
            name = rng.choice(["sid", "PHPSESSID", "session"])
            la, lb = (
                _with_param(base.link, f"{name}={token(rng, 26)}"),
                _with_param(base.link, f"{name}={token(rng, 26)}"),
            )
            a, b = replace(base, link=la, id=la), replace(base, link=lb, id=lb)
            what = f"link carries a per-poll {name}=<token>, guid = link"
        elif variant == "jsessionid":
            url_a, url_b = Url.parse(base.link), Url.parse(base.link)
            url_a.path += ";jsessionid=" + token(rng, 32).upper()
            url_b.path += ";jsessionid=" + token(rng, 32).upper()
            a, b = (
                replace(base, link=str(url_a), id=str(url_a)),
                replace(base, link=str(url_b), id=str(url_b)),
            )
            what = "link path carries a per-poll ;jsessionid=, guid = link"
        elif variant == "uuid-guid":
            a, b = replace(base, id=uuid_urn(rng)), replace(base, id=uuid_urn(rng), published=poll_b)
            what = "guid is a fresh urn:uuid on every poll (link stable); pubDate = poll time"
        elif variant == "uuid-guid-and-nocache":
            a = replace(base, id=uuid_urn(rng), link=_with_param(base.link, f"nocache={token(rng, 8)}"))
            b = replace(base, id=uuid_urn(rng), link=_with_param(base.link, f"nocache={token(rng, 8)}"))
            what = "fresh urn:uuid guid and a random nocache= param on every poll"
        else:
            stem = base.id or base.link
            a = replace(base, id=f"{stem}-{int(poll_a.timestamp())}")
            b = replace(base, id=f"{stem}-{int(poll_b.timestamp())}", published=poll_b)
            what = "guid = stable id + poll timestamp; pubDate = poll time"
        note = f"both sides are polls of {where(rel, index)} (real link {base.link}): {what}"
        pairs.append(Pair("unstable-id", True, a, b, note))
    return pairs


# --------------------------------------------------------------------------------------
# tracking: same link decorated or respelled, seen in another feed
# --------------------------------------------------------------------------------------

AGGREGATOR_FEEDS = ["newsletter-digest.xml", "social-shares.atom", "bookmarks.rss", "planet-{lang}.xml"]

# Feed-specific tracking parameters that rule 3's list does NOT cover; the article
# without them is the same page.  Kept apart so the expected miss is visible.
BEYOND_RULE_3: list[tuple[Pick, str]] = [
    ("heise-newsticker#1 Mega-Deal: IBM", "wt_mc"),
    ("lemonde-une#2 Un avion de ligne", "xtor"),
    ("derstandard-dastandard#5 Mazedonien", "ref"),
    ("medscape#8 Mandatory Bird Housing", "src"),
    ("transfermarkt-news#2 Transfer fix", "rss"),
]


def aggregator_feed(rng: random.Random, lang: str) -> str:
    return f"{SYNTHETIC_FEEDS}/{rng.choice(AGGREGATOR_FEEDS).format(lang=lang)}"


def build_tracking(corpus: Corpus, pool: Pool, rng: random.Random, total: int) -> list[Pair]:
    pairs: list[Pair] = []
    names = [name for name, _ in TRACKING_OPS]

    def applies(name: str, side: Side) -> bool:
        return bool(side.link) and apply_ops(side.link or "", [name], random.Random(0))[1] != []

    # Every operation leads in total // len(names) pairs or one more, on links where it applies.
    jobs: list[tuple[str, str, int, Side]] = []
    for k, name in enumerate(names):
        count = total // len(names) + (1 if k < total % len(names) else 0)
        jobs += [(name, rel, index, side) for rel, index, side in pool.take(count, partial(applies, name))]
    for name, rel, index, a in jobs:
        assert a.link
        chosen = [name]
        extras = [n for n in names if n != name]
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            chosen.append(extras.pop(rng.randrange(len(extras))))
        link, done = apply_ops(a.link, chosen, rng)
        assert link != a.link, (a.link, chosen)
        b = replace(
            a,
            feed=aggregator_feed(rng, a.language),
            id=rng.choice([link, None]),
            link=link,
            published=a.published + timedelta(minutes=rng.randint(0, 600)) if a.published else None,
        )
        pairs.append(
            Pair(
                "tracking",
                True,
                a,
                b,
                f"b: {where(rel, index)} in an aggregator feed; link: {'; '.join(done)}",
            )
        )
    for pick, param in BEYOND_RULE_3:
        a = corpus.side(pick)
        assert a.link
        url = Url.parse(a.link)
        url.params = [p for p in url.params if p.split("=")[0] != param]
        url.fragment = ""
        b = replace(a, feed=aggregator_feed(rng, a.language), id=None, link=str(url))
        note = (
            f"[beyond rule 3] b: the same article shared without the publisher's own feed tracking "
            f"parameter {param!r}, which is not in the rule-3 list; a canonical-URL match needs it added"
        )
        pairs.append(Pair("tracking", True, a, b, note))
    return pairs


# --------------------------------------------------------------------------------------
# syndicated: same article in a second feed, title dressed differently
# --------------------------------------------------------------------------------------

SITE_NAMES = {
    "golem": "Golem.de",
    "heise": "heise online",
    "spiegel": "SPIEGEL ONLINE",
    "faz": "FAZ.NET",
    "zeit": "ZEIT ONLINE",
    "derstandard": "derStandard.at",
    "guardian": "The Guardian",
    "livemint": "Livemint",
    "macworld": "Macworld",
    "medscape": "Medscape",
    "daringfireball": "Daring Fireball",
    "talkingpointsmemo": "TPM",
    "washingtonpost": "The Washington Post",
    "lemonde": "Le Monde",
    "lefigaro": "Le Figaro",
    "korben": "Korben",
    "developpez": "Developpez.com",
    "20minutos": "20minutos.es",
    "repubblica": "la Repubblica",
    "romanews": "Romanews",
    "elpais": "EL PAÍS Brasil",
    "jn-ultimas": "JN",
    "massanews": "Massa News",
    "lenta": "Lenta.ru",
    "aktuality": "Aktuality.sk",
    "suspilne": "Суспільне",
    "bbcurdu": "BBC Urdu",
    "geekpark": "极客公园",
    "fcutrecht": "fcutrecht.net",
    "osm-polska": "OpenStreetMap Polska",
}
SUFFIX_SEPARATORS = [" | ", " - ", " – ", " — ", " :: "]


def site_name(rel: str, side: Side) -> str:
    for key, name in SITE_NAMES.items():
        if key in rel:
            return name
    host = urlsplit(side.link or side.feed).hostname or "source"
    return host.removeprefix("www.")


def dress_title(title: str, site: str, variant: int, rng: random.Random) -> tuple[str, str]:
    if variant == 0:
        sep = rng.choice(SUFFIX_SEPARATORS)
        return f"{title}{sep}{site}", f"site suffix {sep.strip()!r} {site!r} added"
    if variant == 1:
        return f"{site}: {title}", "site name prefixed"
    if variant == 2:
        return "\n        " + title.replace(
            " ", "  ", 2
        ) + "  ", "whitespace changed (leading newline/indent, doubled and trailing spaces)"
    if variant == 3 and swap_quotes(title):
        return swap_quotes(title) or title, "quotes changed between straight and typographic"
    if variant == 4:
        return title.upper(), "title upper-cased"
    if variant == 5:
        return title.replace(" ", "\u00a0", 3), "some spaces are no-break spaces"
    if variant == 6:
        return title_case(title), "title re-cased word by word"
    if variant == 7:
        sep = rng.choice(SUFFIX_SEPARATORS)
        lowered = "title lower-cased and " if title.lower() != title else ""
        return f"{title.lower()}{sep}{site}", f"{lowered}site suffix {sep.strip()!r} {site!r} added"
    return title, "title unchanged"


def build_syndicated(corpus: Corpus, pool: Pool, rng: random.Random, total: int) -> list[Pair]:
    pairs = []
    picks = pool.take(total, lambda s: True)
    for k, (rel, index, a) in enumerate(picks):
        assert a.link
        title, what = dress_title(a.title, site_name(rel, a), k % 9, rng)
        if title == a.title:
            what = "title unchanged"
        link, link_note = a.link, "link identical"
        if k % 4 == 3:
            link, done = apply_ops(a.link, [rng.choice(["scheme", "trailing-slash", "www"])], rng)
            link_note = "link " + ("; ".join(done) if done else "identical")
        summary = a.summary if k % 3 else clip(a.summary, 140)
        b = Side(
            feed=f"{SYNTHETIC_FEEDS}/{rng.choice(['planet', 'topics', 'reading-list'])}-{a.language}.xml",
            id=rng.choice([None, link, f"tag:feeds.example,2024:{token(rng, 12)}"]),
            link=link,
            title=title,
            summary=summary,
            language=a.language,
            published=a.published + timedelta(minutes=rng.randint(0, 360)) if a.published else None,
        )
        pairs.append(
            Pair(
                "syndicated",
                True,
                a,
                b,
                f"b: {where(rel, index)} re-published by another feed; {what}; {link_note}",
            )
        )
    return pairs


# --------------------------------------------------------------------------------------
# title-correction: same link, title fixed or lightly reworded
# --------------------------------------------------------------------------------------

# Real titles with a visible typo or markup slip; b is our correction.
REAL_TYPOS: list[tuple[Pick, str, str]] = [
    ("guardian-us#51 The Raccoons of the", "Uniom", "Union"),
    ("heise-newsticker#56 Google schaltet Nearby", "Notifcations", "Notifications"),
    ("heise-newsticker#15 Zurück zur", "möglichweise", "möglicherweise"),
    ("lenta-news#141 Стали известены", "известены", "известны"),
    ("golem#4 Machine Learning: Von", "US.Dollar", "US-Dollar"),
    ("lecerclepsy#1 Masters en Psycho", "simplificationet#8230;", "simplification…"),
    (
        "lefigaro-culture#11 Le Clash Culture",
        "Malaussène </i>de Daniel Pennac <i>?</i>",
        "Malaussène</i> de Daniel Pennac ?",
    ),
]

# b is the real title; a is an earlier wording we wrote (word changed, figure updated ...).
EARLIER_WORDINGS: list[tuple[Pick, str]] = [
    ("guardian-us#4 Train carrying dozens", "Train carrying GOP lawmakers hits truck in Virginia"),
    ("guardian-us#9 Director of CDC", "Director of CDC quits over financial conflicts of interest"),
    (
        "spiegel-online#1 Fünf Tote im Flughafen",
        "Fünf Tote im Flughafen: Täter von Fort Lauderdale hatte Waffe legal eingecheckt",
    ),
    (
        "20minutos#14 Conduce 40 km",
        "Conduce 40 kilómetros en sentido contrario hasta chocar con un coche de la Guardia Civil",
    ),
    (
        "lemonde-une#2 Un avion de ligne",
        "Un avion de ligne russe transportant 65 passagers s’écrase près de Moscou",
    ),
    (
        "repubblica#69 Torino, tragedie in",
        "Torino, tragedie in montagna: quattro vittime in poche ore sulle Alpi occidentali",
    ),
    (
        "jn-ultimas#19 Acidente com autocarro",
        'Acidente com autocarro na "curva do diabo" matou 36 pessoas no Peru',
    ),
    ("elpais-brasil#16 NASA confirma", "Nasa confirma existência de água na Lua"),
    ("aktuality#6 Lietadlo s Navaľným", "Lietadlo s Navaľným na palube pristálo v Moskve"),
]


def introduce_typo(title: str, rng: random.Random) -> tuple[str, str] | None:
    words = [w for w in re.findall(r"\w+", title) if len(w) >= 6 and w.isalpha() and len(w) <= 20]
    if not words:
        return None
    word = rng.choice(words)
    i = rng.randrange(1, len(word) - 2)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap":
        typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    elif kind == "drop":
        typo = word[:i] + word[i + 1 :]
    else:
        typo = word[: i + 1] + word[i] + word[i + 1 :]
    if typo == word:
        return None
    return title.replace(word, typo, 1), f"{word!r} -> {typo!r}"


def build_title_correction(corpus: Corpus, pool: Pool, rng: random.Random, total: int) -> list[Pair]:
    pairs = []
    for pick, wrong, right in REAL_TYPOS:
        a = corpus.side(pick)
        assert wrong in a.title, (pick, wrong)
        b = replace(a, title=a.title.replace(wrong, right))
        pairs.append(
            Pair(
                "title-correction",
                True,
                a,
                b,
                f"a is the real title with its slip {wrong!r}; b is our correction to {right!r}",
            )
        )
    cloud = corpus.side("google-cloudblog#18 Cloud Text-to-Speech")
    pairs.append(
        Pair(
            "title-correction",
            True,
            replace(cloud, title=cloud.title.replace("32 languages", "33 languages")),
            cloud,
            "b is the real title; a is its earlier form as the URL slug still shows it (33 languages), "
            "and the item carries an editor's note that it was corrected",
        )
    )
    pairs.append(
        Pair(
            "title-correction",
            True,
            corpus.side("zeit-homepage#4 Bahn: Streit im"),
            corpus.side("zeit-homepage#18 Streit im Stellwerk"),
            "real: ZEIT lists the same link twice, once with the section prefix 'Bahn:' and another teaser",
        )
    )
    for pick, earlier in EARLIER_WORDINGS:
        b = corpus.side(pick)
        pairs.append(
            Pair(
                "title-correction",
                True,
                replace(b, title=earlier),
                b,
                "b is the real title; a is an earlier wording we wrote (one word or figure differs)",
            )
        )
    picks = pool.take(
        total - len(pairs),
        lambda s: s.language not in ("zh", "ja") and introduce_typo(s.title, random.Random(0)) is not None,
    )
    for rel, index, b in picks:
        typo = introduce_typo(b.title, rng)
        assert typo
        pairs.append(
            Pair(
                "title-correction",
                True,
                replace(b, title=typo[0]),
                b,
                f"b is {where(rel, index)}; a is the same entry with a typo we introduced ({typo[1]})",
            )
        )
    return pairs


# --------------------------------------------------------------------------------------
# republished: same link and id, date moved months later
# --------------------------------------------------------------------------------------


def build_republished(corpus: Corpus, pool: Pool, rng: random.Random, total: int) -> list[Pair]:
    pairs = []
    for rel, index, a in pool.take(total, lambda s: s.published is not None):
        assert a.published
        months = rng.choice([2, 3, 4, 6, 9, 12, 14])
        b = replace(a, published=add_months(a.published, months) + timedelta(minutes=rng.randint(-300, 300)))
        pairs.append(
            Pair(
                "republished",
                True,
                a,
                b,
                f"b: {where(rel, index)} put back at the top of its feed {months} months later (date "
                f"moved by us)",
            )
        )
    return pairs


# --------------------------------------------------------------------------------------
# near-dup: the same article on two different sites
# --------------------------------------------------------------------------------------


def punctuation_variant(title: str, rng: random.Random) -> tuple[str, str]:
    options: list[tuple[str, str]] = []
    if strip_accents(title) != title:
        options.append((strip_accents(title), "accents stripped"))
    if "ё" in title:
        options.append((title.replace("ё", "е"), "ё written as е"))
    if any(q in title for q in "«»\"“”'’"):
        options.append((re.sub(r"[«»\"“”]", "", title).replace("’", "'"), "quotes removed"))
    if ":" in title:
        options.append((title.replace(":", " -", 1), "colon replaced by a dash"))
    if title[:1].isupper():
        options.append((title[:1].lower() + title[1:], "case of the first letter changed"))
    options.append((title.rstrip(".!?") + ".", "final punctuation changed"))
    return rng.choice(options)


YANDEX_ITEMS = 12  # of 15; the rest of near-dup are synthetic reprints in other languages


def build_near_dup(corpus: Corpus, pool: Pool, rng: random.Random, total: int) -> list[Pair]:
    pairs = []
    # Yandex.News wraps each publisher's article in its own search URL; b is the publisher's item.
    rel = corpus.resolve("yandexnews")
    for index in range(YANDEX_ITEMS):
        a = corpus.side_at(rel, index)
        assert a.link
        target = dict(parse_qsl(urlsplit(a.link).query))["cl4url"]
        link = "https://" + unquote(target)
        host = urlsplit(link).hostname or ""
        title, what = (a.title, "title identical") if index % 3 == 0 else punctuation_variant(a.title, rng)
        b = Side(f"{SYNTHETIC_FEEDS}/{host}.xml", link, link, title, a.summary, a.language, a.published)
        note = (
            f"a: Yandex.News item (text repaired from double-encoded UTF-8); b: the publisher's own item "
            f"at the cl4url target ({host}); {what}"
        )
        pairs.append(Pair("near-dup", True, a, b, note))
    google = corpus.side("googlenews-fr-be#0 Coronavirus en")
    token_ = (google.link or "").split("/articles/")[1].split("?")[0]
    decoded = base64.urlsafe_b64decode(token_ + "=" * (-len(token_) % 4))
    rtbf = re.search(rb"https?://[\x21-\x7e]+", decoded)
    assert rtbf
    rtbf_link = rtbf.group(0).decode()
    pairs.append(
        Pair(
            "near-dup",
            True,
            google,
            Side(
                f"{SYNTHETIC_FEEDS}/www.rtbf.be.xml",
                None,
                rtbf_link,
                google.title.removesuffix(" - RTBF"),
                google.summary,
                "fr",
                google.published,
            ),
            "a: Google News item; b: RTBF's own item at the article URL encoded in the Google link, "
            "title without the ' - RTBF' suffix (the URL slug shows RTBF also reworded the headline)",
        )
    )
    bing = corpus.side("bingnews-madrid#0 Real Madrid, Barcelona")
    dm_link = dict(parse_qsl(urlsplit(bing.link or "").query))["url"]
    pairs.append(
        Pair(
            "near-dup",
            True,
            bing,
            Side(
                f"{SYNTHETIC_FEEDS}/www.dailymail.co.uk.xml",
                dm_link,
                dm_link,
                swap_quotes(bing.title) or bing.title,
                bing.summary,
                "en",
                bing.published,
            ),
            "a: Bing News item (redirect link); b: the Daily Mail's own item at the url= target, "
            "typographic quotes",
        )
    )
    latin = {"fr", "pt", "es", "it", "de", "sk", "pl", "nl"}
    for rel_, index, a in pool.take(
        total - len(pairs),
        lambda s: s.language in latin and s.published is not None and strip_accents(s.title) != s.title,
    ):
        assert a.published
        title, what = strip_accents(a.title), "accents stripped"
        if rng.random() < 0.5:
            title, more = punctuation_variant(title, rng)
            what += f", {more}"
        host = f"www.reprints-{a.language}.example"
        link = f"https://{host}/{a.published:%Y/%m}/{slugify(a.title)}"
        b = Side(
            f"{SYNTHETIC_FEEDS}/reprints-{a.language}.xml",
            link,
            link,
            title,
            a.summary,
            a.language,
            a.published + timedelta(hours=rng.randint(1, 30)),
        )
        pairs.append(
            Pair(
                "near-dup",
                True,
                a,
                b,
                f"b: synthetic reprint of {where(rel_, index)} on another site, within 30 h; {what}",
            )
        )
    return pairs


# --------------------------------------------------------------------------------------
# same-title-different-article: identical or near-identical titles, distinct links, one site
# --------------------------------------------------------------------------------------

SAME_TITLE_REAL: list[tuple[Pick, Pick, str]] = [
    (
        "aemet#1 Aviso. Nivel naranja.",
        "aemet#29 Aviso. Nivel naranja.",
        "two AEMET warnings for 17 and 18 January",
    ),
    (
        "aemet#2 Aviso. Nivel naranja.",
        "aemet#30 Aviso. Nivel naranja.",
        "two AEMET warnings for different validity windows",
    ),
    (
        "aemet#3 Aviso. Nivel naranja.",
        "aemet#31 Aviso. Nivel naranja.",
        "two AEMET warnings for different validity windows",
    ),
    ("aemet#5 Aviso. Nivel", "aemet#12 Aviso. Nivel", "AEMET warnings 36 min apart for 17 and 18 January"),
    ("aemet#6 Aviso. Nivel", "aemet#13 Aviso. Nivel", "AEMET warnings for different validity windows"),
    ("aemet#7 Aviso. Nivel", "aemet#14 Aviso. Nivel", "AEMET warnings for different validity windows"),
    ("aemet#18 Aviso. Nivel", "aemet#38 Aviso. Nivel", "AEMET warnings 20 min apart, different windows"),
    ("aemet#28 Aviso. Nivel", "aemet#39 Aviso. Nivel", "AEMET warnings 20 min apart, different windows"),
    (
        "washingtonpost#1 Featured Advertiser",
        "washingtonpost#21 Featured Advertiser",
        "two different ads with the same title",
    ),
    (
        "washingtonpost#1 Featured Advertiser",
        "washingtonpost#23 Featured Advertiser",
        "two different ads with the same title",
    ),
    (
        "washingtonpost#21 Featured Advertiser",
        "washingtonpost#23 Featured Advertiser",
        "two different ads with the same title",
    ),
    (
        "washingtonpost#8 Loudoun County",
        "washingtonpost#14 Loudoun County",
        "weekly calendar, consecutive weeks",
    ),
    (
        "washingtonpost#7 Prince William County",
        "washingtonpost#11 Prince William County",
        "weekly calendar, consecutive weeks",
    ),
    (
        "washingtonpost#6 D.C. wellness",
        "washingtonpost#13 D.C. wellness",
        "weekly calendar, consecutive weeks",
    ),
    (
        "washingtonpost#12 Fairfax County",
        "washingtonpost#17 Fairfax County",
        "weekly calendar, consecutive weeks",
    ),
    (
        "europarl#17 Press release",
        "europarl#18 Press release",
        "same title: the hearing's announcement (12 Apr) and its report (15 Apr)",
    ),
    (
        "craigslist#16 Studio,Upper flr",
        "craigslist#19 Studio,Upper flr",
        "two listings with identical titles, 8 s apart: two units (available 22 June vs 14 June)",
    ),
    (
        "scriptingnews#0",
        "scriptingnews#1",
        "empty titles; links differ only by #fragment on one day page, yet they are two posts",
    ),
    (
        "scriptingnews#2",
        "scriptingnews#3",
        "empty titles; links differ only by #fragment on one day page, yet they are two posts",
    ),
    (
        "scriptingnews#14",
        "scriptingnews#15",
        "empty titles; links differ only by #fragment on one day page, yet they are two posts",
    ),
    (
        "scriptingnews#8",
        "scriptingnews#12",
        "[shared id] empty titles, and Scripting News gave both posts the same guid and link (5 min "
        "apart): a greeting and a Dropbox essay",
    ),
    (
        "maliki#5 strip : Orphelines (6)",
        "maliki#9 strip : Orphelines (5)",
        "episodes 6 and 5 of a comic series",
    ),
    (
        "maliki#9 strip : Orphelines (5)",
        "maliki#12 strip : Orphelines (4)",
        "episodes 5 and 4 of a comic series",
    ),
    (
        "maliki#4 strip : Orphelines",
        "maliki#5 strip : Orphelines (6)",
        "final and sixth episode of a comic series",
    ),
    ("akewea#6 Mort vivant #2", "akewea#7 Mort vivant", "second post on the same theme"),
    ("akewea#16 Ptit lapin 2", "akewea#18 Ptit lapin", "second post on the same theme"),
    ("derstandard#17 Bogumil Balkansky", "derstandard#18 Bogumil Balkansky", "parts 2 and 1 of a column"),
    ("derstandard#28 Bogumil Balkansky", "derstandard#30 Bogumil Balkansky", "parts 2 and 1 of a column"),
    ("ploum#7 Le blogueur venu de", "ploum#8 Le blogueur venu de", "second and first part of a story"),
    ("ibash#0 Цитата #17703", "ibash#1 Цитата #17705", "two quotes; titles differ only in the number"),
    ("ibash#3 Цитата #17698", "ibash#4 Цитата #17714", "two quotes; titles differ only in the number"),
    ("ibash#5 Цитата #17715", "ibash#6 Цитата #17722", "two quotes; titles differ only in the number"),
    (
        "daringfireball#0 The Talk Show:",
        "daringfireball#30 The Talk Show:",
        "two podcast episodes, recurring title format",
    ),
    (
        "lenta-news#84 В двух областях",
        "lenta-news#119 Воздушная тревога",
        "two air-raid alerts 3 h apart; same words, reordered",
    ),
    (
        "geekpark#4 极客之选年度评选丨年度真无线降噪耳机",
        "geekpark#14 极客之选年度评选丨年度降噪耳机",
        "awards series: two categories, near-identical titles",
    ),
    ("geekpark#19 极客之选年度评选丨", "geekpark#23 极客之选年度评选丨", "awards series: two categories"),
    ("kc0011#8 1.10低价售", "kc0011#17 1.10低价售", "two sale posts by one seller, same title format"),
    (
        "lefigaro-culture#13 Broken Back",
        "lefigaro-culture#14 Broken Back",
        "two videos of one artist published together",
    ),
    (
        "fcutrecht#6 LIVESTREAM FC Utrecht",
        "fcutrecht#7 MATCHDAY: FC Utrecht",
        "livestream post and match-day post for one match",
    ),
    (
        "rsr-capsule#13 Débit France volet II",
        "rsr-capsule#14 Débit France",
        "[shared link] part II and part I; RSR gives every item the same link (the show page) and no guid",
    ),
]

# Recurring title patterns of real feeds; b is the next (or previous) instalment we wrote.
# Rows: (a, b title, b id, b link, minutes from a to b, why).
SAME_TITLE_PATTERNS: list[tuple[Pick, str, str | None, str, int, str]] = [
    (
        "heise-developer#6 Developer Snapshots",
        "Developer Snapshots: Programmierer-News in ein, zwei Sätzen",
        "http://heise.de/-3093112",
        "http://www.heise.de/developer/meldung/Developer-Snapshots-Programmierer-News-in-ein-zwei-Saetzen-3093112.html?wt_mc=rss.developer.beitrag.atom",
        7 * 24 * 60,
        "weekly column, identical title every week; b is next week's instalment (id and link invented)",
    ),
    (
        "suspilne-news#15 Головні новини Харкова",
        "Головні новини Харкова та області 20 грудня: хроніка",
        None,
        "https://suspilne.media/643717-golovni-novini-harkova-ta-oblasti-20-grudna-hronika/",
        -24 * 60,
        "daily chronicle; b is the previous day's (id and link invented)",
    ),
    (
        "osm-polska#4 Zapytanie ofertowe",
        "Zapytanie ofertowe",
        "https://openstreetmap.org.pl/?p=2631",
        "https://openstreetmap.org.pl/2024/zapytanie-ofertowe-digitalizacja-map/",
        26 * 60,
        "generic title 'request for quotation'; b is a second tender (link invented)",
    ),
    (
        "zeit-homepage#8 Presseschau",
        "Presseschau",
        None,
        "http://www.zeit.de/online/2006/22/presseschau-bahn",
        0,
        "daily press review, identical title every day; b is another day's (link invented; feed has no "
        "dates)",
    ),
    (
        "repubblica#59 ES17 - 5a puntata",
        "ES17 - 4a puntata",
        "https://video.repubblica.it/webseries/es17/es17-la-morte-webserie-episodio-4/304233/304512/?rss",
        "https://video.repubblica.it/webseries/es17/es17-la-morte-webserie-episodio-4/304233/304512/?rss",
        -7 * 24 * 60,
        "web series; b is the previous episode (link invented)",
    ),
]


def build_same_title(corpus: Corpus) -> list[Pair]:
    pairs = [
        Pair("same-title-different-article", False, corpus.side(a), corpus.side(b), f"real: {why}")
        for a, b, why in SAME_TITLE_REAL
    ]
    for pick, title, entry_id, link, minutes, why in SAME_TITLE_PATTERNS:
        a = corpus.side(pick)
        published = a.published + timedelta(minutes=minutes) if a.published else None
        b = replace(a, id=entry_id, link=link, title=title, summary="", published=published)
        pairs.append(Pair("same-title-different-article", False, a, b, f"pattern: {why}"))
    return pairs


# --------------------------------------------------------------------------------------
# similar-topic: different real articles on one story, same language
# --------------------------------------------------------------------------------------

SIMILAR_TOPIC: list[tuple[Pick, Pick, str]] = [
    # golem.de and heise online covering the same news, Oct 2018
    (
        "golem#14 Sicherheitslücke",
        "heise-newsticker#51 British-Airways-Hack",
        "British Airways breach, two publishers",
    ),
    (
        "golem#11 Augsburg: Fujitsu",
        "heise-newsticker#53 Fujitsu schließt Werk",
        "Fujitsu Augsburg closure, two publishers",
    ),
    (
        "golem#7 Lenovo: Fehlerhafte",
        "heise-newsticker#27 BIOS-Option macht",
        "ThinkPad BIOS bug, two publishers",
    ),
    (
        "golem#5 Projekt Jedi",
        "heise-newsticker#14 Microsoft will Militär",
        "Microsoft and the US military, two publishers",
    ),
    ("golem#12 Bundesnetzagentur", "heise-newsticker#16 5G: Seehofer", "5G auction, two publishers"),
    ("golem#38 Red Dead Redemption 2", "heise-newsticker#37 Red Dead Redemption", "two reviews of one game"),
    ("golem#15 iPhone Xr im Test", "heise-newsticker#31 iPhone XR: Die 10", "two iPhone XR reviews"),
    (
        "golem#29 Cambridge-Analytica-Sk",
        "heise-newsticker#47 EU-Parlament",
        "EU Parliament on Facebook, two publishers",
    ),
    ("golem#39 Xiaomi: Das Mi Mix 3", "heise-newsticker#59 Mi Mix 3", "Mi Mix 3 launch, two publishers"),
    (
        "golem#3 City Transformer",
        "heise-newsticker#6 Israelisches Start-up",
        "folding electric car, two publishers",
    ),
    ("golem#0 Red Dead Redemption", "golem#32 Red Dead Redemption", "two articles on one game, same site"),
    # Lenta.ru, 2-3 Dec 2022
    ("lenta-news#0 Стало известно о", "lenta-news#41 В Британии сообщили о", "Fridman's arrest: two items"),
    ("lenta-news#3 G7, ЕС и Австралия", "lenta-news#169 G7 определилась", "oil price cap: two items"),
    ("lenta-news#169 G7 определилась", "lenta-news#196 Европа приняла решение", "oil price cap: two items"),
    (
        "lenta-news#14 Шойгу встретится",
        "lenta-news#23 Шойгу прибыл",
        "Shoigu in Minsk: announcement and arrival",
    ),
    (
        "lenta-news#137 Маск раскрыл",
        "lenta-news#173 Маск решил",
        "Twitter files: announcement and publication",
    ),
    (
        "lenta-news#66 В Греции устроили",
        "lenta-news#110 В Греции сошел с",
        "derailed NATO train: accident and protest",
    ),
    (
        "lenta-news#153 Белый дом пояснил",
        "lenta-news#190 В Белом доме",
        "White House on Biden's remarks: two items",
    ),
    (
        "lenta-news#189 Пожар на Микояновском",
        "lenta-news#198 Пожар на Микояновском",
        "one fire: extinguished vs video",
    ),
    ("lenta-news#177 Футболисты Сербии и", "lenta-news#184 Сборная Швейцарии", "one match: brawl vs result"),
    ("lenta-news#113 Минкульт Украины", "lenta-news#188 Захарова сообщила", "Kyiv Lavra: two items"),
    (
        "lenta-news#129 Стало известно о",
        "lenta-news#156 Российский военный",
        "Polish special forces claim: two items",
    ),
    ("lenta-news#16 Стало известно об", "lenta-news#141 Стали известены", "Pelé's health: two items"),
    # Yandex.News Moscow, 7 Jan 2017 (text repaired from double-encoded UTF-8)
    (
        "yandexnews#5 СК возбудил дело",
        "yandexnews#6 Число жертв пожара",
        "hotel fire: criminal case vs death toll",
    ),
    ("yandexnews#6 Число жертв пожара", "yandexnews#10 Пожар в гостинице", "hotel fire: death toll vs video"),
    (
        "yandexnews#7 Из гостиницы в Москве",
        "yandexnews#10 Пожар в гостинице",
        "two different hotels: bomb scare vs fire",
    ),
    ("yandexnews#8 В Москве 62 человека", "yandexnews#9 Минувшая", "cold snap: injuries vs record low"),
    # The Guardian (US), 31 Jan 2018
    (
        "guardian-us#28 Stormy Daniels on",
        "guardian-us#32 Porn actor Stormy",
        "video and article on one interview",
    ),
    (
        "guardian-us#0 Trump State of the",
        "guardian-us#29 'Extraordinary",
        "State of the Union: analysis vs video",
    ),
    ("guardian-us#27 Moments of protest", "guardian-us#29 'Extraordinary", "State of the Union: two videos"),
    (
        "guardian-us#1 So, how did",
        "guardian-us#14 Late-night hosts",
        "State of the Union: two reaction pieces",
    ),
    # Daring Fireball, June 2017
    (
        "daringfireball#22 Inside Travis Kalanick",
        "daringfireball#26 Uber Founder Travis",
        "Kalanick resignation: two links",
    ),
    (
        "daringfireball#17 More Than 1,000 Uber",
        "daringfireball#26 Uber Founder Travis",
        "Kalanick: petition vs resignation",
    ),
    (
        "daringfireball#21 Chris Lattner on His",
        "daringfireball#27 Chris Lattner Out at",
        "Lattner leaves Tesla: two links",
    ),
    (
        "daringfireball#10 Scott Galloway on",
        "daringfireball#37 Ben Thompson on Amazon",
        "Amazon/Whole Foods: two commentators",
    ),
    (
        "daringfireball#24 John Markoff’s",
        "daringfireball#41 John Markoff to",
        "announcement vs the interview itself",
    ),
    ("livemint#4 FDI", "livemint#14 FDI inflows record", "one statistic, two stories"),
    ("macworld#13 Cyber Monday: The", "macworld#22 Cyber Monday deals: 14", "two Cyber Monday deal lists"),
    (
        "talkingpointsmemo#14 Top Dems Say Election",
        "talkingpointsmemo#17 Ryan: GOP Is Sticking",
        "election-day rout: two reactions",
    ),
    ("europarl#2 Press release - EU", "europarl#3 Press release - MEPs", "plenary vote vs committee vote"),
    ("europarl#12 Press release - EU", "europarl#13 Background - EU farm", "deal vs background note"),
    # Spanish
    (
        "20minutos#0 Obama le recuerda a",
        "20minutos#1 EEUU dice que Putin",
        "Russian interference: two stories",
    ),
    ("20minutos#12 Las rebajas animarán", "20minutos#13 Este sábado arrancan", "winter sales: two stories"),
    ("europarl#23 Notas de prensa - El", "europarl#24 Notas de prensa", "two fisheries agreements, same day"),
    ("europarl#5 Notas de prensa - El", "europarl#23 Notas de prensa - El", "two fisheries agreements"),
    # Portuguese
    (
        "massanews#8 Sem previsão de alta",
        "massanews#22 Alta médica já é",
        "the mayor's hospital stay: two items",
    ),
    (
        "massanews#32 Greca faz exercícios",
        "massanews#49 Boletim aponta que",
        "the mayor's health bulletins, two days",
    ),
    (
        "jn-ultimas#33 Primeira página em 60",
        "jn-ultimas#37 Erros na leitura",
        "video digest vs the story it cites",
    ),
    (
        "jn-ultimas#12 Meio dia em 60",
        "jn-ultimas#15 Já foram publicadas",
        "income-tax tables: digest vs story",
    ),
    ("uol-noticias#0 Ibope: Bolsonaro perde", "uol-noticias#12 Ibope: Bolsonaro", "two items on one poll"),
    (
        "elpais-brasil#2 Brasil abandona",
        "elpais-brasil#37 Bolsonaro arrasta",
        "vaccine politics: two articles",
    ),
    (
        "elpais-brasil#30 Apuração oficial na",
        "elpais-brasil#31 Responsável pelo",
        "Bolivian election: result vs profile",
    ),
    # Italian
    (
        "repubblica#85 Leucemia mieloide",
        "repubblica#106 Leucemia linfatica",
        "two leukaemia treatment stories",
    ),
    ("repubblica#11 Salvini su Facebook", "repubblica#12 Parigi, tregua", "migrant ships row: two stories"),
    ("romanews#5 Calciomercato Roma.", "romanews#7 Spalletti:", "two quotes from one press conference"),
    # French
    (
        "lefigaro-culture#25 Les Giacometti",
        "lefigaro-culture#26 Hubert de Givenchy et",
        "one auction: two articles",
    ),
    (
        "lefigaro-culture#6 Daniel Pennac",
        "lefigaro-culture#11 Le Clash Culture",
        "one novel: review vs debate",
    ),
    (
        "lefigaro-culture#10 La recette magique de",
        "lefigaro-culture#16 Broken Back fait son",
        "one artist: portrait vs live video",
    ),
    (
        "developpez#4 Les Jeux Olymgeeks",
        "developpez#17 « Jeux Olymgeeks »",
        "one contest: launch vs new events",
    ),
    # Slovak, Bulgarian, Urdu, Chinese, Dutch
    ("aktuality#1 Koronavírus: Cielené", "aktuality#2 Koronavírus", "mass testing: two stories"),
    ("aktuality#14 Ministerka Kolíková", "aktuality#15 Pellegrini pripúšťa", "mass testing: two politicians"),
    ("topsport#10 Роналдо готов", "topsport#19 Кристиано не тренира", "Ronaldo's injury: two stories"),
    (
        "topsport#11 Дани Алвеш все пак",
        "topsport#17 Дани Алвеш продължава",
        "Dani Alves transfer: contradicting stories",
    ),
    ("bbcurdu#6 امریکہ اور پاکستان", "bbcurdu#20 امریکہ کا پاکستان کو", "US-Pakistan row: two analyses"),
    ("geekpark#21 京东7亿美元", "geekpark#24 京东 7 亿美元", "JD.com investment: analysis vs news brief"),
    ("fcutrecht#15 Samenvatting FC", "fcutrecht#17 Kaartverkoop FC", "one match: summary vs ticket sale"),
    # Different articles that carry the SAME link: a canonical-URL or same-link rule merges them.
    (
        "scriptingnews#22",
        "scriptingnews#24 Republican-inspired",
        "[shared id] two posts about Sean Spicer (a remark on the ACA, then a picture) that Scripting "
        "News published under one guid and link, 26 min apart",
    ),
    (
        "rsr-capsule#2 Le salon de la",
        "rsr-capsule#3 Le salon de l'ITU",
        "[shared link] two daily capsules on one trade fair; every RSR item links to the show page, no guid",
    ),
    (
        "daringfireball#28 [Sponsor] MNML",
        "daringfireball#9 Mnml – A Mac Client",
        "[shared link] a sponsor post and, 4 days later, a linked-list post; both link to the product page",
    ),
    (
        "elpais-brasil#12 Dinheiro na cueca",
        "elpais-brasil#22 Por que Bolsonaro",
        "[shared link] two articles (distinct guids) whose <link> both point to a third article: broken "
        "feed links",
    ),
    (
        "elpais-brasil#20 As moscas",
        "elpais-brasil#36 Temor de crime por",
        "[shared link] a's <link> points to b's article (a's guid is its own URL): broken feed link",
    ),
    (
        "elpais-brasil#70 Filipe Sabará",
        "elpais-brasil#71 Russomanno rejeita",
        "[shared link] a's <link> points to b's article (a's guid is its own URL): broken feed link",
    ),
    (
        "elpais-brasil#40 Fazer a mala e abortar",
        "elpais-brasil#44 Jesus é meu Deus",
        "[shared link] two US-election reports whose <link> both point to a third article: broken feed links",
    ),
]


def build_similar_topic(corpus: Corpus) -> list[Pair]:
    return [
        Pair("similar-topic", False, corpus.side(a), corpus.side(b), f"real: {why}")
        for a, b, why in SIMILAR_TOPIC
    ]


# --------------------------------------------------------------------------------------
# translation: the same story in two languages
# --------------------------------------------------------------------------------------

SEED_PERU = {
    "en": "Peru: mass movement prepares to march on Lima",
    "it": "Perù – Il movimento di massa",
    "fr": "Appel urgent | Liberté pour le secrétaire général de la CGTP",
}

# Other-language posts that ploum.net links from inside this feed: (href, title attribute, language).
PLOUM_ANCHORS = {
    "publishers-dilemma": ("http://ploum.net/post/publishers-dilemma", "The Publisher’s Dilemma", "en"),
    "lettre-ouverte": (
        "http://ploum.net/post/lettre-ouverte-aux-artistes-pirates",
        "Lettre ouverte aux artistes piratés",
        "fr",
    ),
    "open-letter": (
        "http://ploum.net/post/open-letter-pirated-artists",
        "An Open Letter To Pirated Artists",
        "en",
    ),
    "web-payant": (
        "http://ploum.net/post/si-vous-testiez-le-web-payant",
        "Et si vous testiez le web payant\u00a0?",
        "fr",
    ),  # no-break space as in the feed
    "paying-web": ("http://ploum.net/post/paying-web", "Paying for the web?", "en"),
}

TRANSLATION_REAL: list[tuple[Pick, Pick, str]] = [
    (
        "europarl#0 Notas de prensa",
        "europarl#1 Press release - MEPs",
        "vessel access rules: ES plenary release vs EN committee release",
    ),
    (
        "europarl#15 Notas de prensa",
        "europarl#17 Press release",
        "end of caged farming: ES vote vs EN hearing",
    ),
    (
        "europarl#15 Notas de prensa",
        "europarl#18 Press release",
        "end of caged farming: ES vote vs EN hearing notice",
    ),
    (
        "europarl#11 Notas de prensa - 6",
        "europarl#22 Press release - 6.1",
        "fisheries fund: titles translate each other, releases 7 months apart",
    ),
    ("europarl#8 Notas de prensa - Luz", "europarl#9 Press release", "farm policy vote: ES vs EN releases"),
    (
        "europarl#8 Notas de prensa - Luz",
        "europarl#12 Press release - EU",
        "farm policy reform: ES vote vs EN deal",
    ),
    (
        "europarl#8 Notas de prensa - Luz",
        "europarl#13 Background - EU farm",
        "farm policy reform: ES vote vs EN background",
    ),
    (
        "europarl#6 Notas de prensa - La",
        "europarl#7 Press release",
        "food supply after the invasion: ES vs EN",
    ),
    ("osm-polska#1 SotM EU 2024", "osm-polska#3 Ruszyła sprzedaż", "conference tickets: EN post vs PL post"),
    (
        "osm-polska#2 Introducing another",
        "osm-polska#6 TomTom pierwszym",
        "conference sponsors: EN vs PL announcements",
    ),
    (
        "spiegel-online#2 US-Geheimdienstbericht",
        "20minutos#1 EEUU dice que Putin",
        "US intelligence report on Putin: DE vs ES, 10 h apart",
    ),
    (
        "spiegel-online#2 US-Geheimdienstbericht",
        "20minutos#0 Obama le recuerda a",
        "Russian interference: DE vs ES, same day",
    ),
    (
        "faz-aktuell#2 Russland soll auch",
        "20minutos#1 EEUU dice que Putin",
        "Russian cyber attacks: DE vs ES, 12 h apart",
    ),
    (
        "faz-aktuell#0 Kältewelle in Europa",
        "yandexnews#8 В Москве 62 человека",
        "January 2017 cold wave: DE vs RU",
    ),
    (
        "faz-aktuell#0 Kältewelle in Europa",
        "romanews#9 Il maltempo si abbatte",
        "January 2017 cold wave: DE vs IT",
    ),
    ("yandexnews#9 Минувшая", "romanews#9 Il maltempo si abbatte", "January 2017 cold wave: RU vs IT"),
]

# Europarl publishes every release in every EU language at the same path with the
# language segment swapped.  b is the other-language edition of a; its title is our
# translation (prefixes as the feed uses them), its summary left empty.
EUROPARL_EDITIONS: list[tuple[int, str, str]] = [
    (
        1,
        "Notas de prensa",
        "Los eurodiputados concluyen las negociaciones sobre las normas de igualdad de acceso a las "
        "aguas de la UE",
    ),
    (
        2,
        "Notas de prensa",
        "La pesca y la acuicultura de la UE recibirán compensaciones por la guerra en Ucrania",
    ),
    (
        3,
        "Notas de prensa",
        "Los eurodiputados respaldan paliar las consecuencias de la guerra para la pesca y la "
        "acuicultura de la UE",
    ),
    (
        4,
        "Notas de prensa",
        "Los eurodiputados evaluarán los corredores alimentarios en la frontera entre Polonia y Ucrania",
    ),
    (7, "Notas de prensa", "Debate con el ministro de Agricultura de Ucrania"),
    (
        9,
        "Notas de prensa",
        "Reforma de la política agrícola de la UE: rueda de prensa tras los resultados de la votación "
        "del 23 de noviembre",
    ),
    (
        12,
        "Notas de prensa",
        "Reforma de la política agrícola de la UE: acuerdo entre el Parlamento y el Consejo",
    ),
    (
        14,
        "Notas de prensa",
        "Reforma de la política agrícola de la UE: rueda de prensa sobre el resultado de la última ronda "
        "de negociaciones",
    ),
    (
        16,
        "Notas de prensa",
        "Reforma de la política agrícola de la UE: el Consejo debe ser más flexible, no podemos perder "
        "más tiempo",
    ),
    (
        17,
        "Notas de prensa",
        "Prohibir las jaulas en las granjas de la UE: audiencia sobre la Iniciativa Ciudadana Europea",
    ),
    (
        21,
        "Notas de prensa",
        "Política agrícola de la UE 2021-2022: los eurodiputados aprueban normas transitorias y 8 000 "
        "millones de euros de ayuda a la recuperación",
    ),
    (
        22,
        "Notas de prensa",
        "6 100 millones de euros para una pesca sostenible y la protección de las comunidades pesqueras",
    ),
    (0, "Press release", "Fisheries: rules on EU vessels' access to national waters extended"),
    (5, "Press release", "Parliament ratifies the EU's largest fisheries agreement, with Mauritania"),
    (6, "Press release", "The EU must step up action to guarantee food supply"),
    (8, "Press release", "Parliament gives green light to reform of the common agricultural policy"),
    (10, "Press release", "A new European strategy for healthier and more sustainable food"),
    (19, "Press release", "Parliament calls for urgent EU action to reduce marine litter"),
    (20, "Press release", "Fisheries: EP calls for mandatory CCTV on some vessels"),
    (23, "Press release", "Parliament approves new EU-Seychelles fisheries agreement"),
    (24, "Press release", "Fisheries: Parliament backs renewal of agreement with Senegal"),
]


def read_seed(path: Path) -> tuple[datetime, dict[str, tuple[str, str]]]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    day = datetime.strptime(lines[0], "%A, %d %B %Y").replace(tzinfo=UTC)
    items: dict[str, tuple[str, str]] = {}
    for lang, prefix in SEED_PERU.items():
        at = next(i for i, line in enumerate(lines) if line.startswith(prefix))
        summary = next(line for line in lines[at + 1 :] if line)
        items[lang] = (lines[at], summary)
    return day, items


def build_translation(corpus: Corpus, seed_path: Path) -> list[Pair]:
    pairs: list[Pair] = []
    day, seed = read_seed(seed_path)
    sides = {
        lang: Side(
            f"{SYNTHETIC_FEEDS}/seed-2023-01-17-{lang}.xml", None, None, title, clip(summary), lang, day
        )
        for lang, (title, summary) in seed.items()
    }
    for x, y in [("en", "it"), ("en", "fr"), ("it", "fr")]:
        note = (
            f"seed front page 2023-01-17: the Peru story as separate {x}/{y} articles; the seed gives "
            "no link or feed, time set to 00:00 UTC of that day"
        )
        pairs.append(Pair("translation", False, sides[x], sides[y], note))

    ploum_rel = corpus.resolve("ploum")
    raw = (corpus.root / "real" / ploum_rel).read_text(encoding="utf-8")
    ploum_feed = corpus.feed_url(ploum_rel)

    def anchor(key: str) -> Side:
        href, title, lang = PLOUM_ANCHORS[key]
        assert f'title="{title}" href="{href}"' in raw, key
        return Side(ploum_feed, None, href, title, "", lang, None)

    pairs.append(
        Pair(
            "translation",
            False,
            corpus.side("ploum#5 Le dilemme de"),
            anchor("publishers-dilemma"),
            "real: the French post opens with a link 'This text in English' to b (title from the link's "
            "title attribute)",
        )
    )
    for fr, en in [("lettre-ouverte", "open-letter"), ("web-payant", "paying-web")]:
        pairs.append(
            Pair(
                "translation",
                False,
                anchor(fr),
                anchor(en),
                "real: two posts of one blog on one subject in French and English, both linked from this "
                "feed (titles from the links)",
            )
        )

    for pick_a, pick_b, why in TRANSLATION_REAL:
        pairs.append(Pair("translation", False, corpus.side(pick_a), corpus.side(pick_b), f"real: {why}"))

    rel = corpus.resolve("europarl")
    for index, prefix, title in EUROPARL_EDITIONS:
        a = corpus.side_at(rel, index)
        assert a.link and a.id
        other = "es" if a.language == "en" else "en"
        b = replace(
            a,
            id=a.id[: -len(a.language)] + other.upper(),
            link=a.link.replace(f"/news/{a.language}/", f"/news/{other}/"),
            title=f"{prefix} - {title}",
            summary="",
            language=other,
        )
        note = (
            f"b: the {other.upper()} edition of {where(rel, index)} (language segment of the link and "
            f"guid swapped, title translated by us)"
        )
        pairs.append(Pair("translation", False, a, b, note))
    return pairs


# --------------------------------------------------------------------------------------
# different-time: same generic title, other site, more than 48 h later
# --------------------------------------------------------------------------------------

DIFFERENT_TIME: list[Pick] = [
    "washingtonpost#1 Featured Advertiser",
    "talkingpointsmemo#1 We're Hiring: Senior",
    "macworld#0 Best smart lock",
    "macworld#17 Best smart home system",
    "macworld#13 Cyber Monday: The",
    "daringfireball#32 Microsoft Surface",
    "guardian-us#52 Super blue blood moon",
    "heise-developer#1 Scrum Day 2016",
    "heise-developer#13 C# 7 – Stand der",
    "heise-developer#11 Continuous Lifecycle",
    "lefigaro-culture#22 Le film à voir ce soir",
    "lemonde-une#14 Neige et verglas",
    "lemonde-une#16 Bac : comment",
    "aemet#5 Aviso. Nivel",
    "20minutos#9 ¿Cuál es el",
    "jn-ultimas#17 Só há chocolate até",
    "massanews#42 Museu da Gravura",
    "repubblica#39 Il decalogo per il",
    "repubblica#33 Le ferie degli",
    "lenta-news#10 Опубликована карта",
    "lenta-news#127 Россиянам дали совет",
    "fcutrecht#17 Kaartverkoop FC",
    "aktuality#9 K Slovensku sa",
    "makiko#1 日本だより",
]


def build_different_time(corpus: Corpus, rng: random.Random) -> list[Pair]:
    pairs = []
    for k, pick in enumerate(DIFFERENT_TIME):
        a = corpus.side(pick)
        assert a.published
        days = rng.choice([3, 4, 6, 9, 14, 30, 61, 120, 365, 400])
        published = a.published + timedelta(days=days, minutes=rng.randint(-240, 240))
        host = f"www.news-{a.language}-{k % 3 + 1}.example"
        link = f"https://{host}/{published:%Y/%m/%d}/{slugify(a.title)}"
        title = a.title if k % 2 or "<" in a.title else a.title.upper()
        b = Side(f"https://{host}/feed.xml", link, link, title, "", a.language, published)
        note = (
            f"b: a synthetic item on another site with the same recurring/generic title, {days} days later; "
            f"only the title is real (from {pick.split(' ')[0]})"
            + ("" if title == a.title else ", upper-cased")
        )
        pairs.append(Pair("different-time", False, a, b, note))
    return pairs


# --------------------------------------------------------------------------------------
# Checks: every label agrees with the rules it is meant to exercise
# --------------------------------------------------------------------------------------


def _hours_apart(a: Side, b: Side) -> float | None:
    if a.published is None or b.published is None:
        return None
    return abs((a.published - b.published).total_seconds()) / 3600


def check(pairs: list[Pair]) -> list[str]:
    problems: list[str] = []

    def fail(i: int, pair: Pair, why: str) -> None:
        problems.append(f"{pair.kind} #{i}: {why}")

    seen: set[str] = set()
    for i, p in enumerate(pairs):
        a, b = p.a, p.b
        key = json.dumps([a.to_json(), b.to_json()], sort_keys=True, ensure_ascii=False)
        if key in seen:
            fail(i, p, "duplicate pair")
        seen.add(key)
        for side in (a, b):
            if len(side.summary) > SUMMARY_MAX:
                fail(i, p, "summary too long")
            if not re.fullmatch(r"[a-z]{2}", side.language):
                fail(i, p, f"language {side.language!r}")
        if a == b and p.kind != "repoll":
            fail(i, p, "a and b identical")
        hours = _hours_apart(a, b)
        if p.kind == "repoll":
            ok = a.feed == b.feed and a.link == b.link and a.id == b.id
            if not ok:
                fail(i, p, "repoll must keep feed, id and link")
        elif p.kind == "unstable-id":
            if (
                a.feed != b.feed
                or norm_title(a.title) != norm_title(b.title)
                or (a.id == b.id and a.link == b.link)
            ):
                fail(i, p, "unstable-id must keep feed and title and change id or link")
            if a.published and b.published and a.published.date() != b.published.date():
                fail(i, p, "unstable-id must stay on one day")
        elif p.kind == "tracking":
            assert a.link and b.link
            beyond = p.note.startswith("[beyond rule 3]")
            if a.feed == b.feed or a.link == b.link or (canonical(a.link) == canonical(b.link)) == beyond:
                fail(i, p, f"tracking canonical mismatch {canonical(a.link)} / {canonical(b.link)}")
        elif p.kind == "syndicated":
            assert a.link and b.link
            if a.feed == b.feed or canonical(a.link) != canonical(b.link):
                fail(i, p, "syndicated must share the canonical link across feeds")
        elif p.kind == "title-correction":
            if a.link != b.link or a.title == b.title:
                fail(i, p, "title-correction must keep the link and change the title")
        elif p.kind == "republished":
            if a.link != b.link or a.id != b.id or hours is None or hours < 24 * 55:
                fail(i, p, "republished must keep link/id and move the date by months")
        elif p.kind == "near-dup":
            if not a.link or not b.link or site_of(a.link) == site_of(b.link) or a.language != b.language:
                fail(i, p, "near-dup needs two sites, one language")
            if hours is not None and hours > 48:
                fail(i, p, "near-dup must be within 48 h")
        elif p.kind == "same-title-different-article":
            assert a.link and b.link
            shared = "[shared link]" in p.note or "[shared id]" in p.note
            if site_of(a.link) != site_of(b.link) or (
                (canonical(a.link) == canonical(b.link)) != shared and a.id == b.id
            ):
                fail(i, p, "same-title pairs must be distinct entries on one site")
        elif p.kind == "similar-topic":
            if a.language != b.language or (a.link == b.link) != (
                "[shared link]" in p.note or "[shared id]" in p.note
            ):
                fail(i, p, "similar-topic must be one language, two links (unless marked [shared link])")
        elif p.kind == "translation":
            if a.language == b.language:
                fail(i, p, "translation must cross languages")
        elif p.kind == "different-time":
            assert a.link and b.link
            if a.language != b.language or site_of(a.link) == site_of(b.link) or hours is None or hours <= 48:
                fail(i, p, "different-time needs one language, two sites, > 48 h")
            if norm_title(a.title) != norm_title(b.title):
                fail(i, p, "different-time needs equal normalised titles")
    return problems


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

TARGETS = {
    "repoll": 30,
    "unstable-id": 30,
    "tracking": 60,  # plus the BEYOND_RULE_3 rows
    "syndicated": 40,
    "title-correction": 25,
    "republished": 15,
    "near-dup": 22,
    # issue 12 kinds, built last so every pair above stays byte-identical
    "new-guid-republished": 12,
    "guid-link-corrected": 12,
    "shared-home-link": 12,
    "shared-link-undated": 12,
}


def build(corpus: Corpus, seed_path: Path) -> list[Pair]:
    rng = random.Random(SEED)
    pool = Pool(corpus, rng)
    pairs: list[Pair] = []
    pairs += build_repoll(corpus, pool, rng, TARGETS["repoll"])
    pairs += build_unstable(corpus, pool, rng, TARGETS["unstable-id"])
    pairs += build_tracking(corpus, pool, rng, TARGETS["tracking"])
    pairs += build_syndicated(corpus, pool, rng, TARGETS["syndicated"])
    pairs += build_title_correction(corpus, pool, rng, TARGETS["title-correction"])
    pairs += build_republished(corpus, pool, rng, TARGETS["republished"])
    pairs += build_near_dup(corpus, pool, rng, TARGETS["near-dup"])
    pairs += build_same_title(corpus)
    pairs += build_similar_topic(corpus)
    pairs += build_translation(corpus, seed_path)
    pairs += build_different_time(corpus, rng)
    pairs += build_issue12_kinds(corpus, pool, rng)
    return pairs


def _typo_slug(link: str, rng: random.Random) -> str | None:
    """The link with one letter of its last path segment doubled: the publisher's typo."""
    parts = urlsplit(link)
    segments = parts.path.rstrip("/").split("/")
    slug = segments[-1]
    letters = [i for i, ch in enumerate(slug) if ch.isalpha()]
    if len(letters) < 4:
        return None
    i = letters[rng.randrange(1, len(letters))]
    segments[-1] = slug[:i] + slug[i] + slug[i:]
    path = "/".join(segments) + ("/" if parts.path.endswith("/") else "")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def build_issue12_kinds(corpus: Corpus, pool: Pool, rng: random.Random) -> list[Pair]:
    """Issue 12's duplicate kinds. Same: republished under a new guid (same feed, link and
    title, a later date); guid and link corrected (cases/16: a typo in the slug fixed).
    Different: two feeds whose items link to a site's home page; undated, id-less items of
    one feed (one document) that share a link."""
    pairs: list[Pair] = []
    picks = pool.take(TARGETS["new-guid-republished"], lambda s: s.id is not None and s.published is not None)
    for rel, index, a in picks:
        assert a.published is not None
        days = rng.randint(2, 20)
        b = replace(a, id=f"{a.id}#republished-{days}", published=a.published + timedelta(days=days))
        note = f"b republishes {where(rel, index)} {days} days later under a new guid (same link and title)"
        pairs.append(Pair("new-guid-republished", True, a, b, note))
    picks = pool.take(
        TARGETS["guid-link-corrected"],
        lambda s: s.published is not None and _typo_slug(s.link or "", random.Random(0)) is not None,
    )
    for rel, index, good in picks:
        typo = _typo_slug(good.link or "", rng)
        assert typo
        a = replace(good, link=typo, id=typo if good.id == good.link else good.id)
        b = replace(good, id=good.link if good.id == good.link else f"{good.id}?corrected")
        note = f"a is {where(rel, index)} with a typo in its slug; b corrects guid and link"
        pairs.append(Pair("guid-link-corrected", True, a, b, note))
    picks = pool.take(2 * TARGETS["shared-home-link"], lambda s: s.published is not None)
    by_language: dict[str, list[tuple[str, int, Side]]] = {}
    for pick in picks:
        by_language.setdefault(pick[2].language, []).append(pick)
    made = 0
    for items in by_language.values():
        for (rel_a, ia, a), (rel_b, ib, b) in zip(items[::2], items[1::2], strict=False):
            if (
                made >= TARGETS["shared-home-link"]
                or a.feed == b.feed
                or norm_title(a.title) == norm_title(b.title)
            ):
                continue
            home = f"https://{urlsplit(a.link or '').hostname}/"
            note = f"{where(rel_a, ia)} and {where(rel_b, ib)} (other feeds), both items linking to {home}"
            a2 = replace(a, link=home, id=None)
            b2 = replace(b, link=home, id=None, feed=b.feed + "#mirror", published=a.published)
            pairs.append(Pair("shared-home-link", False, a2, b2, note))
            made += 1
    for rel in corpus.files:
        if len([p for p in pairs if p.kind == "shared-link-undated"]) >= TARGETS["shared-link-undated"]:
            break
        if rel in POOL_EXCLUDED_FILES or corpus.count(rel) < 2:
            continue
        a, b = corpus.side_at(rel, 0), corpus.side_at(rel, 1)
        if not a.title or not b.title or norm_title(a.title) == norm_title(b.title) or not a.link:
            continue
        a2 = replace(a, id=None, published=None)
        b2 = replace(b, id=None, published=None, link=a.link)
        note = f"{where(rel, 0)} and {where(rel, 1)}: undated, no guid, both linking to {a.link}"
        pairs.append(Pair("shared-link-undated", False, a2, b2, note, together=True))
    return pairs


def documents(corpus: Corpus) -> dict[str, list[set[Side]]]:
    """feed URL -> the entries of each captured document of that feed."""
    out: dict[str, list[set[Side]]] = {}
    for rel in corpus.files:
        try:
            sides = {corpus.side_at(rel, i) for i in range(corpus.count(rel))}
        except Exception:  # a file the builder cannot read entry by entry takes no part
            continue
        out.setdefault(corpus.feed_url(rel), []).append(sides)
    return out


def together(p: Pair, docs: dict[str, list[set[Side]]]) -> bool:
    """Both entries stand, unmodified, in one captured document: a poll sees them at once.
    A fact of the capture (not of the label), which the evaluation replays as one poll."""
    return p.a.feed == p.b.feed and any(p.a in d and p.b in d for d in docs.get(p.a.feed, []))


def to_lines(pairs: list[Pair], corpus: Corpus) -> list[str]:
    counters: dict[str, int] = {}
    lines = []
    docs = documents(corpus)
    for p in pairs:
        counters[p.kind] = counters.get(p.kind, 0) + 1
        record = {
            "pair": f"{p.kind}-{counters[p.kind]}",
            "kind": p.kind,
            "same": p.same,
            "together": p.together if p.together is not None else together(p, docs),
            "a": p.a.to_json(),
            "b": p.b.to_json(),
            "note": p.note,
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpus"))
    parser.add_argument("--seed", type=Path, default=Path("/work/shared/seed-frontpage-2023-01-17.txt"))
    parser.add_argument("--out", type=Path, default=here / "tests" / "data" / "dedupe-eval.jsonl")
    args = parser.parse_args(argv)

    corpus = Corpus(args.corpus)
    pairs = build(corpus, args.seed)
    problems = check(pairs)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(to_lines(pairs, corpus)) + "\n", encoding="utf-8")

    counts: dict[str, list[int]] = {}
    for p in pairs:
        counts.setdefault(p.kind, [0, 0])[0 if p.same else 1] += 1
    for kind, (same, different) in counts.items():
        print(f"{kind:30} same={same:3} different={different:3}")
    negatives = sum(d for _, d in counts.values())
    print(f"{'total':30} {len(pairs)} pairs, {negatives} negative ({negatives / len(pairs):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
