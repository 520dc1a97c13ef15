"""Front pages: plain text (the seed's shape), HTML and JSON, for every day and language, and
the archive index. Pure and deterministic: the same page and calendar give the same bytes.

What publish calls (the published tree is described in README "Outputs and URLs"):

- `day_outputs(page, site, calendar)`: `archive/YYYY/MM/DD/{lang}.{html,txt,json}` of one day;
- `index_outputs(page, site, calendar)`: `index.*` or `{lang}/index.*` (the latest day,
  `Calendar.latest`);
- `archive_outputs(site, calendar)`: `archive/index.html` and `archive/index.json`;
- `site_outputs(site, calendar, page_for, today, only=…)`: all of the above in one call, every
  day or only the pages a poll touched (`pages_plan.pages_to_rebuild`).

The lower-level `frontpage_text/html/json` render one page; with a `Place` they link to the
previous and next day, the archive, the other languages and the feeds, by relative links that
work at `/`, under any prefix and from disk.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

from ..models import StoredEntry
from ..pages_plan import (
    ALL,
    ARCHIVE_INDEX,
    Calendar,
    day_path,
    index_dir,
    index_path,
    relative,
    relative_from,
)
from ..settings import Site
from ..text import shorten
from ..urls import strip_secrets
from .common import (
    FrontPage,
    Section,
    capitalise,
    direction,
    heading,
    lede,
    locale_for,
    native_name,
    public_url,
    safe_link,
    section_name,
)
from .i18n import Phrase, clock, day_label, month_name, say

TITLE_FROM_LEDE = 80  # characters of a title-less entry's lede used as its link text

# Small, no web fonts, no JavaScript: one column of readable measure on a phone and at 1280 px.
STYLESHEET = (
    ":root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fdfdfc;--muted:#5c5f66;--rule:#dcdcd8;"
    "--link:#0b4f9c;--accent:#9b1c1c}"
    "@media (prefers-color-scheme:dark){:root{--fg:#e8e6e3;--bg:#181a1b;--muted:#a6a29b;"
    "--rule:#3a3d3f;--link:#8ab4f8;--accent:#f28b82}}"
    "*{box-sizing:border-box}a{color:var(--link)}"
    "body{margin:0;background:var(--bg);color:var(--fg);"
    "font:1.0625rem/1.55 system-ui,-apple-system,'Segoe UI','Noto Sans',Roboto,sans-serif}"
    ".wrap{max-width:46rem;margin:0 auto;padding:0 1rem}"
    "header.site{border-bottom:1px solid var(--rule);padding:.75rem 0 .5rem}"
    ".site-title{margin:0;font-size:1.1rem;font-weight:700}"
    ".site-title a{color:var(--fg);text-decoration:none}"
    "nav ul{list-style:none;margin:.4rem 0 0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}"
    "nav a{color:var(--link)}nav [aria-current=page]{color:var(--fg);font-weight:700;"
    "text-decoration:none;border-bottom:2px solid var(--accent)}"
    "h1{font-size:1.6rem;line-height:1.25;margin:1.25rem 0 .25rem}"
    "nav.days ul,nav.pages ul{justify-content:space-between;margin:.5rem 0 1rem;font-size:.95rem}"
    "section>h2{font-size:1.05rem;text-transform:uppercase;letter-spacing:.06em;color:var(--accent);"
    "border-top:2px solid var(--accent);padding-top:.4rem;margin:2rem 0 .5rem}"
    "article{margin:0 0 1.4rem;overflow-wrap:anywhere}"
    "article h3{font-size:1.2rem;line-height:1.3;margin:0 0 .3rem}"
    "article h3 a{color:var(--fg);text-decoration:none}article h3 a:hover{text-decoration:underline}"
    "article p{margin:.2rem 0}"
    ".meta{color:var(--muted);font-size:.875rem}.meta a{color:var(--muted)}"
    "article[dir=rtl] .meta[dir=ltr]{text-align:right}"
    ".more{font-weight:600}.more a{color:var(--link)}"
    ".failing{color:var(--accent)}"
    "ol.days{list-style:none;padding:0}ol.days li{padding:.2rem 0;border-bottom:1px solid var(--rule)}"
    ".count{color:var(--muted);font-variant-numeric:tabular-nums}"
    "footer{border-top:1px solid var(--rule);margin-top:2rem;padding:.75rem 0 2rem;"
    "color:var(--muted);font-size:.875rem}footer a{color:var(--muted)}"
)

FEED_FORMATS = (
    ("atom", "application/atom+xml", "Atom"),
    ("rss", "application/rss+xml", "RSS"),
    ("json", "application/feed+json", "JSON Feed"),
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a page is published and what exists around it.

    `path` is the HTML file's path in the published tree ('index.html', 'en/index.html',
    'archive/2023/01/17/en.html'); the text and JSON forms sit beside it. Links are made
    relative to it. `calendar` says which days exist, for previous/next and language links."""

    path: str
    calendar: Calendar

    @property
    def is_index(self) -> bool:
        return not self.path.startswith("archive/")


