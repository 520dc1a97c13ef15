"""Logging for operators: what each verbosity shows, and one JSON object per line for log
shippers. Configured once, by the `aggregator` command, before any other work.

Verbosity (README "Logs"):
- 0 (default): one line per failing poll, per publish and per problem; nothing per request.
- 1 (`-v`): also one line per poll.
- 2 (`-vv`): also one line per HTTP request (httpx) and the libraries' own INFO lines.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Libraries that would log a line per request or per job at INFO.
CHATTY = ("httpx", "httpcore", "apscheduler", "uvicorn.access", "procrastinate")
# The LogRecord attributes every record has; anything else was passed as `extra=` and is data.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: `time` (RFC 3339, UTC), `level`, `logger`, `message`, the
    exception text as `error_trace` when there is one, and every `extra=` field as is (values
    JSON cannot hold become strings)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["error_trace"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure(verbosity: int, fmt: str = "text") -> None:
    """Set levels and the format on the root logger (idempotent: handlers are replaced).
    `verbosity` 0, 1 or 2+ as in the module docstring; `fmt` "text" or "json"."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbosity >= 2 else logging.WARNING)
    ours = logging.getLogger("aggregator")
    ours.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    # Polls that went well are INFO in aggregator.poll: shown from -v on; failures are WARNING.
    logging.getLogger("aggregator.poll").setLevel(logging.INFO if verbosity >= 1 else logging.WARNING)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.INFO if verbosity >= 2 else logging.WARNING)
