"""One contract for both stores: every test here runs on SQLite (a temporary file, WAL, real
second connections) and on a real PostgreSQL server started by the tests (tests/pg_server.py).

Two-connection cases: concurrent claims are disjoint, an expired lease is reclaimable, a
failed poll leaves nothing, two polls bringing one article at once store it once."""

from __future__ import annotations

import contextlib
import threading
import typing
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import dedupe
from aggregator.models import Candidate, FetchResult, Outcome, PollRecord, UpdatePlan
from aggregator.render import lede
from aggregator.store import SQLiteStore, Store, StoreError, StoreMissing, StoreSchemaError, open_store
from aggregator.store.postgres import MIGRATIONS as PG_MIGRATIONS
from aggregator.store.postgres import SCHEMA_VERSION as PG_SCHEMA_VERSION
from aggregator.store.postgres import PostgresStore
from aggregator.text import publishable, xml_safe
from tests.test_store import NOT_XML, PUBLIC_CALLS, _entry

Opener = Callable[[], Store]
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a new connection (a new store object) to one fresh store of the backend."""
    url = str(tmp_path / "a.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened: list[Store] = []

    def open_() -> Store:
        store = open_store(url)
        opened.append(store)
        return store

    yield open_
    for s in opened:
        with contextlib.suppress(StoreError):  # closed already, or in another thread (SQLite)
            s.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


def _record(store: Store, url: str, *, next_poll: datetime | None, etag: str | None = None) -> None:
    result = FetchResult(url, url, 200, Outcome.OK, etag=etag, fetched_at=NOW)
    store.record_poll(PollRecord(result, outcome="ok", error_count=0, next_poll=next_poll, validators=True))


def _candidate(feed: str, key: str, title: str, url: str) -> Candidate:
    return Candidate(
        feed_url=feed, source_key=key, canonical_url=url, fingerprint=f"{feed}|{key}", link=url, title=title,
        summary="s", content="", author=None, categories=(), enclosures=(), published=NOW, updated=None,
        language="en", language_tag="en", language_evidence="config", content_hash="h",
        title_key=" ".join(title.lower().split()),
    )  # fmt: skip


# -- the interface -------------------------------------------------------------------------------


def _protocol_members() -> set[str]:
    return {n for n in vars(Store) if not n.startswith("_")} - set(vars(typing.Protocol))


@pytest.mark.parametrize("cls", [SQLiteStore, PostgresStore])
def test_both_stores_implement_every_method_of_the_protocol(cls: type) -> None:
    missing = {n for n in _protocol_members() if not hasattr(cls, n)}
    assert not missing
    # ... and the table of calls below covers every method that touches the database.
    assert _protocol_members() - {"close", "url"} <= set(PUBLIC_CALLS)


@pytest.mark.parametrize("name", sorted(PUBLIC_CALLS))
def test_after_close_every_method_raises_store_error(opener: Opener, name: str) -> None:
    store = opener()
    store.close()
    with pytest.raises(StoreError) as raised:
        PUBLIC_CALLS[name](store)
    assert raised.value.__cause__ is not None


# -- datetimes --------------------------------------------------------------------------------


def test_datetimes_come_back_aware_utc_to_the_second(store: Store) -> None:
    store.sync_feeds([("F", "n", "en")])
    paris = datetime(2026, 3, 29, 3, 30, 15, 999_999, tzinfo=ZoneInfo("Europe/Paris"))
    _record(store, "F", next_poll=paris)
    state = store.feed_state("F")
    assert state is not None and state.next_poll is not None and state.last_polled is not None
    assert state.next_poll == paris.replace(microsecond=0)
    assert state.next_poll.utcoffset() == timedelta(0) and state.last_polled.utcoffset() == timedelta(0)
    entry = _entry("x", published=paris.astimezone(UTC))
    store.apply(UpdatePlan(inserts=(entry,)))
    [back] = store.entries_by_id(["x"])
    assert back.published == paris.replace(microsecond=0) and back.published.utcoffset() == timedelta(0)
    assert back.sources[0].first_seen.utcoffset() == timedelta(0)


def test_next_polls_order_as_times_whatever_their_offsets(store: Store) -> None:
    """Claims are earliest first: the comparison is of instants, not of the text."""
    store.sync_feeds([(u, u, "en") for u in ("a", "b", "c")])
    _record(store, "a", next_poll=datetime(2026, 1, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo")))  # 01:00 UTC
    _record(store, "b", next_poll=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    _record(store, "c", next_poll=datetime(2025, 12, 31, 20, 0, tzinfo=ZoneInfo("America/New_York")))
    claimed = store.claim_due(datetime(2026, 1, 2, tzinfo=UTC), 3, MINUTE)
    assert [s.url for s in claimed] == ["b", "a", "c"]


# -- the schedule: claims and leases --------------------------------------------------------


def test_claims_take_due_feeds_once_and_a_recorded_poll_ends_the_lease(store: Store) -> None:
    store.sync_feeds([(f"f{i}", f"n{i}", "en") for i in range(5)])
    _record(store, "f4", next_poll=NOW + timedelta(hours=1))  # not due
    first = store.claim_due(NOW, 3, MINUTE)
    assert len(first) == 3 and all(s.next_poll is None for s in first)  # never polled: first
    second = store.claim_due(NOW, 3, MINUTE)
    assert [s.url for s in second] == ["f3"]  # leased ones and f4 are not due
    assert store.claim_due(NOW, 3, MINUTE) == []
    _record(store, "f0", next_poll=NOW)  # its poll recorded: lease gone, due again at NOW
    assert [s.url for s in store.claim_due(NOW, 3, MINUTE)] == ["f0"]
    store.release(["f1"])
    assert [s.url for s in store.claim_due(NOW, 3, MINUTE)] == ["f1"]
    later = store.claim_due(NOW + timedelta(hours=2), 9, MINUTE)  # every lease has run out
    assert [s.url for s in later] == ["f1", "f2", "f3", "f0", "f4"]


def test_an_expired_lease_is_claimed_again(opener: Opener) -> None:
    """A poller that died: its feeds come back when the lease runs out, to another poller."""
    one, two = opener(), opener()
    one.sync_feeds([("F", "n", "en")])
    assert [s.url for s in one.claim_due(NOW, 1, MINUTE)] == ["F"]
    assert two.claim_due(NOW + timedelta(seconds=59), 1, MINUTE) == []
    assert [s.url for s in two.claim_due(NOW + MINUTE, 1, MINUTE)] == ["F"]


def test_claims_limited_to_the_named_feeds_and_never_gone_ones(store: Store) -> None:
    store.sync_feeds([(u, u, "en") for u in ("a", "b", "c")])
    store.record_poll(PollRecord(
        FetchResult("c", "c", 410, Outcome.GONE, fetched_at=NOW), error="gone", outcome="gone",
        error_count=1, next_poll=None, gone=True,)
    )  # fmt: skip
    assert [s.url for s in store.claim_due(NOW, 9, MINUTE, feeds={"b", "c"})] == ["b"]
    assert [s.url for s in store.claim_due(NOW, 9, MINUTE)] == ["a"]


def test_concurrent_claims_are_disjoint(opener: Opener) -> None:
    opener().sync_feeds([(f"f{i:03}", f"n{i}", "en") for i in range(200)])
    got: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(len(got))

    def claim(i: int) -> None:
        store = opener()  # its own connection, opened in its thread (SQLite's rule)
        start.wait()
        for _ in range(10):  # bounded
            got[i].extend(s.url for s in store.claim_due(NOW, 7, MINUTE))
        store.close()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(got))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [u for g in got for u in g]
    assert len(every) == len(set(every)) == 200


# -- the unit of work ------------------------------------------------------------------------


def test_a_poll_that_raises_leaves_nothing_and_keeps_the_lease(store: Store) -> None:
    store.sync_feeds([("F", "n", "en")])
    assert store.claim_due(NOW, 1, MINUTE)
    with pytest.raises(ZeroDivisionError), store.poll("F") as work:
        work.apply(UpdatePlan(inserts=(_entry("x"),)))
        work.record(PollRecord(FetchResult("F", "F", 200, Outcome.OK, etag='"e"', fetched_at=NOW), error=None,
                    outcome="ok", error_count=0, next_poll=NOW, validators=True))  # fmt: skip
        _ = 1 / 0
    assert store.count_entries() == 0 and store.fetch_log("F") == []
    state = store.feed_state("F")
    assert state is not None and state.etag is None and state.last_polled is None
    assert store.claim_due(NOW, 1, MINUTE) == []  # still leased: a retry waits for expiry


def test_a_poll_commits_entries_state_and_record_together(store: Store) -> None:
    store.sync_feeds([("F", "n", "en")])
    with store.poll("F") as work:
        assert work.lookup([_candidate("F", "x", "A story of some length", "https://e.org/x")]) == []
        work.apply(UpdatePlan(inserts=(_entry("x"),)))
        assert work.entries_published_since(NOW - timedelta(days=3650)) == 1
        work.record(PollRecord(FetchResult("F", "F", 200, Outcome.OK, etag='"e"', fetched_at=NOW), error=None,
                    outcome="ok", error_count=0, next_poll=NOW + MINUTE, validators=True))  # fmt: skip
    state = store.feed_state("F")
    assert state is not None and state.etag == '"e"' and state.next_poll == NOW + MINUTE
    assert [r["outcome"] for r in store.fetch_log("F")] == ["ok"]
    assert store.fetch_log("F")[0]["started"] == NOW.isoformat(timespec="seconds")


def test_one_article_from_two_feeds_at_once_is_one_entry_with_both_sources(opener: Opener) -> None:
    """Two pollers, each deciding from what it read: the second waits for the first's commit
    (SQLite's write lock; PostgreSQL's lock on the shared canonical URL) and merges."""
    one = opener()
    one.sync_feeds([("A", "Feed A", "en"), ("B", "Feed B", "en")])
    first_read = threading.Event()
    errors: list[BaseException] = []

    def poll(feed: str, wait: bool) -> None:
        store = opener()  # its own connection, opened in its thread (SQLite's rule)
        try:
            c = _candidate(feed, f"{feed}-guid", "Strike wave spreads across Britain", "https://e.org/story")
            with store.poll(feed) as work:
                existing = work.lookup([c])
                if wait:
                    first_read.set()
                    threading.Event().wait(0.5)  # the other poll is now waiting for us
                plan = dedupe.decide([c], existing, f"Feed {feed}", NOW, ZoneInfo("UTC"))
                work.apply(plan)
        except BaseException as e:
            errors.append(e)
        finally:
            store.close()

    a = threading.Thread(target=poll, args=("A", True))
    a.start()
    assert first_read.wait(10)
    b = threading.Thread(target=poll, args=("B", False))
    b.start()
    a.join(30)
    b.join(30)
    assert not errors
    assert one.count_entries() == 1
    [entry] = one.latest(None, 5)
    assert sorted(s.feed_url for s in entry.sources) == ["A", "B"]


def test_an_updated_entry_carries_its_own_feeds_new_link_on_its_source_records(store: Store) -> None:
    """An update's source records of the entry's own feed are rewritten with the link dedupe
    gave them (cases/16: no output keeps a corrected typo); another feed's record keeps its."""
    store.sync_feeds([("A", "Feed A", "en"), ("B", "Feed B", "en")])
    zone = ZoneInfo("UTC")

    def poll(c: Candidate) -> None:
        with store.poll(c.feed_url) as work:
            work.apply(dedupe.decide([c], work.lookup([c]), f"Feed {c.feed_url}", NOW, zone))

    poll(_candidate("A", "a-1", "Strike wave spreads across Britain", "https://e.org/story"))
    poll(_candidate("B", "b-1", "Strike wave spreads across Britain", "https://e.org/story"))
    moved = replace(
        _candidate("A", "a-1", "Strike wave spreads across Britain", "https://e.org/story"),
        link="https://e.org/story-corrected", content_hash="h2",
    )  # fmt: skip
    poll(moved)
    [entry] = store.latest(None, 5)
    assert entry.link == "https://e.org/story-corrected"
    assert {s.feed_url: s.link for s in entry.sources} == {
        "A": "https://e.org/story-corrected",
        "B": "https://e.org/story",
    }


