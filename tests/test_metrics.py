"""/metrics instruments: what polls and publishes record, read back with Prometheus' own parser."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from aggregator import metrics as metrics_module
from aggregator.error_kinds import KINDS
from aggregator.metrics import Metrics
from aggregator.models import FeedState, Outcome, PollReport

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    data, ctype = m.render()
    assert ctype.startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(data.decode("utf-8")):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def report(name: str, outcome: Outcome, status: int | None = 200, **kw: object) -> PollReport:
    return PollReport(f"https://x.org/{name}", name, outcome, status, None, **kw)  # type: ignore[arg-type]


def test_polls_entries_and_durations_are_counted() -> None:
    m = Metrics()
    m.observe_poll(report("A", Outcome.OK, inserted=3, updated=1, merged=2, duration_ms=120), now=1000.0)
    m.observe_poll(report("A", Outcome.NOT_MODIFIED, 304, duration_ms=8), now=2000.0)
    m.observe_poll(report("B", Outcome.NETWORK_ERROR, None, duration_ms=30000), now=2500.0)
    m.observe_poll(report("B", Outcome.HTTP_ERROR, 503), now=2600.0)
    m.observe_poll(report("C", Outcome.GONE, 410, skipped=True))  # not polled: not counted
    got = samples(m)
    assert got[("aggregator_polls_total", (("feed", "A"), ("outcome", "ok"), ("status", "200")))] == 1
    assert (
        got[("aggregator_polls_total", (("feed", "A"), ("outcome", "not-modified"), ("status", "304")))] == 1
    )
    assert (
        got[("aggregator_polls_total", (("feed", "B"), ("outcome", "network-error"), ("status", "none")))]
        == 1
    )
    assert not any(k[0] == "aggregator_polls_total" and ("feed", "C") in k[1] for k in got)
    assert got[("aggregator_entries_total", (("change", "inserted"),))] == 3
    assert got[("aggregator_entries_total", (("change", "updated"),))] == 1
    assert got[("aggregator_entries_total", (("change", "merged"),))] == 2
    assert got[("aggregator_poll_duration_seconds_count", ())] == 4
    assert got[("aggregator_poll_duration_seconds_sum", ())] == 30.128
    assert got[("aggregator_poll_duration_seconds_bucket", (("le", "0.01"),))] == 2  # 8 ms and 0 ms
    assert got[("aggregator_poll_duration_seconds_bucket", (("le", "0.25"),))] == 3
    assert got[("aggregator_poll_duration_seconds_bucket", (("le", "60.0"),))] == 4
    assert got[("aggregator_last_successful_poll_timestamp_seconds", (("feed", "A"),))] == 2000.0
    assert ("aggregator_last_successful_poll_timestamp_seconds", (("feed", "B"),)) not in got
    assert got[("aggregator_last_successful_poll_any_timestamp_seconds", ())] == 2000.0
    assert got[("aggregator_feed_consecutive_errors", (("feed", "B"),))] == 2
    assert got[("aggregator_failing_feeds", ())] == 1


def test_a_success_ends_a_feeds_failing_run() -> None:
    m = Metrics()
    m.observe_poll(report("A", Outcome.TOO_LARGE))
    assert samples(m)[("aggregator_failing_feeds", ())] == 1
    m.observe_poll(report("A", Outcome.OK))
    got = samples(m)
    assert got[("aggregator_failing_feeds", ())] == 0
    assert got[("aggregator_feed_consecutive_errors", (("feed", "A"),))] == 0


def test_publish_is_timed_and_files_counted() -> None:
    m = Metrics()
    m.observe_publish(0.3, 12, now=5000.0)
    m.observe_publish(2.0, 0, now=6000.0)
    got = samples(m)
    assert got[("aggregator_publish_duration_seconds_count", ())] == 2
    assert got[("aggregator_publish_duration_seconds_bucket", (("le", "0.5"),))] == 1
    assert got[("aggregator_publish_files_written_total", ())] == 12
    assert got[("aggregator_last_publish_timestamp_seconds", ())] == 6000.0


def test_backoff_and_gone_come_from_stored_state() -> None:
    m = Metrics()
    later, earlier = NOW + timedelta(hours=1), NOW - timedelta(minutes=1)
    m.observe_states(
        [
            FeedState("u1", "A", error_count=2, next_poll=later),  # backing off
            FeedState("u2", "B", error_count=1, next_poll=earlier),  # due again: not held back
            FeedState("u3", "C", error_count=0, next_poll=later),  # healthy
            FeedState("u4", "D", error_count=1, gone=True),
        ],
        NOW,
    )
    got = samples(m)
    assert got[("aggregator_feeds_in_backoff", ())] == 1
    assert got[("aggregator_feeds_gone", ())] == 1


def test_a_removed_feed_leaves_no_series() -> None:
    m = Metrics()
    m.observe_poll(report("A", Outcome.HTTP_ERROR, 500))
    m.observe_poll(report("A", Outcome.OK))
    m.observe_poll(report("B", Outcome.HTTP_ERROR, 500))
    m.forget_feed("B")
    got = samples(m)
    assert not any(("feed", "B") in labels for _, labels in got)
    assert got[("aggregator_failing_feeds", ())] == 0
    m.forget_feed("never-seen")  # harmless


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20),  # any feed name: quotes, backslashes, newlines, unicode
            st.sampled_from(list(Outcome)),
            st.one_of(st.none(), st.integers(100, 599)),
            st.integers(0, 5),
        ),
        max_size=15,
    )
)
def test_any_feed_name_renders_parseable_output(polls: list[tuple[str, Outcome, int | None, int]]) -> None:
    m = Metrics()
    for name, outcome, status, inserted in polls:
        m.observe_poll(report(name, outcome, status, inserted=inserted))
    got = samples(m)
    counted = sum(v for (n, _), v in got.items() if n == "aggregator_polls_total")
    assert counted == len(polls)
    assert got.get(("aggregator_entries_total", (("change", "inserted"),)), 0) == sum(p[3] for p in polls)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["A", "B", 'q"uote', "a\\b"]),
                st.sampled_from(list(Outcome)),
                st.one_of(st.none(), st.sampled_from([200, 304, 404, 418, 503])),
                st.floats(0, 2e9),
            ),
            st.tuples(st.just("forget"), st.sampled_from(["A", "B", 'q"uote', "a\\b", "never"])),
        ),
        max_size=30,
    )
)
def test_per_feed_series_follow_every_poll_and_forget(steps: list[tuple[object, ...]]) -> None:
    """The per-feed series (kept as plain numbers, made into families when read) against a
    model of what each poll and each removal of a feed means."""
    m = Metrics()
    polls: dict[tuple[str, str, str], int] = {}
    errors: dict[str, int] = {}
    last_ok: dict[str, float] = {}
    failed = {Outcome.HTTP_ERROR, Outcome.NETWORK_ERROR, Outcome.TOO_LARGE, Outcome.NOT_A_FEED,
              Outcome.STORE_ERROR, Outcome.INTERNAL_ERROR}  # fmt: skip
    for step in steps:
        if step[0] == "forget":
            name = str(step[1])
            m.forget_feed(name)
            errors.pop(name, None)
            last_ok.pop(name, None)
            polls = {k: v for k, v in polls.items() if k[0] != name}
            continue
        name, outcome, status, now = step
        assert isinstance(name, str) and isinstance(outcome, Outcome) and isinstance(now, float)
        m.observe_poll(report(name, outcome, status), now=now)  # type: ignore[arg-type]
        key = (name, outcome.value, "none" if status is None else str(status))
        polls[key] = polls.get(key, 0) + 1
        errors[name] = errors.get(name, 0) + 1 if outcome in failed else 0
        if outcome in (Outcome.OK, Outcome.NOT_MODIFIED):
            last_ok[name] = now
    got = samples(m)
    assert {
        (lab["feed"], lab["outcome"], lab["status"]): v
        for (n, labels), v in got.items()
        if n == "aggregator_polls_total" and (lab := dict(labels))
    } == polls
    per_feed = {
        (n, dict(labels)["feed"]): v
        for (n, labels), v in got.items()
        if n in ("aggregator_feed_consecutive_errors", "aggregator_last_successful_poll_timestamp_seconds")
    }
    assert per_feed == {("aggregator_feed_consecutive_errors", k): v for k, v in errors.items()} | {
        ("aggregator_last_successful_poll_timestamp_seconds", k): v for k, v in last_ok.items()
    }
    assert got[("aggregator_failing_feeds", ())] == sum(1 for n in errors.values() if n)


def test_metrics_read_while_polls_are_counted() -> None:
    """/metrics is read on the server's thread while the poll thread counts: every read is
    whole (parseable) and nothing is lost."""
    m = Metrics()
    stop = threading.Event()
    reads = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                reads.append(sum(v for (n, _), v in samples(m).items() if n == "aggregator_polls_total"))
        except BaseException as e:  # a read that broke (a dict changed while read) fails the test
            errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    kept: dict[str, int] = {}
    try:
        for i in range(3000):
            name = f"feed {i % 500}"
            m.observe_poll(report(name, Outcome.OK), now=float(i))
            kept[name] = kept.get(name, 0) + 1
            if i % 700 == 0:
                m.forget_feed(name)
                del kept[name]
    finally:
        stop.set()
        reader.join(30)
    assert reads and not reader.is_alive() and not errors, errors
    assert sum(v for (n, _), v in samples(m).items() if n == "aggregator_polls_total") == sum(kept.values())


def test_module_functions_share_one_registry() -> None:
    before = samples(metrics_module.METRICS).get(("aggregator_publish_files_written_total", ()), 0)
    metrics_module.observe_publish(0.1, 3)
    metrics_module.observe_poll(report("shared", Outcome.OK))
    data, _ = metrics_module.render()
    assert b'aggregator_polls_total{feed="shared",outcome="ok",status="200"} 1.0' in data
    after = samples(metrics_module.METRICS)[("aggregator_publish_files_written_total", ())]
    assert after == before + 3


def test_poll_errors_are_counted_by_kind_without_a_feed_label() -> None:
    m = Metrics()
    refused = "could not connect: connection refused (ECONNREFUSED)"
    for name in ("A", "B"):
        m.observe_poll(PollReport(f"https://x.org/{name}", name, Outcome.NETWORK_ERROR, None, refused))
    m.observe_poll(PollReport("https://x.org/C", "C", Outcome.HTTP_ERROR, 404, "HTTP 404 Not Found"))
    m.observe_poll(
        PollReport("https://x.org/D", "D", Outcome.NOT_A_FEED, 200, "the server sent an empty body")
    )
    m.observe_poll(report("E", Outcome.OK))  # no error, no kind
    got = samples(m)
    errors = {
        dict(labels)["kind"]: v for (n, labels), v in got.items() if n == "aggregator_poll_errors_total"
    }
    assert errors == {"ECONNREFUSED": 2, "http_404": 1, "not_a_feed": 1}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([o for o in Outcome if o not in (Outcome.OK, Outcome.NOT_MODIFIED)]),
            st.one_of(st.none(), st.integers(100, 599)),
            st.text(max_size=60),  # any words, from any version of the program
        ),
        max_size=20,
    )
)
def test_error_kind_labels_stay_in_the_closed_vocabulary(
    polls: list[tuple[Outcome, int | None, str]],
) -> None:
    m = Metrics()
    for outcome, status, words in polls:
        m.observe_poll(PollReport("https://x.org/f", "f", outcome, status, words))
    got = samples(m)
    kinds = [dict(labels)["kind"] for (n, labels), _ in got.items() if n == "aggregator_poll_errors_total"]
    assert set(kinds) <= KINDS
    assert sum(v for (n, _), v in got.items() if n == "aggregator_poll_errors_total") == len(polls)


def test_the_readme_documents_every_metric() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}" in readme, name


def test_every_failed_outcome_counts_as_failing() -> None:
    """A poll that could not be stored (disk full) or met a fault of ours failed as surely as a
    404: pipeline.py counts it in the feed's error count, and so must the gauges."""
    failed = {o for o in Outcome if o not in (Outcome.OK, Outcome.NOT_MODIFIED, Outcome.GONE)}
    m = Metrics()
    for outcome in sorted(failed):
        m.observe_poll(report(f"feed {outcome.value}", outcome, None))
    got = samples(m)
    assert got[("aggregator_failing_feeds", ())] == len(failed)
    for outcome in failed:
        assert got[("aggregator_feed_consecutive_errors", (("feed", f"feed {outcome.value}"),))] == 1
