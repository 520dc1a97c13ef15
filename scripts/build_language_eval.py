#!/usr/bin/env python3
"""Build tests/data/language-eval.jsonl: real feed entries labelled with their language.

Each line holds one entry's title and plain-text summary, the language label, the feed's
declared language and where the label came from. The set is rebuilt deterministically from
the shared corpus (shared/corpus/real/<dir>/...) and the excerpts kept in
tests/data/language-eval-extra/. See tests/data/language-eval.SOURCES.md.

    python scripts/build_language_eval.py [--corpus ../shared/corpus] [--out tests/data/...]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path

import feedparser

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
EXTRA_DIR = REPO / "tests" / "data" / "language-eval-extra"
DEFAULT_OUT = REPO / "tests" / "data" / "language-eval.jsonl"
SUMMARY_LIMIT = 400

# Whole corpus files left out, with the reason.
SKIP_FILES = {
    "real/ru/yandexnews-moscow-mojibake.xml": "double-encoded text throughout, not clean Russian",
    "real/ru/ibash-windows1251.xml": "every title is 'Цитата #<number>': no information in titles",
}

# Entry-level corrections, made by reading the title and summary. id -> (language, reason).
HAND_LABELS: dict[str, tuple[str, str]] = {
    # ploum.net declares en-US but most entries are French.
    **{
        f"real/fr/ploum-mixed-fr-en.xml#{n}": ("fr", "French text in a feed declaring en-US")
        for n in (1, 2, 3, 5, 6, 7, 8)
    },
    # Europarl 'Agricultura y pesca' declares ES but carries English press releases.
    **{
        f"real/es/europarl-agricultura-mixed-es-en.xml#{n}": (
            "en",
            "English press release in a feed declaring ES",
        )
        for n in (1, 2, 3, 4, 7, 9, 12, 13, 14, 16, 17, 21, 22)
    },
    # OpenStreetMap Polska declares pl-PL; these posts are in English.
    "real/pl/osm-polska.xml#1": ("en", "English post in a feed declaring pl-PL"),
    "real/pl/osm-polska.xml#2": ("en", "English post in a feed declaring pl-PL"),
}

# Entries left out after reading them. id -> reason.
HAND_DROPS = {
    "real/de/orf-1item.rdf#0": "fixture splices an unrelated English DistroWatch description "
    "into this German ORF item",
}

_URL = re.compile(r"https?://\S+|www\.\S+")
_LETTER = re.compile(r"[^\W\d_]")
# A run of characters that UTF-8 bytes turn into when misread as cp1252/latin-1.
_MOJIBAKE_RUN = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
    "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030"
    "\u2039\u203a\u20ac\u2122]+"
)
_LOST_NBSP_A_GRAVE = re.compile(r"(?<=[a-z])Ã(?=[\s\W]|$)")
_LOST_NBSP = re.compile(r"Â(?=\s|$)|(?<=[a-z])Â")
_BLOCK_TAG = re.compile(r"p|br|div|li|ul|ol|h[1-6]|t[rdh]|table|blockquote|img|hr|section|article")


@dataclass(frozen=True)
class Row:
    id: str
    lang: str
    title: str
    summary: str
    source: str
    declared: str | None
    label_basis: str


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment; block-level tags become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif _BLOCK_TAG.fullmatch(tag):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif _BLOCK_TAG.fullmatch(tag):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _repair_run(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        raw = bytes(ord(c) if ord(c) < 256 else c.encode("cp1252")[0] for c in run)
        return raw.decode("utf-8")
    except (UnicodeError, ValueError):
        return run


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as cp1252 ('Ã©' -> 'é'), run by run, when it decodes.

    Where the second byte was a no-break space that got lost on the way ('giÃ un', 'Â '),
    only the two unambiguous cases are mended: 'Ã' ending a lower-case word is 'à', and a
    stray 'Â' before a space or after a lower-case letter was the no-break space itself.
    """
    text = _MOJIBAKE_RUN.sub(_repair_run, text)
    text = _LOST_NBSP_A_GRAVE.sub("à", text)
    return _LOST_NBSP.sub(" ", text)


def plain_text(fragment: str) -> str:
    """HTML fragment -> text: mojibake repaired, tags dropped, entities decoded, spaces folded."""
    parser = _TextOnly()
    parser.feed(repair_mojibake(fragment))
    parser.close()
    return " ".join("".join(parser.parts).split())


def cut_at_word(text: str, limit: int = SUMMARY_LIMIT) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    space = head.rfind(" ")
    return (head[:space] if space > 0 else text[:limit]).rstrip()


def primary_subtag(tag: str | None) -> str | None:
    if not tag:
        return None
    return re.split(r"[-_]", tag.strip().lower())[0] or None


def feed_files(corpus: Path) -> Iterator[tuple[str, Path, str]]:
    """(source name, path, label when the feed declares no language), in a fixed order."""
    for path in sorted((corpus / "real").glob("*/*")):
        yield path.relative_to(corpus).as_posix(), path, path.parent.name
    for path in sorted(EXTRA_DIR.glob("*.xml")):
        yield f"language-eval-extra/{path.name}", path, path.name.split("-")[0]


def usable_title(title: str) -> bool:
    return bool(_LETTER.search(_URL.sub("", title)))


def build(corpus: Path) -> tuple[list[Row], Counter[str]]:
    rows: list[Row] = []
    dropped: Counter[str] = Counter()
    seen_titles: set[str] = set()
    for source, path, fallback in feed_files(corpus):
        parsed = feedparser.parse(str(path))
        if source in SKIP_FILES:
            dropped["whole file left out"] += len(parsed.entries)
            continue
        declared = (parsed.feed.get("language") or "").strip() or None
        default = primary_subtag(declared) or fallback
        for n, entry in enumerate(parsed.entries):
            entry_id = f"{source}#{n}"
            title = plain_text(entry.get("title") or "")
            if entry_id in HAND_DROPS:
                dropped["by hand"] += 1
            elif not title:
                dropped["empty title"] += 1
            elif not usable_title(title):
                dropped["title without words"] += 1
            elif title in seen_titles:
                dropped["duplicate title"] += 1
            else:
                seen_titles.add(title)
                lang = HAND_LABELS.get(entry_id, (default, ""))[0]
                basis = "declared" if lang == primary_subtag(declared) else "hand"
                summary = cut_at_word(plain_text(entry.get("summary") or ""))
                rows.append(Row(entry_id, lang, title, summary, source, declared, basis))
    return rows, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows, dropped = build(args.corpus)
    missing = set(HAND_LABELS) - {row.id for row in rows}
    if missing:
        raise SystemExit(f"hand-labelled ids not in the output: {sorted(missing)}")
    with args.out.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
    counts = Counter(row.lang for row in rows)
    print(f"{len(rows)} entries, {len(counts)} languages -> {args.out}")
    print("per language:", ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    print("dropped:", ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())))


if __name__ == "__main__":
    main()
