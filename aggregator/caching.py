"""How long caches may keep what `serve` and `run` publish (RFC 9111 5.2.2.1 `max-age`), worked
out from the configuration alone: for the HTTP server (serve.py), for `aggregator status` (which
prints the value, so an nginx or CDN in front can be given the same one: deploy/nginx.conf) and
for tests. Pure, and cheap to import (no HTTP server modules).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from .config import Config

# Cache-Control (RFC 9111 5.2.2.1): caches may keep a response as long as a feed is not polled
# again, i.e. the shortest configured poll interval, within these bounds.
MIN_MAX_AGE = 60
MAX_MAX_AGE = 15 * 60
DEFAULT_MAX_AGE = 300  # `serve` without a configuration (the default poll interval is 15 min)
ARCHIVE_MAX_AGE = 86400  # a day archive of a day before today changes only if a late entry arrives
ARCHIVE_DAY = re.compile(r"archive/(\d{4})/(\d{2})/(\d{2})/")


def cache_max_age(config: Config | None) -> int:
    """`max-age` in seconds for published files: the shortest poll interval of the enabled feeds
    (`auto` counts as its `min_interval`), held within MIN_MAX_AGE..MAX_MAX_AGE; DEFAULT_MAX_AGE
    without a configuration. A cache then never keeps a file past the next poll by much."""
    if config is None:
        return DEFAULT_MAX_AGE
    seconds: list[float] = []
    for feed in config.feeds:
        if not feed.enabled:
            continue
        interval = config.interval_for(feed)
        if interval == "auto":
            interval = feed.min_interval or config.defaults.min_interval
        seconds.append(interval.total_seconds())
    if not seconds:
        default = config.defaults.interval
        seconds.append((config.defaults.min_interval if default == "auto" else default).total_seconds())
    return int(max(MIN_MAX_AGE, min(MAX_MAX_AGE, min(seconds))))


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Cache-Control per published path: `max_age` seconds, and ARCHIVE_MAX_AGE for a day archive
    (`archive/YYYY/MM/DD/…`) of a day before today in `timezone` (without one: before today in
    every zone, UTC-12), which a new poll almost never changes."""

    max_age: int = DEFAULT_MAX_AGE
    timezone: ZoneInfo | None = None

    @classmethod
    def from_config(cls, config: Config | None) -> CachePolicy:
        """The policy of a configuration (`site.timezone`, the feeds' poll intervals)."""
        if config is None:
            return cls()
        return cls(cache_max_age(config), ZoneInfo(config.site.timezone))

    def today(self) -> date:
        """Today in the site's zone; without one, the earliest date any zone has now."""
        if self.timezone is None:
            return (datetime.now(UTC) - timedelta(hours=12)).date()
        return datetime.now(self.timezone).date()

    def cache_control(self, rel: str) -> str:
        """The Cache-Control value for the published file at `rel` (relative, '/'-separated)."""
        m = ARCHIVE_DAY.match(rel)
        if m is not None:
            with contextlib.suppress(ValueError):
                if date(int(m[1]), int(m[2]), int(m[3])) < self.today():
                    return f"public, max-age={ARCHIVE_MAX_AGE}"
        return f"public, max-age={self.max_age}"
