"""Serving the dashboard: a single page (static/index.html) whose scripts call /api/v1 like the CLI does.

Its files are served under ``/ui/<version>/``, where the version is a digest of their contents: a browser
keeps them for a year and asks again only after an upgrade changes them. ``/`` answers the page itself
(never cached) with a Content-Security-Policy that lets it run only its own scripts. Files are
gzipped once, in memory, for browsers that accept it. The three libraries under static/vendor/ (Preact,
htm, uPlot) are fetched by `make up` from the npm registry and checked against pinned digests; without
them the page says so instead of failing silently."""

from __future__ import annotations

import base64
import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from mypaas.web.assets import PACKAGES

STATIC = Path(__file__).parent / "static"
# the files the page loads from static/vendor/, as assets.py unpacks them (their licences aside)
VENDOR_FILES = tuple(
    f"vendor/{pkg.name}/{name}" for pkg in PACKAGES for name in pkg.files.values() if name != "LICENSE"
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
_SAFE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*\Z")  # no dot segment
_IMPORTMAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)
IMMUTABLE = "public, max-age=31536000, immutable"


def version_of(root: Path) -> str:
    """A digest of every file the page uses: changes when any of them does."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def missing_vendor(root: Path = STATIC) -> list[str]:
    return [name for name in VENDOR_FILES if not (root / name).is_file()]


@dataclass
class Assets:
    """The dashboard's files, read from ``root``: the page (with its base path filled in) and the rest,
    served by version, each gzipped once on first ask."""

    root: Path = STATIC
    version: str = ""
    _gzipped: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.version = self.version or version_of(self.root)

    @property
    def base(self) -> str:
        return f"/ui/{self.version}"

    def page(self) -> tuple[str, str]:
        """The page's HTML and its Content-Security-Policy (the import map's digest allowed inline)."""
        missing = missing_vendor(self.root)
        if missing:
            return _missing_page(missing), "default-src 'none'; style-src 'unsafe-inline'"
        html = (self.root / "index.html").read_text().replace("{{base}}", self.base)
        found = _IMPORTMAP.search(html)
        inline = found.group(1) if found else ""
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        csp = (
            f"default-src 'self'; script-src 'self' 'sha256-{digest}'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'"
        )
        return html, csp

    def file(self, path: str, gzip_ok: bool) -> tuple[bytes, str, bool] | None:
        """(content, content type, gzipped) of the file at ``path``, None when there is none."""
        if not _SAFE_PATH.match(path) or path == "index.html":
            return None
        target = self.root / path
        if not target.is_file() or not target.resolve().is_relative_to(self.root.resolve()):
            return None
        kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if not gzip_ok or target.suffix not in _TYPES:
            return target.read_bytes(), kind, False
        packed = self._gzipped.get(path)
        if packed is None:
            packed = self._gzipped[path] = gzip.compress(target.read_bytes(), 9, mtime=0)
        return packed, kind, True


def _missing_page(missing: list[str]) -> str:
    names = "".join(f"<li><code>{name}</code></li>" for name in missing)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>MyPaas</title></head>'
        "<body style='font-family:system-ui;margin:2rem'><h1>The dashboard's files are missing</h1>"
        f"<p>Run <code>make up</code> (it fetches them from the npm registry) and reload.</p><ul>{names}</ul>"
        "<p>The CLI and the API work without them.</p></body></html>"
    )


def dashboard_routes(app: FastAPI, assets: Assets | None = None) -> None:
    ui = assets or Assets()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> Response:
        html, csp = ui.page()
        headers = {
            "Cache-Control": "no-cache",
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(html, headers=headers)

    @app.get("/ui/{version}/{path:path}", include_in_schema=False)
    def dashboard_asset(version: str, path: str, request: Request) -> Response:
        found = ui.file(path, "gzip" in request.headers.get("accept-encoding", ""))
        if found is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        content, kind, packed = found
        headers = {
            "Cache-Control": IMMUTABLE if version == ui.version else "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept-Encoding",
        }
        if packed:
            headers["Content-Encoding"] = "gzip"
        return Response(content, media_type=kind, headers=headers)