# -- shared pieces -----------------------------------------------------------------------------
def ui_language(page_language: str, site: Site) -> str:
    """The language the page's own words are in: the page's, or the first site language for the
    combined page."""
    return site.languages[0] if page_language == ALL else page_language


def _linker(place: Place | None, root: str, ext: str) -> Callable[[str], str]:
    """target path in the tree -> href: relative to `place`, else `root` + target."""
    if place is None:
        return lambda target: root + target
    # `relative(here, target)`, with the page's directory found once, not per link
    start = posixpath.dirname(place.path)
    return lambda target: relative_from(start, target)


def capped(page: FrontPage, site: Site) -> list[tuple[Section, tuple[StoredEntry, ...], int]]:
    """(section, entries shown, entries left out) per section. Only the combined page is capped,
    at `site.frontpage_per_language` entries per language (newest first, as stored); a section
    holding only its first entries counts the rest by its `total`. A language's page is cut
    into pages instead (`FrontPage.page`), and shows all it holds."""
    if page.language != ALL:
        return [(section, section.entries, 0) for section in page.sections]
    limit = site.frontpage_per_language
    out = []
    for section in page.sections:
        shown = section.entries[:limit]
        total = len(section.entries) if section.total is None else section.total
        out.append((section, shown, max(total - len(shown), 0)))
    return out


def _page_neighbours(page: FrontPage, ext: str) -> tuple[str | None, str | None]:
    """(newer, older): the paths of the pages before and after this one of its day in its
    language, None where the day has none."""

    def target(number: int) -> str | None:
        if page.day is None or not 1 <= number <= page.pages:
            return None
        return day_path(page.day, page.language, ext, number)

    return target(page.page - 1), target(page.page + 1)


def title_of(e: StoredEntry, ui: str) -> tuple[str, bool]:
    """(title, derived): the entry's title, else the start of its lede (a title-less note), else
    "(untitled)" in the page's language."""
    if e.title:
        return e.title, False
    start = shorten(lede(e), TITLE_FROM_LEDE)
    return (start or say("untitled", ui).text), True


def _more_target(page: FrontPage, code: str | None, ext: str) -> str | None:
    """The day's page of a capped section's language; languages outside the site have none."""
    if page.day is None or code is None or page.language != ALL:
        return None
    return day_path(page.day, code, ext)


# -- text ----------------------------------------------------------------------------------------
def frontpage_text(page: FrontPage, site: Site, *, place: Place | None = None) -> str:
    """The page as plain text, in the seed's shape (shared/seed-frontpage-2023-01-17.txt): the
    date heading, a blank line, then per entry a blank line, its title, a blank line and its
    lede. A capped section of the combined page ends with "N more in Language: <link>"."""
    ui = ui_language(page.language, site)
    if page.day is None:
        return _empty_text(page, ui)
    href = _linker(place, "", "txt")
    out = [heading(page.day, page.language, site), ""]
    if page.pages > 1:
        out[-1:] = [say("page_of", ui, number=page.page, count=page.pages).text, ""]
    for section, shown, hidden in capped(page, site):
        for e in shown:
            out += ["", title_of(e, ui)[0], ""]
            text = lede(e, site.lede_length)
            if text:
                out.append(text)
        if hidden:
            more = say("more", ui, count=hidden, language=section_name(section.language, ui)).text
            target = _more_target(page, section.language, "txt")
            out += ["", f"{more}: {href(target)}" if target else more]
    if page.pages > 1:
        out.append("")
        for key, target in zip(("newer", "older"), _page_neighbours(page, "txt"), strict=True):
            if target:
                out.append(f"{say(key, ui).text}: {href(target)}")
    return "\n".join(out).rstrip() + "\n"


