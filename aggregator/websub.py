"""WebSub publishing: tell the hub which of our feeds changed, so subscribers get them at once.

W3C WebSub (https://www.w3.org/TR/websub/) leaves how a publisher notifies its hub to the
hub; every public hub (Google's, Superfeedr, WebSubHub, Switchboard) takes the PubSubHubbub
0.4 form: `POST hub` with `application/x-www-form-urlencoded` body `hub.mode=publish` and
`hub.url=<topic>` (PubSubHubbub Core 0.4 §7.1), answered with a 2xx. One request per
changed feed URL, all at once.

`ping` never raises and never takes longer than its timeout: a slow or broken hub must not
delay publishing (the caller may also run it as a background task). Not wired into the
service here: `schedule.py` calls it after a publish with the URLs of the feeds that changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0  # seconds for all the pings of one publish together


@dataclass(frozen=True, slots=True)
class PingResult:
    """How the hub answered the ping for one topic URL."""

    url: str  # the feed (topic) the hub was told about
    status: int | None  # the hub's HTTP status; None when it gave no answer
    error: str | None  # words for an operator when the hub did not accept the ping

    @property
    def ok(self) -> bool:
        return self.error is None


async def _one(client: httpx.AsyncClient, hub: str, url: str) -> PingResult:
    try:
        response = await client.post(hub, data={"hub.mode": "publish", "hub.url": url})
    except httpx.HTTPError as e:
        return PingResult(url, None, f"hub {hub} not reached: {type(e).__name__}: {e}".rstrip(": "))
    if 200 <= response.status_code < 300:
        return PingResult(url, response.status_code, None)
    text = response.text[:200].strip()
    error = f"hub {hub} answered HTTP {response.status_code}" + (f": {text}" if text else "")
    return PingResult(url, response.status_code, error)


async def ping(
    hub: str, urls: Sequence[str], client: httpx.AsyncClient, timeout: float = DEFAULT_TIMEOUT
) -> list[PingResult]:
    """Send `hub.mode=publish` to `hub` for each of `urls`; one PingResult per URL, in order.

    `timeout` (seconds) bounds the whole call; pings still unanswered then are abandoned and
    reported as such. Never raises (except for cancellation of the caller); failures are
    logged once each at WARNING and returned.
    """
    urls = list(dict.fromkeys(urls))
    if not urls:
        return []
    tasks = [asyncio.ensure_future(_one(client, hub, url)) for url in urls]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    results = []
    for url, task in zip(urls, tasks, strict=True):
        exc = task.exception() if task in done and not task.cancelled() else None
        if task not in done or task.cancelled():
            results.append(PingResult(url, None, f"hub {hub} did not answer within {timeout:g} s"))
        elif exc is not None:  # _one catches httpx's errors; anything else is still only logged
            results.append(PingResult(url, None, f"hub {hub}: {type(exc).__name__}: {exc}"))
        else:
            results.append(task.result())
    for result in results:
        if result.error:
            log.warning("WebSub ping for %s failed: %s", result.url, result.error)
    return results