def test_seq_grows_with_every_insert_across_connections(opener: Opener) -> None:
    one, two = opener(), opener()
    one.apply(UpdatePlan(inserts=(_entry("x"), _entry("y"))))
    two.apply(UpdatePlan(inserts=(_entry("z"),)))
    one.apply(UpdatePlan(inserts=(_entry("w"),)))
    seqs = {e.id: e.seq for e in one.entries_by_id(["w", "x", "y", "z"])}
    assert seqs["x"] < seqs["y"] < seqs["z"] < seqs["w"]  # type: ignore[operator]


def test_an_insert_already_there_is_kept_not_doubled(opener: Opener) -> None:
    one, two = opener(), opener()
    one.apply(UpdatePlan(inserts=(_entry("x", "first"),)))
    two.apply(UpdatePlan(inserts=(_entry("x", "second"),)))
    assert one.count_entries() == 1 and one.entries_by_id(["x"])[0].title == "first"


def test_unpublished_days_are_taken_once_whichever_connection_marked_them(opener: Opener) -> None:
    one, two = opener(), opener()
    d1, d2, d3 = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)
    assert one.take_unpublished() == frozenset()
    one.mark_unpublished([d1, d2])
    two.mark_unpublished([d2, d3])  # idempotent: d2 remembered once
    one.mark_unpublished([])
    assert two.take_unpublished() == {d1, d2, d3}
    assert one.take_unpublished() == frozenset()  # taken means forgotten, for every connection
    one.mark_unpublished([d1])  # a publish that failed gives its days back
    assert two.take_unpublished() == {d1}


