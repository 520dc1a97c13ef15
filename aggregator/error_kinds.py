"""The kind of a failed poll as data: a short name from a closed vocabulary, for `status
--json`, `/metrics` and JSON logs, beside the error in words that pages and logs show.

Pure: the kind is derived from what the store already keeps of every poll (its outcome, HTTP
status and error text), so it needs no column of its own and a later process reads the same
kind from the same row. The error texts have stable shapes, made in `fetch.py` (network,
HTTP, redirects, limits), `parse.py` (not a feed) and `pipeline.py` (store, internal); tests
check every one of them (tests/test_error_kinds.py).

The vocabulary (README "Monitoring"), so that a metric label stays bounded:

- the system's error names, kept as they are for searching: `EAI_NONAME`, `EAI_AGAIN`,
  `EAI_NODATA` (the host name could not be resolved), `ECONNREFUSED`, `ECONNRESET`,
  `EHOSTUNREACH`, `ENETUNREACH`, `ETIMEDOUT`, `ECONNABORTED`;
- `timeout` (the poll's deadline, or the server stopped answering), `tls` (handshake or
  certificate), `protocol` (the server broke HTTP), `connection` (any other transport failure),
  `encoding` (a Content-Encoding that could not be undone), `bad_url`;
- `http_NNN` for an error status (`http_404`, `http_503`; `http_other` outside 100-599),
  `gone` (410), `redirect` (loop, too many, invalid or non-HTTP target), `ssrf` (a redirect
  to a private address refused);
- `too_large`, `not_a_feed`, `parse_error` (the parser failed on it), `store`, `internal`;
- `other`: a failure whose words none of the above fits (e.g. a row written by an older
  version).
"""

from __future__ import annotations

import errno
import re
import socket
from typing import Final

# The error names fetch.py keeps in brackets after its words ("connection refused
# (ECONNREFUSED)"): exactly the codes of its table of OS and resolver errors.
ERRNO_KINDS: Final = (
    "EAI_NONAME", "EAI_AGAIN", "EAI_NODATA", "ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH",
    "ENETUNREACH", "ETIMEDOUT", "ECONNABORTED",
)  # fmt: skip
# Their numbers on this system, for texts that carry only "[Errno -2]" (a resolver error
# raised while a redirect target is checked).
_EAI_NUMBERS: Final = {
    socket.EAI_NONAME: "EAI_NONAME",
    socket.EAI_AGAIN: "EAI_AGAIN",
    getattr(socket, "EAI_NODATA", -5): "EAI_NODATA",  # fetch.py's fallback number too
}
KINDS: Final = frozenset(
    (
        *ERRNO_KINDS,
        "timeout", "tls", "protocol", "connection", "encoding", "bad_url",
        "gone", "redirect", "ssrf", "http_other",
        "too_large", "not_a_feed", "parse_error", "store", "internal", "other",
    )
) | frozenset(f"http_{code}" for code in range(100, 600))  # fmt: skip

_SUCCESS = {"ok", "not-modified"}
_NAMED = re.compile(r"\((E[A-Z_]+)\)\s*$")
_ERRNO = re.compile(r"\[Errno (-?\d+)\]")
_HTTP = re.compile(r"HTTP (\d{3})\b")
_TLS = re.compile(r"\bTLS\b|\bSSL|certificate", re.IGNORECASE)
_TIMEOUT = ("no complete answer within", "connection timed out", "server stopped answering", "timed out")
_REDIRECT = ("redirect loop", "more than ", "redirect to an invalid URL", "redirect to non-HTTP URL")


def _errno_kind(error: str) -> str | None:
    named = _NAMED.search(error)
    if named and named.group(1) in ERRNO_KINDS:
        return named.group(1)
    found = _ERRNO.search(error)
    if found:
        number = int(found.group(1))
        name = _EAI_NUMBERS.get(number) if number < 0 else errno.errorcode.get(number)
        if name in ERRNO_KINDS:
            return name
    return None


def _network_kind(error: str) -> str:
    """A transport failure's kind from fetch.py's words (`_describe_network_error`, the poll's
    deadline, the SSRF guard and the body decoder)."""
    if error.startswith("refused to follow"):
        return "ssrf"
    if error.startswith("unexpected error while fetching"):
        return "internal"
    named = _errno_kind(error)
    if named:
        return named
    if error.startswith("could not resolve "):
        return "EAI_NONAME"
    if error.startswith(_TIMEOUT):  # before TLS: a handshake that timed out is a timeout
        return "timeout"
    if _TLS.search(error):
        return "tls"
    if error.startswith("server broke the HTTP protocol"):
        return "protocol"
    if error.startswith(("body could not be decompressed", "the server used Content-Encoding")):
        return "encoding"
    if error.startswith("unsupported URL scheme"):
        return "bad_url"
    if error.startswith(("could not connect", "connection broke")):
        return "connection"
    return "other"


def error_kind(outcome: str | None, status: int | None, error: str | None) -> str | None:
    """The kind of a poll's failure, one of KINDS; None for a poll that did not fail.

    `outcome` is the poll's `Outcome` value as stored ("ok", "network-error", ...; any string is
    accepted, an unknown one is read from the words alone), `status` its HTTP status (None
    without an answer) and `error` its error text. Never raises: words this module does not
    know give "other". Example: ("network-error", None, "could not connect: connection refused
    (ECONNREFUSED)") -> "ECONNREFUSED"; ("http-error", 404, "HTTP 404 Not Found") -> "http_404"."""
    text = (error or "").strip()
    if outcome in _SUCCESS or (outcome is None and not text):
        return None
    if outcome == "gone":
        return "gone"
    if outcome == "store-error":
        return "store"
    if outcome == "internal-error":
        return "internal"
    if outcome == "too-large":
        return "too_large"
    if outcome == "not-a-feed":
        return "parse_error" if text.startswith("could not parse") else "not_a_feed"
    if outcome == "http-error" or (outcome != "network-error" and _HTTP.match(text)):
        if text.startswith(_REDIRECT):
            return "redirect"
        if text.startswith(("refused to follow", "could not resolve ")):
            return _network_kind(text)
        if status is not None:
            return f"http_{status}" if 100 <= status <= 599 else "http_other"
        return "other"
    return _network_kind(text)
