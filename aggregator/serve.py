"""HTTP serving of data/public/ (starlette): right content types, ETag/Last-Modified, 304, HEAD.

The server shares nothing with the poller but the files on disk and the store.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


class _PublicFiles(StaticFiles):
    """StaticFiles with feed content types: front-page JSON is plain JSON, feeds are feed+json."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        path = Path(full_path)
        ctype = CONTENT_TYPES.get(path.suffix)
        if path.suffix == ".json" and path.parent.name != "feeds":
            ctype = "application/json; charset=utf-8"
        if ctype:
            response.headers["content-type"] = ctype
        response.headers.setdefault("cache-control", "public, max-age=60")
        return response


def create_app(public_dir: Path) -> Starlette:
    public_dir.mkdir(parents=True, exist_ok=True)
    for ext, ctype in CONTENT_TYPES.items():
        mimetypes.add_type(ctype.split(";")[0], ext)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Mount(
                "/",
                app=_PublicFiles(directory=public_dir, html=True, check_dir=False),
                name="public",
            ),
        ]
    )
