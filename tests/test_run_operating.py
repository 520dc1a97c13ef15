"""`aggregator run` for operators and subscribers: the WebSub hub hears of every feed a publish
changed (and the feeds advertise it), and `/metrics` counts polls and publishes. The real
program against a feed world and a hub on 127.0.0.1; every wait bounded."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service_kit import FeedWorld, RunningService
from tests.test_websub import Hub

pytestmark = pytest.mark.slow


def test_run_pings_the_hub_advertises_it_and_counts_in_metrics(tmp_path: Path, store_url: str | None) -> None:
    hub = Hub()
    try:
        with FeedWorld(3) as world:
            config = world.config(tmp_path / "feeds.yaml")
            text = config.read_text(encoding="utf-8")
            config.write_text(
                text.replace("site:\n", f"site:\n  websub_hub: {hub.url}\n", 1), encoding="utf-8"
            )
            with RunningService(config, tmp_path / "data", tmp_path / "run.log") as service:
                assert service.wait_for(lambda: "story" in service.get("/feeds/all.rss").text, 40), (
                    service.output
                )
                topics = lambda: {u for _, form in hub.pings for u in form.get("hub.url", [])}  # noqa: E731
                assert service.wait_for(lambda: any(t.endswith("/feeds/all.atom") for t in topics()), 40), (
                    hub.pings,
                    service.output,
                )
                assert all(form.get("hub.mode") == ["publish"] for _, form in hub.pings)
                assert not any(t.endswith((".html", ".txt", ".opml")) for t in topics())  # feeds only
                assert f'href="{hub.url}" rel="hub"' in service.get("/feeds/all.atom").text
                assert hub.url in service.get("/feeds/all.rss").text
                assert '"hubs"' in service.get("/feeds/all.json").text

                def ok_polls() -> float:
                    r = service.get("/metrics")
                    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
                    samples = [s for f in text_string_to_metric_families(r.text) for s in f.samples]
                    return sum(
                        s.value
                        for s in samples
                        if s.name == "aggregator_polls_total" and s.labels["outcome"] == "ok"
                    )

                assert service.wait_for(lambda: ok_polls() >= 3, 40), service.get("/metrics").text
                families = {f.name: f for f in text_string_to_metric_families(service.get("/metrics").text)}
                [published] = families["aggregator_last_publish_timestamp_seconds"].samples
                assert published.value > 0
                code, seconds = service.stop(signal.SIGTERM)
                assert code == 0 and seconds < 10
    finally:
        hub.stop()