def test_a_poll_marks_its_days_with_its_own_commit(store: Store) -> None:
    feed = "https://src.example/feed"
    store.sync_feeds([(feed, "Feed", "en")])
    day = date(2026, 11, 29)
    with pytest.raises(RuntimeError), store.poll(feed) as work:
        work.mark_unpublished([day])
        raise RuntimeError("the poll failed before it committed")
    assert store.take_unpublished() == frozenset()  # rolled back with the poll
    with store.poll(feed) as work:
        work.mark_unpublished([day])
    assert store.take_unpublished() == {day}


def test_validators_are_kept_unless_the_poll_succeeded(store: Store) -> None:
    store.sync_feeds([("F", "n", "en")])

    def record(etag: str | None, validators: bool) -> str | None:
        result = FetchResult("F", "F", 200, Outcome.OK, etag=etag)
        store.record_poll(
            PollRecord(result, outcome="ok", error_count=0, next_poll=None, validators=validators)
        )
        state = store.feed_state("F")
        assert state is not None
        return state.etag

    assert record('"1"', validators=True) == '"1"'
    assert record('"2"', validators=False) == '"1"'
    assert record(None, validators=True) is None


def test_body_hash_round_trips_and_is_kept_unless_the_poll_succeeded(store: Store) -> None:
    """Schema step 5 (SQLite) / 2 (PostgreSQL): the digest the pipeline compares an unchanged
    200 against comes back from every read of the feed's state, through both write paths."""
    store.sync_feeds([("F", "n", "en")])
    result = FetchResult("F", "F", 200, Outcome.OK, fetched_at=NOW)

    def stored() -> str | None:
        state = store.feed_state("F")
        assert state is not None and store.feed_states()["F"].body_hash == state.body_hash
        return state.body_hash

    assert stored() is None
    store.record_poll(PollRecord(result, error=None, outcome="ok", error_count=0, next_poll=NOW,
                      validators=True, body_hash="a" * 64))  # fmt: skip
    assert stored() == "a" * 64
    [claimed] = store.claim_due(NOW, 1, MINUTE)
    assert claimed.body_hash == "a" * 64
    with store.poll("F") as work:  # the pipeline's path
        work.record(PollRecord(result, error=None, outcome="ok", error_count=0, next_poll=NOW,
                    validators=True, body_hash="b" * 64))  # fmt: skip
    assert stored() == "b" * 64
    # A failed poll (no validators) keeps the digest of the last body stored.
    store.record_poll(PollRecord(result, error="boom", outcome="not-a-feed", error_count=1, next_poll=None,
                      validators=False, body_hash="c" * 64))  # fmt: skip
    assert stored() == "b" * 64
    # A successful poll that had no body to hash forgets it, like the validators.
    store.record_poll(
        PollRecord(result, error=None, outcome="ok", error_count=0, next_poll=None, validators=True)
    )
    assert stored() is None


