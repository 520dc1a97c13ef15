"""Dedupe rules on plain data: no HTTP, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aggregator import dedupe, normalise
from aggregator.models import ParsedEntry, ParsedFeed, StoredEntry

ZONE = ZoneInfo("Europe/London")
NOW = datetime(2023, 1, 17, 18, 0, tzinfo=UTC)
SITE = ("en", "es", "it", "fr", "ru")


def entry(**kw: object) -> ParsedEntry:
    base: dict[str, object] = dict(
        source_id="id-1",
        link="https://www.marxist.com/peru.htm",
        title="Peru: mass movement prepares to march on Lima",
        summary="<p>This is a crucial week.</p>",
        content="",
        published=datetime(2023, 1, 17, 9, 5, tzinfo=UTC),
    )
    base.update(kw)
    return ParsedEntry(**base)  # type: ignore[arg-type]


def candidates(feed_url: str, *entries: ParsedEntry, language: str = "en", now: datetime = NOW):
    feed = ParsedFeed(title="t", link=None, language=None, format="rss20", entries=entries)
    return normalise.prepare(feed, feed_url, language, SITE, ZONE, now)


def run(feed_url: str, entries: list[ParsedEntry], stored: list[StoredEntry], **kw: object):
    cands = candidates(feed_url, *entries, **kw)  # type: ignore[arg-type]
    return dedupe.decide(cands, stored, feed_url, NOW, ZONE)


def stored_after(feed_url: str, entries: list[ParsedEntry], **kw: object) -> list[StoredEntry]:
    return list(run(feed_url, entries, [], **kw).inserts)


def test_new_entries_are_inserted_with_first_seen_and_day() -> None:
    [e] = stored_after("A", [entry()])
    assert e.first_seen == NOW and e.day == date(2023, 1, 17) and e.language == "en"
    assert e.sources[0].feed_url == "A" and e.language_evidence == "config"


def test_same_entry_repolled_unchanged_is_no_write() -> None:
    stored = stored_after("A", [entry()])
    plan = run("A", [entry()], stored)
    assert (plan.inserts, plan.updates, plan.new_sources, plan.unchanged) == ((), (), (), 1)


def test_corrected_title_updates_in_place_keeping_identity() -> None:
    stored = stored_after("A", [entry()])
    plan = run("A", [entry(title="Peru: mass movement marches on Lima")], stored)
    [u] = plan.updates
    assert u.id == stored[0].id and u.title == "Peru: mass movement marches on Lima"
    assert u.first_seen == stored[0].first_seen and u.day == stored[0].day
    assert u.updated == NOW and not plan.inserts


def test_unstable_ids_fall_back_to_fingerprint() -> None:
    stored = stored_after("A", [entry(source_id="x-1", link="https://s.org/a?session=1")])
    plan = run("A", [entry(source_id="x-2", link="https://s.org/a?session=2")], stored)
    assert not plan.inserts and plan.unchanged == 1


def test_duplicate_ids_within_one_poll_are_stored_once() -> None:
    plan = run("A", [entry(), entry(title="Peru: second copy")], [])
    assert len(plan.inserts) == 1


@pytest.mark.parametrize(
    "variant",
    [
        "http://marxist.com/peru.htm",
        "https://WWW.MARXIST.COM/peru.htm/",
        "https://www.marxist.com:443/peru.htm#comments",
        "https://www.marxist.com/peru.htm?utm_source=x&utm_medium=rss&fbclid=1&gclid=2&mc_cid=3",
    ],
)
def test_same_article_in_two_feeds_is_one_entry_with_both_sources(variant: str) -> None:
    stored = stored_after("A", [entry()])
    plan = run("B", [entry(source_id="other", link=variant)], stored)
    assert not plan.inserts
    [(eid, source)] = plan.new_sources
    assert eid == stored[0].id and source.feed_url == "B" and source.link == variant


def test_different_languages_are_never_merged() -> None:
    stored = stored_after("A", [entry()])
    plan = run("B", [entry(source_id="b", title="Perù: il movimento")], stored, language="it")
    assert len(plan.inserts) == 1 and not plan.new_sources


def test_declared_language_beats_unknown() -> None:
    unknown = stored_after("MIX", [entry(title="1917 · 2017", summary="")], language="auto")
    assert unknown[0].language is None and unknown[0].language_evidence == "none"
    plan = run("B", [entry(source_id="b", title="1917 · 2017", summary="")], unknown, language="es")
    assert plan.language_fixes == ((unknown[0].id, "es", "es", "config"),)


def test_republished_old_item_keeps_its_day() -> None:
    stored = stored_after("A", [entry()])
    later = NOW + timedelta(days=40)
    cands = candidates("A", entry(published=later - timedelta(hours=1)), now=later)
    plan = dedupe.decide(cands, stored, "A", later, ZONE)
    assert not plan.inserts
    [u] = plan.updates or [replace(stored[0])]
    assert u.day == date(2023, 1, 17) and u.first_seen == NOW


def test_same_title_on_other_site_different_link_is_not_merged() -> None:
    stored = stored_after("A", [entry(title="Weekly roundup", link="https://a.org/roundup-1")])
    plan = run("B", [entry(source_id="b", title="Weekly roundup", link="https://b.org/roundup")], stored)
    assert len(plan.inserts) == 1


def test_entry_ids_are_stable() -> None:
    assert dedupe.entry_id("A", "k") == dedupe.entry_id("A", "k") != dedupe.entry_id("B", "k")


def test_near_duplicate_on_another_site_within_48h_is_merged() -> None:
    title = "Peru: mass movement prepares to march on Lima"
    stored = stored_after("A", [entry(title=title, link="https://a.org/peru")])
    later = entry(source_id="b", title=title.upper() + "!", link="https://b.org/x/1",
                  published=datetime(2023, 1, 18, 20, tzinfo=UTC))  # fmt: skip
    plan = run("B", [later], stored)
    assert not plan.inserts and plan.new_sources[0][0] == stored[0].id


def test_near_duplicate_rule_respects_window_site_and_length() -> None:
    title = "Peru: mass movement prepares to march on Lima"
    stored = stored_after("A", [entry(title=title, link="https://a.org/peru")])
    too_late = entry(
        source_id="b", title=title, link="https://b.org/1", published=datetime(2023, 1, 20, tzinfo=UTC)
    )
    same_site = entry(source_id="c", title=title, link="https://a.org/peru-2")
    assert len(run("B", [too_late], stored, now=NOW + timedelta(days=3)).inserts) == 1
    assert len(run("B", [same_site], stored).inserts) == 1
    short = stored_after("A", [entry(title="Weekly roundup", link="https://a.org/w")])
    assert (
        len(run("B", [entry(source_id="d", title="Weekly roundup", link="https://b.org/w")], short).inserts)
        == 1
    )


def test_two_posts_under_one_guid_are_two_entries() -> None:
    first = entry(title="A greeting", published=datetime(2023, 1, 17, 9, tzinfo=UTC))
    second = entry(title="An essay on Dropbox", published=datetime(2023, 1, 17, 9, 30, tzinfo=UTC))
    stored = stored_after("A", [first])
    plan = run("A", [first, second], stored)
    assert len(plan.inserts) == 1 and plan.inserts[0].title == "An essay on Dropbox"
    again = run("A", [first, second], [*stored, *plan.inserts])  # and stays so on the next poll
    assert not again.inserts and again.unchanged == 2


def test_same_titled_items_of_one_document_are_not_merged() -> None:
    warning = "Aviso. Nivel amarillo. Vientos. Ronda"
    a = entry(source_id="w1", link="https://aemet.es/1", title=warning)
    b = entry(source_id="w2", link="https://aemet.es/2", title=warning,
              published=datetime(2023, 1, 17, 9, 41, tzinfo=UTC))  # fmt: skip
    assert len(run("A", [a, b], []).inserts) == 2


def test_lone_word_titles_do_not_fingerprint() -> None:
    stored = stored_after(
        "A", [entry(source_id=None, title="Presseschau", link="https://z.de/1", published=None)]
    )
    plan = run(
        "A", [entry(source_id=None, title="Presseschau", link="https://z.de/2", published=None)], stored
    )
    assert len(plan.inserts) == 1


def test_translation_key_from_operator_pattern() -> None:
    feed = ParsedFeed(title="t", link=None, language=None, format="rss20",
                      entries=(entry(link="https://site.org/es/12345-hola"),))  # fmt: skip
    pattern = r"https://site\.org/[a-z]{2}/(?P<key>\d+)-"
    [c] = normalise.prepare(feed, "A", "es", SITE, ZONE, NOW, (pattern,))
    assert c.translation_key == "0:12345"


def test_source_time_zone_is_kept() -> None:
    [e] = stored_after("A", [replace(entry(), published_zone="+01:00")])
    assert e.published_zone == "+01:00" and e.published.tzinfo is UTC


@pytest.mark.parametrize(
    ("guid", "new_link"),
    [
        ("id-1", "https://www.marxist.com/peru-updated.htm"),  # same guid, the feed moved its page
        ("id-2", "https://www.marxist.com/peru-mass-movement.htm"),  # guid and slug corrected (cases/16)
    ],
)
def test_a_link_the_own_feed_corrects_replaces_it_on_its_source_records_only(
    guid: str, new_link: str
) -> None:
    """Whatever way a feed gives its own entry another link, no record of that feed keeps the
    old one (it would stay published in JSON Feed's sources); other feeds' records keep theirs."""
    [first] = stored_after("A", [entry()])
    plan = run("B", [entry(source_id="b-1", link="https://mirror.example/peru")], [first])
    [(_, from_b)] = plan.new_sources
    stored = replace(first, sources=(*first.sources, from_b))
    later = entry(source_id=guid, link=new_link, title="Peru: mass movement prepares to march on Lima!")
    [u] = run("A", [later], [stored]).updates
    assert u.id == first.id and u.link == new_link
    assert {s.feed_url: s.link for s in u.sources} == {"A": new_link, "B": "https://mirror.example/peru"}