def _empty_text(page: FrontPage, ui: str) -> str:
    lines = [say("no_entries", ui).text + "."]
    if page.failing:
        lines += ["", say("failing", ui).text + ":"]
        lines += [f"- {f.name} <{strip_secrets(f.url)}>: {f.last_error}" for f in page.failing]
    return "\n".join(lines) + "\n"


# -- JSON ----------------------------------------------------------------------------------------
def frontpage_json(
    page: FrontPage, site: Site | None = None, *, place: Place | None = None, indent: int | None = 2
) -> str:
    """The page as JSON: `date`, `lang`, `entries` (id, title, link, summary, language,
    published, date_only, sources, also_in); with a `site` the combined page is capped and
    `more` lists what was left out per language; with a `place`, `previous`, `next` and
    `archive` give neighbouring pages as relative links. `indent=None` writes compact JSON
    (what publish writes: json's C encoder, 10x faster than indenting)."""
    href = _linker(place, "", "json")
    sections = capped(page, site) if site else [(s, s.entries, 0) for s in page.sections]
    lede_length = site.lede_length if site else 600
    ui = ui_language(page.language, site) if site else "en"
    doc: dict[str, Any] = {
        "date": page.day.isoformat() if page.day else None,
        "lang": page.language,
        "entries": [
            {
                "id": e.id,
                "title": title_of(e, ui)[0],
                "link": safe_link(e.link),
                "summary": lede(e, lede_length),
                "language": e.language,
                "published": e.published.isoformat(),
                "date_only": e.date_only,
                "sources": [
                    {"feed": public_url(s.feed_url), "name": s.feed_name, "link": s.link} for s in e.sources
                ],
                "also_in": [{"lang": lang, "link": link} for lang, link in page.also_in.get(e.id, ())],
            }
            for _section, shown, _hidden in sections
            for e in shown
        ],
    }
    more = [
        {
            "lang": section.language,
            "count": hidden,
            "href": href(target) if (target := _more_target(page, section.language, "json")) else None,
        }
        for section, _shown, hidden in sections
        if hidden
    ]
    if more:
        doc["more"] = more
    if place is not None and page.day is not None:
        prev = place.calendar.previous(page.day, page.language)
        nxt = place.calendar.next(page.day, page.language)
        doc["previous"] = _day_ref(prev, page.language, href)
        doc["next"] = _day_ref(nxt, page.language, href)
        doc["archive"] = href(ARCHIVE_INDEX.replace(".html", ".json"))
        newer, older = _page_neighbours(page, "json")
        doc["page"] = {
            "number": page.page,
            "count": page.pages,
            "newer": href(newer) if newer else None,
            "older": href(older) if older else None,
        }
    if page.day is None:
        doc["failing"] = [
            {"feed": strip_secrets(f.url), "name": f.name, "error": f.last_error} for f in page.failing
        ]
    if indent is None:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
    return json.dumps(doc, ensure_ascii=False, indent=indent) + "\n"


def _day_ref(day: date | None, language: str, href: Callable[[str], str]) -> dict[str, str] | None:
    if day is None:
        return None
    return {"date": day.isoformat(), "href": href(day_path(day, language, "json"))}


# -- HTML ----------------------------------------------------------------------------------------
def _phrase_html(phrase: Phrase, ui: str) -> str:
    """An escaped phrase; one that fell back to another language than the page's is marked with
    its own lang and isolated (English "via" on an Urdu page stays left-to-right)."""
    if phrase.language == ui:
        return escape(phrase.text)
    return f'<span lang="{phrase.language}" dir="{direction(phrase.language)}">{escape(phrase.text)}</span>'


def _head(site: Site, page_title: str, ui: str, alternates: list[str], extra_links: list[str]) -> list[str]:
    return [
        "<!DOCTYPE html>",
        f'<html lang="{escape(ui)}" dir="{direction(ui)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        '<meta name="generator" content="aggregator">',
        f"<title>{escape(page_title)}</title>",
        *alternates,
        *extra_links,
        f"<style>{STYLESHEET}</style>",
        "</head>",
        "<body>",
    ]