def test_changing_the_site_zone_moves_entries_to_their_days(store: Store) -> None:
    late = datetime(2023, 1, 17, 23, 30, tzinfo=UTC)
    dated = _entry("dated", published=late.replace(hour=0), date_only=True)
    store.apply(UpdatePlan(inserts=(_entry("timed", published=late), dated)))
    assert store.sync_zone(ZoneInfo("Europe/London")) == 0
    assert store.sync_zone(ZoneInfo("Asia/Tokyo")) == 1
    days = {e.id: e.day for e in store.entries_by_id(["timed", "dated"])}
    assert days == {"timed": date(2023, 1, 18), "dated": date(2023, 1, 17)}
    assert store.sync_zone(ZoneInfo("Asia/Tokyo")) == 0
    assert store.day_counts() == [(date(2023, 1, 17), "en", 1), (date(2023, 1, 18), "en", 1)]
    assert [e.id for e in store.day(date(2023, 1, 18), "en")] == ["timed"]
    assert store.latest_day("en", date(2023, 1, 17)) == date(2023, 1, 17)


def test_reads_for_publishing_agree(store: Store) -> None:
    entries = [_entry(f"e{i}", published=NOW - timedelta(hours=i)) for i in range(3)]
    store.apply(UpdatePlan(inserts=tuple(entries)))
    assert [e.id for e in store.latest("en", 2)] == ["e0", "e1"]
    assert [e.id for e in store.latest(None, 5)] == ["e0", "e1", "e2"]
    assert store.count_entries() == 3 and store.language_counts() == {"en": 3}
    store.sync_feeds([("F", "n", "en")])
    [stats] = store.feed_stats()
    assert (stats.entries, stats.seen_in) == (3, 3)
    assert store.entries_published_since("F", NOW - timedelta(hours=1)) == 2
    assert store.prune_fetch_log(timedelta(days=1), NOW) == 0


