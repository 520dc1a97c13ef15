"""A generated world of feeds for the benchmarks, written as static files for a loopback server.

N feeds, deterministic for a given N: RSS 2.0, Atom 1.0 and RSS 1.0 in turn; 20-50 entries
each with 1-3 KB HTML summaries; five languages (en, es, it, fr, ru: real titles and
summaries from tests/data/language-eval.jsonl, repeated into paragraphs); some articles
carried by several feeds under tracking links (`?utm_source=...`); relative URLs (links,
images, Atom xml:base) in one feed of five.

`advance` makes the steady state's changes (one new entry in 5% of the feeds) and `rewind`
undoes them, so each measurement starts from the same files.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("en", "es", "it", "fr", "ru")
FORMATS = ("rss20", "atom10", "rss10")
BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CHANGED_SHARE = 0.05  # of feeds with one new entry in the steady cycle
SHARED_EVERY = 7  # every 7th entry of a feed is an article other feeds carry too


@dataclass(frozen=True, slots=True)
class WorldFeed:
    n: int
    path: str  # under the web root, e.g. "f/12.xml"
    format: str
    language: str
    entries: int
    relative: bool  # summaries use relative URLs


def _texts() -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {lang: [] for lang in LANGUAGES}
    with (ROOT / "tests" / "data" / "language-eval.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["lang"] in out and row.get("title"):
                out[row["lang"]].append((row["title"], row.get("summary") or row["title"]))
    return out


def feeds(n: int) -> list[WorldFeed]:
    """The world's feeds (no files written)."""
    return [
        WorldFeed(
            n=i,
            path=f"f/{i}.{'atom' if FORMATS[i % 3] == 'atom10' else 'xml'}",
            format=FORMATS[i % 3],
            language=LANGUAGES[(i // 3) % 5],
            entries=20 + (i * 7) % 31,
            relative=i % 5 == 4,
        )
        for i in range(n)
    ]


class _Writer:
    def __init__(self) -> None:
        self.texts = _texts()

    def entry(self, f: WorldFeed, k: int) -> dict[str, str]:
        """Entry k of feed f (k counts from the oldest; higher k is newer)."""
        rng = random.Random(f.n * 100_003 + k)
        texts = self.texts[f.language]
        if k % SHARED_EVERY == 3:  # an article several feeds carry, under tracking links
            article = (f.n // 15) * 10 + k % 10  # shared by the feeds of one language group
            title, _ = texts[article % len(texts)]
            link = f"https://news-{f.language}.example/article/{article}?utm_source=feed{f.n}&utm_medium=rss"
            guid = link
            rng = random.Random(article)
        else:
            title, _ = texts[rng.randrange(len(texts))]
            title = f"{title} ({f.n}-{k})"
            link = f"https://feed{f.n}.example/{f.language}/story/{k}"
            guid = link
        paragraphs = []
        size = rng.randint(1000, 3000)
        total = 0
        while total < size:
            _, summary = texts[rng.randrange(len(texts))]
            href = (
                f"/{f.language}/topic/{rng.randrange(50)}"
                if f.relative
                else f"https://feed{f.n}.example/t/{k}"
            )
            para = (
                f'<p>{escape(summary)} <a href="{href}">{escape(title[:30])}</a>. '
                f"{escape(summary[::-1][:80])}</p>"
            )
            if f.relative and rng.random() < 0.3:
                para += f'<p><img src="img/{k}.jpg" alt="{escape(title[:20])}"></p>'
            paragraphs.append(para)
            total += len(para)
        when = BASE_TIME - timedelta(hours=3 * (60 - k) + f.n % 24, minutes=f.n % 60)
        return {
            "title": title,
            "link": link,
            "guid": guid,
            "html": "".join(paragraphs),
            "when": when.isoformat(),
        }

    def document(self, f: WorldFeed, extra: int = 0) -> bytes:
        """The feed's bytes, with `extra` newer entries on top."""
        items = [self.entry(f, k) for k in range(f.entries + extra - 1, -1, -1)][: f.entries + extra]
        home = f"https://feed{f.n}.example/"
        if f.format == "atom10":
            body = "".join(
                f"<entry><title>{escape(e['title'])}</title>"
                f'<link rel="alternate" href="{escape(e["link"])}"/><id>{escape(e["guid"])}</id>'
                f"<updated>{e['when']}</updated><published>{e['when']}</published>"
                f"<author><name>Author {f.n}</name></author>"
                f'<summary type="html">{escape(e["html"])}</summary></entry>\n'
                for e in items
            )
            base = f' xml:base="{home}{f.language}/"' if f.relative else ""
            return (
                f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
                f'xml:lang="{f.language}"{base}><title>World feed {f.n}</title>'
                f'<link rel="alternate" href="{home}"/><id>{home}</id>'
                f"<updated>{items[0]['when']}</updated>\n{body}</feed>\n"
            ).encode()
        if f.format == "rss10":
            seq = "".join(f'<rdf:li rdf:resource="{escape(e["link"])}"/>' for e in items)
            body = "".join(
                f'<item rdf:about="{escape(e["link"])}"><title>{escape(e["title"])}</title>'
                f"<link>{escape(e['link'])}</link><dc:date>{e['when']}</dc:date>"
                f"<description>{escape(e['html'])}</description></item>\n"
                for e in items
            )
            return (
                '<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF '
                'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/">'
                f'<channel rdf:about="{home}"><title>World feed {f.n}</title><link>{home}</link>'
                f"<description>Feed {f.n}</description><dc:language>{f.language}</dc:language>"
                f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>\n{body}</rdf:RDF>\n"
            ).encode()
        body = "".join(
            f"<item><title>{escape(e['title'])}</title><link>{escape(e['link'])}</link>"
            f'<guid isPermaLink="true">{escape(e["guid"])}</guid>'
            f"<pubDate>{format_datetime(datetime.fromisoformat(e['when']), usegmt=True)}</pubDate>"
            f"<description><![CDATA[{e['html']}]]></description></item>\n"
            for e in items
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>World feed {f.n}</title><link>{home}</link><description>Feed {f.n}</description>"
            f"<language>{f.language}</language>\n{body}</channel></rss>\n"
        ).encode()


def write(root: Path, n: int) -> list[WorldFeed]:
    """Write the world's N feeds under `root` (the web root); returns them."""
    writer = _Writer()
    world = feeds(n)
    (root / "f").mkdir(parents=True, exist_ok=True)
    for f in world:
        (root / f.path).write_bytes(writer.document(f))
    return world


def changed(world: list[WorldFeed]) -> list[WorldFeed]:
    """The feeds that get one new entry in the steady cycle: every 20th (5%)."""
    step = round(1 / CHANGED_SHARE)
    return [f for f in world if f.n % step == step // 2]


def advance(root: Path, world: list[WorldFeed]) -> int:
    """One new entry in 5% of the feeds; returns how many feeds changed."""
    writer = _Writer()
    todo = changed(world)
    for f in todo:
        (root / f.path).write_bytes(writer.document(f, extra=1))
    return len(todo)


def rewind(root: Path, world: list[WorldFeed]) -> None:
    """Undo `advance` (the files' validators change again; their entries are the first state's)."""
    writer = _Writer()
    for f in changed(world):
        (root / f.path).write_bytes(writer.document(f))
