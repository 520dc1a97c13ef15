"""A real browser renders the combined front page: headless Chromium (Debian's) screenshots the
seed day with all five seed languages and an Urdu (right-to-left) section, served by
`aggregator serve` on 127.0.0.1, at desktop and phone widths. The PNGs are kept under
test-artifacts/ (ignored by git) for a person to look at.

Needs /usr/bin/chromium and fonts for Cyrillic and Arabic script (`.ci/run` installs
chromium, fonts-noto-core and fonts-dejavu-core).
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx
import pytest

from aggregator.config import load_config
from aggregator.store import SQLiteStore
from tests.conftest import ROOT, run_cli
from tests.feedserver import FeedServer
from tests.test_end_to_end import serve_seed, write_config
from tests.test_pages import TODAY, build_pages

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
URDU = ROOT / "tests" / "fixtures" / "corpus" / "bbcurdu-pakistan.xml"

pytestmark = pytest.mark.slow


def urdu_feed_on_seed_day() -> bytes:
    """The real BBC Urdu feed, its first four items re-dated to the seed day (17 January 2023,
    the first at 16:51 GMT as in the field report) and the rest to the day before."""
    count = 0

    def redate(_m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        if count <= 4:
            return f"<pubDate>Tue, 17 Jan 2023 {17 - count}:51:00 GMT</pubDate>"
        return f"<pubDate>Mon, 16 Jan 2023 {count % 24:02d}:10:00 GMT</pubDate>"

    text = URDU.read_text(encoding="utf-8")
    return re.sub(r"<pubDate>[^<]*</pubDate>", redate, text).encode()


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA, non-interlaced PNG
    (what Chromium writes). PNG spec sections 11.2.2 (IHDR), 9 (filters). Raises ValueError."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", 0
    height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ftype == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def ink(rows: list[bytes], width: int, bpp: int, x0: float = 0.0, x1: float = 1.0) -> float:
    """Share of pixels between x0 and x1 (fractions of the width) that are not near-white."""
    lo, hi = int(width * x0), int(width * x1)
    dark = total = 0
    for row in rows:
        for x in range(lo, hi):
            r, g, b = row[x * bpp], row[x * bpp + 1], row[x * bpp + 2]
            total += 1
            dark += r + g + b < 600
    return dark / total if total else 0.0


def screenshot(url: str, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars", "--force-device-scale-factor=1",
             f"--window-size={width},{height}", f"--screenshot={out}", url],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_combined_page_renders_in_chromium(tmp_path: Path, feed_server: FeedServer) -> None:
    for lang in ("ru", "ur"):  # no tofu: a font for each script is installed
        fonts = subprocess.run(["fc-list", f":lang={lang}", "family"], capture_output=True, text=True)
        assert fonts.stdout.strip(), f"no font for {lang}: install fonts-noto-core"
    serve_seed(feed_server)
    urdu = feed_server.add("/ur.xml", urdu_feed_on_seed_day(), "application/rss+xml")
    config_path = write_config(tmp_path / "feeds.yaml", feed_server, [(urdu, "BBC Urdu", "ur")])
    text = config_path.read_text(encoding="utf-8").replace("[en, es, it, fr, ru]", "[en, es, it, fr, ru, ur]")
    config_path.write_text(text, encoding="utf-8")
    data = tmp_path / "data"
    assert run_cli("fetch", "--no-publish", config=config_path, data=data).returncode == 0
    store = SQLiteStore(data / "aggregator.db")
    try:
        outputs = build_pages(store, load_config(config_path), TODAY)
    finally:
        store.close()
    for rel, body in outputs.items():
        (data / "public" / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / "public" / rel).write_bytes(body)
    page = outputs["archive/2023/01/17/all.html"].decode()
    for code in ("en", "es", "it", "fr", "ru"):
        assert f'<section lang="{code}" dir="ltr">' in page
    assert '<section lang="ur" dir="rtl">' in page and ">16:51 GMT</time></bdi> · via <bdi>BBC Urdu" in page

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), "--data", str(data),
         "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/archive/2023/01/17/all.html"
        assert httpx.get(url, timeout=5).status_code == 200
        ARTIFACTS.mkdir(exist_ok=True)
        shots = {"desktop": (1280, 2800), "phone": (412, 1800)}
        for name, (width, height) in shots.items():
            out = tmp_path / f"frontpage-{name}.png"
            screenshot(url, out, width, height)
            shutil.copyfile(out, ARTIFACTS / out.name)
            png = out.read_bytes()
            assert 20_000 < len(png) < 5_000_000, (name, len(png))
            w, h, rows = read_png(png)
            assert (w, h) == (width, height)
            bpp = len(rows[0]) // w
            covered = ink(rows[::4], w, bpp)  # every fourth row is plenty to tell text from blank
            assert 0.01 < covered < 0.5, (name, covered)
    finally:
        server.terminate()
        server.wait(timeout=10)