def frontpage_html(page: FrontPage, site: Site, root: str = "/", *, place: Place | None = None) -> str:
    """A standalone HTML page (inline stylesheet, no JavaScript). With a `place`, every link is
    relative to where the page is published; without one, links start with `root`."""
    ui = ui_language(page.language, site)
    href = _linker(place, root, "html")
    lang_title = site.title if page.language == ALL else f"{site.title} — {native_name(ui)}"
    # CLDR starts "martes, 17 de enero" in lower case (mid-sentence); this heads the page.
    day_heading = capitalise(heading(page.day, page.language, site)) if page.day else None
    page_title = f"{lang_title} — {day_heading}" if day_heading else lang_title

    alternates = []
    feeds = [("entries_feed", "feeds"), ("daily_feed", "daily")]
    for key, folder in feeds:
        label = say(key, ui).text
        for ext, mime, fmt in FEED_FORMATS:
            target = href(f"{folder}/{page.language}.{ext}")
            alternates.append(
                f'<link rel="alternate" type="{mime}" href="{escape(target)}" '
                f'title="{escape(f"{lang_title}: {label} ({fmt})")}">'
            )
    if page.day is not None:
        label = say("day_feed", ui).text
        alternates.append(
            f'<link rel="alternate" type="application/atom+xml" '
            f'href="{escape(href(day_path(page.day, page.language, "atom", page.page)))}" '
            f'title="{escape(f"{lang_title}: {label}, {day_heading} (Atom)")}">'
        )

    prev = nxt = None
    if place is not None and page.day is not None:
        prev = place.calendar.previous(page.day, page.language)
        nxt = place.calendar.next(page.day, page.language)
    extra = []
    if prev:
        extra.append(f'<link rel="prev" href="{escape(href(day_path(prev, page.language, "html")))}">')
    if nxt:
        extra.append(f'<link rel="next" href="{escape(href(day_path(nxt, page.language, "html")))}">')

    parts = _head(site, page_title, ui, alternates, extra)
    parts += [
        '<header class="site"><div class="wrap">',
        f'<p class="site-title"><a href="{escape(href(index_dir(ALL)))}">{escape(site.title)}</a></p>',
        _language_nav(page, site, ui, href, place),
        "</div></header>",
        '<main class="wrap">',
    ]
    if page.day is None:
        parts.append(f"<h1>{_phrase_html(say('no_entries', ui), ui)}</h1>")
        parts.append(f"<p>{_phrase_html(say('no_entries_long', ui), ui)}</p>")
        if page.failing:
            parts.append(f"<h2>{_phrase_html(say('failing', ui), ui)}</h2>")
            parts.append('<ul class="failing">')
            for f in page.failing:
                parts.append(
                    f"<li><bdi>{escape(f.name)}</bdi> &lt;{escape(strip_secrets(f.url))}&gt;: "
                    f"{escape(f.last_error or '')}</li>"
                )
            parts.append("</ul>")
    else:
        parts.append(f'<h1><time datetime="{page.day.isoformat()}">{escape(day_heading or "")}</time></h1>')
        day_nav = _day_nav(page, ui, href, prev, nxt) + _page_nav(page, ui, href)
        parts.append(day_nav)
        for section, shown, hidden in capped(page, site):
            code = section.language
            if page.language == ALL:
                parts.append(
                    f'<section lang="{escape(code or "und")}" dir="{direction(code)}">'
                    f"<h2>{escape(section_name(code, ui))}</h2>"
                )
            else:
                parts.append("<section>")
            for e in shown:
                parts.append(_article_html(e, page.also_in.get(e.id, ()), site, ui))
            if hidden:
                parts.append(_more_html(page, code, hidden, ui, href))
            parts.append("</section>")
        parts.append(day_nav)
    parts += ["</main>", _footer(page, site, ui, href), "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _language_nav(
    page: FrontPage, site: Site, ui: str, href: Callable[[str], str], place: Place | None
) -> str:
    """All languages, then each site language in its own name; the current one aria-current.
    An archive page links to the same day in each language that has entries that day, else to
    that language's front page; a front page links to the other front pages."""
    items = []
    for code in (ALL, *site.languages):
        if place is not None and not place.is_index and page.day is not None:
            on_day = place.calendar.exists(page.day, code)
            target = day_path(page.day, code, "html") if on_day else index_dir(code)
        else:
            target = index_dir(code)
        current = ' aria-current="page"' if code == page.language else ""
        if code == ALL:
            label = _phrase_html(say("all_languages", ui), ui)
            items.append(f'<li><a href="{escape(href(target))}"{current}>{label}</a></li>')
        else:
            name = escape(native_name(code))
            items.append(
                f'<li><a href="{escape(href(target))}" hreflang="{code}" lang="{code}" '
                f'dir="{direction(code)}"{current}>{name}</a></li>'
            )
    label = escape(say("languages", ui).text)
    return f'<nav class="languages" aria-label="{label}"><ul>{"".join(items)}</ul></nav>'


