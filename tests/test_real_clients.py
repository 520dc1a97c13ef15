"""Issue 14, "Real clients": one `aggregator run` on 127.0.0.1 against fixture feeds, used the
way subscribers and operators use it, start to finish: every output 200, then 304 on its
validators and gzip when asked; newsboat subscribes to /feeds/all.atom and lists the entries;
feeds.yaml is edited (a feed added, then a broken edit) and the new feed is polled without a
restart while the broken edit is reported and ignored; the WebSub hub hears of the changed
feeds; /metrics parses with prometheus-client's parser; SIGTERM exits 0 within 10 s and leaves
no partial file. Loopback only; every wait bounded."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service_kit import FeedWorld, RunningService, check_outputs, temp_files
from tests.test_newsboat import NEWSBOAT, read_with_newsboat
from tests.test_websub import Hub

pytestmark = pytest.mark.slow


def _config(world: FeedWorld, numbers: list[int], hub: str) -> str:
    lines = ["site:", "  title: Real clients", "  timezone: UTC", "  languages: [en]", f"  websub_hub: {hub}",
             "defaults:", "  interval: 2s", "  min_interval: 1s", "feeds:"]  # fmt: skip
    for n in numbers:
        lines += [f"  - url: {world.url(n)}", f"    name: World {n}", "    language: en"]
    return "\n".join(lines) + "\n"


def _save(path: Path, text: str) -> None:
    tmp = path.with_suffix(".swp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@pytest.mark.skipif(NEWSBOAT is None, reason="NEWSBOAT NOT INSTALLED: `bash .ci/run` installs it")
def test_subscribers_and_operators_end_to_end(tmp_path: Path, store_url: str | None) -> None:
    hub = Hub()
    try:
        with FeedWorld(3) as world:
            config = tmp_path / "feeds.yaml"
            _save(config, _config(world, [0, 1], hub.url))
            data = tmp_path / "data"
            with RunningService(config, data, tmp_path / "run.log") as service:
                both = lambda: all(f"Feed {n} story" in service.get("/feeds/all.atom").text for n in (0, 1))  # noqa: E731
                assert service.wait_for(both, 40), service.output  # first polls spread over 10 s
                public = data / "public"
                files = sorted(p.relative_to(public).as_posix() for p in public.rglob("*") if p.is_file())
                assert len(files) > 20
                with httpx.Client(base_url=service.base, timeout=10) as client:
                    for rel in files:  # every output: 200, then 304 on its validators
                        first = client.get("/" + rel, headers={"Accept-Encoding": "identity"})
                        assert first.status_code == 200, rel
                        again = client.get(
                            "/" + rel,
                            headers={"Accept-Encoding": "identity", "If-None-Match": first.headers["etag"]},
                        )
                        assert again.status_code == 304, rel
                    zipped = client.get("/feeds/all.atom", headers={"Accept-Encoding": "gzip"})
                    assert zipped.headers["content-encoding"] == "gzip"
                    assert "accept-encoding" in zipped.headers["vary"].lower()
                    assert zipped.text == client.get("/feeds/all.atom").text  # same bytes, decoded

                items = read_with_newsboat(tmp_path, service.base + "/feeds/all.atom")
                titles = {i[0] for i in items}
                assert any("Feed 0 story" in t for t in titles) and any("Feed 1 story" in t for t in titles)
                assert all(i[1].startswith("https://world") for i in items)  # links are the articles

                _save(config, _config(world, [0, 1, 2], hub.url))  # a feed added, no restart
                assert service.wait_for(lambda: world.hits.get("/feed/2.xml", 0) >= 1, 20), service.output
                _save(config, _config(world, [0, 1, 2], hub.url).replace("interval: 2s", "interval: fast"))
                assert service.wait_for(lambda: "not reloaded" in service.output, 20), service.output
                assert "defaults.interval" in service.output
                polls = world.hits.get("/feed/2.xml", 0)
                assert service.wait_for(lambda: world.hits.get("/feed/2.xml", 0) > polls, 20)  # still on

                topics = {u for _, form in hub.pings for u in form.get("hub.url", [])}
                assert any(t.endswith("/feeds/all.atom") for t in topics), hub.pings
                families = {f.name for f in text_string_to_metric_families(service.get("/metrics").text)}
                assert {"aggregator_polls", "aggregator_publish_duration_seconds"} <= families

                time.sleep(1)
                code, seconds = service.stop(signal.SIGTERM)
                assert code == 0 and seconds < 10, service.output
            assert temp_files(public) == [] and check_outputs(public) == []
            assert "Traceback" not in service.output
    finally:
        hub.stop()
