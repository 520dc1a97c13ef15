"""A feed's private address (user:password@, ?token=, ?key=) is never published (issue 12,
"Links and URLs"): not in any output file of any kind, while the feed is polled with it and
`export-opml`, which is for the operator, keeps it. The real program on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.feedserver import FeedServer
from tests.test_containment_poll import rss

pytestmark = pytest.mark.slow

SECRETS = ("hunter2", "s3cr3t-tok", "k3y-v4lue", "reader:")


def test_credentials_and_tokens_in_feed_urls_reach_no_output(tmp_path: Path, feed_server: FeedServer) -> None:
    plain = feed_server.add("/private.rss?token=s3cr3t-tok&edition=en&key=k3y-v4lue", rss("Private one"))
    private = plain.replace("http://", "http://reader:hunter2@", 1)
    failing = feed_server.url("/gone.rss?token=s3cr3t-tok").replace("http://", "http://reader:hunter2@", 1)
    config = tmp_path / "feeds.yaml"
    # Unnamed feeds: their URL would be their name on pages, in feeds and in logs.
    config.write_text(
        f"site:\n  languages: [en]\nfeeds:\n  - url: '{private}'\n    language: en\n"
        f"  - url: '{failing}'\n    language: en\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    result = run_cli("fetch", config=config, data=data)
    assert result.returncode == 0, result.stderr
    public = data / "public"
    files = [p for p in public.rglob("*") if p.is_file()]
    assert len(files) > 20
    assert "Private one" in (public / "feeds" / "all.atom").read_text(encoding="utf-8")
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in SECRETS:
            assert secret not in text, (path.relative_to(public), secret)
    assert "private.rss?edition=en" in (public / "sources.opml").read_text(encoding="utf-8")
    for secret in SECRETS[:3]:
        assert secret not in result.stdout  # the summary names feeds by their public address
    exported = run_cli("export-opml", config=config, data=data)
    assert exported.returncode == 0 and "s3cr3t-tok" in exported.stdout  # the operator's own copy