def test_a_day_index_is_the_day_without_its_text_in_the_same_order(store: Store) -> None:
    """`day_index` gives what `day` gives, as (seq, language), in the same order: newest first,
    ties by id (publish pages through a day by it, and reads the entries by seq)."""
    day = date(2023, 1, 17)
    at = datetime(2023, 1, 17, 10, tzinfo=UTC)
    languages = ["en", "es", None, "en", "de", "es", "en"]
    entries = [
        replace(_entry(f"e{i}", published=at - timedelta(hours=i % 3)), language=code, day=day)
        for i, code in enumerate(languages)
    ] + [replace(_entry("other-day"), day=date(2023, 1, 18))]
    store.apply(UpdatePlan(inserts=tuple(entries)))
    index = store.day_index(day)
    whole = store.day(day, None)
    pairs = [(seq, index.languages[code]) for seq, code in zip(index.seqs, index.codes, strict=True)]
    assert pairs == [(e.seq, e.language) for e in whole]
    assert sorted(index.languages, key=str) == [None, "de", "en", "es"]  # each language once
    assert [s for s, code in pairs if code == "en"] == [e.seq for e in store.day(day, "en")]
    assert len(index) == len(languages) and len(store.day_index(date(2023, 1, 16))) == 0
    by_seq = {e.seq: e for e in store.entries_by_seq(list(index.seqs))}
    assert {s: e.language for s, e in by_seq.items()} == dict(pairs)
    assert [by_seq[s].id for s in index.seqs] == [e.id for e in whole]
    assert store.entries_by_seq([max(index.seqs) + 1000]) == []  # not stored: left out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(codec=None), max_size=30) | st.sampled_from(["\ud800x", NOT_XML]))
def test_every_text_is_stored_xml_safe(store: Store, text: str) -> None:
    """Any code point (NUL and lone surrogates included, which either driver would refuse) is
    stored as what XML 1.0 can carry."""
    eid = f"id-{store.count_entries()}"
    store.sync_feeds([("F", text or "n", "en")])
    with store.poll("F") as work:
        work.apply(UpdatePlan(inserts=(_entry(eid, text),)))
        result = FetchResult("F", "F", 200, Outcome.OK)
        work.record(PollRecord(result, "ok", 0, None, error=text, title=text, warning=text))
    [stored] = store.entries_by_id([eid])
    safe = xml_safe(text)
    assert (stored.title, stored.summary, stored.author, stored.link) == (safe, safe, safe, safe)
    state = store.feed_state("F")
    assert state is not None and (state.title, state.last_error) == (safe, safe)


def _execute(store: Store, sql: str) -> None:
    """One statement behind the store's back (a row left by older code, say)."""
    if isinstance(store, SQLiteStore):
        store.db.conn.execute(sql)
    else:
        import psycopg

        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute(sql.encode())


def test_entries_come_back_publishable_and_new_text_is_made_publishable(store: Store) -> None:
    store.apply(UpdatePlan(inserts=(_entry("a", "<p>Old text.</p>"),)))
    [read] = store.day(date(2023, 1, 17), "en")
    assert read.publishable is not None and read.publishable == publishable(read.summary, read.content)
    # an update carrying the text made for the old summary (as `dataclasses.replace` keeps it)
    new = replace(read, summary="<p>New text.</p>", content="<p>New <b>body</b><script>x</script></p>")
    assert new.publishable is read.publishable
    store.apply(UpdatePlan(updates=(new,)))
    [again] = store.entries_by_id(["a"])
    assert again.publishable is not None
    made = (again.publishable.lede_text, again.publishable.content_html)
    assert made == ("New text.", "<p>New <b>body</b></p>")


