"""The site's settings as plain data (`Site`), and a snapshot of them kept in the data
directory, so that a command that only shows pages (`aggregator frontpage`) reads them
without the YAML reader or pydantic while feeds.yaml is unchanged (issue 15: `frontpage`
<= 3x a plain sqlite3 page; importing pydantic and validating took over half its time).

Nothing here validates. `config.SiteModel` validates feeds.yaml's `site:` (each field's
rule, default and reason are written there) and makes a `Site`; a snapshot holds only what
that validation made, keyed by the exact bytes of the feeds.yaml it was made from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

SNAPSHOT = "site-settings.json"  # in the data directory
# The code whose rules make a Site: a snapshot made by other code is not used (an upgrade or
# an edit of the rules validates feeds.yaml again, with no version number to remember). The
# libraries the rules call (pydantic's URL form, babel's locales, the zone database) are
# not in the key: reading their versions would cost what the snapshot saves, and what they
# decide about a valid file (a URL's normal form, that a zone exists) is stable across
# their releases.
_RULES = ("config.py", "settings.py")


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    """feeds.yaml's `site:`, validated (`config.SiteModel`, which documents each field). URLs
    are absolute http(s) URLs as text; `languages` are primary language subtags in page
    order (at least one); `locales` maps a language to a babel locale name."""

    title: str
    link: str
    base_url: str
    timezone: str  # an IANA name that zoneinfo knows
    languages: list[str]
    entries_per_feed: int
    lede_length: int  # characters
    frontpage_per_language: int
    entries_per_page: int
    locales: dict[str, str]
    translation_patterns: list[str]  # regular expressions with a group named `key`
    websub_hub: str | None
    icon: str | None
    logo: str | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _key(source: bytes) -> str:
    """What a snapshot must have been made from: these bytes of feeds.yaml, by this code."""
    digest = hashlib.sha256(source)
    here = Path(__file__).parent
    for name in _RULES:
        digest.update(b"\0" + (here / name).read_bytes())
    return digest.hexdigest()


def read_snapshot(data_dir: Path, source: bytes) -> Site | None:
    """The `Site` validated from a feeds.yaml whose bytes were `source`, when `data_dir` holds
    a snapshot of it (made by `write_snapshot` from the same bytes, by the same code of
    `config.py` and this module); else None: no snapshot, another file's or code's, or one
    that cannot be read."""
    try:
        data = json.loads((data_dir / SNAPSHOT).read_bytes())
        if data.get("key") != _key(source):
            return None
        return Site(**data["site"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_snapshot(data_dir: Path, source: bytes, site: Site) -> None:
    """Keep `site`, validated from feeds.yaml bytes `source`, for `read_snapshot`. Written to
    a temporary file and renamed over the old one, so a reader sees one whole snapshot or the
    other. Best effort: where `data_dir` is missing or read-only nothing is kept (a later
    command validates feeds.yaml again, which costs time, never correctness)."""
    import tempfile  # here: a read (the common case) does not pay for it

    if not data_dir.is_dir():
        return
    try:
        text = json.dumps({"key": _key(source), "site": dataclasses.asdict(site)}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".site-settings.", dir=data_dir)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, data_dir / SNAPSHOT)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