def _day_nav(
    page: FrontPage, ui: str, href: Callable[[str], str], prev: date | None, nxt: date | None
) -> str:
    """Previous day · Archive · Next day: only days that exist are linked."""
    # Arrows point outwards: earlier days lie towards the start of the line, which is the
    # right-hand side in a right-to-left page.
    back, forward = ("→", "←") if direction(ui) == "rtl" else ("←", "→")
    items = []
    if prev:
        items.append(
            f'<li><a rel="prev" href="{escape(href(day_path(prev, page.language, "html")))}">'
            f"{back} {_phrase_html(say('previous_day', ui), ui)}</a></li>"
        )
    items.append(
        f'<li><a href="{escape(href(ARCHIVE_INDEX))}">{_phrase_html(say("archive", ui), ui)}</a></li>'
    )
    if nxt:
        items.append(
            f'<li><a rel="next" href="{escape(href(day_path(nxt, page.language, "html")))}">'
            f"{_phrase_html(say('next_day', ui), ui)} {forward}</a></li>"
        )
    label = escape(say("days", ui).text)
    return f'<nav class="days" aria-label="{label}"><ul>{"".join(items)}</ul></nav>'


def _page_nav(page: FrontPage, ui: str, href: Callable[[str], str]) -> str:
    """Newer entries · Page 2 of 16 · Older entries, on a day of more than one page ("" else);
    the arrows point as in `_day_nav`."""
    if page.pages <= 1:
        return ""
    back, forward = ("→", "←") if direction(ui) == "rtl" else ("←", "→")
    newer, older = _page_neighbours(page, "html")
    items = []
    if newer:
        items.append(
            f'<li><a href="{escape(href(newer))}">{back} {_phrase_html(say("newer", ui), ui)}</a></li>'
        )
    where = say("page_of", ui, number=page.page, count=page.pages)
    items.append(f'<li aria-current="page">{_phrase_html(where, ui)}</li>')
    if older:
        items.append(
            f'<li><a href="{escape(href(older))}">{_phrase_html(say("older", ui), ui)} {forward}</a></li>'
        )
    label = escape(say("pages", ui).text)
    return f'\n<nav class="pages" aria-label="{label}"><ul>{"".join(items)}</ul></nav>'


def _more_html(page: FrontPage, code: str | None, hidden: int, ui: str, href: Callable[[str], str]) -> str:
    phrase = say("more", ui, count=hidden, language=section_name(code, ui))
    text = _phrase_html(phrase, ui)
    target = _more_target(page, code, "html")
    if target is None:
        return f'<p class="more">{text}</p>'
    return f'<p class="more"><a href="{escape(href(target))}">{text} →</a></p>'