def test_entries_made_under_other_rules_are_never_served_and_made_again_on_open(opener: Opener) -> None:
    store = opener()
    store.apply(UpdatePlan(inserts=(_entry("a", "<p>A sentence.</p>"),)))
    _execute(store, "UPDATE entries SET render_version = '0.old', lede_text = 'x', content_html = 'x'")
    _execute(store, "UPDATE meta SET value = '0.old' WHERE key = 'render_version'")
    [e] = store.entries_by_id(["a"])
    assert e.publishable is None and lede(e) == "A sentence."  # made afresh where it is published
    [e] = opener().entries_by_id(["a"])  # the next open makes it again, and stores it
    assert e.publishable is not None and e.publishable.lede_text == "A sentence."
    assert e.publishable.content_html == "<p>A sentence.</p>"


# -- PostgreSQL: schema, opening --------------------------------------------------------------


def test_postgres_newer_schema_is_refused(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE aggregator_schema SET version = version + 1")
    with pytest.raises(StoreSchemaError, match="newer than this program"):
        open_store(pg_url)


def test_postgres_workers_starting_together_migrate_once(pg_server: object) -> None:
    from tests.pg_server import PostgresServer

    assert isinstance(pg_server, PostgresServer)
    url = pg_server.new_database()
    results: list[object] = []

    def start() -> None:
        try:
            s = open_store(url)
            results.append(s.version)
            s.close()
        except BaseException as e:
            results.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [PG_SCHEMA_VERSION] * 4


def test_postgres_version_1_is_migrated_keeping_its_feeds(pg_server: object) -> None:
    import psycopg

    from tests.pg_server import PostgresServer

    assert isinstance(pg_server, PostgresServer)
    url = pg_server.new_database()
    with psycopg.connect(url, autocommit=True) as conn:  # a database left by the previous release
        conn.execute(PG_MIGRATIONS[0].encode())
        conn.execute("CREATE TABLE aggregator_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO aggregator_schema (version) VALUES (1)")
        conn.execute("INSERT INTO feeds (url, name, language, etag) VALUES ('F', 'n', 'en', '\"1\"')")
    store = open_store(url)
    try:
        assert store.version == PG_SCHEMA_VERSION == 4
        state = store.feed_state("F")
        assert state is not None and state.etag == '"1"' and state.body_hash is None
    finally:
        store.close()


def test_postgres_version_2_entries_are_made_publishable_on_open(pg_server: object) -> None:
    import psycopg

    from tests.pg_server import PostgresServer

    assert isinstance(pg_server, PostgresServer)
    url = pg_server.new_database()
    with psycopg.connect(url, autocommit=True) as conn:  # a database left by the previous release
        conn.execute((PG_MIGRATIONS[0] + PG_MIGRATIONS[1]).encode())
        conn.execute("CREATE TABLE aggregator_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO aggregator_schema (version) VALUES (2)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO entries (id, feed_url, source_key, fingerprint, title, summary, content, "
                "published, first_seen, language_evidence, day, content_hash) "
                "VALUES (%s, 'F', %s, %s, 't', %s, '', %s, %s, 'config', %s, 'h')",
                [(f"e{i}", f"k{i}", f"fp{i}", f"<p>Entry {i}.<script>x</script></p>", NOW, NOW, NOW.date())
                 for i in range(1_001)],
            )  # fmt: skip
    store = open_store(url)
    try:
        assert store.version == PG_SCHEMA_VERSION == 4
        entries = store.entries_by_id([f"e{i}" for i in range(1_001)])
        assert len(entries) == 1_001
        assert all(e.publishable == publishable(e.summary, e.content) for e in entries)
        first = next(e for e in entries if e.id == "e0").publishable
        assert first is not None and first.content_html == "<p>Entry 0.</p>"
    finally:
        store.close()


def test_postgres_without_schema_is_missing_unless_created(pg_server: object) -> None:
    from tests.pg_server import PostgresServer

    assert isinstance(pg_server, PostgresServer)
    url = pg_server.new_database()
    with pytest.raises(StoreMissing, match="nothing has been polled"):
        open_store(url, create=False)


def test_an_unreachable_server_is_one_line_store_missing() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(StoreMissing, match="cannot reach") as raised:
        open_store(f"postgresql://u:secret@127.0.0.1:{port}/db", busy_timeout=1)
    assert "secret" not in str(raised.value) and "\n" not in str(raised.value)
