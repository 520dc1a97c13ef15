"""aggregator: poll multilingual feeds, store every entry once, republish daily front pages.

The public surface is small; everything else is free to change.
"""

from .config import Config, ConfigError, load_config
from .models import FetchResult, ParsedEntry, ParsedFeed, PollReport, StoredEntry
from .parse import NotAFeed, parse_feed

__all__ = [
    "Config",
    "ConfigError",
    "FetchResult",
    "NotAFeed",
    "ParsedEntry",
    "ParsedFeed",
    "PollReport",
    "StoredEntry",
    "load_config",
    "parse_feed",
]
__version__ = "0.1.0"
