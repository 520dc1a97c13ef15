"""Start and stop a throwaway nginx (Debian `nginx-light`) serving a directory on 127.0.0.1.

nginx answers conditional GETs itself (ETag from mtime and size, Last-Modified), so a feed
file rewritten by the benchmark gets a new validator and a 200, the others a 304. With
`validators=False` it sends no ETag and ignores If-Modified-Since: every poll is a 200 with
the whole body, as from servers that support neither.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

CONFIG = """\
worker_processes 1;
daemon off;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    types {{ application/rss+xml xml; application/atom+xml atom; }}
    default_type application/xml;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 300;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag {etag};
        if_modified_since {ims};
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


@contextlib.contextmanager
def serving(root: Path, tmp: Path, timeout: float = 10.0, validators: bool = True) -> Iterator[int]:
    """nginx serving `root` on a free 127.0.0.1 port (yielded) until the block ends;
    `validators=False`: no ETag, If-Modified-Since ignored (every answer a full 200)."""
    exe = binary()
    if exe is None:
        raise SystemExit("nginx is not installed (Debian: apt-get install nginx-light)")
    port = free_port()
    conf = tmp / "nginx.conf"
    text = CONFIG.format(
        tmp=tmp,
        port=port,
        root=root,
        etag="on" if validators else "off",
        ims="exact" if validators else "off",
    )
    conf.write_text(text)
    cmd = [exe, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)]
    if os.geteuid() != 0:
        conf.write_text(text.replace("user root;\n", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:  # bounded by the deadline
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"nginx did not start: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise SystemExit("nginx did not start listening in time")
            time.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGQUIT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
