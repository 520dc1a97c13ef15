#!/usr/bin/env python3
"""Serving under load: `aggregator serve` against nginx serving the same published tree.

One run, bounded in time (about 8 x --duration plus set-up):

1. builds a real published tree: a loopback feed server (tests/feedserver.py) serves five
   feeds of 30 entries, `aggregator fetch` stores and publishes them;
2. starts `aggregator serve` on a free loopback port, and nginx (the Debian package,
   installed with apt-get if missing and we are root) on another, with deploy/nginx.conf
   pointed at the same tree (its fallback location proxies to our server);
3. runs wrk (Debian package, likewise) with --clients connections for --duration seconds
   per case: `/feeds/all.atom` and `/`, each with a stale `If-None-Match` (answered 200)
   and with the current ETag (answered 304); every answer's status is counted (Lua);
4. prints requests/s, p50/p99 latency and errors per case, and our ratio to nginx.

Only 127.0.0.1; every process it starts is stopped at the end. Client and servers share the
machine's cores, the same for both servers.

    .venv/bin/python bench/load_bench.py [--clients 200] [--duration 20] [--write-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECTION = "## Serving under load (issue 14)"
PATHS = ("/feeds/all.atom", "/")

# Counts every answer's status per wrk thread, summed at the end ("status 200 12345").
STATUS_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do total[code] = (total[code] or 0) + n end
  end
  for code, n in pairs(total) do io.write(string.format("status %d %d\\n", code, n)) end
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- nginx with the shipped configuration -----------------------------------------------------


def nginx_site(public: Path, port: int, upstream_port: int) -> str:
    """deploy/nginx.conf, listening on 127.0.0.1:port, serving `public`, proxying to upstream."""
    text = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    replacements = [
        ("    listen 80;\n", f"    listen 127.0.0.1:{port};\n"),
        ("    listen [::]:80;\n", ""),
        ("root /var/lib/aggregator/public;", f"root {public};"),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
    ]
    for old, new in replacements:
        if old not in text:
            raise RuntimeError(f"deploy/nginx.conf no longer contains {old.strip()!r}")
        text = text.replace(old, new)
    return text


def nginx_main(site: Path, work: Path) -> str:
    """A whole nginx.conf that runs unprivileged-style in `work` and includes `site`."""
    temps = "".join(
        f"    {name}_temp_path {work / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Started as root, nginx's workers would run as nobody, who cannot read a 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        "daemon off;\n"
        f"{user}"
        "worker_processes auto;\n"
        f"pid {work / 'nginx.pid'};\n"
        f"error_log {work / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        "    sendfile on;\n"
        "    tcp_nopush on;\n"
        "    keepalive_requests 100000;\n"
        "    default_type application/octet-stream;\n"
        f"{temps}"
        f"    include {site};\n"
        "}\n"
    )


def ensure_tool(command: str, package: str) -> str:
    """The path of `command`; installs the Debian `package` when missing and allowed, else exits."""
    found = shutil.which(command) or (
        f"/usr/sbin/{command}" if Path(f"/usr/sbin/{command}").exists() else None
    )
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {package} (Debian package) for {command} ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
        if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=600)
        found = shutil.which(command) or (
            f"/usr/sbin/{command}" if Path(f"/usr/sbin/{command}").exists() else None
        )
    if not found:
        sys.exit(f"load_bench: {command} is missing and could not be installed (apt-get install {package})")
    return found


@contextlib.contextmanager
def running(
    argv: list[str], ready_url: str, log: Path, timeout: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start argv, wait until ready_url answers, stop it (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                httpx.get(ready_url, timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not answer {ready_url} within {timeout:g} s") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- the published tree -----------------------------------------------------------------------


def synthetic_rss(lang: str, items: int) -> bytes:
    """A feed like the site's: `items` entries with an 80-character title and a 600-character lede."""
    words = {"en": "workers strike", "es": "huelga obrera", "it": "sciopero operaio",
             "fr": "grève ouvrière", "ru": "забастовка рабочих"}[lang]  # fmt: skip
    parts = [f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{lang}</title>'
             f"<link>https://example.org/{lang}/</link><description>{lang}</description>"
             f"<language>{lang}</language>"]  # fmt: skip
    for i in range(items):
        title = f"{words} {i}: " + (words + " ") * 6
        summary = "<p>" + (f"{words} {i} " * 40)[:600] + "</p>"
        day = 1 + i % 28
        parts.append(
            f"<item><title>{title[:80]}</title><link>https://example.org/{lang}/{i}</link>"
            f"<guid>https://example.org/{lang}/{i}</guid><description><![CDATA[{summary}]]></description>"
            f"<pubDate>{['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][i % 7]}, {day:02d} Jan 2023 "
            f"{i % 24:02d}:00:00 +0000</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def build_tree(work: Path) -> tuple[Path, Path]:
    """Fetch synthetic feeds (30 entries in each of 5 languages) from a loopback server into a
    store and publish them; returns (config, data)."""
    from tests.feedserver import FeedServer

    server = FeedServer().start()
    try:
        lines = [
            "site:", "  title: Load benchmark", f"  base_url: {server.base_url}/",
            "  timezone: Europe/London", "  languages: [en, es, it, fr, ru]", "feeds:",
        ]  # fmt: skip
        for lang in ("en", "es", "it", "fr", "ru"):
            url = server.add(f"/{lang}.rss", synthetic_rss(lang, 30), "application/rss+xml")
            lines += [f"  - url: {url}", f"    language: {lang}"]
        config = work / "feeds.yaml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        data = work / "data"
        env = {**os.environ, "AGGREGATOR_CONFIG": str(config), "AGGREGATOR_DATA": str(data)}
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", "fetch"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"aggregator fetch failed: {done.stderr[-2000:]}")
        print(done.stdout.strip().splitlines()[0] if done.stdout.strip() else "fetched", flush=True)
    finally:
        server.stop()
    return config, data


# -- wrk ---------------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    path: str
    kind: str  # "200" (stale validator) or "304" (current validator)
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int

    @property
    def errors(self) -> int:
        expected = int(self.kind)
        return self.socket_errors + sum(n for code, n in self.statuses.items() if code != expected)


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(value)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def run_wrk(wrk: str, script: Path, url: str, etag: str | None, clients: int, duration: int) -> str:
    headers = ["-H", f"If-None-Match: {etag}"] if etag else ["-H", 'If-None-Match: "stale"']
    argv = [wrk, "-t2", f"-c{clients}", f"-d{duration}s", "--latency", "--timeout", "10s", "-s", str(script),
            *headers, url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}")
    return done.stdout


def parse_wrk(server: str, path: str, kind: str, output: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    statuses = {int(c): int(n) for c, n in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = sum(int(g) for g in sock.groups()) if sock else 0
    return Result(server, path, kind, rps, p50, p99, statuses, socket_errors)


def measure(wrk: str, script: Path, base: str, name: str, clients: int, duration: int) -> list[Result]:
    results = []
    for path in PATHS:
        # wrk sends no Accept-Encoding: the validator of the identity representation.
        first = httpx.get(base + path, headers={"Accept-Encoding": "identity"}, timeout=10)
        first.raise_for_status()
        etag = first.headers.get("etag")
        if not etag:
            raise RuntimeError(f"{name} sent no ETag for {path}")
        for kind, validator in (("200", None), ("304", etag)):
            output = run_wrk(wrk, script, base + path, validator, clients, duration)
            result = parse_wrk(name, path, kind, output)
            print(f"  {name:<10} {path:<16} {kind}: {result.rps:9,.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
                  f"p99 {result.p99_ms:8.2f} ms  errors {result.errors}", flush=True)  # fmt: skip
            results.append(result)
    return results


def report(ours: list[Result], theirs: list[Result], clients: int, duration: int, load: float) -> str:
    header = f"{'case':<22} {'server':<11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    lines = [
        f"{clients} concurrent connections, {duration} s per case, wrk -t2, all on 127.0.0.1",
        f"load average at start: {load:.2f} (the machine is shared; other work skews both servers)",
        "",
        header,
    ]
    for a, b in zip(ours, theirs, strict=True):
        case = f"{a.path} {a.kind}"
        for r in (a, b):
            lines.append(
                f"{case:<22} {r.server:<11} {r.rps:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}"
            )
        lines.append(f"{'':<22} {'ratio':<11} {a.rps / b.rps:>9.3f}  (ours / nginx; goal >= 0.5)")
    return "\n".join(lines)


def write_docs(text: str, args: argparse.Namespace) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    options = f"--clients {args.clients} --duration {args.duration}"
    command = f".venv/bin/python bench/load_bench.py {options} --write-docs"
    section = (
        f"{SECTION}\n\n"
        f"Command: `{command}` (run {date.today().isoformat()}, Python {platform.python_version()}, "
        "2 shared cores: wrk and the server under test share them). `aggregator serve` (one process: "
        "uvicorn's httptools protocol on uvloop, published files answered in the protocol from versions "
        "held in memory) and nginx (Debian package, deploy/nginx.conf, worker_processes auto, so two "
        "workers) serve the same published tree (five feeds of 30 entries: `/feeds/all.atom` is 50 "
        "entries). `200` cases send a stale `If-None-Match`, `304` cases the current ETag; wrk sends no "
        "Accept-Encoding, so both answer uncompressed. Errors count socket errors and any answer with "
        "another status.\n\n"
        f"```\n{text}\n```\n"
    )
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    # The heading, the command and the figures are replaced; the notes written after the figures
    # (earlier runs, where the figures came from) are kept for the reader to bring up to date.
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?^```\n.*?^```\n", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        current = pattern.sub(lambda _: section, current, count=1)
    else:
        current = current.rstrip("\n") + "\n\n" + section
    path.write_text(current, encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({SECTION})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=int, default=20, help="seconds per case (8 cases)")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"write the figures to docs/benchmarks.md, {SECTION}"
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= 60 or not 1 <= args.clients <= 1000:
        sys.exit("--duration must be 1-60 s and --clients 1-1000")
    nginx = ensure_tool("nginx", "nginx-light")
    wrk = ensure_tool("wrk", "wrk")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        work = Path(tmp)
        config, data = build_tree(work)
        script = work / "status.lua"
        script.write_text(STATUS_LUA, encoding="utf-8")
        ours_port, nginx_port = free_port(), free_port()
        site = work / "site.conf"
        site.write_text(nginx_site(data / "public", nginx_port, ours_port), encoding="utf-8")
        main_conf = work / "nginx.conf"
        (work / "nginx").mkdir()
        main_conf.write_text(nginx_main(site, work / "nginx"), encoding="utf-8")
        serve = [sys.executable, "-m", "aggregator", "--config", str(config), "--data", str(data),
                 "serve", "--port", str(ours_port)]  # fmt: skip
        ours_base, nginx_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{nginx_port}"
        with (
            running(serve, ours_base + "/healthz", work / "serve.log"),
            running([nginx, "-c", str(main_conf)], nginx_base + "/feeds/all.atom", work / "nginx.log"),
        ):
            # nginx's fallback really reaches our server (the shipped proxy config works).
            assert httpx.get(nginx_base + "/healthz", timeout=5).status_code == 200
            ours = measure(wrk, script, ours_base, "aggregator", args.clients, args.duration)
            theirs = measure(wrk, script, nginx_base, "nginx", args.clients, args.duration)
    text = report(ours, theirs, args.clients, args.duration, load)
    print()
    print(text)
    if args.write_docs:
        write_docs(text, args)


if __name__ == "__main__":
    main()
