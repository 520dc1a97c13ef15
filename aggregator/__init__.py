"""aggregator: poll multilingual feeds, store every entry once, republish daily front pages.

The public surface is small; everything else is free to change. Its names are loaded on
first use (PEP 562 module `__getattr__`): `import aggregator.X` must not pay for the parser
(feedparser, ftfy) or pydantic when X needs neither, so that light commands such as
`aggregator frontpage` start fast (issue 15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_names

if TYPE_CHECKING:
    from .config import Config, ConfigError, load_config
    from .models import FetchResult, NotAFeed, ParsedEntry, ParsedFeed, PollReport, StoredEntry
    from .parse import parse_feed

# Public name -> the submodule that defines it.
_PUBLIC = {
    "Config": "config",
    "ConfigError": "config",
    "load_config": "config",
    "FetchResult": "models",
    "ParsedEntry": "models",
    "ParsedFeed": "models",
    "PollReport": "models",
    "StoredEntry": "models",
    "NotAFeed": "models",
    "parse_feed": "parse",
}

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


__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, globals(), __all__)
