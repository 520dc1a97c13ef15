#!/usr/bin/env python3
"""A fast loopback feed server for bench/poll_bench.py: N distinct small RSS feeds.

Raw asyncio (no framework), HTTP/1.1 keep-alive, one pre-built answer per feed with an
ETag, and a 304 when If-None-Match matches. It binds 127.0.0.1 on a free port, prints the
port on stdout, and stops by itself after --lifetime seconds (or when its parent closes
stdin), so a crashed benchmark never leaves it behind.

    python bench/poll_server.py --feeds 2000 [--items 5] [--lifetime 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import ClassVar

MAX_HEAD = 16 * 1024


def feed_body(n: int, items: int) -> bytes:
    base = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    entries = "".join(
        f"<item><title>Feed {n} story {k}: something happened today</title>"
        f"<link>https://bench{n}.example/story/{k}</link><guid>https://bench{n}.example/story/{k}</guid>"
        f"<pubDate>{format_datetime(base - timedelta(hours=k + n % 24), usegmt=True)}</pubDate>"
        f"<description>Story {k} of feed {n}, a short summary of a few words.</description></item>\n"
        for k in range(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Bench feed {n}</title><link>https://bench{n}.example/</link>"
        f"<description>Feed {n}</description>\n{entries}</channel></rss>\n"
    ).encode()


def build_answers(feeds: int, items: int) -> dict[bytes, tuple[bytes, bytes, bytes]]:
    """path -> (ETag, full 200 answer, 304 answer)."""
    answers = {}
    for n in range(feeds):
        body = feed_body(n, items)
        etag = f'"bench-{n}-v1"'.encode()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
            b"ETag: " + etag + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        not_modified = b"HTTP/1.1 304 Not Modified\r\nETag: " + etag + b"\r\n\r\n"
        answers[f"/feed/{n}.xml".encode()] = (etag, head + body, not_modified)
    return answers


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class FeedProtocol(asyncio.Protocol):
    answers: ClassVar[dict[bytes, tuple[bytes, bytes, bytes]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:  # bounded by the buffer: each pass consumes a request
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            answer = self.answers.get(parts[1]) if len(parts) == 3 else None
            if answer is None:
                self.transport.write(NOT_FOUND)
                continue
            etag, full, not_modified = answer
            match = next(
                (line[14:].strip() for line in lines[1:] if line[:14].lower() == b"if-none-match:"), None
            )
            self.transport.write(not_modified if match == etag else full)
        if len(self.buffer) > MAX_HEAD:
            self.transport.close()


async def serve(feeds: int, items: int, lifetime: float) -> None:
    FeedProtocol.answers = build_answers(feeds, items)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FeedProtocol, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    parent_gone = asyncio.Event()

    def watch_stdin() -> None:  # EOF on stdin: the parent closed it, or died
        sys.stdin.read()
        loop.call_soon_threadsafe(parent_gone.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(parent_gone.wait(), timeout=lifetime)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args()
    asyncio.run(serve(args.feeds, args.items, args.lifetime))


if __name__ == "__main__":
    main()