def _article_html(e: StoredEntry, also_in: tuple[tuple[str, str], ...], site: Site, ui: str) -> str:
    """One entry: its title linking to the original, its lede, then a line of the page's own
    words (time and sources) marked with their language and direction, names and times
    isolated with <bdi> so "16:51 GMT · via BBC Urdu" keeps its order inside right-to-left text."""
    code = e.language_tag or e.language or "und"
    title, derived = title_of(e, ui)
    link = safe_link(e.link)
    head = f'<a href="{escape(link)}">{escape(title)}</a>' if link else escape(title)
    text = lede(e, site.lede_length)
    body = f"<p>{escape(text)}</p>" if text and not (derived and text == title) else ""

    via = say("via", ui)
    meta_lang = via.language
    bits = []
    if not e.date_only:
        when = clock(e.published, site.zone, locale_for(meta_lang, site))
        bits.append(f'<bdi><time datetime="{e.published.isoformat()}">{escape(when)}</time></bdi>')
    if e.sources:
        names = ", ".join(f"<bdi>{escape(s.feed_name)}</bdi>" for s in e.sources)
        bits.append(f"{escape(via.text)} {names}")
    meta = (
        f'<p class="meta" lang="{meta_lang}" dir="{direction(meta_lang)}">{" · ".join(bits)}</p>'
        if bits
        else ""
    )
    also = ""
    if also_in:
        links = " · ".join(
            f'<a href="{escape(href)}" hreflang="{escape(hl)}" lang="{escape(hl)}">{escape(hl.upper())}</a>'
            for hl, href in also_in
            if safe_link(href)
        )
        word = say("also_in", ui)
        if links:
            also = (
                f'<p class="meta" lang="{word.language}" dir="{direction(word.language)}">'
                f"{escape(word.text)}: {links}</p>"
            )
    return (
        f'<article lang="{escape(code)}" dir="{direction(e.language)}">'
        f"<h3>{head}</h3>{body}{meta}{also}</article>"
    )


def _footer(page: FrontPage, site: Site, ui: str, href: Callable[[str], str]) -> str:
    def links(folder: str) -> str:
        return " · ".join(
            f'<a href="{escape(href(f"{folder}/{page.language}.{ext}"))}">{fmt}</a>'
            for ext, _mime, fmt in FEED_FORMATS
        )

    # One line of our own words: it takes the language (and direction) those words are in.
    feeds = say("feeds", ui)
    words = feeds.language
    entries = escape(say("entries_feed", words).text)
    daily = escape(say("daily_feed", words).text)
    link = safe_link(str(site.link))
    origin = f' · <a href="{escape(link)}"><bdi>{escape(site.title)}</bdi></a>' if link else ""
    return (
        f'<footer><div class="wrap"><p lang="{words}" dir="{direction(words)}">'
        f"{escape(feeds.text)} — {entries}: {links('feeds')} · "
        f"{daily}: {links('daily')}{origin}</p></div></footer>"
    )


