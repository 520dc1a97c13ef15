from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.normalise import canonical_url, normalise_title, trusted_date

NOW = datetime(2023, 1, 17, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://example.org/a", "https://www.example.org/a/"),
        ("https://Example.ORG:443/a#frag", "https://example.org/a"),
        ("http://example.org:80/a", "https://example.org/a"),
        ("https://example.org/a?b=2&a=1", "https://example.org/a?a=1&b=2"),
        ("https://example.org/a?utm_source=x&utm_campaign=y&fbclid=z&gclid=q&mc_cid=1&mc_eid=2",
         "https://example.org/a"),
    ],
)  # fmt: skip
def test_canonical_url_equivalences(a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.org/a", "https://example.org/b"),
        ("https://example.org/a?id=1", "https://example.org/a?id=2"),
        ("https://example.org:8080/a", "https://example.org/a"),
        ("https://example.org/A", "https://example.org/a"),  # paths are case-sensitive
    ],
)
def test_canonical_url_keeps_what_identifies(a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b)


def test_canonical_url_odd_input() -> None:
    assert canonical_url(None) is None and canonical_url("") is None
    assert canonical_url("tag:example.org,2023:1") == "tag:example.org,2023:1"
    assert canonical_url("http://[::1") == "http://[::1"


def test_normalise_title() -> None:
    assert normalise_title("Perù – Il movimento!") == "peru il movimento"
    assert normalise_title("  Борьба  Ленина ") == "борьба ленина"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, NOW),
        (datetime(1, 1, 1, tzinfo=UTC), NOW),
        (datetime(9999, 12, 31, tzinfo=UTC), NOW),
        (NOW + timedelta(days=3), NOW),
        (NOW + timedelta(hours=20), NOW + timedelta(hours=20)),
        (NOW - timedelta(days=400), NOW - timedelta(days=400)),
    ],
)
def test_trusted_date(value: datetime | None, expected: datetime) -> None:
    assert trusted_date(value, NOW) == expected
