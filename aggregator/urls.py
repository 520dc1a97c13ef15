"""URL helpers shared by the stages that read and the stages that publish. Pure."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry credentials: never published (issue 12, "Links and URLs").
SECRET_PARAMS = {
    "token", "access_token", "auth", "auth_token", "key", "api_key", "apikey", "password",
    "passwd", "pass", "secret", "client_secret", "sig", "signature", "session", "sessionid",
}  # fmt: skip


def strip_secrets(url: str) -> str:
    """`url` without user:password@ and without credential parameters (`?token=`, `?key=`,
    SECRET_PARAMS): a feed's private address must not be republished. Other parts unchanged."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc and host:
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if k.lower() not in SECRET_PARAMS]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