# -- archive index ---------------------------------------------------------------------------
def archive_html(site: Site, calendar: Calendar) -> str:
    """`archive/index.html`: every day with entries, by month, newest first; each day links to
    its combined page with the entry count, then to each site language's page with its count."""
    ui = site.languages[0]
    locale = locale_for(ui, site)
    href = _linker(Place(ARCHIVE_INDEX, calendar), "", "html")
    title = f"{site.title} — {say('archive', ui).text}"
    parts = _head(site, title, ui, [], [])
    items = []
    for code in (ALL, *site.languages):
        label = _phrase_html(say("all_languages", ui), ui) if code == ALL else escape(native_name(code))
        attrs = "" if code == ALL else f' hreflang="{code}" lang="{code}" dir="{direction(code)}"'
        items.append(f'<li><a href="{escape(href(index_dir(code)))}"{attrs}>{label}</a></li>')
    parts += [
        '<header class="site"><div class="wrap">',
        f'<p class="site-title"><a href="{escape(href(index_dir(ALL)))}">{escape(site.title)}</a></p>',
        f'<nav class="languages" aria-label="{escape(say("languages", ui).text)}">'
        f"<ul>{''.join(items)}</ul></nav>",
        "</div></header>",
        '<main class="wrap">',
        f"<h1>{_phrase_html(say('archive', ui), ui)}</h1>",
    ]
    months = calendar.months()
    if not months:
        parts.append(f"<p>{_phrase_html(say('no_entries_long', ui), ui)}</p>")
    for (year, month), days in months:
        parts.append(
            f'<section><h2 id="m{year:04d}-{month:02d}">{escape(month_name(year, month, locale))}</h2>'
        )
        parts.append('<ol class="days">')
        for day in days:
            langs = [
                f'<a href="{escape(href(day_path(day, code, "html")))}" hreflang="{code}" lang="{code}" '
                f'title="{escape(native_name(code))}">{code.upper()}</a>'
                f' <span class="count">{calendar.count(day, code)}</span>'
                for code in site.languages
                if calendar.exists(day, code)
            ]
            parts.append(
                f'<li><a href="{escape(href(day_path(day, ALL, "html")))}">'
                f'<time datetime="{day.isoformat()}">{escape(day_label(day, locale))}</time></a> '
                f'<span class="count">({calendar.count(day, ALL)})</span>'
                + (f" — {' · '.join(langs)}" if langs else "")
                + "</li>"
            )
        parts.append("</ol></section>")
    parts += ["</main>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def archive_json(site: Site, calendar: Calendar) -> str:
    """`archive/index.json`: {"days": [{"date", "count", "languages": {code: count}, "href"}]},
    newest first; hrefs relative to archive/."""
    days = []
    for _month, month_days in calendar.months():
        for day in month_days:
            days.append(
                {
                    "date": day.isoformat(),
                    "count": calendar.count(day, ALL),
                    "languages": {
                        code: calendar.count(day, code)
                        for code in site.languages
                        if calendar.exists(day, code)
                    },
                    "href": relative("archive/index.json", day_path(day, ALL, "json")),
                }
            )
    return json.dumps({"languages": list(site.languages), "days": days}, ensure_ascii=False, indent=2) + "\n"


# -- what publish writes -------------------------------------------------------------------------
def _outputs(page: FrontPage, site: Site, place: Place) -> dict[str, bytes]:
    base = place.path.rsplit(".", 1)[0]
    return {
        f"{base}.html": frontpage_html(page, site, place=place).encode(),
        f"{base}.txt": frontpage_text(page, site, place=place).encode(),
        f"{base}.json": frontpage_json(page, site, place=place, indent=None).encode(),
    }


def day_outputs(page: FrontPage, site: Site, calendar: Calendar) -> dict[str, bytes]:
    """path -> bytes of one day's page in one language (or "all"):
    `archive/YYYY/MM/DD/{lang}.{html,txt,json}`. `page` is that day's full FrontPage (as
    `frontpages.frontpage(store, config, language, day)` builds it); the combined page is capped
    here. A page without a day (nothing stored) has no archive copy: returns {}."""
    if page.day is None:
        return {}
    return _outputs(page, site, Place(day_path(page.day, page.language, "html", page.page), calendar))


def index_outputs(page: FrontPage, site: Site, calendar: Calendar) -> dict[str, bytes]:
    """path -> bytes of a language's front page: `index.{html,txt,json}` for "all",
    `{lang}/index.{html,txt,json}` else. `page` should be the day `calendar.latest(language,
    today)` gives (or the empty page when that is None)."""
    return _outputs(page, site, Place(index_path(page.language, "html"), calendar))


def site_outputs(
    site: Site,
    calendar: Calendar,
    page_for: Callable[[str, date | None], FrontPage],
    today: date,
    *,
    only: Iterable[tuple[date, str]] | None = None,
) -> dict[str, bytes]:
    """path -> bytes of every front-page output: each page language's front page (its latest
    day not after `today`, `Calendar.latest`), the archive pages of every day, or of `only`
    those (day, page language) pairs (`pages_plan.pages_to_rebuild` after a poll), and the
    archive index. `page_for(language, day)` gives that day's full FrontPage, and for day None
    the page shown before the language has any entry (publish: `frontpage(store, config,
    language, day)`, which lists failing feeds then)."""
    outputs: dict[str, bytes] = {}
    for language in calendar.page_languages():
        page = page_for(language, calendar.latest(language, today))
        outputs.update(index_outputs(page, site, calendar))
    wanted = (
        sorted(only, key=lambda pair: (pair[0], pair[1]))
        if only is not None
        else [(day, language) for language in calendar.page_languages() for day in calendar.days[language]]
    )
    for day, language in wanted:
        if calendar.exists(day, language):
            outputs.update(day_outputs(page_for(language, day), site, calendar))
    outputs.update(archive_outputs(site, calendar))
    return outputs


def archive_outputs(site: Site, calendar: Calendar) -> dict[str, bytes]:
    """path -> bytes of the archive index: `archive/index.html` and `archive/index.json`."""
    return {
        ARCHIVE_INDEX: archive_html(site, calendar).encode(),
        "archive/index.json": archive_json(site, calendar).encode(),
    }
